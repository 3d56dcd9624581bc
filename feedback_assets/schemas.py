"""Spark schemas of every table: the data contracts made executable."""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import types as T

from feedback_assets.landing.mapping import Contract
from feedback_assets.landing.contract import landed_arrow_schema

_ARROW_TO_SPARK = {
    pa.string(): T.StringType(),
    pa.int64(): T.LongType(),
    pa.float64(): T.DoubleType(),
    pa.bool_(): T.BooleanType(),
    pa.timestamp("us", tz="UTC"): T.TimestampType(),
}


def bronze_schema(contract: Contract) -> T.StructType:
    """Landed records as they arrived (verbatim strings) plus ingestion metadata and the day."""
    fields = [T.StructField(f.name, _ARROW_TO_SPARK[f.type]) for f in landed_arrow_schema(contract)]
    return T.StructType([*fields, T.StructField("feedback_date", T.DateType())])


BRONZE_FEEDBACK = bronze_schema(Contract.feedback)
LANDED_ORDERS = bronze_schema(Contract.orders)
LANDED_RETURNS = bronze_schema(Contract.returns)
LANDED_SKU_CATALOG = bronze_schema(Contract.sku_catalog)

SILVER_FEEDBACK = T.StructType(
    [
        T.StructField("feedback_id", T.StringType(), False),
        T.StructField("channel", T.StringType(), False),
        T.StructField("source_id", T.StringType(), False),
        T.StructField("received_at", T.TimestampType(), False),
        T.StructField("customer_key", T.StringType()),
        T.StructField("order_id", T.StringType()),
        T.StructField("sku", T.StringType()),
        T.StructField("variant", T.StringType()),
        T.StructField("region", T.StringType()),
        T.StructField("platform", T.StringType()),
        T.StructField("app_version", T.StringType()),
        T.StructField("rating", T.DoubleType()),
        T.StructField("language", T.StringType(), False),
        T.StructField("language_confidence", T.DoubleType()),
        T.StructField("text_clean", T.StringType(), False),
        T.StructField("content_hash", T.StringType(), False),
        T.StructField("pii_redactions", T.MapType(T.StringType(), T.IntegerType()), False),
        T.StructField("pii_redaction_count", T.IntegerType(), False),
        # Field values silver dropped, with why: e.g. {"rating": "dropped: 11 is outside the scale 1.0..5.0"}.
        T.StructField("field_issues", T.MapType(T.StringType(), T.StringType()), False),
        T.StructField("ingest_run_id", T.StringType()),
        T.StructField("source_file", T.StringType()),
        T.StructField("source_line", T.LongType()),
        T.StructField("feedback_date", T.DateType(), False),
    ]
)

SILVER_REJECTS = T.StructType(
    [
        T.StructField("feedback_id", T.StringType()),
        T.StructField("channel", T.StringType()),
        T.StructField("source_id", T.StringType()),
        T.StructField("reason", T.StringType(), False),
        T.StructField("detail", T.StringType()),
        T.StructField("duplicate_of", T.StringType()),
        T.StructField("source_file", T.StringType()),
        T.StructField("source_line", T.LongType()),
        T.StructField("ingest_run_id", T.StringType()),
        T.StructField("feedback_date", T.DateType(), False),
    ]
)

ORDERS = T.StructType(
    [
        T.StructField("order_id", T.StringType(), False),
        T.StructField("line_id", T.StringType()),
        T.StructField("ordered_at", T.TimestampType(), False),
        T.StructField("customer_key", T.StringType()),
        T.StructField("sku", T.StringType(), False),
        T.StructField("quantity", T.IntegerType()),
        T.StructField("unit_price", T.DoubleType()),
        T.StructField("revenue", T.DoubleType()),
        T.StructField("currency", T.StringType()),
        T.StructField("region", T.StringType()),
        T.StructField("carrier", T.StringType()),
        T.StructField("shipping_method", T.StringType()),
        T.StructField("platform", T.StringType()),
        T.StructField("customer_tier", T.StringType()),
        T.StructField("app_version", T.StringType()),
        T.StructField("feedback_date", T.DateType(), False),
    ]
)

