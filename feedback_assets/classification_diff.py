"""The classification diff asset: what a new taxonomy, prompt or model changed in the days it re-classified."""

import dagster as dg

from feedback_assets.alerts.config import load_alerting
from feedback_assets.asset_defaults import DAILY_RANGED
from feedback_assets.classifications import CLASSIFICATIONS_KEY
from feedback_assets.silver import SILVER_FEEDBACK_KEY
from resources.compute import StepRunner
from resources.table_store import TableStore

CLASSIFICATION_DIFF_KEY = dg.AssetKey("classification_diff")


def _with_lookback() -> dg.TimeWindowPartitionMapping:
    """The alert effect judges each day against the same trailing days velocity does."""
    return dg.TimeWindowPartitionMapping(start_offset=-load_alerting().lookback_days, end_offset=0,
                                         allow_nonexistent_upstream_partitions=True)


@dg.asset(
    key=CLASSIFICATION_DIFF_KEY,
    deps=[dg.AssetDep(CLASSIFICATIONS_KEY, partition_mapping=_with_lookback()),
          dg.AssetDep(SILVER_FEEDBACK_KEY, partition_mapping=_with_lookback()),
          dg.AssetDep("orders", partition_mapping=_with_lookback())],
    group_name="enrichment",
    kinds={"spark", "parquet"},
    owners=["team:voice-of-customer"],
    tags={"layer": "enrichment"},
    **DAILY_RANGED,
)
def classification_diff(context: dg.AssetExecutionContext, step_runner: dg.ResourceParam[StepRunner],
                        table_store: dg.ResourceParam[TableStore]):
    """Which items a re-classification moved from which label to which, with examples, and the alerts that would appear or vanish."""
    yield from step_runner.run(context, "classification_diff", table_store)
