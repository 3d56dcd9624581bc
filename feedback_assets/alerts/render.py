"""How an alert reads in Jira, in a local ticket file and in Slack, with customer text rendered inert.

Quotes, theme names, SKUs and regions come from customer data: each markup gets its own escaper
(Slack mrkdwn, Jira wiki markup, markdown) on top of a shared cleaner that keeps text on one line,
drops control and bidi characters and breaks bare links, so no quote can mention, link, format or
start a block in the channel or ticket it lands in.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from feedback_assets.alerts.model import Alert, TicketRef
from feedback_assets.metadata import escape_markdown_cell

SUMMARY_LIMIT = 255
QUOTE_LIMIT = 400
SLACK_QUOTES = 3
TICKET_QUOTES = 5
MACRO_LIMIT = 3000
LIST_LIMIT = 10

ZERO_WIDTH_SPACE = "\u200b"
WORD_JOINER = "\u2060"

_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*):(?=//)")
# A dot between a word and a letter is what makes "evil.com" or "www.evil" a link to autolinkers.
_DOMAIN_DOT = re.compile(r"(?<=[0-9A-Za-z])\.(?=[A-Za-z])")
_SLACK_MENTION = re.compile(r"@(?=\w)")
# Slack has no backslash escape: its formatting characters become lookalikes that no parser reads.
_SLACK_LOOKALIKES = str.maketrans({"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"})
_JIRA_SPECIAL = frozenset("*_-+^~?{}[]!|#")
# `\\` is a forced line break in Jira wiki markup, so a literal backslash becomes a lookalike.
_JIRA_BACKSLASH = "\u29f5"
# "h1. " or "bq. " opens a heading or quote when the text lands at the start of a line.
_JIRA_BLOCK_START = re.compile(r"(h[1-6]|bq)\.")
_NOFORMAT = re.compile(r"(?i)\{noformat")


# ---- cleaning and escaping -----------------------------------------------------------------


def _visible(text: str, *, keep_newlines: bool = False) -> str:
    """`text` without control and format characters (bidi overrides, zero-width marks)."""
    kept = []
    for ch in text:
        if ch == "\n" and keep_newlines:
            kept.append(ch)
        elif ch.isspace():
            kept.append(" ")
        elif unicodedata.category(ch) not in ("Cc", "Cf"):
            kept.append(ch)
    return "".join(kept)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def fit(render: Callable[[str], str], text: str, limit: int) -> str:
    """`render(text)`, shortened from the end of `text` until the rendered result has at most `limit` characters.

    Escaping lengthens text (`&` → `&amp;`, a zero-width space after each dot of a domain), so
    cutting the escaped result could break an escape in half or overshoot the limit; cutting the
    input instead keeps every escape whole.
    """
    rendered = render(text)
    if len(rendered) <= limit:
        return rendered
    low, high = 0, len(text)
    while low < high:  # the longest prefix whose rendering, with an ellipsis, fits
        middle = (low + high + 1) // 2
        if len(render(text[:middle].rstrip() + "…")) <= limit:
            low = middle
        else:
            high = middle - 1
    shortened = render(text[:low].rstrip() + "…") if low else ""
    return shortened if len(shortened) <= limit else ""


def _break_links(text: str) -> str:
    text = _SCHEME.sub(lambda m: f"{m.group(1)}:{ZERO_WIDTH_SPACE}", text)
    return _DOMAIN_DOT.sub("." + ZERO_WIDTH_SPACE, text)


def _one_line(value: object) -> str:
    return " ".join(_visible("" if value is None else str(value)).split())


def plain_text(value: object, limit: int = QUOTE_LIMIT) -> str:
    """Untrusted text on one line, at most `limit` characters, with links broken for autolinkers."""
    return fit(_break_links, _one_line(value), limit)


def _slack(text: str) -> str:
    text = _break_links(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SLACK_MENTION.sub("@" + WORD_JOINER, text.translate(_SLACK_LOOKALIKES))


def _jira(text: str) -> str:
    text = _break_links(text).replace("\\", _JIRA_BACKSLASH)
    if _JIRA_BLOCK_START.match(text):
        text = ZERO_WIDTH_SPACE + text
    return "".join(f"\\{ch}" if ch in _JIRA_SPECIAL else ch for ch in text)


def _markdown(text: str) -> str:
    broken = _break_links(text)
    return escape_markdown_cell(broken, limit=max(len(broken) * 2, 1))


def slack_escape(value: object, limit: int = QUOTE_LIMIT) -> str:
    """Untrusted text inert in Slack mrkdwn: no mentions, links, formatting or block structure; ≤ `limit` characters."""
    return fit(_slack, _one_line(value), limit)


def jira_escape(value: object, limit: int = QUOTE_LIMIT) -> str:
    """Untrusted text inert in Jira wiki markup (no macros, links, mentions, effects, cells, headings); ≤ `limit`."""
    return fit(_jira, _one_line(value), limit)


def markdown_escape(value: object, limit: int = QUOTE_LIMIT) -> str:
    """Untrusted text inert in markdown (also inside a table cell); ≤ `limit` characters."""
    return fit(_markdown, _one_line(value), limit)


def safe_url(url: str | None) -> str | None:
    """An http(s) URL with every character that could end a link in any of the three markups encoded."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return quote(url.strip(), safe=":/?#@!$&'*+,;=%~")


