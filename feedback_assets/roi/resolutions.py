"""Ticket resolutions into the warehouse: events polled from the ticket system, then one row per resolved ticket.

Every observed ticket state is kept once (`alerting.resolution_events`, one part per issue id and
update time), so a poll that re-reads its overlap or a sensor tick that runs twice adds nothing.
`ticket_resolutions` then lists, per resolution day, the tickets whose latest state is resolved,
mitigated, deferred or invalid, joined to the alert that opened them through the dispatch ledger.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

import pyarrow as pa

from feedback_assets import tables
from feedback_assets.alerts.ledger import DispatchLedger
from feedback_assets.alerts.model import short_hash
from feedback_assets.alerts.resolutions import (
    OPEN,
    ResolutionEvent,
    ResolutionMapping,
    latest_per_issue,
    new_events,
    next_cursor,
    poll_start,
)
from feedback_assets.roi.schema import RESOLUTION_EVENTS, TICKET_RESOLUTIONS
from resources.table_store import TableStore

# Before the first cursor, a poll looks back this far.
FIRST_POLL = datetime(2000, 1, 1, tzinfo=UTC)
SERIES_LABEL_PREFIX = "f2f-series-"


class ResolutionSource(Protocol):
    name: str

    def resolution_events(self, since: datetime, mapping: ResolutionMapping) -> list[ResolutionEvent]: ...


@dataclass(frozen=True)
class SyncResult:
    events: list[ResolutionEvent]
    cursor: datetime | None


def _events_of(rows: Iterable[Mapping]) -> list[ResolutionEvent]:
    return [ResolutionEvent(r["issue_id"], r["ticket_key"], r["updated_at"], r["status"], r["status_category"],
                            r["resolution"], r["code"], r["note"] or "", tuple(r["labels"] or ()))
            for r in rows]


def stored_events(store: TableStore) -> list[ResolutionEvent]:
    """Every ticket state kept so far."""
    rows = store.read_parts(tables.RESOLUTION_EVENTS)
    return [] if rows is None else _events_of(rows.to_pylist())


def sync_resolutions(source: ResolutionSource, store: TableStore, mapping: ResolutionMapping,
                     cursor: datetime | None, now: datetime | None = None) -> SyncResult:
    """Polls the ticket system from the cursor (less the overlap), keeps the new states, returns the next cursor.

    The local store is read whole on every poll: it is one small file, and a resolution back-dated
    with `--on` would fall behind a cursor.
    """
    since = FIRST_POLL if source.name == "local" else poll_start(cursor, mapping.overlap_minutes, FIRST_POLL)
    polled = source.resolution_events(since, mapping)
    fresh = new_events(polled, {event.dedupe_key() for event in stored_events(store)})
    observed = now or datetime.now(UTC)
    for event in fresh:
        store.write_part(tables.RESOLUTION_EVENTS, None, short_hash(event.dedupe_key(), 20), _event_row(event, source.name, observed))
    return SyncResult(fresh, next_cursor(polled, cursor))


def _event_row(event: ResolutionEvent, system: str, observed: datetime) -> pa.Table:
    return pa.Table.from_pylist([{
        "issue_id": event.issue_id, "ticket_key": event.key, "system": system,
        "updated_at": event.updated_at.astimezone(UTC), "status": event.status,
        "status_category": event.status_category, "resolution": event.resolution, "code": event.code,
        "note": event.note, "labels": list(event.labels), "observed_at": observed,
    }], schema=RESOLUTION_EVENTS)


@dataclass(frozen=True)
class OpenedBy:
    series_key: str
    breach_key: str
    alert_day: date


def _opened_by(store: TableStore) -> tuple[dict[str, OpenedBy], dict[str, OpenedBy]]:
    """The alert that opened each ticket: by ticket key, and by the series label every ticket of a series carries."""
    by_key: dict[str, OpenedBy] = {}
    for entry in sorted(DispatchLedger(store).entries(), key=lambda e: e.alert_day):
        if entry.ticket_key and entry.ticket_action == "created":
            by_key.setdefault(entry.ticket_key, OpenedBy(entry.series_key, entry.breach_key, entry.alert_day))
    by_series_label = {}
    for opened in by_key.values():
        by_series_label.setdefault(SERIES_LABEL_PREFIX + short_hash(opened.series_key), opened)
    return by_key, by_series_label


def resolution_rows(events: Sequence[ResolutionEvent], store: TableStore, systems: dict[str, str],
                    days: Iterable[date]) -> dict[date, list[dict]]:
    """Per resolution day, the tickets whose latest state is a resolution, with the alert that opened them."""
    wanted = set(days)
    by_key, by_label = _opened_by(store)
    rows: dict[date, list[dict]] = {day: [] for day in wanted}
    for issue_id, event in sorted(latest_per_issue(events).items()):
        day = event.updated_at.astimezone(UTC).date()
        if event.code == OPEN or day not in wanted:
            continue
        # Keys change when an issue moves project; the series label does not.
        opened = next((by_label[label] for label in event.labels if label in by_label), None) or by_key.get(event.key)
        rows[day].append({
            "issue_id": issue_id, "ticket_key": event.key, "system": systems.get(issue_id, ""),
            "series_key": opened.series_key if opened else None, "breach_key": opened.breach_key if opened else None,
            "alert_day": opened.alert_day if opened else None, "code": event.code, "resolution": event.resolution,
            "status": event.status, "note": event.note, "resolved_at": event.updated_at.astimezone(UTC),
            "days_to_fix": (day - opened.alert_day).days if opened else None,
        })
    return rows


def write_resolutions(store: TableStore, rows_by_day: dict[date, list[dict]]) -> None:
    """Replaces each day's partition (an empty one for a day without resolutions)."""
    for day, rows in rows_by_day.items():
        store.write_part(tables.TICKET_RESOLUTIONS, day, "resolutions", pa.Table.from_pylist(rows, schema=TICKET_RESOLUTIONS))


