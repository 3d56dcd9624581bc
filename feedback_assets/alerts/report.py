"""A terminal account of what alerting produced: tickets opened or updated, and Slack messages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from feedback_assets.alerts.model import DispatchOutcome, SlackSink, TicketSink
from feedback_assets.sample_data.incidents import IncidentScore


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


def render_incident_check(score: IncidentScore) -> str:
    """How the alerts compare with the sample's planted incidents (the demo's answer key)."""
    lines = ["\nPlanted incidents (sample manifest):"]
    for incident, delay in score.detection_delay.items():
        first = score.matched[incident][0] if score.matched[incident] else None
        found = f"alerted {delay} day(s) after onset: {first.label} on {first.dimension}={first.value}" if first else "MISSED"
        lines.append(f"  {incident:<22} {found}")
    lines.append(f"  {len(score.side_effect_alerts)} more alert(s) were the same incidents seen on other values or labels; "
                 f"{len(score.false_alerts)} came from the steady background "
                 f"({score.false_alerts_per_100_series_weeks:.2f} per 100 series-weeks watched)")
    lines += [f"    background: {a.day} {a.label} on {a.dimension}={a.value}" for a in score.false_alerts]
    return "\n".join(lines)
