"""The commerce behind a complaint series: orders, revenue, margin, returns and refunds flowing through its value.

Computed from the `series_commerce` gold rows of one dimension value (and of the whole shop, for
shares). Where a figure cannot be known (orders do not carry the feedback channel; no orders for
the value), it is None with the reason, so no ticket ever prints 0 for unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from feedback_assets.transforms.dimensions import ALL, ORDER_DIMENSIONS

WEEK_DAYS = 7
SHARE_DAYS = 28


@dataclass(frozen=True)
class CommerceContext:
    """What flows through one dimension value over the last 7 days, its share of the day's shop, and its 28-day return rate.

    The share is the day's: a new app version or a platform whose orders shift carries what it
    carries now, not its average of a week that began before its release.
    """

    orders_7d: int | None
    revenue_7d: float | None
    margin_7d: float | None
    returns_7d: int | None
    refunds_7d: float | None
    order_share: float | None
    revenue_share: float | None
    return_rate: float | None
    unknown_reason: str | None = None

    @property
    def average_order_value(self) -> float | None:
        if not self.orders_7d or self.revenue_7d is None:
            return None
        return self.revenue_7d / self.orders_7d

    def per_1k_orders(self, complaints_7d: int) -> float | None:
        """The week's complaints per 1,000 of the week's orders through the value."""
        return 1000 * complaints_7d / self.orders_7d if self.orders_7d else None

    def revenue_at_risk(self, complaints_7d: int) -> float | None:
        """The complaining customers' order value: the week's complaints × the value's average order value."""
        value = self.average_order_value
        return None if value is None else round(complaints_7d * value, 2)


def unknown(reason: str) -> CommerceContext:
    return CommerceContext(None, None, None, None, None, None, None, None, reason)


def _sum(rows: Iterable[Mapping], column: str) -> float:
    return float(sum(row[column] or 0 for row in rows))


def commerce_context(rows: Iterable[Mapping], dimension: str, value: str, day: date) -> CommerceContext:
    """The context of `dimension=value` on `day` from `series_commerce` rows (its own and the `all` totals)."""
    if dimension not in ORDER_DIMENSIONS:
        return unknown(f"orders do not record the {dimension}")
    week_start, share_start = day - timedelta(days=WEEK_DAYS - 1), day - timedelta(days=SHARE_DAYS - 1)
    rows = [r for r in rows if share_start <= r["feedback_date"] <= day]
    mine = [r for r in rows if r["dimension"] == dimension and r["value"] == value]
    shop = [r for r in rows if r["dimension"] == ALL]
    if not shop:
        return unknown("no commerce data for these days")
    if not mine:
        return unknown(f"no orders with {dimension}={value} in the last {SHARE_DAYS} days")
    week = [r for r in mine if r["feedback_date"] >= week_start]
    today, shop_today = [r for r in mine if r["feedback_date"] == day], [r for r in shop if r["feedback_date"] == day]
    orders_28d = _sum(mine, "orders")
    return CommerceContext(
        orders_7d=int(_sum(week, "orders")),
        revenue_7d=round(_sum(week, "revenue"), 2),
        margin_7d=round(_sum(week, "margin"), 2),
        returns_7d=int(_sum(week, "returns")),
        refunds_7d=round(_sum(week, "refunds"), 2),
        order_share=_sum(today, "orders") / _sum(shop_today, "orders") if _sum(shop_today, "orders") else None,
        revenue_share=_sum(today, "revenue") / _sum(shop_today, "revenue") if _sum(shop_today, "revenue") else None,
        return_rate=_sum(mine, "returns") / orders_28d if orders_28d else None,
    )
