"""Enrichment assets: every silver item classified into the taxonomy, or queued for review, or dead-lettered."""

import dagster as dg
from dagster_pyspark import PySparkResource

from feedback_assets import tables
from feedback_assets.asset_defaults import DAILY_RANGED, DAILY_BY_SIX_UTC
from feedback_assets.enrichment.step import (
    EnrichmentReport, entity_catalog, run_enrichment,
)
from feedback_assets.metadata import record_rows_per_day, window_metadata, window_of
from feedback_assets.silver import SILVER_FEEDBACK_KEY
from resources.enrichment import EnrichmentResource
from resources.table_store import TableStore

CLASSIFICATIONS_KEY = dg.AssetKey("feedback_classifications")
TRIAGE_KEY = dg.AssetKey("triage_queue")
DEAD_LETTERS_KEY = dg.AssetKey("classification_dead_letters")
MAX_REVIEW_SHARE = 0.35
MAX_LABEL_SHIFT = 0.25

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
        dg.AssetCheckSpec("classifier_answers_usable", asset=CLASSIFICATIONS_KEY, blocking=True,
                          description="The classifier's answers were usable: its circuit breaker did not open "
                                      "(most responses invalid, e.g. a model that ignores strict structured output)."),
    ],
    group_name="enrichment",
    can_subset=False,
    **DAILY_RANGED,
)
def feedback_classifications(context: dg.AssetExecutionContext, pyspark: PySparkResource,
                             table_store: dg.ResourceParam[TableStore], enrichment: EnrichmentResource):
    """Classifies the window's silver feedback (cached by text, prompt and model) into the taxonomy."""
    window = window_of(context)
    spark = pyspark.spark_session
    backend = enrichment.build(entity_catalog(spark, table_store, window.start, window.end))
    report = run_enrichment(spark, table_store, window.start, window.end, backend, context.run_id, context.log.info)
    for key, table in ((CLASSIFICATIONS_KEY, tables.FEEDBACK_CLASSIFICATIONS), (TRIAGE_KEY, tables.TRIAGE_QUEUE),
                       (DEAD_LETTERS_KEY, tables.CLASSIFICATION_DEAD_LETTERS)):
        record_rows_per_day(context, table_store, table, window, key)
    yield dg.MaterializeResult(asset_key=CLASSIFICATIONS_KEY, metadata={
        **window_metadata(window, report.classified_rows),
        "backend": dg.MetadataValue.text(backend.name),
        "model": dg.MetadataValue.text(backend.model),
        "prompt_version": dg.MetadataValue.text(backend.prompt_version),
        "distinct_texts": report.distinct_texts,
        "cache_hits": report.cache_hits,
        "classified_now": report.classified_now,
        "labels": dg.MetadataValue.json(report.labels),
        **_usage_metadata(report, backend.model),
    })
    yield dg.MaterializeResult(asset_key=TRIAGE_KEY, metadata={**window_metadata(window, report.triage_rows),
                                                                "review_reasons": dg.MetadataValue.json(report.review_reasons)})
    yield dg.MaterializeResult(asset_key=DEAD_LETTERS_KEY, metadata=window_metadata(window, report.dead_letter_rows))
    yield dg.AssetCheckResult(check_name="every_item_accounted_for", asset_key=CLASSIFICATIONS_KEY,
                              passed=report.unaccounted == 0,
                              metadata={"silver_items": report.silver_items, "classified": report.classified_rows,
                                        "dead_letters": report.dead_letter_rows, "unaccounted": report.unaccounted})
    yield dg.AssetCheckResult(check_name="label_mix_stable", asset_key=CLASSIFICATIONS_KEY,
                              severity=dg.AssetCheckSeverity.WARN,
                              passed=report.label_shift is None or report.label_shift <= MAX_LABEL_SHIFT,
                              metadata={"total_variation": report.label_shift if report.label_shift is not None else -1.0})
    share = report.triage_rows / report.classified_rows if report.classified_rows else 0.0
    yield dg.AssetCheckResult(check_name="review_share", asset_key=CLASSIFICATIONS_KEY, severity=dg.AssetCheckSeverity.WARN,
                              passed=share <= MAX_REVIEW_SHARE, metadata={"share": share})
    breaker = report.usage.circuit_breaker
    if breaker:
        context.log.error("classification stopped early: %s", breaker)
    yield dg.AssetCheckResult(check_name="classifier_answers_usable", asset_key=CLASSIFICATIONS_KEY, passed=breaker is None,
                              metadata={"circuit_breaker": dg.MetadataValue.text(breaker or "closed"),
                                        "invalid_responses": dg.MetadataValue.int(report.usage.invalid_responses),
                                        "invalid_items": dg.MetadataValue.int(report.usage.invalid_items),
                                        "dead_letters": dg.MetadataValue.int(report.dead_letter_rows)})


def _usage_metadata(report: EnrichmentReport, model: str) -> dict[str, dg.MetadataValue]:
    usage = report.usage
    return {
        "llm_calls": dg.MetadataValue.int(usage.calls),
        "llm_failed_calls": dg.MetadataValue.int(usage.failed_calls),
        "llm_invalid_responses": dg.MetadataValue.int(usage.invalid_responses),
        "llm_invalid_items": dg.MetadataValue.int(usage.invalid_items),
        "llm_unasked_items": dg.MetadataValue.int(usage.unasked_items),
        "llm_circuit_breaker": dg.MetadataValue.text(usage.circuit_breaker or "closed"),
        "prompt_tokens": dg.MetadataValue.int(usage.prompt_tokens),
        "cached_prompt_tokens": dg.MetadataValue.int(usage.cached_tokens),
        "completion_tokens": dg.MetadataValue.int(usage.completion_tokens),
        "estimated_cost_usd": dg.MetadataValue.float(round(usage.cost_usd(model), 6)),
    }
