"""bronze_<channel> ×6 → silver_feedback + silver_rejects: validate, dedup, normalize, scrub, detect language."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from feedback_assets.schemas import SILVER_FEEDBACK, SILVER_REJECTS
from feedback_assets.transforms.clean import clean_text
from feedback_assets.transforms.pii import PII_KINDS


class RejectReason:
    malformed_record = "malformed_record"
    missing_required_field = "missing_required_field"
    invalid_encoding = "invalid_encoding"
    bad_timestamp = "bad_timestamp"
    empty_text = "empty_text"
    oversize_text = "oversize_text"
    duplicate_source_id = "duplicate_source_id"
    duplicate_resubmission = "duplicate_resubmission"
    invalid_source_id = "invalid_source_id"


# Commerce keys a feedback row may carry. They become series keys downstream (a velocity series per
# SKU, region, app version...), so a value that cannot be a key is dropped, and the drop recorded.
KEY_FIELDS = ("order_id", "sku", "variant", "region", "platform", "app_version")
MAX_KEY_CHARS = 64
MAX_SOURCE_ID_CHARS = 256
_CONTROL_CHARACTERS = r"[\x00-\x1f\x7f-\x9f\x{2028}\x{2029}]"


DUPLICATE_REASONS = (RejectReason.duplicate_source_id, RejectReason.duplicate_resubmission)


@dataclass(frozen=True)
class SilverParams:
    start: date
    end: date
    pseudonym_key: str
    max_text_chars: int = 20_000


def _blank(column: Column) -> Column:
    return column.isNull() | (F.trim(column) == "")


def hmac_sha256_hex(key: str, message: Column) -> Column:
    """HMAC-SHA256 in Spark SQL functions (RFC 2104), so pseudonymization needs no Python UDF."""
    key_bytes = key.encode()
    if len(key_bytes) > 64:
        key_bytes = hashlib.sha256(key_bytes).digest()
    key_bytes = key_bytes.ljust(64, b"\0")
    inner_pad = F.lit(bytes(b ^ 0x36 for b in key_bytes))
    outer_pad = F.lit(bytes(b ^ 0x5C for b in key_bytes))
    inner = F.unhex(F.sha2(F.concat(inner_pad, F.encode(message, "UTF-8")), 256))
    return F.sha2(F.concat(outer_pad, inner), 256)


def pseudonymize(key: str, customer_ref: Column) -> Column:
    """A stable customer key that cannot be reversed without the key; null when there is no ref."""
    normalized = F.lower(F.trim(customer_ref))
    return F.when(_blank(customer_ref), F.lit(None)).otherwise(F.substring(hmac_sha256_hex(key, normalized), 1, 32))


def feedback_id(channel: Column, source_id: Column) -> Column:
    return F.substring(F.sha2(F.concat_ws(":", channel, F.trim(source_id)), 256), 1, 32)


def _first_failed_check(params: SilverParams) -> Column:
    """The first validation a bronze row fails, as (reason, detail), or null when it passes all."""
    checks: list[tuple[Column, str, Column]] = [
        (F.col("parse_error").isNotNull(), RejectReason.malformed_record, F.col("parse_error")),
        (_blank(F.col("source_id")), RejectReason.missing_required_field, F.lit("source_id")),
        (F.length(F.trim("source_id")) > MAX_SOURCE_ID_CHARS, RejectReason.invalid_source_id,
         F.format_string(f"source_id has %d characters (limit {MAX_SOURCE_ID_CHARS})", F.length(F.trim("source_id")))),
        (F.col("text").isNull(), RejectReason.missing_required_field, F.lit("text")),
        (F.col("encoding_error"), RejectReason.invalid_encoding, F.lit("text is not valid UTF-8")),
        (F.col("event_at").isNull(), RejectReason.bad_timestamp,
         F.coalesce(F.col("timestamp_error"), F.lit("no timestamp"))),
        (_blank(F.col("text")), RejectReason.empty_text, F.lit("text is empty or blank")),
        (F.length("text") > params.max_text_chars, RejectReason.oversize_text,
         F.format_string(f"%d characters (limit {params.max_text_chars})", F.length("text"))),
    ]
    verdict = F.lit(None).cast("struct<reason:string,detail:string>")
    for failed, reason, detail in reversed(checks):
        verdict = F.when(failed, F.struct(F.lit(reason).alias("reason"), detail.cast("string").alias("detail"))).otherwise(verdict)
    return verdict


OUTCOME_COLUMNS = ("reason", "detail", "duplicate_of")


def _conform(df: DataFrame) -> DataFrame:
    """Every outcome row in one shape: the silver columns, then reason/detail/duplicate_of."""
    wanted = [*SILVER_FEEDBACK.fields, *(T.StructField(c, T.StringType()) for c in OUTCOME_COLUMNS)]
    names = set(df.columns)
    return df.select(*[(F.col(f.name) if f.name in names else F.lit(None)).cast(f.dataType).alias(f.name) for f in wanted])


def build_silver_outcomes(bronze: DataFrame, params: SilverParams) -> DataFrame:
    """What happens to each bronze row of [start, end]: a silver row (reason null) or a reject.

    `bronze` is the union of all channels from `start - lookback` to `end`: earlier days only serve
    to recognise duplicates of what was already accepted. Persist the result before splitting it
    with `silver_rows` / `reject_rows`, so the text cleaning runs once.
    """
    in_window = F.col("feedback_date").between(F.lit(params.start), F.lit(params.end))
    checked = (
        bronze.withColumn("failed", _first_failed_check(params))
        .withColumn("feedback_id", F.when(~_blank(F.col("source_id")), feedback_id(F.col("channel"), F.col("source_id")))
                    .otherwise(F.substring(F.sha2(F.concat_ws(":", "source_file", "source_line"), 256), 1, 32)))
        .withColumn("customer_key", pseudonymize(params.pseudonym_key, F.col("customer_ref")))
        .withColumn("received_at", F.col("event_at"))
    )
    invalid = checked.where(F.col("failed").isNotNull() & in_window).select(
        "*", F.col("failed.reason").alias("reason"), F.col("failed.detail").alias("detail")
    )

    arrival = [F.col("event_at"), F.col("ingested_at"), F.col("source_file"), F.col("source_line")]
    by_source = Window.partitionBy("channel", "source_id").orderBy(*arrival)
    # Anonymous rows cannot be resubmissions of each other; giving each its own group avoids one huge group.
    resubmitter = F.coalesce(F.col("customer_key"), F.col("feedback_id"))
    text_key = F.sha2(F.lower(F.regexp_replace(F.trim(F.col("text")), r"\s+", " ")), 256)
    by_text = Window.partitionBy(resubmitter, text_key).orderBy(*arrival)
    ranked = (
        checked.where(F.col("failed").isNull())
        .withColumn("source_id", F.trim("source_id"))
        .withColumn("source_rank", F.row_number().over(by_source))
        .where((F.col("source_rank") == 1) | in_window)
        .withColumn("first_of_text", F.first("feedback_id").over(by_text))
        .withColumn("text_rank", F.row_number().over(by_text))
        .where(in_window)
    )
    is_source_duplicate = F.col("source_rank") > 1
    is_resubmission = F.col("customer_key").isNotNull() & (F.col("text_rank") > 1)
    duplicates = ranked.where(is_source_duplicate | is_resubmission).select(
        "*",
        F.when(is_source_duplicate, F.lit(RejectReason.duplicate_source_id))
        .otherwise(F.lit(RejectReason.duplicate_resubmission)).alias("reason"),
        F.when(is_source_duplicate, F.lit("same channel and source id"))
        .otherwise(F.lit("same text from the same customer")).alias("detail"),
        F.when(is_source_duplicate, F.col("feedback_id")).otherwise(F.col("first_of_text")).alias("duplicate_of"),
    )

    cleaned = (
        ranked.where(~(is_source_duplicate | is_resubmission))
        .withColumn("clean", clean_text(F.col("text")))
        .select("*", "clean.*")
        .withColumn("reason", F.when(F.col("text_clean") == "", F.lit(RejectReason.empty_text)))
        .withColumn("detail", F.when(F.col("reason").isNotNull(), F.lit("no text left after removing markup")))
        .withColumn("field_issues", _field_issues())
        .withColumn("rating", _rating_on_five_point_scale())
        .select("*", *[_usable_key(name).alias(f"_key_{name}") for name in KEY_FIELDS])
        .drop(*KEY_FIELDS)
        .withColumnsRenamed({f"_key_{name}": name for name in KEY_FIELDS})
        .withColumn("content_hash", F.sha2(F.col("text_clean"), 256))
        .withColumn("pii_redactions", F.create_map(*[p for k in PII_KINDS for p in (F.lit(k), F.col(f"pii_{k}"))]))
        .withColumn("pii_redaction_count", sum((F.col(f"pii_{k}") for k in PII_KINDS), F.lit(0)))
    )
    return _conform(invalid).unionByName(_conform(duplicates)).unionByName(_conform(cleaned))


def silver_rows(outcomes: DataFrame) -> DataFrame:
    return outcomes.where(F.col("reason").isNull()).select(*SILVER_FEEDBACK.fieldNames())


def reject_rows(outcomes: DataFrame) -> DataFrame:
    return outcomes.where(F.col("reason").isNotNull()).select(*SILVER_REJECTS.fieldNames())


def _rating_value() -> Column:
    return F.expr("try_cast(trim(rating) AS DOUBLE)")


def _rating_on_five_point_scale() -> Column:
    """Maps any source scale (1-5 stars, 0-10 NPS) onto 1..5; out-of-range or non-numeric → null (see field_issues)."""
    value = _rating_value()
    low, high = F.col("rating_scale_low"), F.col("rating_scale_high")
    in_range = value.between(low, high) & (high > low)
    return F.when(in_range, F.round(F.lit(1.0) + (value - low) / (high - low) * 4, 2))


def _key_problem(name: str) -> Column:
    """Why a commerce key cannot be used as one (too long, control characters), or null."""
    value = F.trim(F.col(name))
    return (
        F.when(F.length(value) > MAX_KEY_CHARS,
               F.format_string(f"dropped: %d characters (limit {MAX_KEY_CHARS})", F.length(value)))
        .when(value.rlike(_CONTROL_CHARACTERS), F.lit("dropped: holds control characters"))
    )


def _usable_key(name: str) -> Column:
    value = F.trim(F.col(name))
    return F.when(~_blank(F.col(name)) & _key_problem(name).isNull(), value)


def _field_issues() -> Column:
    """Field values silver could not keep, by field: ratings outside their scale or not numbers, unusable keys."""
    raw_rating = F.trim(F.col("rating"))
    value = _rating_value()
    low, high = F.col("rating_scale_low"), F.col("rating_scale_high")
    rating_problem = (
        F.when(_blank(F.col("rating")), F.lit(None))
        .when(value.isNull(), F.format_string("dropped: %s is not a number", F.substring(raw_rating, 1, 40)))
        .when(~value.between(low, high), F.format_string("dropped: %s is outside the scale %s..%s",
                                                          F.substring(raw_rating, 1, 40), low, high))
    )
    problems = [F.struct(F.lit("rating").alias("field"), rating_problem.alias("issue"))]
    problems += [F.struct(F.lit(name).alias("field"), _key_problem(name).alias("issue")) for name in KEY_FIELDS]
    return F.map_from_entries(F.filter(F.array(*problems), lambda entry: entry["issue"].isNotNull()))