RETURNS_REFUNDS = T.StructType(
    [
        T.StructField("return_id", T.StringType(), False),
        T.StructField("order_id", T.StringType(), False),
        T.StructField("sku", T.StringType()),
        T.StructField("reason_code", T.StringType()),
        T.StructField("refund_amount", T.DoubleType()),
        T.StructField("customer_key", T.StringType()),
        T.StructField("requested_at", T.TimestampType(), False),
        T.StructField("feedback_date", T.DateType(), False),
    ]
)

SKU_CATALOG = T.StructType(
    [
        T.StructField("sku", T.StringType(), False),
        T.StructField("name", T.StringType()),
        T.StructField("category", T.StringType()),
        T.StructField("subcategory", T.StringType()),
        T.StructField("brand", T.StringType()),
        T.StructField("price", T.DoubleType()),
        T.StructField("margin", T.DoubleType()),
        T.StructField("launch_date", T.DateType()),
        T.StructField("feedback_date", T.DateType(), False),
    ]
)


LABEL_ASSIGNMENT = T.StructType(
    [
        T.StructField("label", T.StringType()),
        T.StructField("domain", T.StringType()),
        T.StructField("severity", T.DoubleType()),
        T.StructField("evidence", T.StringType()),
        # quote: the classifier's evidence is verbatim in the text; fallback: it was not, a sentence of the text stands in.
        T.StructField("evidence_origin", T.StringType()),
    ]
)
ENTITIES = T.StructType(
    [T.StructField(name, T.StringType()) for name in ("sku", "variant", "region", "carrier", "shipping_method", "order_id")]
)

FEEDBACK_CLASSIFICATIONS = T.StructType(
    [
        T.StructField("feedback_id", T.StringType(), False),
        T.StructField("content_hash", T.StringType(), False),
        T.StructField("channel", T.StringType()),
        T.StructField("labels", T.ArrayType(LABEL_ASSIGNMENT)),
        T.StructField("primary_label", T.StringType()),
        T.StructField("domain", T.StringType()),
        T.StructField("sentiment", T.DoubleType()),
        T.StructField("churn_intent", T.BooleanType()),
        T.StructField("entities", ENTITIES),
        # Entity values the classifier proposed that the catalog and the text do not support (evidence, never keys).
        T.StructField("unresolved_entities", T.MapType(T.StringType(), T.StringType())),
        T.StructField("summary", T.StringType()),
        T.StructField("suggested_owner", T.StringType()),
        T.StructField("confidence", T.DoubleType()),
        T.StructField("backend", T.StringType()),
        T.StructField("model", T.StringType()),
        T.StructField("prompt_version", T.StringType()),
        T.StructField("taxonomy_version", T.StringType()),
        T.StructField("classified_at", T.StringType()),
        T.StructField("needs_review", T.BooleanType()),
        T.StructField("review_reason", T.StringType()),
        T.StructField("error", T.StringType()),
        T.StructField("cache_hit", T.BooleanType()),
        T.StructField("run_id", T.StringType()),
        T.StructField("feedback_date", T.DateType(), False),
    ]
)

# The classification row, plus who decided its primary label (the analyst's correction wins over the model).
FEEDBACK_LABELS = T.StructType(
    [field for field in FEEDBACK_CLASSIFICATIONS.fields if field.name != "feedback_date"]
    + [T.StructField(name, T.StringType()) for name in ("label_source", "corrected_by", "corrected_at", "correction_note",
                                                       "model_primary_label", "correction_ignored")]
    + [T.StructField("feedback_date", T.DateType(), False)]
)

