"""Theme assets: complaints grouped into named themes that keep their identity from one day to the next."""

import dagster as dg

from feedback_assets.asset_defaults import DAILY_BY_SIX_UTC, DAILY_RANGED
from feedback_assets.labels import LABELS_KEY
from resources.compute import StepRunner
from resources.table_store import TableStore
from resources.themes import ThemesResource


@dg.asset(
    deps=[LABELS_KEY, "sku_catalog"],
    group_name="enrichment",
    kinds={"python"},
    owners=["team:voice-of-customer"],
    tags={"layer": "enrichment"},
    freshness_policy=DAILY_BY_SIX_UTC,
    **DAILY_RANGED,
)
def feedback_themes(context: dg.AssetExecutionContext, step_runner: dg.ResourceParam[StepRunner],
                    table_store: dg.ResourceParam[TableStore], themes: ThemesResource):
    """Each complaint's recurring theme ("runs small", "return label not working"), so teams fix causes, not tickets."""
    yield from step_runner.run(context, "feedback_themes", table_store, themes=themes)