def event_systems(store: TableStore) -> dict[str, str]:
    rows = store.read_parts(tables.RESOLUTION_EVENTS)
    return {} if rows is None else dict(zip(rows.column("issue_id").to_pylist(), rows.column("system").to_pylist(), strict=True))


def _built_as_expected(store: TableStore, events: Sequence[ResolutionEvent], days: Iterable[date]) -> set[date]:
    """The days whose `ticket_resolutions` partition already lists what the kept states say it should."""
    def identity(rows: Iterable[Mapping]) -> set[tuple]:
        return {(r["issue_id"], r["ticket_key"], r["code"], r["resolved_at"]) for r in rows}

    expected = resolution_rows(events, store, {}, days)
    built = set()
    for day, rows in expected.items():
        stored = store.read_days(tables.TICKET_RESOLUTIONS, [day])
        if identity(rows) == identity(stored.to_pylist() if stored is not None else []):
            built.add(day)
    return built


def pending_days(store: TableStore, watermark: datetime | None) -> tuple[list[date], datetime | None]:
    """The resolution days to rebuild for states kept after `watermark`, and the watermark that covers them.

    A sensor tick that kept states but died before requesting runs leaves its watermark behind, so
    the next tick requests those days again. A day whose partition already lists what it should
    (a sensor switched on over a warehouse `feedback roi` has built) is not requested.
    """
    rows = store.read_parts(tables.RESOLUTION_EVENTS)
    if rows is None:
        return [], watermark
    states = sorted(rows.to_pylist(), key=lambda r: (r["updated_at"], r["issue_id"]))
    fresh = [r for r in states if watermark is None or r["observed_at"] > watermark]
    if not fresh:
        return [], watermark
    days = {r["updated_at"].astimezone(UTC).date() for r in fresh}
    # A ticket reopened or resolved again leaves the day it was listed on: rebuild that day too.
    history: dict[str, list[datetime]] = defaultdict(list)
    for row in states:  # in time order
        history[row["issue_id"]].append(row["updated_at"])
    for row in fresh:
        earlier = history[row["issue_id"]][:bisect_left(history[row["issue_id"]], row["updated_at"])]
        if earlier:
            days.add(earlier[-1].astimezone(UTC).date())
    return sorted(days - _built_as_expected(store, _events_of(states), days)), max(r["observed_at"] for r in fresh)
