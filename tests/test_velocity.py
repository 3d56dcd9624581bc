"""Velocity math: Poisson tails, moving averages, lift, breach rules and the cooldown."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from feedback_assets.transforms.velocity import Thresholds, alerting_days, assess, poisson_upper_tail, trailing_mean


@pytest.mark.parametrize(("k", "mean"), [(0, 3.0), (1, 0.5), (5, 2.0), (12, 4.0), (40, 25.0)])
def test_poisson_tail_matches_the_direct_sum(k, mean):
    direct = 1 - sum(math.exp(-mean) * mean**i / math.factorial(i) for i in range(k))
    assert poisson_upper_tail(k, mean) == pytest.approx(direct, abs=1e-12)


def test_poisson_tail_stays_accurate_for_large_counts():
    assert 0 < poisson_upper_tail(400, 300.0) < 1e-7 and poisson_upper_tail(300, 300.0) == pytest.approx(0.5, abs=0.03)


def test_trailing_means_count_missing_early_days_as_zero():
    assert trailing_mean([2] * 7, 7) == 2.0
    assert trailing_mean([2] * 7, 28) == pytest.approx(0.5)
    assert trailing_mean(list(range(30)), 7) == pytest.approx(sum(range(23, 30)) / 7)


def test_a_spike_over_a_steady_baseline_breaches():
    point = assess(12, [2] * 28, Thresholds(), orders=4000)
    assert point.breach and point.lift == pytest.approx(6.0) and point.p_value < 1e-4
    assert point.per_1k_orders == pytest.approx(3.0) and point.ma7 == 2.0


@pytest.mark.parametrize(
    ("count", "history", "why"),
    [
        (4, [0] * 28, "below min_count"),
        (10, [6] * 28, "lift below 2"),
        (5, [2] * 28, "lift 2.5 but p ≈ 0.05"),
    ],
)
def test_noise_does_not_breach(count, history, why):
    assert not assess(count, history, Thresholds()).breach, why


def test_thresholds_are_configurable_per_label():
    lenient = Thresholds(min_count=3, min_lift=1.5, alpha=0.1)
    assert assess(5, [2] * 28, lenient).breach and not assess(5, [2] * 28, Thresholds()).breach


def test_new_series_use_the_baseline_floor():
    point = assess(6, [], Thresholds())
    assert point.ma28 == 0 and point.lift == pytest.approx(12.0) and point.breach


def test_a_cooldown_keeps_a_running_incident_from_alerting_every_day():
    start = date(2026, 11, 1)
    breaches = [start + timedelta(days=d) for d in [0, 1, 2, 3, 9, 10, 20]]
    assert alerting_days(breaches, cooldown_days=7) == [start, start + timedelta(days=9), start + timedelta(days=20)]
