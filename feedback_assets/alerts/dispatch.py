"""Exactly-once dispatch of one alert: a ticket (or a comment on the open one), then one Slack post.

Every side effect is bracketed by ledger writes. Before an effect that an earlier attempt may
already have made (its answer lost to a crash or a 5xx), the dispatcher looks for it first: the
ticket by its breach label, the Slack message by the breach key in its metadata.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from feedback_assets.alerts.ledger import CREATED, PENDING, POSTED, RECORDED, DispatchLedger, LedgerEntry
from feedback_assets.alerts.model import Alert, DispatchOutcome, PostRef, SlackSink, TicketRef, TicketSink

# Seconds to wait between searches for a ticket whose create answer was lost (Jira search lags).
RECONCILE_WAITS = (0.0, 2.0, 5.0)
# Until this long after a create whose outcome is unknown, not finding its ticket is no proof it does
# not exist: the attempt fails (and is retried) rather than risk a twin.
RECONCILE_GRACE_S = 120.0
# A lost post is searched for from a little before the attempt (clock skew between us and Slack).
POST_SEARCH_SLACK_S = 300.0


class TicketOutcomeUnknown(RuntimeError):
    """A create whose answer was lost cannot be confirmed or ruled out yet."""


@dataclass
class Dispatcher:
    ledger: DispatchLedger
    tickets: TicketSink
    slack: SlackSink
    run_id: str
    log: Callable[[str], None] = lambda _: None
    reconcile_waits: Sequence[float] = RECONCILE_WAITS
    reconcile_grace_s: float = RECONCILE_GRACE_S
    clock: Callable[[], float] = time.time

    def dispatch(self, alert: Alert) -> DispatchOutcome:
        entry = self.ledger.get(alert.breach_key) or LedgerEntry(alert.breach_key, alert.series_key, alert.day)
        if entry.status in (POSTED, RECORDED):
            self.log(f"{alert.breach_key}: already {entry.status}; nothing to do")
            return DispatchOutcome(alert.breach_key, "skipped", _ticket_of(entry), _post_of(entry), [entry.status])
        entry.attempts += 1
        entry.run_id = self.run_id
        if entry.status == PENDING:
            self._ticket(alert, entry)
        post = self._post(alert, entry)
        return DispatchOutcome(alert.breach_key, entry.ticket_action or "", _ticket_of(entry), post)

    def _ticket(self, alert: Alert, entry: LedgerEntry) -> None:
        self.ledger.put(entry)
        ticket, action = None, None
        if entry.create_attempted_at is not None:
            ticket = self._find_lost_create(alert)
            action = "created" if ticket else None
            if ticket is None and self.clock() - entry.create_attempted_at < self.reconcile_grace_s:
                raise TicketOutcomeUnknown(
                    f"{alert.breach_key}: an earlier attempt's create may have succeeded, but search does not show "
                    f"its ticket yet; retry after {self.reconcile_grace_s:.0f} s rather than risk a duplicate")
        if ticket is None:
            open_tickets = self.tickets.find_open(alert.dedupe_label)
            if open_tickets:
                ticket, action = open_tickets[0], "commented"
                if self.tickets.has_comment(ticket.key, alert.breach_label):
                    self.log(f"{alert.breach_key}: {ticket.key} already has this breach's comment")
                else:
                    self.tickets.comment(ticket.key, alert)
            else:
                entry.create_attempted_at = self.clock()
                self.ledger.put(entry)
                ticket, action = self.tickets.create(alert, alert.day + timedelta(days=alert.owner.sla_days)), "created"
        entry.status, entry.ticket_key, entry.ticket_url, entry.ticket_action = CREATED, ticket.key, ticket.url, action
        self.ledger.put(entry)
        self.log(f"{alert.breach_key}: ticket {ticket.key} {action}")

    def _find_lost_create(self, alert: Alert) -> TicketRef | None:
        """The ticket an earlier attempt created before its answer was lost, if search can see it."""
        for wait in self.reconcile_waits:
            time.sleep(wait)
            found = self.tickets.find_any(alert.breach_label)
            if found:
                self.log(f"{alert.breach_key}: adopted {found[0].key}, created by an earlier attempt")
                return found[0]
        return None

    def _post(self, alert: Alert, entry: LedgerEntry) -> PostRef:
        ticket = _ticket_of(entry)
        post = None
        if entry.post_attempted_at is not None:
            # Where the earlier attempt posted, even if a thread or the owner's channel has appeared since.
            channel, thread_ts = entry.slack_channel, entry.slack_thread_ts
            post = self.slack.find_post(channel, alert.breach_key, entry.post_attempted_at - POST_SEARCH_SLACK_S,
                                        thread_ts=thread_ts)
        else:
            thread = self.ledger.thread_of(ticket.key) if entry.ticket_action == "commented" else None
            channel, thread_ts = thread if thread else (alert.owner.slack_channel, None)
        if post is None:
            entry.post_attempted_at, entry.slack_channel, entry.slack_thread_ts = self.clock(), channel, thread_ts
            self.ledger.put(entry)
            post = self.slack.post(channel, alert, ticket, thread_ts=thread_ts)
        entry.status, entry.slack_channel, entry.slack_ts, entry.slack_thread_ts = POSTED, post.channel, post.ts, post.thread_ts
        self.ledger.put(entry)
        self.log(f"{alert.breach_key}: posted to {post.channel}" + (f" in thread {thread_ts}" if thread_ts else ""))
        return post


def _ticket_of(entry: LedgerEntry) -> TicketRef | None:
    return TicketRef(entry.ticket_key, entry.ticket_url or "") if entry.ticket_key else None


def _post_of(entry: LedgerEntry) -> PostRef | None:
    return PostRef(entry.slack_channel, entry.slack_ts, entry.slack_thread_ts) if entry.slack_ts else None
