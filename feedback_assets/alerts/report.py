"""A terminal account of what alerting produced: tickets opened or updated, and Slack messages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from feedback_assets.alerts.model import DispatchOutcome, SlackSink, TicketSink


def render_alerts(outcomes: Sequence[DispatchOutcome], tickets: TicketSink, slack: SlackSink) -> str:
    lines = []
    if outcomes:
        actions = Counter(o.ticket_action for o in outcomes)
        lines.append(f"Dispatched {len(outcomes)} alert(s): " + ", ".join(f"{n} {a}" for a, n in sorted(actions.items())))
    stored = getattr(tickets, "tickets", None)
    if stored is not None:
        rows = stored()
        lines.append(f"\nTickets ({tickets.name}, {len(rows)}):")
        for row in rows:
            comments = f", {row['comments']} update(s)" if row.get("comments") else ""
            lines.append(f"  {row['key']:<9} {row['priority']:<7} due {row['due']}  {row['summary']}{comments}")
    else:
        lines.append(f"\nTickets ({tickets.name}):")
        lines += [f"  {o.ticket.key} {o.ticket_action}  {o.ticket.url}" for o in outcomes if o.ticket]
    posted = getattr(slack, "messages", None)
    if posted is not None:
        messages = posted()
        lines.append(f"\nSlack messages ({slack.name}, {len(messages)}):")
        for message in messages:
            where = f"{message['channel']} (thread reply)" if message.get("thread_ts") else message["channel"]
            day = message["breach_key"].rpartition("@")[2]
            lines.append(f"  {day}  {where:<33} {message['text'].splitlines()[0][:100]}")
    else:
        lines.append(f"\nSlack messages ({slack.name}):")
        lines += [f"  {o.post.channel} ts={o.post.ts}" for o in outcomes if o.post]
    return "\n".join(lines)
