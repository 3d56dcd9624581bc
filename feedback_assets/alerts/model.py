"""What an alert carries and what the ticket and Slack sinks must offer the dispatcher."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from feedback_assets.alerts.commerce import CommerceContext
from feedback_assets.enrichment.taxonomy import Owner

__all__ = ["Alert", "DispatchOutcome", "Owner", "PostRef", "SlackSink", "TicketRef", "TicketSink"]


def short_hash(text: str, length: int = 12) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def series_key_of(label: str, dimension: str, value: str) -> str:
    """A complaint series: one label on one dimension value, e.g. `size_runs_small:sku=JKT-1042`."""
    return f"{label}:{dimension}={value}"


def breach_key_of(series_key: str, day: date) -> str:
    """One day of a series: the dispatch run key and the ledger key."""
    return f"{series_key}@{day.isoformat()}"


@dataclass(frozen=True)
class Alert:
    """One velocity breach worth telling its owner about, with the evidence a ticket needs.

    `series_key` names the complaint series (label × dimension value); `breach_key` adds the day.
    Quotes are silver's PII-scrubbed text, still untrusted: sinks escape them for their markup.
    """

    label: str
    domain: str
    dimension: str
    value: str
    day: date
    count: int
    count_7d: int
    daily_counts_7d: tuple[int, ...]
    ma7: float
    ma28: float
    lift: float
    p_value: float
    per_1k_orders: float | None
    priority_score: float
    # None when it cannot be known (`commerce.unknown_reason` says why): never shown as 0.
    revenue_at_risk: float | None
    affected_skus: tuple[str, ...]
    affected_regions: tuple[str, ...]
    quotes: tuple[str, ...]
    themes: tuple[str, ...]
    owner: Owner
    prompt_version: str
    run_id: str
    asset_url: str
    support_macro: str
    # The series' chart (PNG) for tickets; empty when it could not be drawn.
    chart_png: bytes = field(default=b"", repr=False, compare=False)
    # What flows through the series' value: orders, revenue, margin, returns, refunds, shares.
    commerce: CommerceContext | None = None
    # The priority's strongest components, e.g. ("revenue_share 1.00", "velocity 1.00").
    priority_drivers: tuple[str, ...] = ()

    @property
    def series_key(self) -> str:
        return series_key_of(self.label, self.dimension, self.value)

    @property
    def breach_key(self) -> str:
        return breach_key_of(self.series_key, self.day)

    @property
    def dedupe_label(self) -> str:
        """The ticket label every alert of this series carries (Jira labels allow no spaces)."""
        return f"f2f-series-{short_hash(self.series_key)}"

    @property
    def breach_label(self) -> str:
        """The ticket label of this one breach: how a retry finds the ticket an earlier attempt created."""
        return f"f2f-breach-{short_hash(self.breach_key)}"

    @property
    def priority(self) -> str:
        """The ticket priority named after the 0–100 score."""
        if self.priority_score >= 80:
            return "Highest"
        if self.priority_score >= 60:
            return "High"
        if self.priority_score >= 40:
            return "Medium"
        return "Low"


@dataclass(frozen=True)
class TicketRef:
    key: str
    url: str
    labels: tuple[str, ...] = ()
    status: str = "open"


@dataclass(frozen=True)
class PostRef:
    channel: str
    ts: str
    thread_ts: str | None = None


class TicketSink(Protocol):
    """A ticket system: Jira, or the local ticket store the demo uses."""

    name: str

    def find_open(self, label: str) -> list[TicketRef]:
        """Open tickets carrying `label`, oldest first."""
        ...

    def find_any(self, label: str) -> list[TicketRef]:
        """Tickets carrying `label` in any status (reconciling a create whose answer was lost)."""
        ...

    def create(self, alert: Alert, due: date) -> TicketRef:
        """Opens a ticket in the owner's project, labelled with `dedupe_label` and `breach_label`."""
        ...

    def has_comment(self, ticket_key: str, marker: str) -> bool:
        ...

    def comment(self, ticket_key: str, alert: Alert) -> None:
        """Adds the alert's evidence to an open ticket; the body contains `alert.breach_label`."""
        ...


class SlackSink(Protocol):
    """Slack: the Web API, or the outbox file the demo prints."""

    name: str

    def find_post(self, channel: str, breach_key: str, oldest: float, thread_ts: str | None = None) -> PostRef | None:
        """A message for `breach_key` posted in `channel` (or in its thread `thread_ts`) since `oldest` (Unix seconds)."""
        ...

    def post(self, channel: str, alert: Alert, ticket: TicketRef, thread_ts: str | None = None) -> PostRef:
        """Posts the alert (a new thread, or a reply in `thread_ts`), tagged with the breach key."""
        ...


@dataclass
class DispatchOutcome:
    breach_key: str
    ticket_action: str  # created | commented | skipped
    ticket: TicketRef | None
    post: PostRef | None
    notes: list[str] = field(default_factory=list)
