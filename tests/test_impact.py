"""Measuring whether a fix worked: period arithmetic, rate ratios against a pre-spike baseline, and control series."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from feedback_assets.roi.impact import (
    ImpactWindows, SeriesDays, after_period, baseline_period, measure_impact, verdict_of, window_complete,
)

WINDOWS = ImpactWindows()
BREACH = date(2026, 6, 30)
FIX = BREACH + timedelta(days=2)
TREATED = "size_runs_small:sku=JKT-1042"


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_blas():
    """The fits are small dense solves: BLAS threads only add contention on a busy machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _day(n: int) -> date:
    return BREACH + timedelta(days=n)


def _simulate(
    seed: int, *, fix_effect: float, market_after_fix: float, spike: float = 3.0, spike_continues: bool = False,
    controls: int = 12,
) -> tuple[SeriesDays, list[SeriesDays]]:
    """A treated series and its controls: weekly order pattern, shared day shocks and trend, NB complaint noise."""
    rng = np.random.default_rng(seed)
    days = list(range(-90, 40))
    weekly = 1 + 0.2 * np.sin(2 * np.pi * np.arange(7) / 7)
    shocks = np.exp(rng.normal(0, 0.1, len(days)))
    market = np.where(np.array(days) > 2, market_after_fix, 1.0) * shocks
    series = []
    for s in range(controls + 1):
        base_orders = rng.uniform(300, 600)
        rate = rng.uniform(20, 30) / 1000
        orders, complaints = {}, {}
        for i, n in enumerate(days):
            o = int(round(base_orders * weekly[_day(n).weekday()] * rng.uniform(0.9, 1.1)))
            mean = o * rate * market[i]
            if s == 0:
                in_spike = -6 <= n <= 0 or (spike_continues and n > 0)
                mean *= (spike if in_spike else 1.0) * (fix_effect if n > 2 else 1.0)
            orders[_day(n)] = o
            complaints[_day(n)] = int(rng.poisson(mean * rng.gamma(20, 1 / 20)))  # NB with alpha 0.05
        series.append(SeriesDays(TREATED if s == 0 else f"fabric_pilling:sku=C-{s}", complaints, orders))
    return series[0], series[1:]


def _flat(days: range, complaints: dict[int, int], orders: int = 100) -> SeriesDays:
    """A series with constant orders over `days` (offsets from the breach) and the given complaints."""
    return SeriesDays(TREATED, {_day(n): c for n, c in complaints.items()}, {_day(n): orders for n in days})


# Period arithmetic


def test_baseline_ends_gap_days_before_the_breach_and_uses_up_to_56_days():
    start, end = baseline_period(BREACH, date(2025, 1, 1), WINDOWS)
    assert end == BREACH - timedelta(days=7)
    assert (end - start).days + 1 == 56


def test_baseline_uses_the_history_there_is_but_needs_28_days():
    end = BREACH - timedelta(days=7)
    assert baseline_period(BREACH, end - timedelta(days=29), WINDOWS) == (end - timedelta(days=29), end)
    assert baseline_period(BREACH, end - timedelta(days=27), WINDOWS) == (end - timedelta(days=27), end)
    assert baseline_period(BREACH, end - timedelta(days=26), WINDOWS) is None


def test_after_window_starts_once_the_washout_is_over():
    assert after_period(FIX, 7, WINDOWS) == (FIX + timedelta(days=4), FIX + timedelta(days=10))
    assert after_period(FIX, 28, ImpactWindows(washout_days=0)) == (FIX + timedelta(days=1), FIX + timedelta(days=28))


def test_a_window_is_complete_once_the_data_reaches_its_last_day():
    end = date(2026, 7, 10)
    assert window_complete(end, end)
    assert window_complete(end, end + timedelta(days=1))
    assert not window_complete(end, end - timedelta(days=1))


def test_verdict_follows_where_the_interval_lies_against_one():
    assert verdict_of(0.5, 0.9) == "improved"
    assert verdict_of(1.1, 2.0) == "worse"
    assert verdict_of(0.8, 1.2) == "inconclusive"
    assert verdict_of(math.nan, math.nan) == "inconclusive"


# Known effects in simulated data


def test_controls_recover_a_known_fix_effect_that_naive_comparisons_get_wrong():
    truth = 0.70
    glm, plain = [], []
    for seed in range(20):
        treated, controls = _simulate(seed, fix_effect=truth, market_after_fix=1.2)
        glm.append(measure_impact(treated, controls, BREACH, FIX, 28))
        plain.append(measure_impact(treated, [], BREACH, FIX, 28))

    assert all(e.ratio.method == "negative_binomial_glm" and e.controls_used == 12 for e in glm)
    assert all(e.ratio.verdict == "improved" for e in glm)
    assert sum(e.ratio.low <= truth <= e.ratio.high for e in glm) >= 17
    assert abs(np.mean([e.ratio.estimate for e in glm]) - truth) < 0.05
    # Against the peak week the fix looks far better than it was (regression to the mean).
    assert all(e.naive_ratio < 0.55 for e in glm)
    # Without controls the market-wide +20% after the fix is charged to the fix: 0.70 × 1.2 ≈ 0.84.
    assert all(e.ratio.method == "exact_poisson" for e in plain)
    assert np.mean([e.ratio.estimate for e in plain]) > 0.78
    for e in glm:
        assert e.expected_complaints == pytest.approx(e.after_complaints / e.ratio.estimate)
        assert e.avoided_low <= e.avoided <= e.avoided_high
        assert e.avoided_low > 0


