"""Alert rendering: hostile customer text stays inert in Slack, Jira and markdown; every body carries the evidence."""

from __future__ import annotations

import re
from datetime import date

import pytest

from feedback_assets.alerts.model import TicketRef
from feedback_assets.alerts.render import (
    SUMMARY_LIMIT,
    jira_comment,
    jira_description,
    jira_escape,
    markdown_comment,
    markdown_escape,
    markdown_ticket,
    slack_escape,
    slack_message,
    ticket_summary,
)
from tests.alert_factory import make_alert

DUE = date(2024, 3, 17)
TICKET = TicketRef("FIT-7", "https://acme.atlassian.net/browse/FIT-7")

SLACK, JIRA, MARKDOWN = "slack", "jira", "markdown"
ESCAPERS = {SLACK: slack_escape, JIRA: jira_escape, MARKDOWN: markdown_escape}

# (hostile text, the markups it attacks when left raw)
ATTACKS = [
    ("@channel the sleeves are short", {SLACK}),
    ("hey @here and @everyone look", {SLACK}),
    ("<!channel> <!here> <!everyone>", {SLACK, MARKDOWN}),
    ("ping <@U024BE7LH> in <#C024BE7LR|general>", {SLACK, MARKDOWN}),
    ("<https://evil.example/login|your order status>", {SLACK, MARKDOWN, JIRA}),
    ("[your refund](https://evil.example/refund)", {MARKDOWN, JIRA}),
    ("see https://evil.example/login now", {SLACK, MARKDOWN, JIRA}),
    ("go to www.evil-shop.com or evil.example", {SLACK, MARKDOWN}),
    ("*bold* _italic_ ~strike~", {SLACK, MARKDOWN, JIRA}),
    ("`code` and ```block``` escape", {SLACK, MARKDOWN}),
    ("> fake quote\n> second line", {SLACK, MARKDOWN}),
    ("line one\nline two\r\n\u2028line three\u0085four", {SLACK, MARKDOWN, JIRA}),
    ("{quote}breakout{quote} {noformat}x{noformat} {code}y{code}", {JIRA}),
    ("[~admin] and [~accountid:5b10ac8d82e05b22cc7d4ef5]", {JIRA, MARKDOWN}),
    ("[click here|https://evil.example]", {JIRA, MARKDOWN}),
    ("h1. Refund everyone", {JIRA}),
    ("-strike- +under+ ^sup^ ~sub~ ??cite??", {JIRA}),
    ("{color:red}URGENT{color}", {JIRA}),
    ("|cell|cell| ||header||", {JIRA, MARKDOWN}),
    ("!https://evil.example/pixel.png! tracking", {JIRA, MARKDOWN}),
    ("back\\\\slash line break \\\\", {JIRA}),
    ("<script>alert(1)</script>", {SLACK, MARKDOWN}),
    ("# not a heading", {MARKDOWN, JIRA}),
    ("\u202egnp.exe\u202c bidi override", {SLACK, MARKDOWN, JIRA}),
]

_LINE_BREAKS = re.compile(r"[\n\r\u2028\u2029\u0085]")
_AUTOLINK = re.compile(r"://|[0-9A-Za-z]\.[A-Za-z]")  # a scheme, or a dot that makes a domain
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_SLACK_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")
_JIRA_SPECIAL = "*_-+^~?{}[]!|#"
_MARKDOWN_SPECIAL = "\\`*_{}[]()#+!|~>"


def _unescaped(text: str, specials: str) -> list[str]:
    """The special characters of `text` not preceded by a backslash escape."""
    found, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] in specials:
            found.append(text[i])
        i += 1
    return found


def _common_inert(text: str) -> bool:
    return not _LINE_BREAKS.search(text) and not _AUTOLINK.search(text) and not _BIDI.search(text)


def slack_inert(text: str) -> bool:
    """No mention, link, special sequence, formatting or block structure left for Slack to parse."""
    return (
        _common_inert(text)
        and "<" not in text
        and ">" not in text
        and not _SLACK_ENTITY.search(text)
        and not re.search(r"@(channel|here|everyone)\b", text)
        and not any(ch in text for ch in "*_~`")
    )


def jira_inert(text: str) -> bool:
    """Every wiki-markup character escaped, no backslash left to form a line break, no heading."""
    return (
        _common_inert(text)
        and not _unescaped(text, _JIRA_SPECIAL)
        and not re.search(r"\\(?![*_\-+^~?{}\[\]!|#])", text)
        and not re.match(r"(h[1-6]|bq)\.", text)
    )


