"""Each resolved ticket's series, measured per window from the gold tables: the rows of `remediation_impact`.

The series is the one whose alert opened the ticket; its exposure is the orders through its value
(the whole shop's for a dimension orders do not carry). Controls are the same label on other
values that never alerted, topped up with other labels of the same domain. A window is measured
once it is complete; until then, and where there is too little history for a baseline, the row
says so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from threadpoolctl import threadpool_limits

from feedback_assets import tables
from feedback_assets.roi.impact import ImpactWindows, SeriesDays, after_period, baseline_period, measure_impact
from feedback_assets.transforms.dimensions import ALL, ORDER_DIMENSIONS
from resources.table_store import TableStore

MAX_CONTROLS = 40
CREDITED_CODES = ("resolved", "mitigated")


def parse_series_key(series_key: str) -> tuple[str, str, str]:
    """(label, dimension, value) of `label:dimension=value`."""
    label, _, rest = series_key.partition(":")
    dimension, _, value = rest.partition("=")
    return label, dimension, value


@dataclass
class GoldHistory:
    """What the measurement reads from gold, for every day up to the last one measured."""

    complaints: dict[tuple[str, str, str], dict[date, int]]
    domains: dict[str, str]
    orders: dict[tuple[str, str], dict[date, int]]
    returns: dict[tuple[str, str], dict[date, int]]
    refunds: dict[tuple[str, str], dict[date, float]]
    revenue: dict[tuple[str, str], dict[date, float]]
    alerted: set[str]
    days: list[date]

    @property
    def first_day(self) -> date:
        return self.days[0]

    @property
    def last_day(self) -> date:
        return self.days[-1]


def read_gold_history(store: TableStore, until: date) -> GoldHistory | None:
    """Complaints per series, commerce per value and the series that ever breached, for every day up to `until`."""
    days = [d for d in store.partition_days(tables.ISSUE_DAILY_METRICS) if d <= until]
    if not days:
        return None
    history = GoldHistory(defaultdict(dict), {}, defaultdict(dict), defaultdict(dict), defaultdict(dict),
                          defaultdict(dict), set(), days)
    metrics = store.read_days(tables.ISSUE_DAILY_METRICS, days, ["label", "domain", "dimension", "value", "complaints"])
    for row in metrics.to_pylist() if metrics is not None else []:
        history.complaints[(row["label"], row["dimension"], row["value"])][row["feedback_date"]] = row["complaints"]
        history.domains[row["label"]] = row["domain"]
    commerce = store.read_days(tables.SERIES_COMMERCE, days, ["dimension", "value", "orders", "returns", "refunds", "revenue"])
    for row in commerce.to_pylist() if commerce is not None else []:
        key, day = (row["dimension"], row["value"]), row["feedback_date"]
        history.orders[key][day] = row["orders"]
        history.returns[key][day] = row["returns"]
        history.refunds[key][day] = row["refunds"]
        history.revenue[key][day] = row["revenue"]
    velocity = store.read_days(tables.COMPLAINT_VELOCITY, days, ["series_key", "breach"])
    if velocity is not None:
        history.alerted = {r["series_key"] for r in velocity.to_pylist() if r["breach"]}
    return history


def _exposure_of(dimension: str, value: str) -> tuple[str, str]:
    return (dimension, value) if dimension in ORDER_DIMENSIONS else (ALL, ALL)


def series_days(history: GoldHistory, label: str, dimension: str, value: str) -> SeriesDays:
    return SeriesDays(f"{label}:{dimension}={value}", history.complaints.get((label, dimension, value), {}),
                      history.orders.get(_exposure_of(dimension, value), {}))


def control_series(history: GoldHistory, label: str, dimension: str, value: str, limit: int = MAX_CONTROLS) -> list[SeriesDays]:
    """Comparable series that never breached: the label on other values, then the domain's other labels."""
    domain = history.domains.get(label)
    same_label, same_domain = [], []
    for (other_label, other_dimension, other_value) in history.complaints:
        key = f"{other_label}:{other_dimension}={other_value}"
        if other_dimension != dimension or other_value == value or key in history.alerted:
            continue
        if _exposure_of(other_dimension, other_value) not in history.orders:
            continue
        if other_label == label:
            same_label.append((other_label, other_dimension, other_value))
        elif domain is not None and history.domains.get(other_label) == domain:
            same_domain.append((other_label, other_dimension, other_value))

    def volume(key: tuple[str, str, str]) -> int:
        return sum(history.complaints[key].values())

    chosen = sorted(same_label, key=volume, reverse=True)[:limit]
    if len(chosen) < limit:
        chosen += sorted(same_domain, key=volume, reverse=True)[:limit - len(chosen)]
    return [series_days(history, *key) for key in chosen]


