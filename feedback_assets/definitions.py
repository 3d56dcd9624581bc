"""The code location: every asset, check, job, sensor and resource, assembled explicitly."""

import dagster as dg

from feedback_assets.bronze import bronze_assets
from feedback_assets.classifications import feedback_classifications
from feedback_assets.commerce import commerce_assets
from feedback_assets.silver import silver_feedback
from partitions import daily_partitions
from resources.enrichment import EnrichmentResource
from resources.landing import LandingResource
from resources.settings import Settings, settings
from resources.spark import local_spark_resource
from resources.table_store import LocalParquetTableStore
from sensors.landing import INGEST_JOB_NAME, landing_sensor

ingest_job = dg.define_asset_job(
    INGEST_JOB_NAME,
    selection=dg.AssetSelection.groups("bronze", "silver"),
    partitions_def=daily_partitions,
    description="Lands new exports and rebuilds bronze, silver and commerce tables for the chosen days.",
)


def build_resources(config: Settings) -> dict[str, dg.ConfigurableResource]:
    table_store = LocalParquetTableStore(root=str(config.warehouse_dir))
    return {
        "pyspark": local_spark_resource(config),
        "table_store": table_store,
        "landing": LandingResource(landing_dir=str(config.landing_dir)),
        "enrichment": EnrichmentResource(),
    }


ALL_ASSETS = [*bronze_assets, silver_feedback, *commerce_assets, feedback_classifications]

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=[ingest_job],
    sensors=[landing_sensor],
    resources=build_resources(settings()),
)
