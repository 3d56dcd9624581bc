"""landed commerce exports → orders, returns_refunds, sku_catalog (typed, pseudonymized, deduplicated)."""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from feedback_assets.schemas import ORDERS, RETURNS_REFUNDS, SKU_CATALOG
from feedback_assets.transforms.silver import pseudonymize


def _number(column: str, kind: str = "DOUBLE") -> Column:
    return F.expr(f"try_cast(trim(`{column}`) AS {kind})")


def _latest_per(df: DataFrame, *keys: str) -> DataFrame:
    newest_first = Window.partitionBy(*keys).orderBy(F.col("ingested_at").desc(), F.col("source_file").desc())
    return df.withColumn("_rank", F.row_number().over(newest_first)).where("_rank = 1").drop("_rank")


def invalid_commerce_rows(required: list[str], dated: bool) -> Column:
    """Why a commerce record is unusable (unreadable, no timestamp when it needs one, key blank), or null."""
    verdict = F.lit(None).cast("string")
    for column in reversed(required):
        verdict = F.when(F.col(column).isNull() | (F.trim(column) == ""), F.lit(f"missing {column}")).otherwise(verdict)
    if dated:
        verdict = F.when(F.col("event_at").isNull(), F.lit("bad timestamp")).otherwise(verdict)
    return F.when(F.col("parse_error").isNotNull(), F.lit("malformed record")).otherwise(verdict)


def build_orders(landed: DataFrame, pseudonym_key: str) -> DataFrame:
    """One row per order line, the newest delivery of a line winning; revenue = quantity × unit price."""
    lines = _latest_per(landed, "order_id", "line_id")
    quantity = F.coalesce(_number("quantity", "INT"), F.lit(1))
    return lines.select(
        F.trim("order_id").alias("order_id"),
        F.col("line_id"),
        F.col("event_at").alias("ordered_at"),
        pseudonymize(pseudonym_key, F.col("customer_ref")).alias("customer_key"),
        F.trim("sku").alias("sku"),
        quantity.alias("quantity"),
        _number("unit_price").alias("unit_price"),
        F.round(quantity * _number("unit_price"), 2).alias("revenue"),
        F.upper(F.trim("currency")).alias("currency"),
        *[F.lower(F.trim(c)).alias(c) for c in ("region", "shipping_method", "platform", "customer_tier")],
        F.trim("carrier").alias("carrier"),
        F.when(F.trim("app_version") != "", F.trim("app_version")).alias("app_version"),
        F.col("feedback_date"),
    ).select(*ORDERS.fieldNames())


def build_returns_refunds(landed: DataFrame, pseudonym_key: str) -> DataFrame:
    """One row per return (newest delivery wins), refund amounts as numbers, reason codes lower-case."""
    return _latest_per(landed, "return_id").select(
        F.trim("return_id").alias("return_id"),
        F.trim("order_id").alias("order_id"),
        F.trim("sku").alias("sku"),
        F.lower(F.trim("reason_code")).alias("reason_code"),
        _number("refund_amount").alias("refund_amount"),
        pseudonymize(pseudonym_key, F.col("customer_ref")).alias("customer_key"),
        F.col("event_at").alias("requested_at"),
        F.col("feedback_date"),
    ).select(*RETURNS_REFUNDS.fieldNames())


def build_sku_catalog(spark: SparkSession, landed: DataFrame, start: date, end: date) -> DataFrame:
    """The newest known row of every SKU, one snapshot per day of [start, end] holding SKUs launched by then."""
    margin = _number("margin")
    skus = _latest_per(landed, "sku").select(
        F.trim("sku").alias("sku"),
        "name", "category", "subcategory", "brand",
        _number("price").alias("price"),
        F.when(margin > 1, margin / 100).otherwise(margin).alias("margin"),
        F.expr("try_cast(trim(launch_date) AS DATE)").alias("launch_date"),
    )
    days = spark.sql(f"SELECT explode(sequence(DATE'{start}', DATE'{end}', INTERVAL 1 DAY)) AS feedback_date")
    return (
        skus.crossJoin(days)
        .where(F.col("launch_date").isNull() | (F.col("launch_date") <= F.col("feedback_date")))
        .select(*SKU_CATALOG.fieldNames())
    )
