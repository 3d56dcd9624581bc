"""Theme assets: complaints grouped into named themes that keep their identity from one day to the next."""

import dagster as dg
from dagster_pyspark import PySparkResource

from feedback_assets import tables
from feedback_assets.asset_defaults import DAILY_BY_SIX_UTC, DAILY_RANGED
from feedback_assets.classifications import CLASSIFICATIONS_KEY
from feedback_assets.metadata import markdown_table, record_rows_per_day, window_metadata, window_of
from feedback_assets.theming.embeddings import EmbeddingsUnavailable

from feedback_assets.theming.step import run_themes
from resources.table_store import TableStore
from resources.themes import ThemesResource


@dg.asset(
    deps=[CLASSIFICATIONS_KEY, "sku_catalog"],
    group_name="enrichment",
    kinds={"python"},
    owners=["team:voice-of-customer"],
    tags={"layer": "enrichment"},
    freshness_policy=DAILY_BY_SIX_UTC,
    **DAILY_RANGED,
)
def feedback_themes(context: dg.AssetExecutionContext, pyspark: PySparkResource, table_store: dg.ResourceParam[TableStore],
                    themes: ThemesResource) -> dg.MaterializeResult:
    """Each complaint's recurring theme ("runs small", "return label not working"), so teams fix causes, not tickets."""
    window = window_of(context)
    embedder = themes.build_embedder()
    try:
        report = run_themes(pyspark.spark_session, table_store, window.start, window.end, embedder,
                            themes.cluster_params(), context.run_id, themes.products_by, context.log.info)
    except EmbeddingsUnavailable as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None
    record_rows_per_day(context, table_store, tables.FEEDBACK_THEMES, window)
    return dg.MaterializeResult(metadata={
        **window_metadata(window, report.complaint_items),
        "themed_items": dg.MetadataValue.int(report.themed_items),
        "outliers": dg.MetadataValue.int(report.outliers),
        "outlier_share": dg.MetadataValue.float(round(report.outlier_share, 4)),
        "skipped_items": dg.MetadataValue.int(report.classified_items - report.complaint_items),
        "new_themes": dg.MetadataValue.int(report.new_themes),
        "existing_themes": dg.MetadataValue.int(report.existing_themes),
        "top_themes": markdown_table(report.top_themes),
        "embedding_model": dg.MetadataValue.text(embedder.name),
        "embedding_cache_hits": dg.MetadataValue.int(report.cache_hits),
        "embedded_now": dg.MetadataValue.int(report.embedded_now),
        "embedding_requests": dg.MetadataValue.int(embedder.usage.calls),
        "embedding_tokens": dg.MetadataValue.int(embedder.usage.tokens),
        "estimated_cost_usd": dg.MetadataValue.float(round(embedder.usage.cost_usd(getattr(embedder, "model", embedder.name)), 6)),
    })
