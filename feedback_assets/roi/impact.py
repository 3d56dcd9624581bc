"""Whether a fix worked: a series' complaint rate after it against its pre-spike baseline, net of market-wide shifts."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.stats.proportion import proportion_confint
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationError, PerfectSeparationWarning

_Z95 = 1.959963984540054
_ALPHA_FLOOR = 1e-6


@dataclass(frozen=True)
class ImpactWindows:
    """Measurement policy, all lengths in days."""

    washout_days: int = 3  # days after the fix that belong to neither period
    after_windows: tuple[int, ...] = (7, 14, 28)
    baseline_days: int = 28  # the shortest usable baseline
    baseline_max_days: int = 56
    baseline_gap_days: int = 7  # the baseline ends this many days before the breach, clear of the spike
    min_expected_for_glm: float = 10.0  # fewer expected complaints after: the exact Poisson test
    min_controls_for_glm: int = 2


@dataclass(frozen=True)
class SeriesDays:
    """Daily complaints and orders of one series; a day missing from `orders` has unknown exposure."""

    key: str
    complaints: Mapping[date, int]  # a day with exposure but no entry had no complaints
    orders: Mapping[date, int]


@dataclass(frozen=True)
class RateRatio:
    """After-to-baseline complaint rate ratio with its 95% interval, the method used and the verdict."""

    estimate: float
    low: float
    high: float
    method: str  # "negative_binomial_glm" | "exact_poisson" | "none"
    verdict: str  # "improved" | "worse" | "inconclusive"


@dataclass(frozen=True)
class ImpactEstimate:
    """The measured effect of a fix on one series, with the complaints it avoided."""

    ratio: RateRatio
    baseline_complaints: int
    baseline_orders: int
    after_complaints: int
    after_orders: int
    baseline_per_1k: float | None
    after_per_1k: float | None
    expected_complaints: float  # the counterfactual after count: observed / ratio, net of what the controls share
    avoided: float  # expected - observed
    avoided_low: float
    avoided_high: float
    controls_used: int
    naive_ratio: float | None  # after rate against the peak week (the 7 days ending on the breach day)


def baseline_period(breach_day: date, first_data_day: date, windows: ImpactWindows) -> tuple[date, date] | None:
    """The pre-spike baseline, ending `baseline_gap_days` before the breach, or None with too little history."""
    end = breach_day - timedelta(days=windows.baseline_gap_days)
    start = max(first_data_day, end - timedelta(days=windows.baseline_max_days - 1))
    return (start, end) if (end - start).days + 1 >= windows.baseline_days else None


def after_period(fix_day: date, window_days: int, windows: ImpactWindows) -> tuple[date, date]:
    """The after window of `window_days`, starting once the washout after the fix day is over."""
    start = fix_day + timedelta(days=windows.washout_days + 1)
    return start, start + timedelta(days=window_days - 1)


def window_complete(period_end: date, last_data_day: date) -> bool:
    """Whether the data already covers the whole period."""
    return period_end <= last_data_day


def verdict_of(low: float, high: float) -> str:
    """The verdict of a rate-ratio interval: improved below 1, worse above 1, otherwise inconclusive."""
    if high < 1:
        return "improved"
    if low > 1:
        return "worse"
    return "inconclusive"


def _days(period: tuple[date, date]) -> list[date]:
    return [period[0] + timedelta(days=n) for n in range((period[1] - period[0]).days + 1)]


def _exposed(series: SeriesDays, days: Sequence[date]) -> list[tuple[date, int, int]]:
    """The (day, complaints, orders) of the days with known exposure; other days' complaints cannot be rated."""
    return [(d, int(series.complaints.get(d, 0)), int(series.orders[d])) for d in days if series.orders.get(d, 0) > 0]


def _totals(rows: Sequence[tuple[date, int, int]]) -> tuple[int, int]:
    return sum(r[1] for r in rows), sum(r[2] for r in rows)


def _informative(control: SeriesDays, baseline: list[date], after: list[date]) -> bool:
    """Whether a control has exposure in both periods and at least one complaint."""
    (base_c, base_o), (after_c, after_o) = _totals(_exposed(control, baseline)), _totals(_exposed(control, after))
    return base_o > 0 and after_o > 0 and base_c + after_c > 0


def _exact_poisson(after: tuple[int, int], baseline: tuple[int, int]) -> RateRatio:
    """Exact conditional ratio: given the total, the after count is binomial; Clopper-Pearson maps onto the ratio."""
    # statsmodels 0.15 lists "exact-cond" for confint_poisson_2indep as not yet implemented, hence the mapping here.
    (y1, n1), (y2, n2) = after, baseline
    p_low, p_high = proportion_confint(y1, y1 + y2, alpha=0.05, method="beta")
    scale = n2 / n1
    low, high = p_low / (1 - p_low) * scale, p_high / (1 - p_high) * scale
    return RateRatio((y1 / n1) / (y2 / n2), float(low), float(high), "exact_poisson", verdict_of(low, high))


def _nb_alpha(y: np.ndarray, mu: np.ndarray, df_resid: float) -> float:
    """Method-of-moments NB dispersion: the alpha at which the Pearson chi-square equals the residual df."""

    def excess(a: float) -> float:
        return float(np.sum((y - mu) ** 2 / (mu * (1 + a * mu)))) - df_resid

    low, high = _ALPHA_FLOOR, 1.0
    if excess(low) <= 0:
        return low
    while excess(high) > 0 and high < 1e4:
        high *= 10
    for _ in range(60):  # bisection on the log scale; the excess falls as alpha grows
        mid = math.sqrt(low * high)
        low, high = (mid, high) if excess(mid) > 0 else (low, mid)
    return high


