"""Gold steps for a window of days: issue metrics, complaint velocity and issue priorities.

Each step reads the trailing days it needs (the 28-day baselines, the cooldown's reach), computes
with the pure functions in `transforms/`, and replaces exactly the window's partitions.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from feedback_assets import tables
from feedback_assets.alerts.config import AlertingConfig
from feedback_assets.alerts.model import breach_key_of, series_key_of
from feedback_assets.schemas import COMPLAINT_VELOCITY, ISSUE_DAILY_METRICS, ISSUE_PRIORITIES, SERIES_COMMERCE
from feedback_assets.window import DayWindow
from feedback_assets.transforms import gold
from feedback_assets.transforms.dimensions import RETURN_REACH_DAYS
from feedback_assets.transforms.priority import IssueSignals, PriorityConfig, components, priority_score
from feedback_assets.transforms.velocity import series_days
from resources.table_store import TableStore



def read_issue_items(spark: SparkSession, store: TableStore, start: date, end: date) -> DataFrame:
    """Labelled items of [start, end] (analysts' corrections applied) exploded into one row per issue, with commerce keys and text."""
    classifications = store.read(spark, tables.FEEDBACK_LABELS, start, end)
    silver = store.read(spark, tables.SILVER_FEEDBACK, start, end)
    return gold.issue_items(classifications, silver)


@dataclass
class MetricsReport:
    rows: int
    issues: int
    series: int
    complaints_by_label: dict[str, int]


def run_issue_metrics(spark: SparkSession, store: TableStore, window: DayWindow, config: AlertingConfig) -> MetricsReport:
    issues = read_issue_items(spark, store, window.start, window.end)
    orders = store.read(spark, tables.ORDERS, window.start, window.end)
    metrics = gold.issue_daily_metrics(issues, orders, config.dimensions).select(*ISSUE_DAILY_METRICS.fieldNames())
    store.overwrite_partitions(metrics, tables.ISSUE_DAILY_METRICS, window.start, window.end)
    written = store.read(spark, tables.ISSUE_DAILY_METRICS, window.start, window.end)
    by_label = written.where(F.col("dimension") == config.dimensions[0]).groupBy("label").agg(F.sum("complaints").alias("n"))
    return MetricsReport(
        rows=written.count(),
        issues=issues.count(),
        series=written.select("label", "dimension", "value").distinct().count(),
        complaints_by_label={r["label"]: int(r["n"]) for r in by_label.orderBy(F.desc("n")).collect()},
    )


@dataclass
class CommerceReport:
    rows: int
    values: dict[str, int]
    shop_orders: int
    shop_revenue: float


def run_series_commerce(spark: SparkSession, store: TableStore, window: DayWindow) -> CommerceReport:
    """Commerce per day and dimension value for the window's days (returns priced on their order's values)."""
    orders = store.read(spark, tables.ORDERS, window.start, window.end)
    history = store.read(spark, tables.ORDERS, window.start - timedelta(days=RETURN_REACH_DAYS), window.end)
    returns = store.read(spark, tables.RETURNS_REFUNDS, window.start, window.end)
    catalog = store.read(spark, tables.SKU_CATALOG, window.start, window.end)
    rows = gold.series_commerce(orders, history, returns, catalog).select(*SERIES_COMMERCE.fieldNames())
    store.overwrite_partitions(rows, tables.SERIES_COMMERCE, window.start, window.end)
    written = store.read(spark, tables.SERIES_COMMERCE, window.start, window.end)
    values = {r["dimension"]: int(r["n"]) for r in written.groupBy("dimension").agg(F.countDistinct("value").alias("n")).collect()}
    shop = written.where(F.col("dimension") == gold.ALL).agg(F.sum("orders").alias("orders"), F.sum("revenue").alias("revenue")).first()
    return CommerceReport(written.count(), dict(sorted(values.items())), int(shop["orders"] or 0), round(float(shop["revenue"] or 0.0), 2))


@dataclass
class VelocityReport:
    rows: int
    metrics_rows: int
    breaches: int
    alerts: list[dict] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)