def _macro_lines(text: str) -> list[str]:
    """The support macro as lines of visible text, kept for copying (not escaped, shown literally)."""
    visible = _visible(text.replace("\r\n", "\n").replace("\r", "\n"), keep_newlines=True)
    lines = [line.rstrip() for line in _truncate(visible.strip(), MACRO_LIMIT).split("\n")]
    return lines or [""]


# ---- facts shared by every rendering ------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _p_value(p: float) -> str:
    return "< 1e-15" if p < 1e-15 else f"{p:.2g}"


def _lift(alert: Alert) -> str:
    return f"{alert.lift:.1f}×"


def _some(values: Sequence[str], limit: int = LIST_LIMIT) -> list[str]:
    """At most `limit` values; a last entry says how many were left out."""
    shown = list(values[:limit])
    if len(values) > limit:
        shown.append(f"+{len(values) - limit} more")
    return shown


def _daily(alert: Alert) -> list[tuple[date, int]]:
    """The seven daily counts with their days (oldest first, the last one is the breach day)."""
    counts = alert.daily_counts_7d
    return [(alert.day - timedelta(days=len(counts) - 1 - i), n) for i, n in enumerate(counts)]


def _headline(alert: Alert) -> str:
    return f"{alert.label} on {alert.dimension}={alert.value}"


def ticket_summary(alert: Alert) -> str:
    """One plain line for the ticket title (≤ 255 characters, Jira's limit)."""
    line = f"[velocity] {_headline(alert)}: {alert.count} today, {_lift(alert)} the 28-day mean"
    return " ".join(_visible(line).split())[:SUMMARY_LIMIT]


def _unknown(alert: Alert) -> str:
    reason = alert.commerce.unknown_reason if alert.commerce and alert.commerce.unknown_reason else "no orders"
    return f"unknown ({reason})"


def revenue_at_risk_text(alert: Alert) -> str:
    """The complaining customers' order value, or why it is unknown."""
    return _unknown(alert) if alert.revenue_at_risk is None else _number(alert.revenue_at_risk)


def _share(value: float | None) -> str:
    return "unknown" if value is None else f"{100 * value:.1f}%"


def _commerce(alert: Alert) -> list[tuple[str, str | None, Sequence[str]]]:
    """What flows through the series' value, as evidence rows (only when it is known)."""
    commerce = alert.commerce
    if commerce is None or commerce.unknown_reason:
        return []
    return [
        ("Orders through it, last 7 days", f"{commerce.orders_7d:,}", ()),
        ("Revenue / margin through it, last 7 days",
         f"{_number(commerce.revenue_7d or 0)} / {_number(commerce.margin_7d or 0)}", ()),
        ("Share of the day's orders / revenue", f"{_share(commerce.order_share)} / {_share(commerce.revenue_share)}", ()),
        ("Returns / refund exposure, last 7 days", f"{commerce.returns_7d:,} / {_number(commerce.refunds_7d or 0)}", ()),
    ]


