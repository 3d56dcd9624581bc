"""The programme's ROI as of a day: speed (time to insight, time to fix), what the fixes avoided, what it cost.

Only fixes the measurement credits count: a resolved or mitigated ticket whose series' rate fell
with an interval below 1, over its longest complete window. Deferred and invalid tickets, and fixes
whose interval crosses 1, are counted but earn nothing. Every figure carries its basis (measured,
or built on named assumptions) and a low..high range from the intervals and the assumptions' ranges.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from feedback_assets.roi.assumptions import Assumptions
from feedback_assets.roi.measure import CREDITED_CODES, TICKET_REACH_HOURS


@dataclass(frozen=True)
class Figure:
    metric: str
    value: float | None
    low: float | None
    high: float | None
    unit: str
    basis: str
    assumptions: tuple[str, ...] = ()

    def row(self, window: tuple[date, date]) -> dict:
        return {"metric": self.metric, "value": self.value, "low": self.low, "high": self.high, "unit": self.unit,
                "basis": self.basis, "assumptions": list(self.assumptions), "window_start": window[0],
                "window_end": window[1]}


@dataclass(frozen=True)
class PipelineCost:
    llm_cost_usd: float
    llm_tokens: int
    compute_hours: float
    classified_items: int


@dataclass
class Credit:
    """What the credited fixes avoided, each over its longest complete window."""

    complaints: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    returns_measured: float = 0.0
    complaints_without_returns: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    refunds: float = 0.0
    revenue_base: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    credited: int = 0
    withheld: int = 0
    references: int = 0


def longest_complete(impacts: Sequence[Mapping]) -> dict[str, Mapping]:
    """Per ticket, its complete measurement over the longest window."""
    best: dict[str, Mapping] = {}
    for row in impacts:
        if row.get("status") == "complete" and (row["ticket_key"] not in best
                                                or row["window_days"] > best[row["ticket_key"]]["window_days"]):
            best[row["ticket_key"]] = row
    return best


def credit_of(impacts: Sequence[Mapping]) -> Credit:
    credit = Credit()
    for row in longest_complete(impacts).values():
        if row["code"] not in CREDITED_CODES:
            credit.references += 1
            continue
        if row["verdict"] != "improved":
            credit.withheld += 1
            continue
        credit.credited += 1
        avoided = [max(0.0, row["complaints_avoided"] or 0.0), max(0.0, row["avoided_low"] or 0.0),
                   max(0.0, row["avoided_high"] or 0.0)]
        credit.complaints = [a + b for a, b in zip(credit.complaints, avoided, strict=True)]
        if row.get("baseline_returns") is not None and not (row.get("reason") or "").startswith("orders do not record"):
            credit.returns_measured += row["returns_avoided"] or 0.0
            credit.refunds += row["refunds_avoided"] or 0.0
        else:
            credit.complaints_without_returns = [a + b for a, b in zip(credit.complaints_without_returns, avoided, strict=True)]
        value = row.get("average_order_value") or 0.0
        credit.revenue_base = [a + b * value for a, b in zip(credit.revenue_base, avoided, strict=True)]
    return credit


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))])


def _timing(metric: str, values: Sequence[float], basis: str, unit: str = "days") -> list[Figure]:
    median = float(statistics.median(values)) if values else None
    return [Figure(f"{metric}_median", median, _quantile(values, 0.1), _quantile(values, 0.9), unit, basis),
            Figure(f"{metric}_p90", _quantile(values, 0.9), None, None, unit, basis)]


def _ticket_basis(replayed: int) -> str:
    basis = "measured: end of the alert's day (its data complete) to the ticket's creation"
    if replayed:
        # The reason comes first: it is what a reader of an unknown figure needs.
        basis = (f"{replayed} ticket(s) opened by a replay or backfill of history (over "
                 f"{TICKET_REACH_HOURS // 24} days after their day) left out; {basis}")
    return basis


def roi_figures(impacts: Sequence[Mapping], resolutions: Sequence[Mapping], alert_delays: Sequence[float],
                cost: PipelineCost, assumptions: Assumptions, ticket_hours: Sequence[float] = (),
                tickets_replayed: int = 0) -> list[Figure]:
    """The ROI figures from the day's impact rows, the resolutions, alert and ticket delays of the window, and its costs."""
    a = assumptions.entries
    credit = credit_of(impacts)
    fixed = [r["days_to_fix"] for r in resolutions if r["code"] in CREDITED_CODES and r["days_to_fix"] is not None]
    figures = [
        *_timing("time_to_alert_days", alert_delays, "measured: first elevated day of the series to its alert"),
        *_timing("time_to_ticket_hours", ticket_hours, _ticket_basis(tickets_replayed), unit="hours"),
        *_timing("time_to_fix_days", fixed, "measured: alert day to the ticket's resolution"),
        Figure("tickets_resolved", float(sum(r["code"] in CREDITED_CODES for r in resolutions)), None, None, "tickets", "measured"),
        Figure("fixes_credited", float(credit.credited), None, None, "tickets",
               "measured: resolved or mitigated, complaint rate down with a 95% interval below 1"),
        Figure("fixes_without_credit", float(credit.withheld), None, None, "tickets",
               "measured: resolved or mitigated, but the interval crosses 1 (or the rate rose)"),
        Figure("deferred_or_invalid_measured", float(credit.references), None, None, "tickets",
               "measured the same way: the regression-to-the-mean reference"),
    ]
    complaints = credit.complaints
    figures.append(Figure("complaints_avoided", *complaints, "complaints",
                          "measured: expected minus observed over each credited fix's longest complete window"))
    per_complaint = a["returns_per_complaint"]
    assumed_returns = [credit.complaints_without_returns[0] * per_complaint.value,
                       credit.complaints_without_returns[1] * per_complaint.low,
                       credit.complaints_without_returns[2] * per_complaint.high]
    figures.append(Figure("returns_avoided", *(credit.returns_measured + r for r in assumed_returns), "returns",
                          "measured from returns where the series has orders; else complaints × returns_per_complaint",
                          ("returns_per_complaint",) if any(credit.complaints_without_returns) else ()))
    figures.append(Figure("refunds_avoided", credit.refunds, credit.refunds, credit.refunds, assumptions.currency,
                          "measured: returns avoided × the series' refund per return in the baseline"))
    contacts, cost_per = a["support_contacts_per_complaint"], a["cost_per_support_contact"]
    deflected = [complaints[0] * contacts.value, complaints[1] * contacts.low, complaints[2] * contacts.high]
    figures.append(Figure("support_contacts_deflected", *deflected, "contacts", "complaints avoided × contacts per complaint",
                          ("support_contacts_per_complaint",)))
    support_saved = [deflected[0] * cost_per.value, deflected[1] * cost_per.low, deflected[2] * cost_per.high]
    figures.append(Figure("support_cost_saved", *support_saved, assumptions.currency,
                          "contacts deflected × cost per contact", ("support_contacts_per_complaint", "cost_per_support_contact")))
    minutes, rate = a["minutes_per_manual_tag"], a["analyst_cost_per_hour"]
    hours = [cost.classified_items * m / 60 for m in (minutes.value, minutes.low, minutes.high)]
    figures.append(Figure("analyst_hours_saved", *hours, "hours", "items classified automatically × minutes per manual tag",
                          ("minutes_per_manual_tag",)))
    analyst_saved = [hours[0] * rate.value, hours[1] * rate.low, hours[2] * rate.high]
    figures.append(Figure("analyst_cost_saved", *analyst_saved, assumptions.currency, "analyst hours saved × cost per hour",
                          ("minutes_per_manual_tag", "analyst_cost_per_hour")))
    churn, repeat = a["churn_share_of_complainers"], a["orders_per_customer_per_year"]
    protected = [credit.revenue_base[0] * churn.value * repeat.value + credit.refunds,
                 credit.revenue_base[1] * churn.low * repeat.low + credit.refunds,
                 credit.revenue_base[2] * churn.high * repeat.high + credit.refunds]
    figures.append(Figure("revenue_protected", *protected, assumptions.currency,
                          "complaints avoided × churn share × the series' order value × orders per year, plus refunds avoided",
                          ("churn_share_of_complainers", "orders_per_customer_per_year")))
    compute = a["compute_cost_per_hour"]
    figures.append(Figure("pipeline_llm_cost", cost.llm_cost_usd, cost.llm_cost_usd, cost.llm_cost_usd, assumptions.currency,
                          f"measured: {cost.llm_tokens:,} LLM tokens at the model's list price"))
    compute_cost = [cost.compute_hours * c for c in (compute.value, compute.low, compute.high)]
    figures.append(Figure("pipeline_compute_cost", *compute_cost, assumptions.currency,
                          f"{cost.compute_hours:.2f} hours of pipeline runs × compute cost per hour", ("compute_cost_per_hour",)))
    spent = [cost.llm_cost_usd + c for c in compute_cost]
    benefit = [support_saved[i] + analyst_saved[i] + protected[i] for i in range(3)]
    # The low end pairs the smallest benefit with the highest cost, and the other way round.
    net = [benefit[0] - spent[0], benefit[1] - spent[2], benefit[2] - spent[1]]
    figures.append(Figure("net_benefit", *net, assumptions.currency,
                          "support and analyst cost saved plus revenue protected, less the pipeline's cost",
                          tuple(sorted({n for f in figures for n in f.assumptions}))))
    return figures