def markdown_inert(text: str) -> bool:
    """No markdown or HTML character unescaped."""
    return _common_inert(text) and "<" not in text and not _unescaped(text, _MARKDOWN_SPECIAL)


INERT = {SLACK: slack_inert, JIRA: jira_inert, MARKDOWN: markdown_inert}


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z]{3,}", text))


@pytest.mark.parametrize(("attack", "targets"), ATTACKS, ids=[a[:24] for a, _ in ATTACKS])
@pytest.mark.parametrize("markup", [SLACK, JIRA, MARKDOWN])
def test_escaping_renders_every_attack_inert_and_keeps_the_words(markup, attack, targets):
    if markup in targets:
        assert not INERT[markup](attack), "the check must catch the raw attack"
    escaped = ESCAPERS[markup](attack)
    assert INERT[markup](escaped), escaped
    assert _words(attack.replace("\u202e", "").replace("\u202c", "")) <= _words(escaped)


def test_escapers_shorten_long_text_to_one_line():
    text = "word " * 500
    for escape in ESCAPERS.values():
        escaped = escape(text, 100)
        assert len(escaped) <= 100 and escaped.endswith("…") and "\n" not in escaped


def _hostile_alert():
    quotes = (
        "{quote}h1. Refund{quote} [~admin] [click|https://evil.example] {noformat}",
        "# not a heading\n## nor this\nh2. nor this",
        "<!here> <https://evil.example|click> [a](https://evil.example) @channel",
        "```\nfenced\n``` > quoted\n- listed\n1. numbered",
        "*bold* _it_ ~s~ `code` |cell| !img.png!",
    )
    return make_alert(
        quotes=quotes,
        themes=("<!here> *free* refunds", "{quote}x"),
        affected_skus=("JKT-1042", "<@U1>"),
        affected_regions=("EU|US", "h1. x"),
    )


def test_jira_description_of_hostile_alert_keeps_its_structure():
    alert = _hostile_alert()
    description = jira_description(alert, DUE)

    assert len(re.findall(r"(?<!\\)\{quote\}", description)) == 2 * len(alert.quotes)
    assert len(re.findall(r"(?<!\\)\{noformat\}", description)) == 2, "only the macro block's own tags"
    headings = [line for line in description.splitlines() if re.match(r"(h[1-6]|bq)\.", line)]
    assert all(line.startswith(("h2. ", "h3. ")) for line in headings) and len(headings) == 7
    links = re.findall(r"(?<!\\)\[[^\]]*\]", description)
    assert links == [f"[Dagster asset|{alert.asset_url}]"]
    assert "[~" not in description and "{color" not in description


def test_markdown_ticket_of_hostile_alert_keeps_its_structure():
    alert = _hostile_alert()
    body = markdown_ticket(alert, "FIT-1", DUE)
    outside_fence = re.sub(r"```text\n.*?\n```", "", body, flags=re.DOTALL)

    assert re.findall(r"(?<!\\)\[[^\]]*\]\(", outside_fence) == ["[Dagster asset]("]
    headings = [line.split(":")[0] for line in body.splitlines() if line.startswith("#")]
    assert headings == [
        "# FIT-1", "## Evidence", "## Daily complaints, last 7 days", "## What customers say",
        "## Suggested support reply", "## Provenance",
    ]
    quote_lines = [line for line in body.splitlines() if line.startswith(">")]
    assert len(quote_lines) == 2 * len(alert.quotes) - 1
    assert all(line == ">" or line.startswith("> “") and line.endswith("”") for line in quote_lines)
    assert "<" not in outside_fence


def test_slack_message_of_hostile_alert_has_only_its_own_links():
    alert = _hostile_alert()
    message = slack_message(alert, TICKET)
    mrkdwn = [message["text"]]
    for block in message["blocks"]:
        if block["type"] in ("section", "context"):
            texts = [block["text"]] if "text" in block else []
            mrkdwn += [t["text"] for t in texts + block.get("fields", []) + block.get("elements", [])]
    links = [link for text in mrkdwn for link in re.findall(r"<[^>]*>", text)]

    assert links == [f"<{TICKET.url}|FIT-7>", f"<{alert.asset_url}|Dagster asset>"]
    assert not any(re.search(r"@(channel|here|everyone)\b", text) for text in mrkdwn)


def _visible_jira(text: str) -> str:
    """What a reader sees of escaped wiki text."""
    return re.sub(r"\\(.)", r"\1", text)