def _evidence(alert: Alert) -> list[tuple[str, str | None, Sequence[str]]]:
    """(metric, system-made value, customer-derived values) rows; exactly one value kind is set."""
    per_1k = _unknown(alert) if alert.per_1k_orders is None else f"{alert.per_1k_orders:.2f}"
    drivers = f"; driven by {', '.join(alert.priority_drivers)}" if alert.priority_drivers else ""
    return [
        ("Complaints today", f"{alert.count} on {alert.day.isoformat()}", ()),
        ("Complaints, last 7 days", str(alert.count_7d), ()),
        ("Daily mean, 7 / 28 days", f"{alert.ma7:.1f} / {alert.ma28:.1f}", ()),
        ("Lift over the 28-day mean", _lift(alert), ()),
        ("p-value (Poisson upper tail)", _p_value(alert.p_value), ()),
        ("Complaints per 1k orders", per_1k, ()),
        *_commerce(alert),
        ("Revenue at risk (7-day complaints × average order value)", revenue_at_risk_text(alert), ()),
        ("Priority", f"{alert.priority} (score {alert.priority_score:.0f}{drivers})", ()),
        ("Affected SKUs", None, _some(alert.affected_skus)),
        ("Affected regions", None, _some(alert.affected_regions)),
        ("Themes", None, _some(alert.themes)),
    ]


def _lead(alert: Alert, bold: str) -> str:
    """The opening sentence of a ticket or comment; `bold` is the markup's strong-emphasis marker."""
    return (
        f"{bold}{alert.count} complaints on {alert.day.isoformat()}{bold}, {_lift(alert)} the 28-day mean "
        f"({alert.ma28:.1f}/day), p = {_p_value(alert.p_value)}. Priority {bold}{alert.priority}{bold}."
    )


def _owner_line(alert: Alert, due: date | None) -> str:
    owner = alert.owner
    due_text = f", due {due.isoformat()}" if due else ""
    return f"{owner.team} (project {owner.jira_project}, {owner.slack_channel}), SLA {owner.sla_days} days{due_text}"


# ---- Jira wiki markup ---------------------------------------------------------------------


def _jira_values(values: Iterable[str]) -> str:
    return ", ".join(jira_escape(v, 120) for v in values) or "none recorded"


def _jira_evidence(alert: Alert) -> list[str]:
    lines = ["||Metric||Value||"]
    for metric, value, customer in _evidence(alert):
        shown = jira_escape(value, 200) if value is not None else _jira_values(customer)
        lines.append(f"|{metric}|{shown}|")
    return lines


def _jira_daily(alert: Alert) -> list[str]:
    days = _daily(alert)
    return ["||" + "||".join(d.isoformat() for d, _ in days) + "||", "|" + "|".join(str(n) for _, n in days) + "|"]


def _jira_quotes(alert: Alert) -> list[str]:
    quotes = alert.quotes[:TICKET_QUOTES]
    return [f"{{quote}}“{jira_escape(q)}”{{quote}}" for q in quotes] or ["_No quotes kept for this series._"]


def _jira_macro(alert: Alert) -> list[str]:
    lines = [_NOFORMAT.sub("{" + ZERO_WIDTH_SPACE + "noformat", line) for line in _macro_lines(alert.support_macro)]
    return ["{noformat}", *lines, "{noformat}"]


def _jira_provenance(alert: Alert) -> list[str]:
    # The labels are written verbatim (they are [a-z0-9-] hashes) so a search for them finds the body.
    asset = safe_url(alert.asset_url)
    asset_line = f"[Dagster asset|{asset}]" if asset else "not linked"
    return [
        f"* Dagster asset: {asset_line}",
        f"* Run id: {jira_escape(alert.run_id, 120)}",
        f"* Prompt version: {jira_escape(alert.prompt_version, 120)}",
        f"* Series: {jira_escape(alert.series_key, 300)}; breach: {jira_escape(alert.breach_key, 300)}",
        f"* Dedupe labels: {{{{{alert.dedupe_label}}}}} {{{{{alert.breach_label}}}}}",
    ]


def jira_description(alert: Alert, due: date | None = None) -> str:
    """The Jira issue description (wiki markup): the breach, its evidence, quotes, reply macro and provenance."""
    lines = [
        f"h2. {jira_escape(_headline(alert), 200)}",
        _lead(alert, "*"),
        "",
        "h3. Evidence",
        *_jira_evidence(alert),
        "",
        "h3. Daily complaints, last 7 days",
        *_jira_daily(alert),
        "",
        "h3. What customers say",
        *_jira_quotes(alert),
        "",
        "h3. Suggested support reply",
        *_jira_macro(alert),
        "",
        "h3. Owner",
        jira_escape(_owner_line(alert, due), 500),
        "",
        "h3. Provenance",
        *_jira_provenance(alert),
    ]
    return "\n".join(lines)


def jira_comment(alert: Alert) -> str:
    """The comment a repeat breach adds to the open ticket of its series (wiki markup)."""
    lines = [
        f"h3. Breached again on {alert.day.isoformat()}: {alert.count} complaints, {_lift(alert)} the 28-day mean",
        *_jira_evidence(alert),
        "",
        *_jira_daily(alert),
        "",
        *_jira_quotes(alert),
        "",
        *_jira_provenance(alert),
    ]
    return "\n".join(lines)


