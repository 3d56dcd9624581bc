"""Silver commerce tables: orders, returns/refunds and the SKU catalog that weigh feedback by revenue."""

import dagster as dg

from feedback_assets.landing.mapping import Contract
from feedback_assets.asset_defaults import DAILY_RANGED, SPARK_TABLE
from resources.compute import StepRunner
from resources.landing import LandingResource
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
    def commerce_asset(context: dg.AssetExecutionContext, step_runner: dg.ResourceParam[StepRunner],
                       table_store: dg.ResourceParam[TableStore], landing: LandingResource):
        yield from step_runner.run(context, name, table_store, landing=landing)

    return commerce_asset


commerce_assets = [build_commerce_asset(contract) for contract in COMMERCE_ASSETS]
