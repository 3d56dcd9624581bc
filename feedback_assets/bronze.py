"""Bronze assets: one per feedback channel, raw and append-only, landed once per export file."""

import dagster as dg

from feedback_assets.landing.mapping import FEEDBACK_CHANNELS
from feedback_assets.asset_defaults import DAILY_RANGED, SPARK_TABLE
from feedback_assets.step_runs import bronze_step_name
from resources.compute import StepRunner
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
    def bronze_asset(context: dg.AssetExecutionContext, step_runner: dg.ResourceParam[StepRunner],
                     table_store: dg.ResourceParam[TableStore], landing: LandingResource):
        yield from step_runner.run(context, bronze_step_name(channel), table_store, landing=landing)

    return bronze_asset


bronze_assets = [build_bronze_asset(channel) for channel in FEEDBACK_CHANNELS]