def _assert_evidence(body: str, alert, *, with_macro: bool) -> None:
    for quote in alert.quotes:
        assert quote in body
    for needle in (
        "4.2×", "1.7e-06", "12,340", "JKT-1042", "JKT-1043", "EU", "US", "sleeves too short", "tight shoulders",
        alert.prompt_version, alert.run_id, alert.asset_url, alert.dedupe_label, alert.breach_label,
        "2024-03-08", "2024-03-14",
    ):
        assert needle in body, needle
    counts = re.sub(r"[|\s]+", ",", " ".join(str(n) for n in alert.daily_counts_7d))
    assert counts in re.sub(r"[|\s]+", ",", body)
    if with_macro:
        for line in alert.support_macro.splitlines():
            assert line in body
        assert "Fit Quality" in body and "SLA 3 days" in body and "due 2024-03-17" in body


def test_every_ticket_body_carries_the_evidence():
    alert = make_alert()
    _assert_evidence(_visible_jira(jira_description(alert, DUE)), alert, with_macro=True)
    _assert_evidence(_visible_jira(markdown_ticket(alert, "FIT-1", DUE)), alert, with_macro=True)
    _assert_evidence(_visible_jira(jira_comment(alert)), alert, with_macro=False)
    _assert_evidence(_visible_jira(markdown_comment(alert, 1)), alert, with_macro=False)


def test_support_macro_is_a_copyable_block_that_cannot_be_closed_early():
    alert = make_alert(support_macro="Hi,\n{noformat}\nnot code\n```\nstill the macro")
    jira = jira_description(alert, DUE)
    markdown = markdown_ticket(alert, "FIT-1", DUE)

    jira_block = jira.split("h3. Suggested support reply\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert jira_block[0] == jira_block[-1] == "{noformat}" and jira.count("{noformat}") == 2
    assert jira_block[1:-1] == ["Hi,", "{\u200bnoformat}", "not code", "```", "still the macro"]
    fence = re.search(r"^(`{3,})text$", markdown, flags=re.MULTILINE)[1]
    assert len(fence) > 3 and f"\n{fence}\n" in markdown and "```\nstill the macro" in markdown


def test_summary_is_one_line_within_jiras_limit():
    assert ticket_summary(make_alert()) == "[velocity] size_runs_small on sku=JKT-1042: 14 today, 4.2× the 28-day mean"
    long = ticket_summary(make_alert(value="X" * 400 + "\nline"))
    assert len(long) == SUMMARY_LIMIT and "\n" not in long


def test_slack_message_shows_the_numbers_quotes_ticket_and_provenance():
    alert = make_alert(quotes=("one", "two", "three", "four", "five"))
    message = slack_message(alert, TICKET)
    blocks = {block["type"]: block for block in message["blocks"]}
    [fields_block] = [block for block in message["blocks"] if "fields" in block]
    fields = {f["text"].split("\n")[0].strip("*"): f["text"].split("\n", 1)[1] for f in fields_block["fields"]}
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b]
    context = blocks["context"]["elements"][0]["text"]

    assert blocks["header"]["text"]["text"] == "Complaint spike: size_runs_small on sku=JKT-1042"
    assert fields["Today"].startswith("14") and fields["Last 7 days"] == "2 · 3 · 2 · 4 · 3 · 3 · 14 = 31"
    assert fields["Lift"].startswith("4.2×") and fields["p-value"] == "1.7e-06"
    assert fields["Per 1k orders"] == "3.12" and fields["Revenue at risk"] == "12,340"
    assert fields["Affected SKUs"] == "`JKT-1042`, `JKT-1043`" and fields["Affected regions"] == "`EU`, `US`"
    assert any("sleeves too short" in text for text in sections)
    shown = [q for q in alert.quotes if any(f"“{q}”" in section for section in sections)]
    assert shown == ["one", "two", "three"]
    assert blocks["actions"]["elements"][0]["url"] == TICKET.url
    assert "classify-v3" in context and alert.run_id in context and alert.asset_url in context
    assert "FIT-7" in message["text"] and "size_runs_small" in message["text"]


def test_slack_message_leaves_out_what_it_cannot_show():
    message = slack_message(make_alert(per_1k_orders=None, quotes=()), TicketRef("FIT-1", "file:///tmp/FIT-1.md"))
    kinds = [block["type"] for block in message["blocks"]]
    titles = [f["text"] for b in message["blocks"] for f in b.get("fields", [])]

    assert "actions" not in kinds, "Slack buttons need an http(s) link"
    assert not any("Per 1k orders" in title for title in titles)
    assert not any("What customers say" in b.get("text", {}).get("text", "") for b in message["blocks"])


def test_slack_reply_is_marked_as_a_repeat():
    message = slack_message(make_alert(), TICKET, reply=True)
    assert message["blocks"][0]["text"]["text"].startswith("Breached again")