def _total(series: Mapping[date, float], start: date, end: date) -> float:
    return sum(v for d, v in series.items() if start <= d <= end)


def impact_row(history: GoldHistory, resolution: Mapping, window_days: int, windows: ImpactWindows) -> dict:
    """One (ticket, window) row: measured when the window is complete, else pending or no_baseline with why."""
    label, dimension, value = parse_series_key(resolution["series_key"])
    fix_day, alert_day = resolution["resolved_at"].date(), resolution["alert_day"]
    after_start, after_end = after_period(fix_day, window_days, windows)
    row = {
        "ticket_key": resolution["ticket_key"], "issue_id": resolution["issue_id"],
        "series_key": resolution["series_key"], "code": resolution["code"], "alert_day": alert_day,
        "fix_day": fix_day, "window_days": window_days, "complete_on": after_end,
        "after_start": after_start, "after_end": after_end, "reason": None,
    }
    if history.last_day < after_end:
        return {**row, "status": "pending", "reason": f"window completes on {after_end}"}
    baseline = baseline_period(alert_day, history.first_day, windows)
    if baseline is None:
        return {**row, "status": "no_baseline",
                "reason": f"fewer than {windows.baseline_days} days of history before {alert_day - timedelta(days=windows.baseline_gap_days)}"}
    treated = series_days(history, label, dimension, value)
    estimate = measure_impact(treated, control_series(history, label, dimension, value), alert_day, fix_day,
                              window_days, windows)
    if estimate is None:
        return {**row, "status": "no_baseline", "reason": "no orders in the baseline period"}
    exposure = _exposure_of(dimension, value)
    returns, refunds = history.returns.get(exposure, {}), history.refunds.get(exposure, {})
    baseline_returns = int(_total(returns, *baseline))
    after_returns = int(_total(returns, after_start, after_end))
    returns_avoided = refunds_avoided = 0.0
    credited = resolution["code"] in CREDITED_CODES and estimate.ratio.verdict == "improved"
    if credited and estimate.baseline_orders and dimension in ORDER_DIMENSIONS:
        expected_returns = baseline_returns / estimate.baseline_orders * estimate.after_orders
        returns_avoided = max(0.0, expected_returns - after_returns)
        refund_per_return = _total(refunds, *baseline) / baseline_returns if baseline_returns else 0.0
        refunds_avoided = returns_avoided * refund_per_return
    after_revenue = _total(history.revenue.get(exposure, {}), after_start, after_end)
    ratio = estimate.ratio
    return {
        **row, "status": "complete",
        "reason": None if dimension in ORDER_DIMENSIONS else f"orders do not record the {dimension}: the shop's orders are the exposure",
        "baseline_start": baseline[0], "baseline_end": baseline[1],
        "baseline_complaints": estimate.baseline_complaints, "baseline_orders": estimate.baseline_orders,
        "after_complaints": estimate.after_complaints, "after_orders": estimate.after_orders,
        "baseline_per_1k": estimate.baseline_per_1k, "after_per_1k": estimate.after_per_1k,
        "rate_ratio": _finite(ratio.estimate), "ci_low": _finite(ratio.low), "ci_high": _finite(ratio.high),
        "method": ratio.method, "verdict": ratio.verdict, "naive_ratio": estimate.naive_ratio,
        "controls": estimate.controls_used, "expected_complaints": estimate.expected_complaints,
        "complaints_avoided": estimate.avoided, "avoided_low": estimate.avoided_low, "avoided_high": estimate.avoided_high,
        "baseline_returns": baseline_returns, "after_returns": after_returns,
        "returns_avoided": round(returns_avoided, 2), "refunds_avoided": round(refunds_avoided, 2),
        "average_order_value": after_revenue / estimate.after_orders if estimate.after_orders else None,
    }