# ---- markdown (the local ticket file) -------------------------------------------------------


def _md_values(values: Iterable[str]) -> str:
    return ", ".join(markdown_escape(v, 120) for v in values) or "none recorded"


def _md_evidence(alert: Alert) -> list[str]:
    lines = ["| Metric | Value |", "|---|---|"]
    for metric, value, customer in _evidence(alert):
        shown = markdown_escape(value, 200) if value is not None else _md_values(customer)
        lines.append(f"| {metric} | {shown} |")
    return lines


def _md_daily(alert: Alert) -> list[str]:
    days = _daily(alert)
    return [
        "| " + " | ".join(d.isoformat() for d, _ in days) + " |",
        "|" + "---|" * len(days),
        "| " + " | ".join(str(n) for _, n in days) + " |",
    ]


def _md_quotes(alert: Alert) -> list[str]:
    lines: list[str] = []
    for text in alert.quotes[:TICKET_QUOTES]:
        lines += [">", f"> “{markdown_escape(text)}”"]
    return lines[1:] or ["_No quotes kept for this series._"]


def _md_macro(alert: Alert) -> list[str]:
    lines = _macro_lines(alert.support_macro)
    longest_run = max((len(run) for run in re.findall(r"`+", "\n".join(lines))), default=0)
    fence = "`" * max(3, longest_run + 1)
    return [f"{fence}text", *lines, fence]


def _md_provenance(alert: Alert) -> list[str]:
    asset = safe_url(alert.asset_url)
    asset_line = f"[Dagster asset]({asset})" if asset else "not linked"
    return [
        f"- Dagster asset: {asset_line}",
        f"- Run id: {markdown_escape(alert.run_id, 120)}",
        f"- Prompt version: {markdown_escape(alert.prompt_version, 120)}",
        f"- Series: {markdown_escape(alert.series_key, 300)}; breach: {markdown_escape(alert.breach_key, 300)}",
        f"- Dedupe labels: `{alert.dedupe_label}` `{alert.breach_label}`",
    ]


def markdown_ticket(alert: Alert, key: str, due: date | None = None) -> str:
    """The local ticket file: title, owner, evidence, quotes, reply macro and provenance (markdown)."""
    lines = [
        f"# {key}: {markdown_escape(ticket_summary(alert), SUMMARY_LIMIT)}",
        "",
        _lead(alert, "**"),
        "",
        f"**Owner:** {markdown_escape(_owner_line(alert, due), 500)}",
        "",
        "## Evidence",
        "",
        *_md_evidence(alert),
        "",
        "## Daily complaints, last 7 days",
        "",
        *_md_daily(alert),
        "",
        "## What customers say",
        "",
        *_md_quotes(alert),
        "",
        "## Suggested support reply",
        "",
        *_md_macro(alert),
        "",
        "## Provenance",
        "",
        *_md_provenance(alert),
        "",
    ]
    return "\n".join(lines)


def markdown_comment(alert: Alert, number: int) -> str:
    """Comment `number` on a local ticket: the evidence of a repeat breach (markdown)."""
    lines = [
        "",
        f"## Comment {number}: breached again on {alert.day.isoformat()}",
        "",
        _lead(alert, "**"),
        "",
        *_md_evidence(alert),
        "",
        *_md_daily(alert),
        "",
        *_md_quotes(alert),
        "",
        *_md_provenance(alert),
        "",
    ]
    return "\n".join(lines)


# ---- Slack Block Kit ----------------------------------------------------------------------

# Block Kit limits (https://api.slack.com/reference/block-kit): the API refuses a message past any of them.
HEADER_LIMIT = 150
BUTTON_TEXT_LIMIT = 75
FIELD_LIMIT = 2000
SECTION_LIMIT = 3000
CONTEXT_LIMIT = 3000
URL_LIMIT = 3000
FALLBACK_TEXT_LIMIT = 3000  # the notification text; Slack cuts at 40,000 but a notification needs far less
_PARTIAL_MARKUP = re.compile(r"(&[#0-9A-Za-z]*|<[^>]*)$")


