"""Gold transforms: classified items exploded into issues, and daily issue counts per dimension value.

One feedback item with two labels is two issues. Each issue is counted once per dimension it has a
value for (its SKU, region, channel, platform, app version, carrier), so a spike concentrated on
one SKU or one carrier stands out against that value's own history.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from feedback_assets.transforms.dimensions import ALL, ORDER_DIMENSIONS


def issue_items(classifications: DataFrame, silver: DataFrame) -> DataFrame:
    """One row per (feedback item, label) with the item's commerce keys and PII-scrubbed text."""
    context = silver.select("feedback_id", "sku", "region", "platform", "app_version", "order_id", "customer_key",
                            "text_clean")
    labelled = classifications.select(
        "feedback_id", "feedback_date", "channel", "primary_label", "sentiment", "churn_intent", "confidence",
        "entities", "prompt_version", F.explode("labels").alias("issue"),
    )
    return (
        labelled.join(context, "feedback_id", "left")
        .select(
            "feedback_id", "feedback_date", "channel",
            F.col("issue.label").alias("label"), F.col("issue.domain").alias("domain"),
            F.col("issue.severity").alias("severity"), F.col("issue.evidence").alias("evidence"),
            (F.col("issue.label") == F.col("primary_label")).alias("is_primary"),
            "sentiment", "churn_intent", "confidence", "prompt_version",
            F.coalesce("sku", "entities.sku").alias("sku"),
            F.coalesce("region", "entities.region").alias("region"),
            "platform", "app_version", F.col("entities.carrier").alias("carrier"),
            F.coalesce("order_id", "entities.order_id").alias("order_id"),
            "customer_key", "text_clean",
        )
    )


def issue_daily_metrics(issues: DataFrame, orders: DataFrame, dimensions: Sequence[str]) -> DataFrame:
    """Issue counts per day, label and dimension value, with severity, churn, sentiment and orders."""
    pairs = F.array(*[F.struct(F.lit(d).alias("dimension"), F.col(d).cast("string").alias("value")) for d in dimensions])
    by_value = (
        issues.select("*", F.explode(pairs).alias("pair"))
        .where(F.col("pair.value").isNotNull() & (F.trim("pair.value") != ""))
        .groupBy("feedback_date", "label", "domain", F.col("pair.dimension").alias("dimension"),
                 F.col("pair.value").alias("value"))
        .agg(
            F.countDistinct("feedback_id").alias("complaints"),
            F.round(F.avg("severity"), 4).alias("mean_severity"),
            F.countDistinct(F.when(F.col("churn_intent"), F.col("feedback_id"))).alias("churn_items"),
            F.round(F.avg("sentiment"), 4).alias("mean_sentiment"),
            F.round(F.avg("confidence"), 4).alias("mean_confidence"),
        )
    )
    return (
        by_value.join(orders_by_value(orders, dimensions), ["feedback_date", "dimension", "value"], "left")
        .withColumn("complaints_per_1k_orders",
                    F.when(F.col("orders") > 0, F.round(1000 * F.col("complaints") / F.col("orders"), 4)))
    )


def orders_by_value(orders: DataFrame, dimensions: Sequence[str]) -> DataFrame:
    """Distinct orders per day and dimension value, for the dimensions orders carry."""
    known = [d for d in dimensions if d in ORDER_DIMENSIONS]
    if not known:
        return orders.sparkSession.createDataFrame([], "feedback_date date, dimension string, value string, orders long")
    pairs = F.array(*[F.struct(F.lit(d).alias("dimension"), F.col(d).cast("string").alias("value")) for d in known])
    return (
        orders.select("feedback_date", "order_id", F.explode(pairs).alias("pair"))
        .where(F.col("pair.value").isNotNull())
        .groupBy("feedback_date", F.col("pair.dimension").alias("dimension"), F.col("pair.value").alias("value"))
        .agg(F.countDistinct("order_id").alias("orders"))
    )


def series_commerce(orders: DataFrame, order_history: DataFrame, returns: DataFrame, catalog: DataFrame) -> DataFrame:
    """Orders, units, revenue, margin, returns and refunds per day for every value orders carry, and the shop's totals.

    `orders` and `returns` hold the days to report; `order_history` reaches back far enough to hold
    the orders those returns refer to, so a return counts on the region, carrier, platform and
    app version of its order (its SKU is its own).
    """
    pairs = F.array(
        *[F.struct(F.lit(d).alias("dimension"), F.col(d).cast("string").alias("value")) for d in ORDER_DIMENSIONS],
        F.struct(F.lit(ALL).alias("dimension"), F.lit(ALL).alias("value")),
    )
    margins = catalog.select("feedback_date", "sku", F.coalesce("margin", F.lit(0.0)).alias("margin_rate"))
    sold = (
        orders.join(margins, ["feedback_date", "sku"], "left")
        .select("feedback_date", "order_id", "quantity", "revenue",
                (F.col("revenue") * F.coalesce("margin_rate", F.lit(0.0))).alias("margin"), F.explode(pairs).alias("pair"))
        .where(F.col("pair.value").isNotNull() & (F.trim("pair.value") != ""))
        .groupBy("feedback_date", F.col("pair.dimension").alias("dimension"), F.col("pair.value").alias("value"))
        .agg(F.countDistinct("order_id").alias("orders"), F.sum("quantity").cast("long").alias("units"),
             F.round(F.sum("revenue"), 2).alias("revenue"), F.round(F.sum("margin"), 2).alias("margin"))
    )
    order_keys = (order_history.groupBy("order_id")
                  .agg(*[F.first(c, ignorenulls=True).alias(c) for c in ORDER_DIMENSIONS if c != "sku"]))
    returned = (
        returns.join(order_keys, "order_id", "left")
        .select("feedback_date", "return_id", "refund_amount", F.explode(pairs).alias("pair"))
        .where(F.col("pair.value").isNotNull() & (F.trim("pair.value") != ""))
        .groupBy("feedback_date", F.col("pair.dimension").alias("dimension"), F.col("pair.value").alias("value"))
        .agg(F.countDistinct("return_id").alias("returns"),
             F.round(F.sum(F.coalesce("refund_amount", F.lit(0.0))), 2).alias("refunds"))
    )
    keys = ["feedback_date", "dimension", "value"]
    return (
        sold.join(returned, keys, "full")
        .select(*keys, *[F.coalesce(c, F.lit(0)).cast("long").alias(c) for c in ("orders", "units", "returns")],
                *[F.coalesce(c, F.lit(0.0)).alias(c) for c in ("revenue", "margin", "refunds")])
    )
