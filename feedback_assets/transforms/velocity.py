"""Complaint velocity: today's count against its moving averages, with a Poisson test and breach rules.

Pure functions (DESIGN §10) that the gold assets and the alert sensor build on: a series breaches
when count ≥ min_count AND lift ≥ min_lift AND the Poisson upper-tail p-value < alpha, and a breach
alerts only when the previous alert for the same series is older than the cooldown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Thresholds:
    min_count: int = 5
    min_lift: float = 2.0
    alpha: float = 0.01
    cooldown_days: int = 7
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
    """Mean of the last `window` days before today; days before the history began count as 0."""
    recent = list(history)[-window:]
    return sum(recent) / window if window else 0.0


def assess(count: int, history: Sequence[int], thresholds: Thresholds, orders: int | None = None) -> VelocityPoint:
    """Today's count against the 7- and 28-day averages of `history` (oldest first, today excluded)."""
    ma7, ma28 = trailing_mean(history, 7), trailing_mean(history, 28)
    baseline = max(ma28, thresholds.baseline_floor)
    lift = count / baseline
    p_value = poisson_upper_tail(count, baseline)
    breach = count >= thresholds.min_count and lift >= thresholds.min_lift and p_value < thresholds.alpha
    per_1k = 1000 * count / orders if orders else None
    return VelocityPoint(count, per_1k, ma7, ma28, lift, p_value, breach)


def alerting_days(breach_days: Sequence[date], cooldown_days: int) -> list[date]:
    """The breach days that alert: the first, then any breach at least `cooldown_days` after the last alert."""
    alerts: list[date] = []
    for day in sorted(breach_days):
        if not alerts or day - alerts[-1] >= timedelta(days=cooldown_days):
            alerts.append(day)
    return alerts
