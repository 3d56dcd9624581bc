"""ROI figures: only fixes the measurement credits earn anything, ranges hold their value, assumptions are checked."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from feedback_assets.roi.assumptions import AssumptionsError, parse_assumptions
from feedback_assets.roi.measure import GoldHistory, alert_delay, ticket_delay_hours, ticket_delays
from feedback_assets.roi.metrics import PipelineCost, credit_of, roi_figures
from feedback_assets.roi.report import render_roi
from resources.settings import settings

FIX = date(2026, 10, 20)


def assumptions():
    return parse_assumptions((settings().config_dir / "roi_assumptions.yaml").read_bytes())


def impact(ticket: str, code: str, verdict: str, window: int = 28, avoided: float = 40.0, status: str = "complete",
           reason: str | None = None) -> dict:
    return {"ticket_key": ticket, "code": code, "verdict": verdict, "window_days": window, "status": status,
            "complaints_avoided": avoided, "avoided_low": avoided / 2, "avoided_high": avoided * 1.5,
            "baseline_returns": 30, "returns_avoided": 6.0, "refunds_avoided": 540.0, "average_order_value": 90.0,
            "reason": reason}


def resolution(ticket: str, code: str, days_to_fix: int) -> dict:
    return {"ticket_key": ticket, "code": code, "days_to_fix": days_to_fix}


def figures_by_name(impacts, resolutions=(), delays=(1, 0, 2), cost=PipelineCost(0.0, 0, 0.5, 12_000), **tickets):
    return {f.metric: f for f in roi_figures(impacts, list(resolutions), list(delays), cost, assumptions(), **tickets)}


def test_the_shipped_assumptions_are_valid_and_each_names_its_source():
    loaded = assumptions()
    assert loaded.entries and all(a.source and a.unit and a.low <= a.value <= a.high for a in loaded.entries.values())


@pytest.mark.parametrize("broken, message", [
    (b"assumptions: [1, 2]", "needs an `assumptions` mapping"),
    (b"assumptions:\n  cost_per_support_contact: {value: 9, low: 1, high: 5, unit: USD, source: x}", "low <= value <= high"),
    (b"assumptions:\n  cost_per_support_contact: {value: 5, low: 1, high: 9, unit: USD}", "a unit and a source"),
    (b"assumptions:\n  cost_per_support_contact: {value: five, low: 1, high: 9, unit: USD, source: x}", "numeric"),
    (b"assumptions:\n  cost_per_support_contact: {value: 5, low: 1, high: 9, unit: USD, source: x}", "lacks"),
    (b"assumptions: {a: [", "not valid YAML"),
])
def test_a_broken_assumptions_file_is_refused_with_the_reason(broken, message):
    with pytest.raises(AssumptionsError, match=message):
        parse_assumptions(broken)


def test_only_resolved_or_mitigated_fixes_with_an_improved_verdict_earn_credit():
    credit = credit_of([impact("FIT-1", "resolved", "improved"), impact("OPS-1", "mitigated", "inconclusive"),
                        impact("QA-1", "deferred", "worse"), impact("QA-2", "invalid", "improved")])
    assert (credit.credited, credit.withheld, credit.references) == (1, 1, 2)
    assert credit.complaints == [40.0, 20.0, 60.0]


def test_each_fix_counts_once_over_its_longest_complete_window():
    rows = [impact("FIT-1", "resolved", "improved", 7, 10), impact("FIT-1", "resolved", "improved", 14, 20),
            impact("FIT-1", "resolved", "improved", 28, 99, status="pending")]
    assert credit_of(rows).complaints[0] == 20


def test_no_credit_means_no_complaints_avoided_and_no_savings():
    figures = figures_by_name([impact("OPS-1", "mitigated", "inconclusive"), impact("QA-1", "deferred", "worse")])
    assert figures["complaints_avoided"].value == 0 and figures["support_cost_saved"].value == 0
    assert figures["revenue_protected"].value == 0 and figures["fixes_without_credit"].value == 1
    assert figures["deferred_or_invalid_measured"].value == 1


def test_every_range_holds_its_value_and_money_figures_follow_the_assumptions():
    figures = figures_by_name([impact("FIT-1", "resolved", "improved")], [resolution("FIT-1", "resolved", 6)])
    for figure in figures.values():
        if figure.low is not None and figure.high is not None:
            assert figure.low <= figure.value <= figure.high, figure
    a = assumptions()
    contacts = 40 * a["support_contacts_per_complaint"].value
    assert figures["support_contacts_deflected"].value == pytest.approx(contacts)
    assert figures["support_cost_saved"].value == pytest.approx(contacts * a["cost_per_support_contact"].value)
    assert figures["returns_avoided"].value == 6.0 and figures["refunds_avoided"].value == 540.0
    assert figures["analyst_hours_saved"].value == pytest.approx(12_000 * a["minutes_per_manual_tag"].value / 60)
    assert figures["time_to_fix_days_median"].value == 6 and figures["time_to_alert_days_median"].value == 1
    assert "cost_per_support_contact" in figures["net_benefit"].assumptions


def test_returns_of_a_series_without_orders_come_from_the_assumed_rate():
    row = impact("CX-1", "resolved", "improved", reason="orders do not record the channel: the shop's orders are the exposure")
    figures = figures_by_name([row])
    assert figures["returns_avoided"].value == pytest.approx(40 * assumptions()["returns_per_complaint"].value)
    assert figures["returns_avoided"].assumptions == ("returns_per_complaint",)


def test_time_to_alert_counts_the_elevated_days_before_the_alert():
    days = [date(2026, 9, 1) + timedelta(days=n) for n in range(60)]
    alert = days[50]
    counts = {d: 1 for d in days} | {alert - timedelta(days=2): 4, alert - timedelta(days=1): 6, alert: 9}
    history = GoldHistory({("delivery_delay", "carrier", "FedEx"): counts}, {}, {}, {}, {}, {}, set(), days)
    assert alert_delay(history, "delivery_delay:carrier=FedEx", alert) == 2
    assert alert_delay(history, "delivery_delay:carrier=UPS", alert) == 0


def test_time_to_ticket_counts_from_the_end_of_the_alert_day_and_leaves_replayed_history_out():
    day = date(2026, 10, 14)
    next_morning = datetime(2026, 10, 15, 5, 30, tzinfo=UTC).timestamp()
    same_evening = datetime(2026, 10, 15, 0, 45, tzinfo=UTC).timestamp()
    replayed = datetime(2026, 12, 1, 9, tzinfo=UTC).timestamp()
    assert ticket_delay_hours(day, next_morning) == 5.5
    hours, left_out = ticket_delays([(day, next_morning), (day, same_evening), (day, replayed)])
    assert sorted(hours) == [0.75, 5.5] and left_out == 1

    figures = figures_by_name([], ticket_hours=hours, tickets_replayed=left_out)
    assert figures["time_to_ticket_hours_median"].value == 3.125 and figures["time_to_ticket_hours_median"].unit == "hours"
    assert figures["time_to_ticket_hours_p90"].basis.startswith("1 ticket(s) opened by a replay or backfill")


def test_time_to_ticket_is_unknown_when_every_ticket_came_from_a_replay():
    figures = figures_by_name([], ticket_hours=[], tickets_replayed=9)
    assert figures["time_to_ticket_hours_median"].value is None
    assert "9 ticket(s)" in figures["time_to_ticket_hours_median"].basis


def test_the_printed_roi_says_why_a_figure_is_unknown_and_never_prints_zero_for_it():
    window = (date(2026, 9, 1), date(2026, 11, 27))
    rows = [f.row(window) for f in figures_by_name([], ticket_hours=[], tickets_replayed=3).values()]
    printed = "\n".join(render_roi(rows))
    line = next(line for line in printed.splitlines() if "time_to_ticket_hours_median" in line)
    assert "unknown" in line and "3 ticket(s) opened by a replay or backfill of history" in line and " 0.0 " not in line
