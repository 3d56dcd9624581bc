"""Silver feedback: one clean, deduplicated, PII-scrubbed row per piece of feedback, or a reject with a reason."""

import dagster as dg
from dagster_pyspark import PySparkResource

from feedback_assets import tables
from feedback_assets.bronze import bronze_assets
from feedback_assets.asset_defaults import DAILY_RANGED, SPARK_TABLE
from feedback_assets.metadata import markdown_table, record_rows_per_day, window_metadata, window_of
from feedback_assets.schemas import SILVER_FEEDBACK, SILVER_REJECTS
from feedback_assets.steps import SILVER_KEY_COLUMNS, SilverReport, run_silver_feedback
from resources.settings import settings
from resources.table_store import TableStore

SILVER_FEEDBACK_KEY = dg.AssetKey("silver_feedback")
SILVER_REJECTS_KEY = dg.AssetKey("silver_rejects")


def _column_schema(schema) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(f.name, f.dataType.simpleString(), constraints=dg.TableColumnConstraints(nullable=f.nullable))
                 for f in schema.fields]
    )


def _lookback_dep(asset: dg.AssetsDefinition) -> dg.AssetDep:
    # Earlier days are read only to recognise duplicates of feedback that was already accepted.
    return dg.AssetDep(
        asset,
        partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-settings().dedup_lookback_days, allow_nonexistent_upstream_partitions=True
        ),
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            SILVER_FEEDBACK_KEY,
            description="Every accepted piece of customer feedback in one schema: clean text, PII scrubbed, language known, duplicates removed.",
            deps=[_lookback_dep(asset) for asset in bronze_assets],
            tags={"layer": "silver"},
            metadata={"dagster/column_schema": _column_schema(SILVER_FEEDBACK)},
            **SPARK_TABLE,
        ),
        dg.AssetSpec(
            SILVER_REJECTS_KEY,
            description="Feedback rows that did not make it into silver, each with the reason (bad timestamp, empty, duplicate, ...).",
            deps=[_lookback_dep(asset) for asset in bronze_assets],
            tags={"layer": "silver"},
            metadata={"dagster/column_schema": _column_schema(SILVER_REJECTS)},
            **SPARK_TABLE,
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec("reconciles_with_bronze", asset=SILVER_FEEDBACK_KEY, blocking=True,
                          description="Every bronze row of each day is in silver or in silver_rejects (duplicates included)."),
        dg.AssetCheckSpec("key_columns_not_null", asset=SILVER_FEEDBACK_KEY, blocking=True,
                          description="Contract key columns are never null."),
        dg.AssetCheckSpec("no_pii_residue", asset=SILVER_FEEDBACK_KEY, blocking=True,
                          description="No e-mail, phone or card-number pattern survives in text_clean."),
    ],
    group_name="silver",
    can_subset=False,
    **DAILY_RANGED,
)
def silver_feedback(context: dg.AssetExecutionContext, pyspark: PySparkResource, table_store: dg.ResourceParam[TableStore]):
    """Cleans, deduplicates and PII-scrubs the six bronze channels into one feedback table plus its rejects."""
    window = window_of(context)
    config = settings()
    if config.uses_dev_pseudonym_key:
        context.log.warning("customer keys use the development pseudonymization key; set FEEDBACK_PSEUDONYM_KEY in production")
    report = run_silver_feedback(pyspark.spark_session, table_store, window, config.pseudonym_key,
                                 config.max_text_chars, config.dedup_lookback_days)
    context.log.info("silver %s..%s: %d rows, %d rejects (%d duplicates)", window.start, window.end,
                     report.silver_rows, report.reject_rows, report.duplicate_rows)
    record_rows_per_day(context, table_store, tables.SILVER_FEEDBACK, window, SILVER_FEEDBACK_KEY)
    record_rows_per_day(context, table_store, tables.SILVER_REJECTS, window, SILVER_REJECTS_KEY)
    yield dg.MaterializeResult(asset_key=SILVER_FEEDBACK_KEY, metadata=_silver_metadata(report, window))
    yield dg.MaterializeResult(
        asset_key=SILVER_REJECTS_KEY,
        metadata={
            **window_metadata(window, report.reject_rows),
            "duplicates": dg.MetadataValue.int(report.duplicate_rows),
            "rejects_by_reason": dg.MetadataValue.json(report.rejects_by_reason),
        },
    )
    yield from _check_results(report)


def _silver_metadata(report: SilverReport, window) -> dict[str, dg.MetadataValue]:
    return {
        **window_metadata(window, report.silver_rows),
        "rejects": dg.MetadataValue.int(report.reject_rows),
        "duplicates": dg.MetadataValue.int(report.duplicate_rows),
        "rejects_by_reason": dg.MetadataValue.json(report.rejects_by_reason),
        "pii_redactions": dg.MetadataValue.json(report.pii_redactions),
        "pii_redactions_total": dg.MetadataValue.int(sum(report.pii_redactions.values())),
        "rows_by_channel": dg.MetadataValue.json(report.channels),
        "rows_by_language": dg.MetadataValue.json(report.languages),
        "field_values_dropped": dg.MetadataValue.json(report.field_issues),
        "sample": markdown_table(report.sample_rows),
    }


def _check_results(report: SilverReport):
    yield dg.AssetCheckResult(
        check_name="reconciles_with_bronze", asset_key=SILVER_FEEDBACK_KEY,
        passed=not report.unreconciled_days,
        metadata={"unreconciled_days": dg.MetadataValue.json(report.unreconciled_days[:20]),
                  "silver_rows": report.silver_rows, "reject_rows": report.reject_rows},
    )
    null_columns = {c: n for c, n in report.key_column_nulls.items() if n}
    yield dg.AssetCheckResult(
        check_name="key_columns_not_null", asset_key=SILVER_FEEDBACK_KEY, passed=not null_columns,
        metadata={"columns_checked": dg.MetadataValue.text(", ".join(SILVER_KEY_COLUMNS)),
                  "null_counts": dg.MetadataValue.json(null_columns)},
    )
    yield dg.AssetCheckResult(
        check_name="no_pii_residue", asset_key=SILVER_FEEDBACK_KEY, passed=not any(report.pii_residue.values()),
        metadata={"rows_matching": dg.MetadataValue.json(report.pii_residue)},
    )