def run_velocity(spark: SparkSession, store: TableStore, window: DayWindow, config: AlertingConfig) -> VelocityReport:
    """Every series with complaints on a window day, against its own trailing baselines."""
    history = velocity_history(spark, store, window, config)
    metrics = store.read(spark, tables.ISSUE_DAILY_METRICS, history.lookback_start, window.end).select(
        "feedback_date", "label", "domain", "dimension", "value", "complaints", "orders").collect()
    rows = velocity_rows(metrics, history, window, config)
    store.overwrite_partitions(spark.createDataFrame(rows, COMPLAINT_VELOCITY), tables.COMPLAINT_VELOCITY, window.start, window.end)
    alerts = [r for r in rows if r["alert"]]
    return VelocityReport(
        rows=len(rows), metrics_rows=sum(window.start <= r["feedback_date"] <= window.end for r in metrics),
        breaches=sum(r["breach"] for r in rows),
        alerts=sorted(alerts, key=lambda r: (r["feedback_date"], -r["lift"])),
        statuses=dict(Counter(r["status"] for r in rows).most_common()),
    )


@dataclass(frozen=True)
class VelocityHistory:
    """What a window's velocity is judged against: which days hold data, and alerts decided before the window."""

    lookback_start: date
    data_days: list[date]
    decided_days: list[date]
    decided_alerts: dict[str, set[date]]


def velocity_history(spark: SparkSession, store: TableStore, window: DayWindow, config: AlertingConfig) -> VelocityHistory:
    lookback_start = window.start - timedelta(days=config.lookback_days)
    data_days = [d for d in store.partition_days(tables.ISSUE_DAILY_METRICS) if lookback_start <= d <= window.end]
    decided_days = [d for d in store.partition_days(tables.COMPLAINT_VELOCITY) if lookback_start <= d < window.start]
    decided_alerts: dict[str, set[date]] = defaultdict(set)
    if decided_days:
        stored = store.read(spark, tables.COMPLAINT_VELOCITY, decided_days[0], decided_days[-1])
        for row in stored.where(F.col("alert")).select("series_key", "feedback_date").collect():
            decided_alerts[row["series_key"]].add(row["feedback_date"])
    return VelocityHistory(lookback_start, data_days, decided_days, dict(decided_alerts))


def velocity_rows(metrics: list, history: VelocityHistory, window: DayWindow, config: AlertingConfig) -> list[dict]:
    """The velocity rows of the window's days from daily metrics rows (label, dimension, value, complaints, orders)."""
    series: dict[tuple[str, str, str], dict[date, int]] = defaultdict(dict)
    orders: dict[tuple[str, str, str], dict[date, int]] = defaultdict(dict)
    domains: dict[str, str] = {}
    for row in metrics:
        key = (row["label"], row["dimension"], row["value"])
        series[key][row["feedback_date"]] = row["complaints"]
        if row["orders"]:
            orders[key][row["feedback_date"]] = row["orders"]
        domains[row["label"]] = row["domain"]
    rows = []
    for (label, dimension, value), counts in sorted(series.items()):
        thresholds = config.thresholds_for(label, dimension)
        series_key = series_key_of(label, dimension, value)
        for day in series_days(counts, history.data_days, window.days, thresholds, orders.get((label, dimension, value)),
                               history.decided_days, history.decided_alerts.get(series_key, ())):
            point, alerting = day.point, config.alerts_on(label)
            rows.append({
                "series_key": series_key, "label": label, "domain": domains[label], "dimension": dimension,
                "value": value, "complaints": point.count, "complaints_7d": day.count_7d,
                "orders": orders.get((label, dimension, value), {}).get(day.day),
                "complaints_per_1k_orders": point.per_1k_orders, "ma7": point.ma7, "ma28": point.ma28,
                "lift": point.lift, "p_value": point.p_value, "breach": point.breach,
                "alert": day.alert and alerting, "status": day.status if alerting else "not_alerting",
                "breach_key": breach_key_of(series_key, day.day) if point.breach else None,
                "min_count": thresholds.min_count, "min_lift": thresholds.min_lift, "alpha": thresholds.alpha,
                "feedback_date": day.day,
            })
    return rows


@dataclass
class PriorityReport:
    rows: int
    top: list[dict]


