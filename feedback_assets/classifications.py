"""Enrichment assets: every silver item classified into the taxonomy, or queued for review, or dead-lettered."""

import dagster as dg

from feedback_assets.asset_defaults import DAILY_RANGED, DAILY_BY_SIX_UTC
from feedback_assets.silver import SILVER_FEEDBACK_KEY
from feedback_assets.step_runs import MAX_LABEL_SHIFT, MAX_REVIEW_SHARE
from resources.compute import StepRunner
from resources.enrichment import EnrichmentResource
from resources.table_store import TableStore

CLASSIFICATIONS_KEY = dg.AssetKey("feedback_classifications")
TRIAGE_KEY = dg.AssetKey("triage_queue")
DEAD_LETTERS_KEY = dg.AssetKey("classification_dead_letters")

_COMMON = {"kinds": {"python"}, "owners": ["team:voice-of-customer"], "tags": {"layer": "enrichment"}}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(CLASSIFICATIONS_KEY, deps=[SILVER_FEEDBACK_KEY, "orders", "sku_catalog"], freshness_policy=DAILY_BY_SIX_UTC,
                     description="Each feedback item's issue labels, severity, sentiment, churn intent, entities and owner, with versions.",
                     **_COMMON),
        dg.AssetSpec(TRIAGE_KEY, deps=[SILVER_FEEDBACK_KEY],
                     description="Classified items an analyst should look at: low confidence, conflicting signals or suspected injection.",
                     **_COMMON),
        dg.AssetSpec(DEAD_LETTERS_KEY, deps=[SILVER_FEEDBACK_KEY],
                     description="Items the classifier could not classify even after retries, with the error; a re-run retries them.",
                     **_COMMON),
    ],
    check_specs=[
        dg.AssetCheckSpec("every_item_accounted_for", asset=CLASSIFICATIONS_KEY, blocking=True,
                          description="Every silver item of the window is classified or dead-lettered."),
        dg.AssetCheckSpec("label_mix_stable", asset=CLASSIFICATIONS_KEY,
                          description=f"The label mix moved less than {MAX_LABEL_SHIFT:.0%} (total variation) from the trailing 28 days."),
        dg.AssetCheckSpec("review_share", asset=CLASSIFICATIONS_KEY,
                          description=f"At most {MAX_REVIEW_SHARE:.0%} of items need an analyst's review."),
        dg.AssetCheckSpec("golden_set_quality", asset=CLASSIFICATIONS_KEY, blocking=True,
                          description="The classifier version scores on the golden set within the configured macro-F1 "
                                      "tolerance of the last accepted version; a worse version classifies nothing."),
        dg.AssetCheckSpec("classifier_answers_usable", asset=CLASSIFICATIONS_KEY, blocking=True,
                          description="The classifier's answers were usable: its circuit breaker did not open "
                                      "(most responses invalid, e.g. a model that ignores strict structured output)."),
    ],
    group_name="enrichment",
    can_subset=False,
    **DAILY_RANGED,
)
def feedback_classifications(context: dg.AssetExecutionContext, step_runner: dg.ResourceParam[StepRunner],
                             table_store: dg.ResourceParam[TableStore], enrichment: EnrichmentResource):
    """Classifies the window's silver feedback (cached by text, prompt and model) into the taxonomy."""
    yield from step_runner.run(context, "feedback_classifications", table_store, enrichment=enrichment)