def test_a_spike_that_ends_by_itself_is_not_credited_to_the_fix():
    treated, controls = _simulate(101, fix_effect=1.0, market_after_fix=1.0)
    estimate = measure_impact(treated, controls, BREACH, FIX, 28)

    assert estimate.ratio.method == "negative_binomial_glm"
    assert estimate.ratio.verdict == "inconclusive"
    assert estimate.ratio.low < 1 < estimate.ratio.high
    assert estimate.avoided_low <= 0 <= estimate.avoided_high
    assert estimate.naive_ratio < 0.5


def test_a_deferred_problem_that_stays_at_the_spike_level_is_worse():
    treated, controls = _simulate(7, fix_effect=1.0, market_after_fix=1.0, spike_continues=True)
    estimate = measure_impact(treated, controls, BREACH, FIX, 14)

    assert estimate.ratio.verdict == "worse"
    assert estimate.ratio.low > 1
    assert estimate.avoided_high < 0


# Small counts and missing data


def test_tiny_counts_use_the_exact_poisson_test_with_a_proper_interval():
    treated = _flat(range(-40, 20), {-30: 1, -20: 2, -10: 0})
    estimate = measure_impact(treated, [], BREACH, FIX, 7)

    assert estimate.ratio.method == "exact_poisson"
    assert (estimate.baseline_complaints, estimate.after_complaints) == (3, 0)
    assert estimate.ratio.estimate == 0
    assert estimate.ratio.low == 0
    assert math.isfinite(estimate.ratio.high) and estimate.ratio.high > 1
    assert estimate.ratio.verdict == "inconclusive"
    # 3 complaints on 3,400 baseline orders, 700 orders after: 0.62 expected, all of them avoided.
    assert estimate.expected_complaints == pytest.approx(3 / 3400 * 700)
    assert estimate.avoided == pytest.approx(estimate.expected_complaints)
    assert estimate.avoided_low < 0 < estimate.avoided_high == pytest.approx(estimate.avoided)


def test_small_expected_counts_use_the_exact_test_even_with_controls():
    treated = _flat(range(-40, 20), {-30: 1, -20: 2, 10: 1})
    controls = [
        SeriesDays(f"c{i}", {_day(n): 1 for n in range(-40, 20, 3)}, {_day(n): 100 for n in range(-40, 20)})
        for i in range(3)
    ]
    estimate = measure_impact(treated, controls, BREACH, FIX, 7)

    assert estimate.ratio.method == "exact_poisson"
    assert estimate.controls_used == 0


def test_a_fit_that_cannot_separate_the_fix_from_the_days_falls_back_to_the_exact_test():
    # The treated series has orders on the first days of the after window only, the controls on the last ones.
    history = range(-40, -6)
    treated = SeriesDays(
        TREATED, {_day(n): 5 for n in [*history, 6, 7, 8, 9]}, {_day(n): 1000 for n in [*history, 6, 7, 8, 9]},
    )
    control_days = [*history, 10, 11, 12]
    controls = [
        SeriesDays(f"c{i}", {_day(n): 4 + i for n in control_days}, {_day(n): 900 for n in control_days})
        for i in range(3)
    ]
    estimate = measure_impact(treated, controls, BREACH, FIX, 7)

    assert estimate.ratio.method == "exact_poisson"
    assert estimate.controls_used == 0
    assert estimate.ratio.estimate == pytest.approx(1.0)


def test_no_baseline_complaints_leaves_the_ratio_undefined_and_claims_no_credit():
    treated = _flat(range(-40, 20), {5: 2, 10: 1})
    estimate = measure_impact(treated, [], BREACH, FIX, 7)

    assert estimate.ratio.method == "none"
    assert math.isnan(estimate.ratio.estimate)
    assert estimate.ratio.verdict == "inconclusive"
    assert estimate.avoided == estimate.avoided_low == estimate.avoided_high == 0


def test_days_with_unknown_exposure_are_skipped():
    orders = {_day(n): 100 for n in range(-40, 20)}
    complaints = {_day(n): 1 for n in range(-40, 20)}
    for n in range(-30, -20):
        del orders[_day(n)]  # no order data: the complaints of these days cannot be rated
    orders[_day(-15)] = 0
    complaints.update({_day(n): 50 for n in range(-30, -20)})
    estimate = measure_impact(SeriesDays(TREATED, complaints, orders), [], BREACH, FIX, 7)

    # Baseline -40..-7 is 34 days, 11 of them without exposure.
    assert (estimate.baseline_complaints, estimate.baseline_orders) == (23, 2300)
    assert (estimate.after_complaints, estimate.after_orders) == (7, 700)
    assert estimate.ratio.estimate == pytest.approx(1.0)


def test_too_little_history_gives_no_estimate():
    assert measure_impact(_flat(range(-30, 20), {-25: 3}), [], BREACH, FIX, 7) is None
    assert measure_impact(SeriesDays(TREATED, {}, {}), [], BREACH, FIX, 7) is None