def run_priorities(spark: SparkSession, store: TableStore, window: DayWindow, config: PriorityConfig) -> PriorityReport:
    """Scores each (label, SKU, region) with complaints in the trailing window ending on each window day."""
    span = config.window_days
    history_start = window.start - timedelta(days=span + config.baseline_days - 1)
    commerce_start = window.start - timedelta(days=config.baseline_days - 1)
    issues = read_issue_items(spark, store, history_start, window.end).where(F.col("label") != "praise_no_issue")
    orders = store.read(spark, tables.ORDERS, commerce_start, window.end)
    returns = store.read(spark, tables.RETURNS_REFUNDS, commerce_start, window.end)
    prices = store.read(spark, tables.SKU_CATALOG, window.start, window.end).select(
        F.col("feedback_date").alias("day"), "sku", "price")
    days = spark.createDataFrame([(d,) for d in window.days], "day date")

    def trailing(frame: DataFrame, first: int, last: int, column: str = "feedback_date") -> DataFrame:
        """Each row once for every window day whose [day - first, day - last] range holds it."""
        return frame.join(days, F.col(column).between(F.date_sub("day", first), F.date_sub("day", last)))

    keys = ["day", "label", "sku", "region"]
    current = trailing(issues, span - 1, 0).groupBy(*keys).agg(
        F.first("domain").alias("domain"),
        F.countDistinct("feedback_id").alias("complaints_7d"),
        F.avg("severity").alias("mean_severity"),
        (F.countDistinct(F.when(F.col("churn_intent"), F.col("feedback_id"))) / F.countDistinct("feedback_id")).alias("churn_share"),
        F.avg("confidence").alias("mean_confidence"),
        F.collect_set("customer_key").alias("customers"),
    )
    baseline = trailing(issues, span + config.baseline_days - 1, span).groupBy(*keys).agg(
        (F.countDistinct("feedback_id") * span / config.baseline_days).alias("baseline_weekly_mean"))
    revenue = trailing(orders, config.baseline_days - 1, 0).groupBy("day", "sku").agg(
        F.sum("revenue").alias("sku_revenue"), F.countDistinct("order_id").alias("sku_orders"))
    total_revenue = trailing(orders, config.baseline_days - 1, 0).groupBy("day").agg(F.sum("revenue").alias("all_revenue"))
    returned = trailing(returns, config.baseline_days - 1, 0).groupBy("day", "sku").agg(
        F.countDistinct("return_id").alias("sku_returns"))
    tiers = {r["customer_key"]: r["customer_tier"] for r in orders.where(F.col("customer_key").isNotNull())
             .groupBy("customer_key").agg(F.max_by("customer_tier", "ordered_at").alias("customer_tier")).collect()}
    # Complaints without a SKU or region are an issue of their own: match their baseline null-safely.
    # (Renamed first: both sides come from `issues`, so Spark could not tell their columns apart.)
    baseline = baseline.select(*[F.col(k).alias(f"baseline_{k}") for k in keys], "baseline_weekly_mean")
    with_baseline = current.join(baseline, [F.col(k).eqNullSafe(F.col(f"baseline_{k}")) for k in keys], "left").drop(
        *[f"baseline_{k}" for k in keys])
    joined = (
        with_baseline.join(revenue, ["day", "sku"], "left").join(total_revenue, ["day"], "left")
        .join(returned, ["day", "sku"], "left").join(prices, ["day", "sku"], "left")
        .collect()
    )
    rows = []
    for row in joined:
        customers = [c for c in row["customers"] if c]
        signals = IssueSignals(
            complaints=row["complaints_7d"], baseline_weekly_mean=row["baseline_weekly_mean"] or 0.0,
            mean_severity=row["mean_severity"] or 0.0, churn_share=row["churn_share"] or 0.0,
            revenue_share=(row["sku_revenue"] or 0.0) / row["all_revenue"] if row["all_revenue"] else 0.0,
            return_rate=(row["sku_returns"] or 0) / row["sku_orders"] if row["sku_orders"] else 0.0,
            high_value_share=(sum(tiers.get(c) in config.high_value_tiers for c in customers) / len(customers)
                              if customers else 0.0),
            mean_confidence=row["mean_confidence"] or 0.0,
        )
        parts = components(signals, config)
        rows.append({
            "label": row["label"], "domain": row["domain"], "sku": row["sku"], "region": row["region"],
            "priority_score": priority_score(parts, config), "complaints_7d": signals.complaints,
            "baseline_weekly_mean": round(signals.baseline_weekly_mean, 4), "mean_severity": signals.mean_severity,
            "churn_share": signals.churn_share, "revenue_share": round(signals.revenue_share, 6),
            "return_rate": round(signals.return_rate, 4), "high_value_share": round(signals.high_value_share, 4),
            "mean_confidence": signals.mean_confidence,
            "revenue_at_risk": round(signals.complaints * (row["price"] or 0.0), 2),
            "components": {k: round(v, 4) for k, v in parts.items()}, "weights_version": config.version,
            "feedback_date": row["day"],
        })
    store.overwrite_partitions(spark.createDataFrame(rows, ISSUE_PRIORITIES), tables.ISSUE_PRIORITIES, window.start, window.end)
    latest = [r for r in rows if r["feedback_date"] == window.end]
    top = sorted(latest, key=lambda r: -r["priority_score"])[:10]
    return PriorityReport(rows=len(rows), top=top)
