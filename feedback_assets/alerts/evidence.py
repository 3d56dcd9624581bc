"""The evidence behind an alert: quotes, daily counts, revenue at risk, affected SKUs and regions, themes.

Read with pyarrow from the window's partitions (a few days), so dispatch needs no Spark session.
Quotes come from silver's PII-scrubbed text and skip items flagged for review (e.g. suspected
injection); they are still untrusted and escaped by each sink.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import pandas as pd
import yaml

from feedback_assets import tables
from feedback_assets.alerts.chart import read_velocity_history, series_history, velocity_chart_png
from feedback_assets.alerts.commerce import SHARE_DAYS, CommerceContext, commerce_context
from feedback_assets.alerts.model import Alert
from feedback_assets.enrichment.taxonomy import load_taxonomy
from feedback_assets.transforms.priority import IssueSignals, components, load_priority, priority_score
from feedback_assets.window import days_in
from resources.settings import settings
from resources.table_store import TableStore

MAX_QUOTES = 3
QUOTE_CHARS = 280


class VelocityRowMissing(LookupError):
    """The breach has no complaint_velocity row (the day was never materialized, or was rebuilt without it)."""


@dataclass(frozen=True)
class AlertContext:
    """Where the alert came from: the run that computed the velocity and the UI to link back to."""

    run_id: str
    ui_base_url: str


@cache
def load_support_macros(path: Path | None = None) -> dict:
    return yaml.safe_load((path or settings().config_dir / "support_macros.yaml").read_text())


# What may stand in a reply an agent sends to a customer: a product or place name, nothing that links,
# mentions, marks up or runs on. Anything else is replaced by a neutral phrase.
_CUSTOMER_SAFE = re.compile(r"[\w .,'&()/+#-]{1,60}")
_LINK_LIKE = re.compile(r"(?i)://|www\.|@|[a-z]\.[a-z]{2,}")


def customer_safe(value: object, fallback: str) -> str:
    """`value` when it is short, plain text that cannot link or mention; else `fallback`."""
    text = " ".join(str(value or "").split())
    if _CUSTOMER_SAFE.fullmatch(text) and not _LINK_LIKE.search(text):
        return text
    return fallback


def support_macro(label: str, domain: str, subject: str, sla_days: int, macros: dict | None = None) -> str:
    """The suggested customer reply for the label (or its domain), filled in for the alert's subject."""
    macros = macros or load_support_macros()
    template = macros.get("labels", {}).get(label) or macros["domains"].get(domain) or macros["domains"]["other"]
    return " ".join(template.split()).format(subject=subject, sla_days=int(sla_days))


def _frame(store: TableStore, table: str, days: list[date]) -> pd.DataFrame:
    """The table's rows on `days`, with feedback_date."""
    rows = store.read_days(table, days)
    return rows.to_pandas() if rows is not None else pd.DataFrame()


def series_items(store: TableStore, label: str, dimension: str, value: str, days: list[date]) -> pd.DataFrame:
    """The issues of one series over `days`: one row per item with its quote, keys and review flag."""
    classified = _frame(store, tables.FEEDBACK_LABELS, days)
    silver = _frame(store, tables.SILVER_FEEDBACK, days)
    if classified.empty or silver.empty:
        return pd.DataFrame()
    rows = []
    context = silver.set_index("feedback_id")[["sku", "region", "platform", "app_version", "customer_key", "text_clean"]]
    for item in classified.itertuples(index=False):
        issue = next((i for i in (item.labels if item.labels is not None else []) if i["label"] == label), None)
        if issue is None or item.feedback_id not in context.index:
            continue
        keys = context.loc[item.feedback_id]
        entities = item.entities or {}
        values = {"sku": keys["sku"] or entities.get("sku"), "region": keys["region"] or entities.get("region"),
                  "channel": item.channel, "platform": keys["platform"], "app_version": keys["app_version"],
                  "carrier": entities.get("carrier")}
        if values.get(dimension) != value:
            continue
        rows.append({**values, "feedback_id": item.feedback_id, "feedback_date": item.feedback_date,
                     "quote": issue["evidence"] or keys["text_clean"], "severity": issue["severity"] or 0.0,
                     "confidence": item.confidence or 0.0, "needs_review": bool(item.needs_review),
                     "churn_intent": bool(item.churn_intent), "customer_key": keys["customer_key"],
                     "prompt_version": item.prompt_version})
    return pd.DataFrame(rows)


def pick_quotes(items: pd.DataFrame, day: date, limit: int = MAX_QUOTES) -> tuple[str, ...]:
    """The most severe distinct quotes of the day (the week when the day has too few), none needing review."""
    if items.empty:
        return ()
    usable = items[~items["needs_review"]].assign(today=items["feedback_date"] == day)
    ranked = usable.sort_values(["today", "severity", "confidence", "feedback_id"], ascending=[False, False, False, True])
    quotes: list[str] = []
    for quote in ranked["quote"]:
        text = " ".join(str(quote).split())[:QUOTE_CHARS]
        if text and text not in quotes:
            quotes.append(text)
        if len(quotes) == limit:
            break
    return tuple(quotes)


