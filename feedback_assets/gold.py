"""Gold assets: daily issue metrics, complaint velocity with breach flags, and commerce-weighted priorities."""

import dagster as dg
from dagster_pyspark import PySparkResource

from feedback_assets import tables
from feedback_assets.alerts.config import load_alerting
from feedback_assets.alerts.chart import read_velocity_history
from feedback_assets.alerts.raised import day_counts, raised_markdown
from feedback_assets.asset_defaults import DAILY_BY_SIX_UTC, DAILY_RANGED
from feedback_assets.classifications import CLASSIFICATIONS_KEY
from feedback_assets.dispatch import ui_base_url
from feedback_assets.gold_steps import (
    run_issue_metrics, run_priorities, run_velocity,
)
from feedback_assets.metadata import markdown_table, record_rows_per_day, window_metadata, window_of
from feedback_assets.silver import SILVER_FEEDBACK_KEY
from feedback_assets.themes import feedback_themes
from feedback_assets.transforms.priority import PriorityConfig, load_priority
from resources.settings import settings
from resources.table_store import TableStore

METRICS_KEY = dg.AssetKey("issue_daily_metrics")
VELOCITY_KEY = dg.AssetKey("complaint_velocity")
PRIORITIES_KEY = dg.AssetKey("issue_priorities")

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
    deps=[CLASSIFICATIONS_KEY, SILVER_FEEDBACK_KEY, "orders"],
    **_GOLD,
)
def issue_daily_metrics(context: dg.AssetExecutionContext, pyspark: PySparkResource,
                        table_store: dg.ResourceParam[TableStore]) -> dg.MaterializeResult:
    """Complaints per day for every label on every SKU, region, channel, platform, app version and carrier, per 1k orders."""
    window = window_of(context)
    report = run_issue_metrics(pyspark.spark_session, table_store, window, load_alerting())
    record_rows_per_day(context, table_store, tables.ISSUE_DAILY_METRICS, window)
    return dg.MaterializeResult(metadata={
        **window_metadata(window, report.rows),
        "issues": dg.MetadataValue.int(report.issues),
        "series": dg.MetadataValue.int(report.series),
        "complaints_by_label": dg.MetadataValue.json(report.complaints_by_label),
    })


@dg.asset(
    key=VELOCITY_KEY,
    # Priorities and themes are not read here, but alerts fire when velocity lands: their evidence must be ready.
    deps=[dg.AssetDep(METRICS_KEY, partition_mapping=_trailing(load_alerting().lookback_days)), PRIORITIES_KEY,
          feedback_themes.key],
    check_specs=[dg.AssetCheckSpec("every_series_day_assessed", asset=VELOCITY_KEY, blocking=True,
                                   description="Each metrics row of the window has exactly one velocity row.")],
    **_GOLD,
)
def complaint_velocity(context: dg.AssetExecutionContext, pyspark: PySparkResource,
                       table_store: dg.ResourceParam[TableStore]):
    """How fast each complaint series is growing against its 7- and 28-day averages, and which ones breach and alert."""
    window = window_of(context)
    report = run_velocity(pyspark.spark_session, table_store, window, load_alerting())
    _record_what_each_day_raised(context, table_store, window, report.alerts)
    alerts = [{"day": a["feedback_date"].isoformat(), "series": a["series_key"], "complaints": a["complaints"],
               "lift": round(a["lift"], 1), "p_value": f"{a['p_value']:.1e}"} for a in report.alerts]
    yield dg.MaterializeResult(metadata={
        **window_metadata(window, report.rows),
        "breaches": dg.MetadataValue.int(report.breaches),
        "alerts": dg.MetadataValue.int(len(report.alerts)),
        "statuses": dg.MetadataValue.json(report.statuses),
        "alerting_series": markdown_table(alerts[-20:]),
    })
    yield dg.AssetCheckResult(check_name="every_series_day_assessed", passed=report.metrics_rows == report.rows,
                              metadata={"metrics_rows": report.metrics_rows, "velocity_rows": report.rows})


def _record_what_each_day_raised(context: dg.AssetExecutionContext, store: TableStore, window,
                                 alerts: list[dict]) -> None:
    """Per partition: its own counts (for the Plots view) and, where it alerted, charts and links to the dispatch runs."""
    ui = ui_base_url()
    velocity = read_velocity_history(store, window.start, window.end)
    for day, counts in day_counts(velocity, window.days).items():
        of_day = [a for a in alerts if a["feedback_date"] == day]
        metadata: dict[str, dg.MetadataValue] = {
            "series_assessed": dg.MetadataValue.int(counts.series),
            "breaches_on_day": dg.MetadataValue.int(counts.breaches),
            "alerts_on_day": dg.MetadataValue.int(counts.alerts),
        }
        if len(window.days) > 1:
            metadata["dagster/row_count"] = dg.MetadataValue.int(counts.series)
        if of_day:
            metadata["alerts_raised"] = dg.MetadataValue.md(raised_markdown(velocity, day, of_day, ui))
        context.add_asset_metadata(metadata, partition_key=day.isoformat())


@dg.asset(
    key=PRIORITIES_KEY,
    deps=[dg.AssetDep(CLASSIFICATIONS_KEY, partition_mapping=_trailing(_ISSUE_DAYS)),
          dg.AssetDep(SILVER_FEEDBACK_KEY, partition_mapping=_trailing(_ISSUE_DAYS)),
          dg.AssetDep("orders", partition_mapping=_trailing(_COMMERCE_DAYS)),
          dg.AssetDep("returns_refunds", partition_mapping=_trailing(_COMMERCE_DAYS)), "sku_catalog"],
    **_GOLD,
)
def issue_priorities(context: dg.AssetExecutionContext, pyspark: PySparkResource,
                     table_store: dg.ResourceParam[TableStore]) -> dg.MaterializeResult:
    """A 0–100 priority for every (label, SKU, region) from volume, velocity, severity, churn, revenue, returns and customer value."""
    window = window_of(context)
    config = priority_config()
    report = run_priorities(pyspark.spark_session, table_store, window, config)
    record_rows_per_day(context, table_store, tables.ISSUE_PRIORITIES, window)
    top = [{"label": r["label"], "sku": r["sku"], "region": r["region"], "score": r["priority_score"],
            "complaints_7d": r["complaints_7d"], "revenue_at_risk": r["revenue_at_risk"],
            "top_components": ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["components"].items(), key=lambda kv: -kv[1])[:3])}
           for r in report.top]
    return dg.MaterializeResult(metadata={
        **window_metadata(window, report.rows),
        "weights_version": dg.MetadataValue.text(config.version),
        "weights": dg.MetadataValue.json(config.weights),
        "top_priorities_last_day": markdown_table(top),
    })


gold_assets = [issue_daily_metrics, complaint_velocity, issue_priorities]