def _nb_glm(panel: pd.DataFrame) -> RateRatio | None:
    """Negative-binomial GLM with series and day effects; None when the fit fails or is not finite."""
    formula = "complaints ~ C(series) + C(day) + after_treated"
    offset = np.log(panel["orders"].to_numpy(dtype=float))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            warnings.simplefilter("error", PerfectSeparationWarning)
            model = smf.glm(formula, panel, family=sm.families.Poisson(), offset=offset)
            y, exog = model.endog, model.exog
            if model.df_model + 1 < exog.shape[1]:  # rank-deficient: the fix cannot be told apart from day effects
                return None
            poisson = model.fit(wls_method="qr")
            alpha = _nb_alpha(y, poisson.mu, poisson.df_resid)
            nb = sm.GLM(y, exog, family=sm.families.NegativeBinomial(alpha=alpha), offset=offset)
            fit = nb.fit(start_params=poisson.params.to_numpy(), wls_method="qr")
    except (ConvergenceWarning, PerfectSeparationWarning, PerfectSeparationError, ValueError, np.linalg.LinAlgError):
        return None
    at = model.exog_names.index("after_treated")
    coef, se = float(fit.params[at]), float(fit.bse[at])
    if not (fit.converged and math.isfinite(coef) and math.isfinite(se)):
        return None
    low, high = math.exp(coef - _Z95 * se), math.exp(coef + _Z95 * se)
    return RateRatio(math.exp(coef), low, high, "negative_binomial_glm", verdict_of(low, high))


def _panel(
    treated: SeriesDays, controls: Sequence[SeriesDays], baseline: list[date], after: list[date],
) -> pd.DataFrame:
    """The stacked daily panel of the treated series and its controls; `after_treated` marks the treated after days."""
    rows = [
        {"series": s.key, "day": d.isoformat(), "complaints": c, "orders": o,
         "after_treated": int(s is treated and in_after)}
        for s in (treated, *controls)
        for in_after, days in ((False, baseline), (True, after))
        for d, c, o in _exposed(s, days)
    ]
    panel = pd.DataFrame(rows)
    # A day without a single complaint only pushes its day effect to -inf; it carries no information.
    return panel[panel.groupby("day")["complaints"].transform("sum") > 0]


def _per_1k(complaints: int, orders: int) -> float | None:
    return 1000 * complaints / orders if orders > 0 else None


def measure_impact(
    treated: SeriesDays, controls: Sequence[SeriesDays], breach_day: date, fix_day: date, window_days: int,
    windows: ImpactWindows = ImpactWindows(),
) -> ImpactEstimate | None:
    """The fix's effect on the treated series over one after window, or None when it has no baseline period."""
    if not treated.orders:
        return None
    period = baseline_period(breach_day, min(treated.orders), windows)
    if period is None:
        return None
    baseline, after = _days(period), _days(after_period(fix_day, window_days, windows))
    base_c, base_o = _totals(_exposed(treated, baseline))
    after_c, after_o = _totals(_exposed(treated, after))
    peak_c, peak_o = _totals(_exposed(treated, [breach_day - timedelta(days=n) for n in range(7)]))
    expected_by_baseline = base_c / base_o * after_o if base_o > 0 else 0.0

    ratio, used = None, 0
    if base_c == 0 or base_o == 0 or after_o == 0:
        ratio = RateRatio(math.nan, math.nan, math.nan, "none", "inconclusive")
    elif after_c > 0 and expected_by_baseline >= windows.min_expected_for_glm:
        # Controls without complaints are dropped: with a series effect they say nothing about day effects.
        usable = [s for s in controls if s.key != treated.key and _informative(s, baseline, after)]
        if len(usable) >= windows.min_controls_for_glm:
            ratio = _nb_glm(_panel(treated, usable, baseline, after))
            used = len(usable) if ratio is not None else 0
    if ratio is None:
        ratio = _exact_poisson((after_c, after_o), (base_c, base_o))

    if ratio.method == "none":
        # No rate to compare with: assume nothing changed, so no complaints are credited to the fix.
        expected, avoided_low, avoided_high = float(after_c), 0.0, 0.0
    elif after_c == 0:
        # observed / ratio is 0 / 0 here: the counterfactual is the baseline rate times the after exposure,
        # and the range follows from observed = ratio × expected.
        expected = expected_by_baseline
        avoided_low, avoided_high = expected * (1 - ratio.high), expected * (1 - ratio.low)
    else:
        expected = after_c / ratio.estimate
        avoided_low, avoided_high = after_c / ratio.high - after_c, after_c / ratio.low - after_c
    avoided = expected - after_c
    return ImpactEstimate(
        ratio=ratio,
        baseline_complaints=base_c,
        baseline_orders=base_o,
        after_complaints=after_c,
        after_orders=after_o,
        baseline_per_1k=_per_1k(base_c, base_o),
        after_per_1k=_per_1k(after_c, after_o),
        expected_complaints=expected,
        avoided=avoided,
        avoided_low=min(avoided_low, avoided),
        avoided_high=max(avoided_high, avoided),
        controls_used=used,
        naive_ratio=(after_c / after_o) / (peak_c / peak_o) if peak_c > 0 and after_o > 0 else None,
    )