def build_alert(store: TableStore, series_key: str, day: date, context: AlertContext) -> Alert:
    """The alert for one series on one day, from the velocity row and the week's evidence."""
    history = read_velocity_history(store, day, day)  # the chart's 42 days, the alert's own row among them
    velocity = history.to_pandas() if history is not None else pd.DataFrame()
    matches = velocity[(velocity["series_key"] == series_key) & (velocity["feedback_date"] == day)] \
        if not velocity.empty else velocity
    if matches.empty:
        raise VelocityRowMissing(f"no complaint_velocity row for {series_key} on {day}; materialize complaint_velocity first")
    row = matches.iloc[0]
    week = days_in(day - timedelta(days=6), day)
    items = series_items(store, row["label"], row["dimension"], row["value"], week)
    label = load_taxonomy().labels[row["label"]]
    daily = _frame(store, tables.ISSUE_DAILY_METRICS, week)
    if not daily.empty:
        daily = daily[(daily["label"] == row["label"]) & (daily["dimension"] == row["dimension"]) & (daily["value"] == row["value"])]
    by_day = dict(zip(daily.get("feedback_date", []), daily.get("complaints", []), strict=True))
    subject = customer_subject(store, row["dimension"], row["value"], day)
    share_days = days_in(day - timedelta(days=SHARE_DAYS - 1), day)
    commerce = commerce_context(_frame(store, tables.SERIES_COMMERCE, share_days).to_dict("records"),
                                row["dimension"], row["value"], day)
    score, drivers = series_priority(store, row, items, commerce, share_days)
    return Alert(
        label=row["label"], domain=label.domain, dimension=row["dimension"], value=row["value"], day=day,
        count=int(row["complaints"]), count_7d=int(row["complaints_7d"]),
        daily_counts_7d=tuple(int(by_day.get(d, 0)) for d in week),
        ma7=float(row["ma7"]), ma28=float(row["ma28"]), lift=float(row["lift"]), p_value=float(row["p_value"]),
        per_1k_orders=None if pd.isna(row["complaints_per_1k_orders"]) else float(row["complaints_per_1k_orders"]),
        priority_score=score, revenue_at_risk=commerce.revenue_at_risk(int(row["complaints_7d"])),
        affected_skus=_top(items, "sku"), affected_regions=_top(items, "region"),
        quotes=pick_quotes(items, day), themes=_themes(store, items, week),
        owner=label.owner, prompt_version=_prompt_version(items),
        run_id=context.run_id,
        asset_url=f"{context.ui_base_url.rstrip('/')}/assets/complaint_velocity?partition={day.isoformat()}",
        support_macro=support_macro(row["label"], label.domain, subject, label.owner.sla_days),
        chart_png=velocity_chart_png(series_history(history, series_key, day), series_key, day),
        commerce=commerce, priority_drivers=drivers,
    )


def customer_subject(store: TableStore, dimension: str, value: str, day: date) -> str:
    """How a customer reply names what the alert is about: the product name for a SKU; every value sanitised."""
    safe = customer_safe(value, "")
    if dimension == "sku":
        catalog = _frame(store, tables.SKU_CATALOG, [day])
        names = dict(zip(catalog["sku"], catalog["name"], strict=True)) if not catalog.empty else {}
        name = customer_safe(names.get(value), "")
        return f"{name} ({safe})" if name and safe else name or safe or "this item"
    if not safe:
        return {"region": "orders to your area", "carrier": "deliveries", "platform": "our app",
                "app_version": "our app", "channel": "your order"}.get(dimension, "your order")
    return {"region": f"orders to {safe}", "carrier": f"{safe} deliveries", "platform": f"the {safe} app",
            "app_version": f"app version {safe}", "channel": "your order"}.get(dimension, safe)


def _top(items: pd.DataFrame, column: str, limit: int = 5) -> tuple[str, ...]:
    if items.empty:
        return ()
    return tuple(value for value, _ in Counter(v for v in items[column] if v).most_common(limit))


def _prompt_version(items: pd.DataFrame) -> str:
    return Counter(items["prompt_version"]).most_common(1)[0][0] if not items.empty else "unknown"


def series_priority(store: TableStore, row: pd.Series, items: pd.DataFrame, commerce: CommerceContext,
                    share_days: list[date]) -> tuple[float, tuple[str, ...]]:
    """The series' 0–100 priority from its own week and its value's commercial weight, with its strongest components."""
    config = load_priority(settings().config_dir / "priority.yaml")
    customers = [c for c in (items["customer_key"] if not items.empty else []) if c]
    orders = _frame(store, tables.ORDERS, share_days) if customers else pd.DataFrame()
    tiers = dict(zip(orders["customer_key"], orders["customer_tier"], strict=True)) if not orders.empty else {}
    signals = IssueSignals(
        complaints=int(row["complaints_7d"]), baseline_weekly_mean=7 * float(row["ma28"]),
        mean_severity=float(items["severity"].mean()) if not items.empty else 0.0,
        churn_share=float(items["churn_intent"].mean()) if not items.empty else 0.0,
        revenue_share=commerce.revenue_share or 0.0, return_rate=commerce.return_rate or 0.0,
        high_value_share=(sum(tiers.get(c) in config.high_value_tiers for c in customers) / len(customers)
                          if customers else 0.0),
        mean_confidence=float(items["confidence"].mean()) if not items.empty else 0.0,
        # The day's spike is what alerted: its lift, or the week's over the baseline when that is higher.
        lift=max(float(row["lift"]), int(row["complaints_7d"]) / max(7 * float(row["ma28"]), 1.0)),
    )
    parts = components(signals, config)
    weighted = sorted(parts, key=lambda name: -config.weights[name] * parts[name])
    return priority_score(parts, config), tuple(f"{name} {parts[name]:.2f}" for name in weighted[:3])


def _themes(store: TableStore, items: pd.DataFrame, days: list[date], limit: int = 3) -> tuple[str, ...]:
    themes = _frame(store, tables.FEEDBACK_THEMES, days)
    if themes.empty or items.empty or "theme_name" not in themes:
        return ()
    mine = themes[themes["feedback_id"].isin(set(items["feedback_id"])) & themes["theme_name"].notna()]
    return tuple(name for name, _ in Counter(mine["theme_name"]).most_common(limit))
