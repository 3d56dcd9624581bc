"""Bronze assets: one per feedback channel, raw and append-only, landed once per export file."""

import dagster as dg
from dagster_pyspark import PySparkResource

from feedback_assets import tables
from feedback_assets.landing.mapping import FEEDBACK_CHANNELS
from feedback_assets.asset_defaults import DAILY_RANGED, SPARK_TABLE
from feedback_assets.metadata import record_rows_per_day, window_metadata, window_of
from feedback_assets.steps import run_bronze
from resources.landing import LandingResource
from resources.table_store import TableStore

CHANNEL_DESCRIPTIONS = {
    "product_reviews": "Storefront product reviews exactly as customers wrote them, one row per review.",
    "support_tickets": "Customer turns of support chats and tickets, as the help desk exported them.",
    "surveys": "Post-purchase survey comments and scores, as the survey tool exported them.",
    "app_store_reviews": "App Store and Google Play reviews of the shopping app, as the stores exported them.",
    "return_reasons": "Free-text reasons customers gave when they started a return.",
    "marketplace_messages": "Buyer messages from third-party marketplaces, as the marketplaces delivered them.",
}


def build_bronze_asset(channel: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"bronze_{channel}",
        description=CHANNEL_DESCRIPTIONS[channel],
        group_name="bronze",
        **DAILY_RANGED,
        **SPARK_TABLE,
        tags={"layer": "bronze", "channel": channel},
    )
    def bronze_asset(
        context: dg.AssetExecutionContext,
        pyspark: PySparkResource,
        table_store: dg.ResourceParam[TableStore],
        landing: LandingResource,
    ) -> dg.MaterializeResult:
        window = window_of(context)
        report = run_bronze(pyspark.spark_session, table_store, landing.registry(table_store), channel, window, context.run_id)
        for registration in report.registrations:
            refused = registration.status in ("rejected", "quarantined")
            (context.log.warning if refused else context.log.info)(
                "landing %s: %s (%d rows) %s", registration.file, registration.status, registration.rows,
                registration.error or "")
        for skipped in report.skipped:
            context.log.info("landing %s left for later: %s", skipped.file, skipped.reason)
        record_rows_per_day(context, table_store, tables.BRONZE[channel], window)
        return dg.MaterializeResult(
            metadata={
                **window_metadata(window, report.rows),
                "rows_with_errors": dg.MetadataValue.int(report.rows_with_errors),
                "source_files": dg.MetadataValue.int(report.files),
                "files_landed_this_run": dg.MetadataValue.int(sum(r.status == "registered" for r in report.registrations)),
                "files_refused_this_run": dg.MetadataValue.json(
                    [{"file": r.file, "status": r.status, "error": r.error} for r in report.registrations
                     if r.status in ("rejected", "quarantined")]
                ),
                "files_waiting": dg.MetadataValue.json([{"file": s.file, "reason": s.reason} for s in report.skipped]),
                "rows_by_day": dg.MetadataValue.json(report.rows_by_day),
            }
        )

    return bronze_asset


bronze_assets = [build_bronze_asset(channel) for channel in FEEDBACK_CHANNELS]
