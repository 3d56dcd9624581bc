"""Silver commerce tables: orders, returns/refunds and the SKU catalog that weigh feedback by revenue."""

import dagster as dg
from dagster_pyspark import PySparkResource

from feedback_assets.landing.mapping import Contract
from feedback_assets.asset_defaults import DAILY_RANGED, SPARK_TABLE
from feedback_assets.metadata import record_rows_per_day, window_metadata, window_of
from feedback_assets.steps import COMMERCE_TABLES, run_commerce
from resources.landing import LandingResource
from resources.settings import settings
from resources.table_store import TableStore

COMMERCE_ASSETS = {
    Contract.orders: ("orders", "Order lines with revenue, region, carrier, platform and customer tier, pseudonymized."),
    Contract.returns: ("returns_refunds", "Returns and refunds with reason codes and refund amounts, pseudonymized."),
    Contract.sku_catalog: ("sku_catalog", "The SKU catalog as known on each day: category, price, margin, launch date."),
}


def build_commerce_asset(contract: Contract) -> dg.AssetsDefinition:
    name, description = COMMERCE_ASSETS[contract]

    @dg.asset(
        name=name,
        description=description,
        group_name="silver",
        **DAILY_RANGED,
        **SPARK_TABLE,
        tags={"layer": "silver", "domain": "commerce"},
    )
    def commerce_asset(
        context: dg.AssetExecutionContext,
        pyspark: PySparkResource,
        table_store: dg.ResourceParam[TableStore],
        landing: LandingResource,
    ) -> dg.MaterializeResult:
        window = window_of(context)
        report = run_commerce(pyspark.spark_session, table_store, landing.registry(table_store), contract, window,
                              context.run_id, settings().pseudonym_key)
        if report.invalid_rows:
            context.log.warning("%s: skipped unusable records %s", name, report.invalid_rows)
        record_rows_per_day(context, table_store, COMMERCE_TABLES[contract], window)
        return dg.MaterializeResult(
            metadata={
                **window_metadata(window, report.rows),
                "unusable_records_by_reason": dg.MetadataValue.json(report.invalid_rows),
            }
        )

    return commerce_asset


commerce_assets = [build_commerce_asset(contract) for contract in COMMERCE_ASSETS]
