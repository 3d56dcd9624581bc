"""The classification diff step: the window's labels under the current version against the previous version's."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from feedback_assets import tables
from feedback_assets.alerts.config import AlertingConfig
from feedback_assets.enrichment.diff import NOT_CLASSIFIED, ClassificationDiff, ItemPair, alert_changes, compare
from feedback_assets.enrichment.history import history_table, latest_version, read_versions
from feedback_assets.gold_steps import VelocityHistory, velocity_history, velocity_rows
from feedback_assets.schemas import CLASSIFICATION_DIFF, ISSUE_DAILY_METRICS
from feedback_assets.transforms import gold
from feedback_assets.window import DayWindow
from resources.table_store import TableStore


@dataclass
class DiffReport:
    current_version: str | None
    previous_version: str | None
    diff: ClassificationDiff | None
    rows: int


def compared_versions(store: TableStore, start: date, end: date) -> tuple[str | None, str | None, list[date]]:
    """The version that last classified the window, the latest other version, and the days both histories hold."""
    latest = latest_version(store, start, end)
    if latest is None:
        return None, None, []
    held = {d for d in store.partition_days(history_table(latest.code_version)) if start <= d <= end}
    for version in read_versions(store):
        if version.code_version == latest.code_version:
            continue
        common = sorted(held & set(store.partition_days(history_table(version.code_version))))
        if common:
            return latest.code_version, version.code_version, common
    return latest.code_version, None, []


def run_classification_diff(spark: SparkSession, store: TableStore, window: DayWindow, config: AlertingConfig) -> DiffReport:
    start, end = window.start, window.end
    current, previous, days = compared_versions(store, start, end)
    if current is None or previous is None:
        empty = spark.createDataFrame([], CLASSIFICATION_DIFF)
        store.overwrite_partitions(empty, tables.CLASSIFICATION_DIFF, start, end)
        return DiffReport(current, None, None, 0)
    on_days = F.col("feedback_date").isin(days)
    now = store.read(spark, history_table(current), start, end).where(on_days)
    before = store.read(spark, history_table(previous), start, end).where(on_days)
    pairs = (
        now.select("feedback_id", "feedback_date", F.col("primary_label").alias("current_label"))
        .join(before.select("feedback_id", F.col("feedback_date").alias("previous_date"),
                            F.col("primary_label").alias("previous_label")), "feedback_id", "full")
        .select("feedback_id", F.coalesce("feedback_date", "previous_date").alias("feedback_date"),
                "previous_label", "current_label")
    )
    texts = store.read(spark, tables.SILVER_FEEDBACK, start, end).select("feedback_id", "text_clean")
    items = [ItemPair(r["feedback_id"], r["feedback_date"], r["text_clean"] or "", r["previous_label"], r["current_label"])
             for r in pairs.join(texts, "feedback_id", "left").collect()]
    diff = compare(items, previous, current)
    # The per-day table from the pairs already collected, not from a second pass over the histories.
    per_day = Counter((i.feedback_date, i.previous_label, i.current_label) for i in items)
    counts = [{"previous_version": previous, "current_version": current, "previous_label": old, "current_label": new,
               "items": n, "feedback_date": day} for (day, old, new), n in sorted(per_day.items(), key=str)]
    store.overwrite_partitions(spark.createDataFrame(counts, CLASSIFICATION_DIFF), tables.CLASSIFICATION_DIFF, start, end)
    if diff.items_moved:
        # Only the series of labels that gained or lost items can alert differently.
        changed = sorted({label for pair, _ in diff.moves for label in pair} - {NOT_CLASSIFIED})
        history = velocity_history(spark, store, window, config)
        diff.alert_changes = alert_changes(_alerts(spark, store, window, config, history, before, changed),
                                           _alerts(spark, store, window, config, history, now, changed))
    return DiffReport(current, previous, diff, len(counts))


def _alerts(spark: SparkSession, store: TableStore, window: DayWindow, config: AlertingConfig,
            history: VelocityHistory, in_window: DataFrame, labels: list[str]) -> set:
    """The series-days of `labels` that would alert if the window's items carried `in_window`'s labels (earlier days as they are)."""
    earlier = store.read(spark, tables.FEEDBACK_CLASSIFICATIONS, history.lookback_start, window.start - timedelta(days=1))
    classifications = earlier.unionByName(in_window.select(*earlier.columns))
    silver = store.read(spark, tables.SILVER_FEEDBACK, history.lookback_start, window.end)
    orders = store.read(spark, tables.ORDERS, history.lookback_start, window.end)
    issues = gold.issue_items(classifications, silver).where(F.col("label").isin(labels))
    metrics = (gold.issue_daily_metrics(issues, orders, config.dimensions)
               .select(*ISSUE_DAILY_METRICS.fieldNames()).collect())
    return {(r["series_key"], r["feedback_date"]) for r in velocity_rows(metrics, history, window, config) if r["alert"]}
