"""Gold assets: daily issue metrics, complaint velocity with breach flags, and commerce-weighted priorities."""

import dagster as dg

from feedback_assets.alerts.config import load_alerting
from feedback_assets.asset_defaults import DAILY_BY_SIX_UTC, DAILY_RANGED
from feedback_assets.labels import LABELS_KEY
from feedback_assets.silver import SILVER_FEEDBACK_KEY
from feedback_assets.themes import feedback_themes
from feedback_assets.transforms.dimensions import RETURN_REACH_DAYS
from feedback_assets.transforms.priority import PriorityConfig, load_priority
from resources.compute import StepRunner
from resources.settings import settings
from resources.table_store import TableStore

METRICS_KEY = dg.AssetKey("issue_daily_metrics")
VELOCITY_KEY = dg.AssetKey("complaint_velocity")
PRIORITIES_KEY = dg.AssetKey("issue_priorities")
SERIES_COMMERCE_KEY = dg.AssetKey("series_commerce")

_GOLD = {"group_name": "gold", "kinds": {"spark", "parquet"}, "owners": ["team:voice-of-customer"],
         "tags": {"layer": "gold"}, "freshness_policy": DAILY_BY_SIX_UTC, **DAILY_RANGED}


def priority_config() -> PriorityConfig:
    """The priority weights in the configuration folder (priority.yaml)."""
    return load_priority(settings().config_dir / "priority.yaml")


_ISSUE_DAYS = priority_config().window_days + priority_config().baseline_days - 1
_COMMERCE_DAYS = priority_config().baseline_days - 1


def _trailing(days: int) -> dg.TimeWindowPartitionMapping:
    """Each day reads itself and the `days` days before it."""
    return dg.TimeWindowPartitionMapping(start_offset=-days, end_offset=0, allow_nonexistent_upstream_partitions=True)


@dg.asset(
    key=METRICS_KEY,
    deps=[LABELS_KEY, SILVER_FEEDBACK_KEY, "orders"],
    **_GOLD,
)
def issue_daily_metrics(context: dg.AssetExecutionContext, step_runner: dg.ResourceParam[StepRunner],
                        table_store: dg.ResourceParam[TableStore]):
    """Complaints per day for every label on every SKU, region, channel, platform, app version and carrier, per 1k orders."""
    yield from step_runner.run(context, "issue_daily_metrics", table_store)


@dg.asset(
    key=SERIES_COMMERCE_KEY,
    deps=[dg.AssetDep("orders", partition_mapping=_trailing(RETURN_REACH_DAYS)), "returns_refunds",
          "sku_catalog"],
    **_GOLD,
)
def series_commerce(context: dg.AssetExecutionContext, step_runner: dg.ResourceParam[StepRunner],
                    table_store: dg.ResourceParam[TableStore]):
    """Orders, revenue, margin, returns and refunds per day for every SKU, region, carrier, platform and app version, so each alert knows what it puts at risk."""
    yield from step_runner.run(context, "series_commerce", table_store)


@dg.asset(
    key=VELOCITY_KEY,
    # Priorities, commerce and themes are not read here, but alerts fire when velocity lands: their evidence must be ready.
    deps=[dg.AssetDep(METRICS_KEY, partition_mapping=_trailing(load_alerting().lookback_days)), PRIORITIES_KEY,
          SERIES_COMMERCE_KEY, feedback_themes.key],
    check_specs=[dg.AssetCheckSpec("every_series_day_assessed", asset=VELOCITY_KEY, blocking=True,
                                   description="Each metrics row of the window has exactly one velocity row.")],
    **_GOLD,
)
def complaint_velocity(context: dg.AssetExecutionContext, step_runner: dg.ResourceParam[StepRunner],
                       table_store: dg.ResourceParam[TableStore]):
    """How fast each complaint series is growing against its 7- and 28-day averages, and which ones breach and alert."""
    yield from step_runner.run(context, "complaint_velocity", table_store)


@dg.asset(
    key=PRIORITIES_KEY,
    deps=[dg.AssetDep(LABELS_KEY, partition_mapping=_trailing(_ISSUE_DAYS)),
          dg.AssetDep(SILVER_FEEDBACK_KEY, partition_mapping=_trailing(_ISSUE_DAYS)),
          dg.AssetDep("orders", partition_mapping=_trailing(_COMMERCE_DAYS)),
          dg.AssetDep("returns_refunds", partition_mapping=_trailing(_COMMERCE_DAYS)), "sku_catalog"],
    **_GOLD,
)
def issue_priorities(context: dg.AssetExecutionContext, step_runner: dg.ResourceParam[StepRunner],
                     table_store: dg.ResourceParam[TableStore]):
    """A 0–100 priority for every (label, SKU, region) from volume, velocity, severity, churn, revenue, returns and customer value."""
    yield from step_runner.run(context, "issue_priorities", table_store)


gold_assets = [issue_daily_metrics, series_commerce, complaint_velocity, issue_priorities]
