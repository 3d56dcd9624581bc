"""Named steps a runner executes for a window of days: read inputs, call a transform, write tables.

Assets call these on the local Spark session; a Databricks Pipes entrypoint can call the same steps
on a cluster with a Delta table store.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from feedback_assets import tables
from feedback_assets.landing.mapping import FEEDBACK_CHANNELS, Contract
from feedback_assets.landing.registry import LandingRegistry, Registration, SkippedFile
from feedback_assets.transforms import commerce, quality
from feedback_assets.transforms.bronze import build_bronze
from feedback_assets.transforms.pii import PII_KINDS
from feedback_assets.transforms.silver import DUPLICATE_REASONS, SilverParams, build_silver_outcomes, reject_rows, silver_rows
from feedback_assets.window import DayWindow
from resources.table_store import TableStore

SILVER_KEY_COLUMNS = ["feedback_id", "channel", "source_id", "received_at", "language", "text_clean", "content_hash", "feedback_date"]


@dataclass
class BronzeReport:
    rows: int
    rows_by_day: dict[str, int]
    rows_with_errors: int
    files: int
    registrations: list[Registration] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def run_bronze(spark: SparkSession, store: TableStore, registry: LandingRegistry,
               channel: str, window: DayWindow, run_id: str) -> BronzeReport:
    """Lands pending exports of the channel, then rewrites bronze for the window from the landed parts."""
    registrations, skipped = registry.land_pending(run_id, Contract.feedback, channel)
    landed = store.read(spark, tables.landed(Contract.feedback, channel), window.start, window.end)
    bronze = build_bronze(landed, tables.BRONZE[channel].schema).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        store.overwrite_partitions(bronze, tables.BRONZE[channel], window.start, window.end)
        summary = bronze.agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum((F.col("parse_error").isNotNull() | F.col("timestamp_error").isNotNull() | F.col("encoding_error")).cast("int")).alias("errors"),
            F.countDistinct("file_sha256").alias("files"),
        ).first()
        rows_by_day = {d.isoformat(): n for d, n in sorted(quality.counts_by_day(bronze).items())}
    finally:
        bronze.unpersist()
    return BronzeReport(summary["rows"], rows_by_day, int(summary["errors"] or 0), summary["files"], registrations, skipped)


@dataclass
class SilverReport:
    silver_rows: int
    reject_rows: int
    duplicate_rows: int
    rejects_by_reason: dict[str, int]
    pii_redactions: dict[str, int]
    languages: dict[str, int]
    channels: dict[str, int]
    unreconciled_days: list[dict]
    key_column_nulls: dict[str, int]
    pii_residue: dict[str, int]
    sample_rows: list[dict[str, Any]]
    field_issues: dict[str, int] = field(default_factory=dict)


def read_bronze_feedback(spark: SparkSession, store: TableStore, start: date, end: date) -> DataFrame:
    frames = [store.read(spark, tables.BRONZE[c], start, end) for c in FEEDBACK_CHANNELS]
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    return union


def run_silver_feedback(spark: SparkSession, store: TableStore, window: DayWindow,
                        pseudonym_key: str, max_text_chars: int, lookback_days: int) -> SilverReport:
    """Builds silver_feedback and silver_rejects for the window and measures what the checks need."""
    bronze = read_bronze_feedback(spark, store, window.start - timedelta(days=lookback_days), window.end)
    params = SilverParams(window.start, window.end, pseudonym_key, max_text_chars)
    outcomes = build_silver_outcomes(bronze, params).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        silver = silver_rows(outcomes)
        store.overwrite_partitions(silver, tables.SILVER_FEEDBACK, window.start, window.end)
        store.overwrite_partitions(reject_rows(outcomes), tables.SILVER_REJECTS, window.start, window.end)
        by_day_reason = outcomes.groupBy("feedback_date", "reason").count().collect()
        silver_by_day = Counter({r["feedback_date"]: r["count"] for r in by_day_reason if r["reason"] is None})
        rejects_by_day: Counter = Counter()
        rejects_by_reason: Counter = Counter()
        for row in by_day_reason:
            if row["reason"] is not None:
                rejects_by_day[row["feedback_date"]] += row["count"]
                rejects_by_reason[row["reason"]] += row["count"]
        in_window = F.col("feedback_date").between(F.lit(window.start), F.lit(window.end))
        bronze_by_day = quality.counts_by_day(bronze.where(in_window))
        measures = silver.agg(
            *[F.sum(F.col("pii_redactions")[k]).alias(f"redactions:{k}") for k in PII_KINDS],
            *quality.null_count_columns(SILVER_KEY_COLUMNS),
            *quality.pii_residue_columns(),
        ).first().asDict()
        mix = silver.groupBy("channel", "language").count().collect()
        issues = silver.select(F.explode(F.map_keys("field_issues")).alias("field")).groupBy("field").count().collect()
        report = SilverReport(
            silver_rows=sum(silver_by_day.values()),
            reject_rows=sum(rejects_by_reason.values()),
            duplicate_rows=sum(rejects_by_reason[r] for r in DUPLICATE_REASONS),
            rejects_by_reason=dict(sorted(rejects_by_reason.items())),
            pii_redactions=quality.prefixed(measures, "redactions"),
            languages=_totals(mix, "language"),
            channels=_totals(mix, "channel"),
            unreconciled_days=quality.reconcile(bronze_by_day, silver_by_day, rejects_by_day, window.days),
            key_column_nulls=quality.prefixed(measures, "null"),
            pii_residue=quality.prefixed(measures, "residue"),
            sample_rows=[r.asDict() for r in silver.select("feedback_date", "channel", "language", "rating", "text_clean")
                         .orderBy("feedback_id").limit(5).collect()],
            field_issues={r["field"]: r["count"] for r in sorted(issues, key=lambda r: r["field"])},
        )
    finally:
        outcomes.unpersist()
    return report


def _totals(rows: list, column: str) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for row in rows:
        totals[str(row[column])] += row["count"]
    return dict(totals.most_common())


COMMERCE_TABLES = {Contract.orders: tables.ORDERS, Contract.returns: tables.RETURNS_REFUNDS,
                   Contract.sku_catalog: tables.SKU_CATALOG}
COMMERCE_KEYS = {
    Contract.orders: ["order_id", "sku"],
    Contract.returns: ["return_id", "order_id"],
    Contract.sku_catalog: ["sku"],
}


@dataclass
class CommerceReport:
    rows: int
    invalid_rows: dict[str, int]


def run_commerce(spark: SparkSession, store: TableStore, registry: LandingRegistry,
                 contract: Contract, window: DayWindow, run_id: str, pseudonym_key: str) -> CommerceReport:
    """Lands pending commerce exports and rebuilds the typed commerce table for the window."""
    registry.register_pending(run_id, contract)
    dated = contract != Contract.sku_catalog  # the catalog is a snapshot: every landed row counts, whatever its day
    landed = store.read(spark, tables.landed(contract, None),
                        window.start if dated else None, window.end if dated else None)
    verdicts = landed.withColumn("invalid", commerce.invalid_commerce_rows(COMMERCE_KEYS[contract], dated))
    invalid = {r["invalid"]: r["count"] for r in verdicts.where("invalid IS NOT NULL").groupBy("invalid").count().collect()}
    valid = verdicts.where("invalid IS NULL").drop("invalid")
    table = COMMERCE_TABLES[contract]
    match contract:
        case Contract.orders:
            built = commerce.build_orders(valid, pseudonym_key)
        case Contract.returns:
            built = commerce.build_returns_refunds(valid, pseudonym_key)
        case _:
            built = commerce.build_sku_catalog(spark, valid, window.start, window.end)
    frame = built.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        store.overwrite_partitions(frame, table, window.start, window.end)
        rows = frame.count()
    finally:
        frame.unpersist()
    return CommerceReport(rows, dict(sorted(invalid.items())))

