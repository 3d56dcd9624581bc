"""Complaint velocity: today's count against its moving averages, with a Poisson test and breach rules.

Pure functions that the gold assets and the alert sensor build on: a series breaches
when count ≥ min_count AND lift ≥ min_lift AND the Poisson upper-tail p-value < alpha (after a
warm-up of `min_history_days` with data), and a breach alerts only when the previous alert for the
same series is older than the cooldown.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Thresholds:
    min_count: int = 5
    min_lift: float = 2.0
    alpha: float = 0.001
    cooldown_days: int = 7
    # Fewer days of data than this and the baseline is too thin to judge a spike.
    min_history_days: int = 14
    # A series with no history still has some expected noise: never divide by less than this.
    baseline_floor: float = 0.5


@dataclass(frozen=True)
class VelocityPoint:
    count: int
    per_1k_orders: float | None
    ma7: float
    ma28: float
    lift: float
    p_value: float
    breach: bool
    warming_up: bool = False


def poisson_upper_tail(k: int, mean: float) -> float:
    """P(X ≥ k) for X ~ Poisson(mean), summed in log space so large counts stay accurate."""
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    log_terms = [i * math.log(mean) - mean - math.lgamma(i + 1) for i in range(k)]
    top = max(log_terms)
    below = math.exp(top) * sum(math.exp(t - top) for t in log_terms)
    return max(0.0, min(1.0, 1.0 - below))


def trailing_mean(history: Sequence[int], window: int) -> float:
    """Mean of the last `window` days of `history`, or of all of it when the data began more recently.

    `history` holds one count per day the pipeline has data for (zeros included), so a young
    pipeline's baseline is not diluted by days it never saw.
    """
    recent = list(history)[-window:]
    return sum(recent) / len(recent) if recent else 0.0


def assess(count: int, history: Sequence[int], thresholds: Thresholds, orders: int | None = None) -> VelocityPoint:
    """Today's count against the 7- and 28-day averages of `history` (oldest first, today excluded)."""
    ma7, ma28 = trailing_mean(history, 7), trailing_mean(history, 28)
    baseline = max(ma28, thresholds.baseline_floor)
    lift = count / baseline
    p_value = poisson_upper_tail(count, baseline)
    warming_up = len(history) < thresholds.min_history_days
    breach = (not warming_up and count >= thresholds.min_count and lift >= thresholds.min_lift
              and p_value < thresholds.alpha)
    per_1k = 1000 * count / orders if orders else None
    return VelocityPoint(count, per_1k, ma7, ma28, lift, p_value, breach, warming_up)


def alerting_days(breach_days: Sequence[date], cooldown_days: int, decided: Mapping[date, bool] | None = None) -> list[date]:
    """The breach days that alert: the first, then any breach at least `cooldown_days` after the last alert.

    `decided` holds days whose alerting is already settled (True: it alerted); they are kept as they are.
    """
    decided = decided or {}
    alerts: list[date] = []
    for day in sorted(set(breach_days) | {d for d, alerted in decided.items() if alerted}):
        if day in decided:
            if decided[day]:
                alerts.append(day)
        elif not alerts or day - alerts[-1] >= timedelta(days=cooldown_days):
            alerts.append(day)
    return alerts


@dataclass(frozen=True)
class SeriesDay:
    """One day of one complaint series: its velocity point, 7-day total and what the alerting made of it."""

    day: date
    point: VelocityPoint
    count_7d: int
    status: str  # alert, cooldown (a breach silenced by a recent alert), warming_up or normal
    alert: bool


def series_days(counts: Mapping[date, int], data_days: Sequence[date], report_days: Sequence[date],
                thresholds: Thresholds, orders: Mapping[date, int] | None = None,
                decided_days: Collection[date] = (), decided_alerts: Collection[date] = ()) -> list[SeriesDay]:
    """Velocity of one series on each report day it had complaints, with the cooldown applied.

    `data_days` are the days the pipeline has data for, from far enough back to hold the 28-day
    baselines and the breaches whose cooldown can still silence a report day; a day missing from
    it is no evidence of zero complaints and stays out of the baselines. Earlier days whose
    alerting was already decided (`decided_days`, alerting on `decided_alerts`) keep that decision,
    so daily runs and a backfill of the same days alert alike.
    """
    known, reporting, decided = sorted(data_days), set(report_days), set(decided_days) - set(report_days)
    evaluated = [d for d in known if d not in decided
                 and (counts.get(d, 0) >= thresholds.min_count or (d in reporting and counts.get(d, 0)))]
    points: dict[date, VelocityPoint] = {}
    for day in evaluated:
        history = [counts.get(d, 0) for d in known if day - timedelta(days=28) <= d < day]
        points[day] = assess(counts.get(day, 0), history, thresholds, (orders or {}).get(day))
    alerts = set(alerting_days([d for d, p in points.items() if p.breach], thresholds.cooldown_days,
                               decided={d: d in decided_alerts for d in decided}))
    rows = []
    for day in sorted(reporting & set(points)):
        point = points[day]
        status = ("alert" if day in alerts else "cooldown" if point.breach
                  else "warming_up" if point.warming_up else "normal")
        count_7d = sum(counts.get(day - timedelta(days=k), 0) for k in range(7))
        rows.append(SeriesDay(day, point, count_7d, status, day in alerts))
    return rows