def _finite(value: float) -> float | None:
    return None if value is None or value != value or value in (float("inf"), float("-inf")) else float(value)


def impact_by_day(store: TableStore, resolutions: Sequence[Mapping], days: Iterable[date],
                  windows: ImpactWindows = ImpactWindows()) -> dict[date, list[dict]]:
    """`remediation_impact` for each day: every ticket resolved by then, each window as known on that day.

    A window's measurement depends only on days up to its end, so it is computed once and reused
    on every later day.
    """
    days = sorted(days)
    history = read_gold_history(store, days[-1]) if days else None
    # Each fit is a small dense solve: BLAS threads fighting over two cores make it many times slower.
    with threadpool_limits(limits=1):
        return _impact_by_day(history, resolutions, days, windows)


def _impact_by_day(history: GoldHistory | None, resolutions: Sequence[Mapping], days: list[date],
                   windows: ImpactWindows) -> dict[date, list[dict]]:
    if history is None:
        return {day: [] for day in days}
    measured: dict[tuple[str, int], dict] = {}
    by_day: dict[date, list[dict]] = {}
    for day in days:
        rows = []
        for resolution in resolutions:
            if resolution["series_key"] is None or resolution["resolved_at"].date() > day:
                continue
            for window_days in windows.after_windows:
                key = (resolution["issue_id"], window_days)
                _, after_end = after_period(resolution["resolved_at"].date(), window_days, windows)
                if after_end > day or after_end > history.last_day:
                    rows.append(impact_row(_as_of(history, day), resolution, window_days, windows))
                else:
                    if key not in measured:
                        measured[key] = impact_row(history, resolution, window_days, windows)
                    rows.append(measured[key])
        by_day[day] = rows
    return by_day


def _as_of(history: GoldHistory, day: date) -> GoldHistory:
    """The history cut at `day` (only its day list matters for a window still open)."""
    return GoldHistory(history.complaints, history.domains, history.orders, history.returns, history.refunds,
                       history.revenue, history.alerted, [d for d in history.days if d <= day] or history.days[:1])


def alert_delay(history: GoldHistory, series_key: str, alert_day: date, reach_days: int = 14) -> int:
    """Days from the first elevated day of the series (more than twice its usual daily count) to its alert."""
    label, dimension, value = parse_series_key(series_key)
    counts = history.complaints.get((label, dimension, value), {})
    usual_days = [d for d in history.days if alert_day - timedelta(days=35) <= d < alert_day - timedelta(days=7)]
    usual = sum(counts.get(d, 0) for d in usual_days) / len(usual_days) if usual_days else 0.0
    threshold = max(1.0, 2 * usual)
    first = alert_day
    while (alert_day - first).days < reach_days and counts.get(first - timedelta(days=1), 0) > threshold:
        first -= timedelta(days=1)
    return (alert_day - first).days


# A ticket opened later than this after its day was opened by a replay or backfill of history.
TICKET_REACH_HOURS = 7 * 24


def ticket_delay_hours(alert_day: date, created_at: float) -> float:
    """Hours from the end of the alert's day (when its data is complete) to the ticket's creation (Unix seconds)."""
    day_complete = datetime.combine(alert_day + timedelta(days=1), time(), tzinfo=UTC)
    return (datetime.fromtimestamp(created_at, UTC) - day_complete).total_seconds() / 3600


def ticket_delays(openings: Iterable[tuple[date, float]]) -> tuple[list[float], int]:
    """The alert-to-ticket delays of tickets opened as their day arrived, and how many were opened by a replay."""
    delays = [ticket_delay_hours(day, created_at) for day, created_at in openings]
    # A ticket from a run over a day still in progress counts as opened at once.
    live = [max(0.0, hours) for hours in delays if hours <= TICKET_REACH_HOURS]
    return live, len(delays) - len(live)