CLASSIFICATION_DIFF = T.StructType(
    [
        T.StructField("previous_version", T.StringType(), False),
        T.StructField("current_version", T.StringType(), False),
        T.StructField("previous_label", T.StringType()),  # null: the earlier version had not classified the item
        T.StructField("current_label", T.StringType()),
        T.StructField("items", T.LongType(), False),
        T.StructField("feedback_date", T.DateType(), False),
    ]
)

ISSUE_DAILY_METRICS = T.StructType(
    [
        T.StructField("label", T.StringType(), False),
        T.StructField("domain", T.StringType()),
        T.StructField("dimension", T.StringType(), False),
        T.StructField("value", T.StringType(), False),
        T.StructField("complaints", T.LongType(), False),
        T.StructField("mean_severity", T.DoubleType()),
        T.StructField("churn_items", T.LongType()),
        T.StructField("mean_sentiment", T.DoubleType()),
        T.StructField("mean_confidence", T.DoubleType()),
        T.StructField("orders", T.LongType()),
        T.StructField("complaints_per_1k_orders", T.DoubleType()),
        T.StructField("feedback_date", T.DateType(), False),
    ]
)

COMPLAINT_VELOCITY = T.StructType(
    [
        T.StructField("series_key", T.StringType(), False),
        T.StructField("label", T.StringType(), False),
        T.StructField("domain", T.StringType()),
        T.StructField("dimension", T.StringType(), False),
        T.StructField("value", T.StringType(), False),
        T.StructField("complaints", T.LongType(), False),
        T.StructField("complaints_7d", T.LongType(), False),
        T.StructField("orders", T.LongType()),
        T.StructField("complaints_per_1k_orders", T.DoubleType()),
        T.StructField("ma7", T.DoubleType(), False),
        T.StructField("ma28", T.DoubleType(), False),
        T.StructField("lift", T.DoubleType(), False),
        T.StructField("p_value", T.DoubleType(), False),
        T.StructField("breach", T.BooleanType(), False),
        T.StructField("alert", T.BooleanType(), False),
        T.StructField("status", T.StringType(), False),
        T.StructField("breach_key", T.StringType()),
        T.StructField("min_count", T.LongType(), False),
        T.StructField("min_lift", T.DoubleType(), False),
        T.StructField("alpha", T.DoubleType(), False),
        T.StructField("feedback_date", T.DateType(), False),
    ]
)

SERIES_COMMERCE = T.StructType(
    [
        T.StructField("dimension", T.StringType(), False),
        T.StructField("value", T.StringType(), False),
        T.StructField("orders", T.LongType(), False),
        T.StructField("units", T.LongType(), False),
        T.StructField("returns", T.LongType(), False),
        T.StructField("revenue", T.DoubleType(), False),
        T.StructField("margin", T.DoubleType(), False),
        T.StructField("refunds", T.DoubleType(), False),
        T.StructField("feedback_date", T.DateType(), False),
    ]
)

ISSUE_PRIORITIES = T.StructType(
    [
        T.StructField("label", T.StringType(), False),
        T.StructField("domain", T.StringType()),
        T.StructField("sku", T.StringType()),
        T.StructField("region", T.StringType()),
        T.StructField("priority_score", T.DoubleType(), False),
        T.StructField("complaints_7d", T.LongType(), False),
        T.StructField("baseline_weekly_mean", T.DoubleType(), False),
        T.StructField("mean_severity", T.DoubleType()),
        T.StructField("churn_share", T.DoubleType()),
        T.StructField("revenue_share", T.DoubleType()),
        T.StructField("return_rate", T.DoubleType()),
        T.StructField("high_value_share", T.DoubleType()),
        T.StructField("mean_confidence", T.DoubleType()),
        T.StructField("revenue_at_risk", T.DoubleType()),
        T.StructField("components", T.MapType(T.StringType(), T.DoubleType()), False),
        T.StructField("weights_version", T.StringType(), False),
        T.StructField("feedback_date", T.DateType(), False),
    ]
)