def cut_mrkdwn(text: str, limit: int) -> str:
    """Composed (already escaped) mrkdwn cut to `limit` without leaving half an entity, link or code span.

    Customer text has no `&`, `<` or backtick of its own by then (escaped or replaced), so any left
    at the cut belong to our own markup.
    """
    if len(text) <= limit:
        return text
    head = _PARTIAL_MARKUP.sub("", text[: limit - 1])
    if head.count("`") % 2:
        head = head[: head.rfind("`")]
    return head.rstrip() + "…"


def slack_code(value: object, limit: int = 120) -> str:
    """An identifier as inline code in Slack mrkdwn: underscores stay readable, nothing else is parsed."""
    def code(text: str) -> str:
        text = _break_links(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return "`" + _SLACK_MENTION.sub("@" + WORD_JOINER, text.replace("`", "\u02cb")) + "`"

    return fit(code, _one_line(value), limit)


def _slack_link(url: str | None, label: str) -> str:
    """`<url|label>` for an http(s) URL, else just the (escaped) label."""
    target = safe_url(url)
    if target is None:
        return slack_escape(label)
    return f"<{target.replace('&', '&amp;')}|{slack_escape(label)}>"


def _slack_codes(values: Sequence[str]) -> str:
    return ", ".join(slack_code(v) for v in _some(values)) or "none recorded"


def _field(title: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": cut_mrkdwn(f"*{title}*\n{value}", FIELD_LIMIT)}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut_mrkdwn(text, SECTION_LIMIT)}}


def _slack_headline(alert: Alert) -> str:
    return f"{slack_code(alert.label)} on {slack_code(f'{alert.dimension}={alert.value}')}"


def slack_message(alert: Alert, ticket: TicketRef, *, reply: bool = False) -> dict[str, Any]:
    """The chat.postMessage payload: Block Kit `blocks` and the plain `text` fallback for notifications."""
    opening = "Breached again" if reply else "Complaint spike"
    fields = [
        _field("Today", f"{alert.count} complaints ({alert.day.isoformat()})"),
        _field("Last 7 days", " · ".join(str(n) for n in alert.daily_counts_7d) + f" = {alert.count_7d}"),
        _field("Lift", f"{_lift(alert)} the 28-day mean ({alert.ma28:.1f}/day)"),
        _field("p-value", _p_value(alert.p_value)),
        _field("Revenue at risk", revenue_at_risk_text(alert)),
        _field("Priority", f"{alert.priority} (score {alert.priority_score:.0f})"),
        _field("Affected SKUs", _slack_codes(alert.affected_skus)),
        _field("Affected regions", _slack_codes(alert.affected_regions)),
    ]
    if alert.per_1k_orders is not None:
        fields.insert(4, _field("Per 1k orders", f"{alert.per_1k_orders:.2f}"))
    owner = alert.owner
    summary = (
        f"{_slack_headline(alert)}: *{alert.count} complaints today*, {_lift(alert)} the 28-day mean. "
        f"Owner: *{slack_escape(owner.team, 120)}*, SLA {owner.sla_days} days, "
        f"ticket {_slack_link(ticket.url, ticket.key)}."
    )
    themes = ", ".join(slack_escape(t, 120) for t in _some(alert.themes)) or "none recorded"
    quotes = [f"> “{slack_escape(q, 280)}”" for q in alert.quotes[:SLACK_QUOTES]]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": plain_text(f"{opening}: {_headline(alert)}", HEADER_LIMIT)}},
        _section(summary),
        {"type": "section", "fields": fields},
        _section(f"*Themes:* {themes}"),
    ]
    if quotes:
        blocks.append(_section("*What customers say*\n" + "\n".join(quotes)))
    button_url = safe_url(ticket.url)
    if button_url and len(button_url) <= URL_LIMIT:
        button = {
            "type": "button",
            "action_id": "open_ticket",
            "text": {"type": "plain_text", "text": plain_text(f"Open {ticket.key}", BUTTON_TEXT_LIMIT)},
            "url": button_url,
        }
        blocks.append({"type": "actions", "elements": [button]})
    context = (
        f"prompt {slack_code(alert.prompt_version)} · run {slack_code(alert.run_id)} · "
        f"{_slack_link(alert.asset_url, 'Dagster asset')} · {slack_code(alert.breach_label)}"
    )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": cut_mrkdwn(context, CONTEXT_LIMIT)}]})
    text = (
        f"{opening}: {_slack_headline(alert)}: {alert.count} today, {_lift(alert)} the 28-day mean "
        f"({slack_escape(ticket.key, 80)})"
    )
    return {"text": cut_mrkdwn(text, FALLBACK_TEXT_LIMIT), "blocks": blocks}
