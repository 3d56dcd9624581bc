"""Commerce behind a series: what flows through its value, unknown stated with its reason, and priority by weight."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from feedback_assets.alerts.commerce import commerce_context
from feedback_assets.transforms.priority import IssueSignals, components, load_priority, priority_score
from resources.settings import settings

DAY = date(2026, 11, 10)


def rows(dimension: str, value: str, orders: int, revenue: float, returns: int = 0, days: int = 28) -> list[dict]:
    return [{"feedback_date": DAY - timedelta(days=n), "dimension": dimension, "value": value, "orders": orders,
             "revenue": revenue, "margin": revenue * 0.4, "returns": returns, "refunds": returns * 50.0}
            for n in range(days)]


SHOP = rows("all", "all", 1200, 108_000.0, 60)


def test_a_platform_carries_its_orders_revenue_and_share():
    context = commerce_context(SHOP + rows("platform", "android", 300, 27_000.0, 15), "platform", "android", DAY)
    assert context.unknown_reason is None
    assert (context.orders_7d, context.revenue_7d, context.returns_7d) == (2100, 189_000.0, 105)
    assert context.order_share == pytest.approx(0.25) and context.revenue_share == pytest.approx(0.25)
    assert context.revenue_at_risk(70) == pytest.approx(70 * 90.0)
    assert context.per_1k_orders(70) == pytest.approx(1000 * 70 / 2100)


def test_only_the_last_seven_days_count_as_the_week():
    context = commerce_context(SHOP + rows("sku", "JKT-1042", 10, 1_500.0), "sku", "JKT-1042", DAY)
    assert context.orders_7d == 70 and context.revenue_7d == 10_500.0


@pytest.mark.parametrize("dimension, value, commerce, reason", [
    ("channel", "app_store_reviews", SHOP, "orders do not record the channel"),
    ("sku", "NEW-0001", SHOP, "no orders with sku=NEW-0001"),
    ("sku", "JKT-1042", [], "no commerce data"),
])
def test_unknown_is_none_with_its_reason_never_zero(dimension, value, commerce, reason):
    context = commerce_context(commerce, dimension, value, DAY)
    assert reason in context.unknown_reason
    assert context.revenue_at_risk(12) is None and context.per_1k_orders(12) is None and context.revenue_share is None


def test_a_checkout_failure_on_a_quarter_of_orders_outranks_a_one_sku_sizing_complaint():
    config = load_priority(settings().config_dir / "priority.yaml")
    checkout = IssueSignals(complaints=45, baseline_weekly_mean=10, mean_severity=0.7, churn_share=0.2,
                            revenue_share=0.25, return_rate=0.02, high_value_share=0.1, mean_confidence=0.7)
    sizing = IssueSignals(complaints=45, baseline_weekly_mean=10, mean_severity=0.4, churn_share=0.05,
                          revenue_share=0.012, return_rate=0.25, high_value_share=0.1, mean_confidence=0.7)
    assert priority_score(components(checkout, config), config) > priority_score(components(sizing, config), config) + 10
