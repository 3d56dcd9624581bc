"""Properties of rendering, for any string: the escapers stay inert and within their limit, and a Slack
message built from an alert full of hostile values stays inert and inside every Block Kit limit."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_assets.alerts.evidence import customer_safe
from feedback_assets.alerts.model import TicketRef
from feedback_assets.alerts.render import (
    BUTTON_TEXT_LIMIT,
    CONTEXT_LIMIT,
    FALLBACK_TEXT_LIMIT,
    FIELD_LIMIT,
    HEADER_LIMIT,
    SECTION_LIMIT,
    SUMMARY_LIMIT,
    jira_description,
    jira_escape,
    markdown_escape,
    markdown_ticket,
    plain_text,
    slack_escape,
    slack_message,
    ticket_summary,
)
from tests.alert_factory import make_alert
from tests.test_alert_render import ATTACKS, jira_inert, markdown_inert, slack_inert

ATTACK_TEXT = [attack for attack, _ in ATTACKS] + ["&amp;&lt;", "x.y" * 40, "@" * 30, "<" * 50, "&" * 80]
# Any text, weighted towards what breaks renderers: markup characters, separators, invisible characters.
hostile = st.one_of(
    st.text(max_size=600),
    st.text(alphabet=st.sampled_from(list("<>&@*_~`[]{}|!#\\^+-?.:/ \n\r\t\u2028\u0085\u202e\u200bahttpsw")), max_size=600),
    st.lists(st.sampled_from(ATTACK_TEXT), min_size=1, max_size=12).map(" ".join),
)
limits = st.integers(min_value=1, max_value=500)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(text=hostile, limit=limits)
def test_escaped_text_is_inert_and_never_longer_than_its_limit(text, limit):
    for escape, inert in ((slack_escape, slack_inert), (jira_escape, jira_inert), (markdown_escape, markdown_inert)):
        escaped = escape(text, limit)
        assert len(escaped) <= limit
        assert inert(escaped), (escape.__name__, escaped)
    assert len(plain_text(text, limit)) <= limit


@PROPERTY
@given(text=hostile)
def test_values_pasted_into_customer_replies_are_plain_or_replaced(text):
    safe = customer_safe(text, "your order")
    assert safe == "your order" or (len(safe) <= 60 and not re.search(r"[<>@\[\]{}*`|!\\\n]|://|www\.", safe))


TICKET_URL = "https://acme.atlassian.net/browse/FIT-7"
ASSET_URL = "http://localhost:3000/assets/complaint_velocity?partition=2024-03-14"
_OUR_LINKS = re.compile(r"<(?:%s|%s)\|[^<>]*>" % (re.escape(TICKET_URL), re.escape(ASSET_URL.replace("&", "&amp;"))))


def _mrkdwn_texts(message: dict) -> list[tuple[str, int]]:
    """Every mrkdwn text of the payload with the limit Block Kit sets for it."""
    texts = [(message["text"], FALLBACK_TEXT_LIMIT)]
    for block in message["blocks"]:
        if block["type"] == "section":
            if "text" in block:
                texts.append((block["text"]["text"], SECTION_LIMIT))
            texts += [(field["text"], FIELD_LIMIT) for field in block.get("fields", [])]
        elif block["type"] == "context":
            texts += [(element["text"], CONTEXT_LIMIT) for element in block["elements"]]
    return texts


def _live(text: str) -> list[str]:
    """Constructs Slack would act on, once our own two links are set aside."""
    rest = _OUR_LINKS.sub("", text)
    found = re.findall(r"<[^>]*>?|@(?:channel|here|everyone)\b|://|\b[0-9A-Za-z]+\.[A-Za-z]{2,}", rest)
    return [f for f in found if f not in ("`",)]


@PROPERTY
@given(value=hostile, quote=hostile, theme=hostile, sku=hostile, team=hostile, key=hostile, reply=st.booleans())
def test_a_slack_message_stays_inert_and_inside_every_block_kit_limit(value, quote, theme, sku, team, key, reply):
    alert = make_alert(value=value, quotes=(quote, quote[::-1], quote), themes=(theme,) * 12,
                       affected_skus=(sku,) * 12, affected_regions=(sku,), asset_url=ASSET_URL,
                       prompt_version=key, run_id=key)
    alert = make_alert(**{**alert.__dict__, "owner": alert.owner.__class__(team, "FIT", "#fit", 3)})
    message = slack_message(alert, TicketRef(key or "FIT-7", TICKET_URL), reply=reply)
    blocks = message["blocks"]
    assert len(blocks) <= 50
    header = blocks[0]["text"]["text"]
    assert blocks[0]["type"] == "header" and len(header) <= HEADER_LIMIT
    for block in blocks:
        if block["type"] == "section" and "fields" in block:
            assert len(block["fields"]) <= 10
        if block["type"] == "actions":
            button = block["elements"][0]
            assert len(button["text"]["text"]) <= BUTTON_TEXT_LIMIT and len(button["url"]) <= 3000
    for text, limit in _mrkdwn_texts(message):
        assert len(text) <= limit
        assert not _live(text), (_live(text), text)
        assert not re.search(r"&(?!amp;|lt;|gt;)", text)


@PROPERTY
@given(value=hostile, quote=hostile)
def test_ticket_titles_and_bodies_stay_bounded(value, quote):
    alert = make_alert(value=value, quotes=(quote,) * 5)
    summary = ticket_summary(alert)
    assert len(summary) <= SUMMARY_LIMIT and "\n" not in summary
    assert len(jira_description(alert)) < 32_767
    body = markdown_ticket(alert, "FIT-7")
    assert "<script" not in body.lower()
