"""Velocity math: Poisson tails, moving averages, lift, breach rules and the cooldown."""

from __future__ import annotations

import itertools
import math
from datetime import date, timedelta

import pytest

from feedback_assets.transforms.velocity import (
    Thresholds,
    alerting_days,
    assess,
    poisson_upper_tail,
    series_days,
    trailing_mean,
)


@pytest.mark.parametrize(("k", "mean"), [(0, 3.0), (1, 0.5), (5, 2.0), (12, 4.0), (40, 25.0)])
def test_poisson_tail_matches_the_direct_sum(k, mean):
    direct = 1 - sum(math.exp(-mean) * mean**i / math.factorial(i) for i in range(k))
    assert poisson_upper_tail(k, mean) == pytest.approx(direct, abs=1e-12)


def test_poisson_tail_stays_accurate_for_large_counts():
    assert 0 < poisson_upper_tail(400, 300.0) < 1e-7 and poisson_upper_tail(300, 300.0) == pytest.approx(0.5, abs=0.03)


def test_trailing_means_cover_only_the_days_with_data():
    assert trailing_mean([2] * 7, 7) == 2.0
    assert trailing_mean([2] * 7 + [0] * 7, 28) == pytest.approx(1.0)
    assert trailing_mean(list(range(30)), 7) == pytest.approx(sum(range(23, 30)) / 7)
    assert trailing_mean([], 28) == 0.0


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
        (7, [2] * 28, "lift 3.5 but p ≈ 0.005, above alpha 0.001"),
    ],
)
def test_noise_does_not_breach(count, history, why):
    assert not assess(count, history, Thresholds()).breach, why


def test_thresholds_are_configurable_per_label():
    lenient = Thresholds(min_count=3, min_lift=1.5, alpha=0.1)
    assert assess(5, [2] * 28, lenient).breach and not assess(5, [2] * 28, Thresholds()).breach


def test_a_quiet_series_uses_the_baseline_floor():
    point = assess(6, [0] * 20, Thresholds())
    assert point.ma28 == 0 and point.lift == pytest.approx(12.0) and point.breach


def test_nothing_breaches_before_the_warm_up_has_enough_days():
    point = assess(30, [1] * 13, Thresholds())
    assert point.warming_up and not point.breach
    assert assess(30, [1] * 14, Thresholds()).breach


def test_a_cooldown_keeps_a_running_incident_from_alerting_every_day():
    start = date(2026, 11, 1)
    breaches = [start + timedelta(days=d) for d in [0, 1, 2, 3, 9, 10, 20]]
    assert alerting_days(breaches, cooldown_days=7) == [start, start + timedelta(days=9), start + timedelta(days=20)]


def _days(n: int, start: date = date(2026, 10, 1)) -> list[date]:
    return [start + timedelta(days=k) for k in range(n)]


def test_a_series_reports_each_day_it_had_complaints_and_alerts_once_per_cooldown():
    days = _days(40)
    counts = {d: 1 for d in days[:30]} | {d: 12 for d in days[30:40]}
    rows = series_days(counts, days, days[28:], Thresholds())
    by_day = {r.day: r for r in rows}
    assert [r.day for r in rows] == days[28:]
    assert by_day[days[30]].alert and by_day[days[30]].count_7d == 1 * 4 + 12 * 1 + 1 * 2
    assert by_day[days[31]].status == "cooldown" and not by_day[days[31]].alert
    assert by_day[days[29]].status == "normal"


def test_an_alert_before_the_report_window_silences_it_until_the_cooldown_ends():
    days = _days(40)
    counts = {d: 1 for d in days[:30]} | {d: 12 for d in days[30:40]}
    rows = series_days(counts, days, days[33:], Thresholds())
    assert [r.status for r in rows[:4]] == ["cooldown"] * 4
    assert rows[4].day == days[37] and rows[4].alert


def test_days_without_data_stay_out_of_the_baseline():
    days = _days(30)
    with_gap = days[:8] + days[20:]
    counts = {d: 2 for d in with_gap}
    today = series_days(counts, with_gap, days[-1:], Thresholds())[0]
    assert today.point.ma28 == 2.0 and today.status == "normal"
    sparse = days[:3] + days[20:]
    assert series_days(counts, sparse, days[-1:], Thresholds())[0].status == "warming_up"


def test_days_already_decided_keep_their_alerts_so_daily_runs_and_backfills_agree():
    days = _days(60)
    breaching = {days[k] for k in range(20, 60, 6)}
    counts = {d: 12 if d in breaching else 1 for d in days}
    backfill = {r.day for r in series_days(counts, days, days[20:], Thresholds()) if r.alert}
    daily: set[date] = set()
    for k in range(20, 60):
        lookback = days[max(0, k - 42): k + 1]  # what a daily run reads: 28-day baselines plus two cooldowns
        daily |= {r.day for r in series_days(counts, lookback, [days[k]], Thresholds(),
                                             decided_days=lookback[:-1], decided_alerts=daily) if r.alert}
    assert daily == backfill
    assert all(b - a >= timedelta(days=7) for a, b in itertools.pairwise(sorted(daily)))
