"""Silver feedback: one clean, deduplicated, PII-scrubbed row per piece of feedback, or a reject with a reason."""

import dagster as dg

from feedback_assets.bronze import bronze_assets
from feedback_assets.asset_defaults import DAILY_RANGED, SPARK_TABLE
from feedback_assets.schemas import SILVER_FEEDBACK, SILVER_REJECTS
from resources.settings import settings
from resources.compute import StepRunner
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
def silver_feedback(context: dg.AssetExecutionContext, step_runner: dg.ResourceParam[StepRunner],
                    table_store: dg.ResourceParam[TableStore]):
    """Cleans, deduplicates and PII-scrubs the six bronze channels into one feedback table plus its rejects."""
    yield from step_runner.run(context, "silver_feedback", table_store)
