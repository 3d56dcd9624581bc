"""What the executive dashboard shows as of a day, gathered from the warehouse."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

import pandas as pd

from feedback_assets import tables
from feedback_assets.alerts.commerce import SHARE_DAYS, commerce_context
from feedback_assets.alerts.evidence import series_items, series_priority
from feedback_assets.alerts.ledger import DispatchLedger
from feedback_assets.enrichment.taxonomy import load_taxonomy
from feedback_assets.roi.assumptions import Assumptions
from feedback_assets.roi.dashboard import (
    Assumption,
    DashboardData,
    DomainDay,
    FixImpact,
    OpenTicket,
    PriorityItem,
    RoiFigure,
    SeriesTrace,
)
from feedback_assets.roi.measure import CREDITED_CODES, GoldHistory, parse_series_key, series_days
from feedback_assets.window import days_in
from resources.table_store import TableStore

PRIORITY_DAYS = 14
# How far back an alert whose ticket is still open (or deferred) keeps its place among the priorities.
OPEN_PROBLEM_DAYS = 120
# A problem is settled once fixed or mitigated (the codes a fix is credited for), or found invalid.
SETTLED_CODES = frozenset({*CREDITED_CODES, "invalid"})
TOP_PRIORITIES = 10
MAX_TRACES = 6
# Complaints by domain count each item once: every item has a channel.
COUNTING_DIMENSION = "channel"
NO_ISSUE_DOMAINS = frozenset({"no_issue"})


def _priority_name(score: float) -> str:
    return "Highest" if score >= 80 else "High" if score >= 60 else "Medium" if score >= 40 else "Low"


def domain_days(history: GoldHistory, as_of: date) -> tuple[DomainDay, ...]:
    totals: Counter[tuple[date, str]] = Counter()
    for (label, dimension, _), counts in history.complaints.items():
        domain = history.domains.get(label, "other")
        if dimension != COUNTING_DIMENSION or domain in NO_ISSUE_DOMAINS or label == "praise_no_issue":
            continue
        for day, count in counts.items():
            if day <= as_of:
                totals[(day, domain)] += count
    return tuple(DomainDay(day, domain, n) for (day, domain), n in sorted(totals.items()))


def closed_problems(resolutions: Sequence[Mapping], as_of: date) -> frozenset[str]:
    """Tickets whose problem is settled by `as_of`: fixed, mitigated or invalid (a deferred problem goes on)."""
    latest: dict[str, Mapping] = {}
    for r in sorted(resolutions, key=lambda r: r["resolved_at"]):
        if r["resolved_at"].date() <= as_of:
            latest[r["ticket_key"]] = r
    return frozenset(key for key, r in latest.items() if r["code"] in SETTLED_CODES)


def priorities(store: TableStore, as_of: date, tickets_by_series: Mapping[str, str],
               closed_tickets: frozenset[str]) -> tuple[PriorityItem, ...]:
    """The open problems by their commerce-weighted priority, each at its latest alert.

    Open: the series alerted in the last two weeks, or its ticket is still open or was deferred
    (within the measurement reach); a problem whose ticket was resolved, mitigated or found invalid drops off.
    """
    recent_from = as_of - timedelta(days=PRIORITY_DAYS - 1)
    velocity = store.read_days(tables.COMPLAINT_VELOCITY, days_in(as_of - timedelta(days=OPEN_PROBLEM_DAYS - 1), as_of))
    if velocity is None:
        return ()
    frame = velocity.to_pandas()
    latest = frame[frame["alert"]].sort_values("feedback_date").groupby("series_key").tail(1)
    items = []
    for row in latest.itertuples(index=False):
        row = pd.Series(row._asdict())
        day, ticket = row["feedback_date"], tickets_by_series.get(row["series_key"])
        if ticket in closed_tickets or (day < recent_from and ticket is None):
            continue
        share_days = days_in(day - timedelta(days=SHARE_DAYS - 1), day)
        commerce_rows = store.read_days(tables.SERIES_COMMERCE, share_days)
        commerce = commerce_context(commerce_rows.to_pylist() if commerce_rows is not None else [],
                                    row["dimension"], row["value"], day)
        evidence = series_items(store, row["label"], row["dimension"], row["value"], days_in(day - timedelta(days=6), day))
        score, _ = series_priority(store, row, evidence, commerce, share_days)
        items.append(PriorityItem(f"{row['label']} · {row['dimension']}={row['value']}", score, _priority_name(score),
                                  commerce.revenue_at_risk(int(row["complaints_7d"])), commerce.unknown_reason, ticket))
    return tuple(sorted(items, key=lambda i: -i.priority_score)[:TOP_PRIORITIES])


def open_tickets(store: TableStore, resolutions: Sequence[Mapping], as_of: date) -> tuple[OpenTicket, ...]:
    """Tickets opened by alerts up to the day and not resolved by then, with their SLA state."""
    resolved = {r["ticket_key"] for r in resolutions if r["resolved_at"].date() <= as_of}
    labels = load_taxonomy().labels
    rows = []
    for entry in DispatchLedger(store).entries():
        if entry.ticket_action != "created" or not entry.ticket_key or entry.ticket_key in resolved or entry.alert_day > as_of:
            continue
        label, dimension, value = parse_series_key(entry.series_key)
        owner = labels[label].owner if label in labels else None
        due = entry.alert_day + timedelta(days=owner.sla_days if owner else 7)
        status = "overdue" if as_of > due else "due_soon" if (due - as_of).days <= 1 else "on_track"
        rows.append(OpenTicket(entry.ticket_key, owner.team if owner else "unowned", f"{label} on {dimension}={value}", due, status))
    return tuple(rows)


def fixes(impacts: Sequence[Mapping]) -> tuple[FixImpact, ...]:
    rows = []
    for r in impacts:
        verdict = r["verdict"] if r["status"] == "complete" else r["status"]
        note = r.get("reason") or (f"{r['method']}, {r['controls']} comparison series" if r["status"] == "complete" else "")
        rows.append(FixImpact(r["ticket_key"], r["series_key"], r["code"], r["window_days"], r.get("rate_ratio"),
                              r.get("ci_low"), r.get("ci_high"), verdict, r.get("baseline_per_1k"), r.get("after_per_1k"),
                              r.get("complaints_avoided"), r.get("avoided_low"), r.get("avoided_high"), note))
    return tuple(rows)


def traces(history: GoldHistory, impacts: Sequence[Mapping], as_of: date) -> tuple[SeriesTrace, ...]:
    """Each measured ticket's daily complaints per 1k orders around its fix."""
    shown, result = set(), []
    for r in impacts:
        if r["status"] != "complete" or r["ticket_key"] in shown or len(result) == MAX_TRACES:
            continue
        shown.add(r["ticket_key"])
        series = series_days(history, *parse_series_key(r["series_key"]))
        days = tuple(d for d in history.days if r["baseline_start"] <= d <= as_of)
        per_1k = tuple(1000 * series.complaints.get(d, 0) / series.orders[d] if series.orders.get(d) else None for d in days)
        result.append(SeriesTrace(r["ticket_key"], r["series_key"], days, per_1k, r["alert_day"], r["fix_day"],
                                  (r["baseline_start"], r["baseline_end"])))
    return tuple(result)


def roi_figures(rows: Sequence[Mapping]) -> tuple[RoiFigure, ...]:
    return tuple(RoiFigure(r["metric"], r["value"], r["low"], r["high"], r["unit"], r["basis"]) for r in rows)


def assumptions_of(assumptions: Assumptions) -> tuple[Assumption, ...]:
    return tuple(Assumption(a.name, a.value, a.unit, a.source) for a in assumptions.entries.values())


def dashboard_data(store: TableStore, history: GoldHistory, as_of: date, resolutions: Sequence[Mapping],
                   impacts: Sequence[Mapping], roi_rows: Sequence[Mapping], assumptions: Assumptions) -> DashboardData:
    tickets_by_series = {e.series_key: e.ticket_key for e in DispatchLedger(store).entries() if e.ticket_key}
    return DashboardData(
        as_of=as_of, domain_days=domain_days(history, as_of),
        priorities=priorities(store, as_of, tickets_by_series, closed_problems(resolutions, as_of)),
        open_tickets=open_tickets(store, resolutions, as_of), fixes=fixes(impacts), traces=traces(history, impacts, as_of),
        roi=roi_figures(roi_rows), assumptions=assumptions_of(assumptions),
    )
