"""Every Spark-backed asset as a named step: run it for a window, get back what the UI should show.

A runner (in-process, or a Databricks task through Pipes) calls `run_step(name, context)`; the same
function runs either way, so tables, metadata and check results do not depend on where it ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from feedback_assets import outcomes, tables
from feedback_assets.landing.mapping import FEEDBACK_CHANNELS, Contract
from feedback_assets.metadata import markdown_table, rows_per_day, window_metadata
from feedback_assets.outcomes import AssetOutcome, CheckOutcome, StepOutcome
from feedback_assets.window import DayWindow
from resources.settings import Settings
from resources.table_store import TableStore

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from resources.enrichment import EnrichmentResource
    from resources.landing import LandingResource
    from resources.themes import ThemesResource

MAX_REVIEW_SHARE = 0.35
MAX_LABEL_SHIFT = 0.25


@dataclass
class StepContext:
    """What a step needs wherever it runs. Resources are the configured factories, not live clients."""

    spark: SparkSession
    store: TableStore
    window: DayWindow
    run_id: str
    settings: Settings
    landing: LandingResource | None = None
    enrichment: EnrichmentResource | None = None
    themes: ThemesResource | None = None
    ui_base_url: str = "http://127.0.0.1:3000"
    log: Callable[[str], None] = field(default=lambda _: None)


class StepFailed(Exception):
    """A step that cannot produce its tables for a reason an operator must fix (not a bug to retry)."""


COMMERCE_ASSET_NAMES = {Contract.orders: "orders", Contract.returns: "returns_refunds", Contract.sku_catalog: "sku_catalog"}


def bronze_step_name(channel: str) -> str:
    return f"bronze_{channel}"


# ---- bronze and commerce


def _bronze(channel: str) -> Callable[[StepContext], StepOutcome]:
    def run(ctx: StepContext) -> StepOutcome:
        from feedback_assets.steps import run_bronze

        report = run_bronze(ctx.spark, ctx.store, ctx.landing.registry(ctx.store), channel, ctx.window, ctx.run_id)
        outcome = StepOutcome()
        for registration in report.registrations:
            refused = registration.status in ("rejected", "quarantined")
            outcome.log("warning" if refused else "info", f"landing {registration.file}: {registration.status} "
                        f"({registration.rows} rows) {registration.error or ''}".rstrip())
        for skipped in report.skipped:
            outcome.log("info", f"landing {skipped.file} left for later: {skipped.reason}")
        outcome.assets.append(AssetOutcome(bronze_step_name(channel), {
            **window_metadata(ctx.window, report.rows),
            "rows_with_errors": outcomes.integer(report.rows_with_errors),
            "source_files": outcomes.integer(report.files),
            "files_landed_this_run": outcomes.integer(sum(r.status == "registered" for r in report.registrations)),
            "files_refused_this_run": outcomes.as_json(
                [{"file": r.file, "status": r.status, "error": r.error} for r in report.registrations
                 if r.status in ("rejected", "quarantined")]),
            "files_waiting": outcomes.as_json([{"file": s.file, "reason": s.reason} for s in report.skipped]),
            "rows_by_day": outcomes.as_json(report.rows_by_day),
        }, rows_per_day(ctx.store, tables.BRONZE[channel], ctx.window)))
        return outcome

    return run


def _commerce(contract: Contract) -> Callable[[StepContext], StepOutcome]:
    def run(ctx: StepContext) -> StepOutcome:
        from feedback_assets.steps import COMMERCE_TABLES, run_commerce

        name = COMMERCE_ASSET_NAMES[contract]
        report = run_commerce(ctx.spark, ctx.store, ctx.landing.registry(ctx.store), contract, ctx.window, ctx.run_id,
                              ctx.settings.pseudonym_key)
        outcome = StepOutcome()
        if report.invalid_rows:
            outcome.log("warning", f"{name}: skipped unusable records {report.invalid_rows}")
        outcome.assets.append(AssetOutcome(name, {
            **window_metadata(ctx.window, report.rows),
            "unusable_records_by_reason": outcomes.as_json(report.invalid_rows),
        }, rows_per_day(ctx.store, COMMERCE_TABLES[contract], ctx.window)))
        return outcome

    return run


# ---- silver


def _silver(ctx: StepContext) -> StepOutcome:
    from feedback_assets.steps import SILVER_KEY_COLUMNS, run_silver_feedback

    config = ctx.settings
    outcome = StepOutcome()
    if config.uses_dev_pseudonym_key:
        outcome.log("warning", "customer keys use the development pseudonymization key; set FEEDBACK_PSEUDONYM_KEY in production")
    report = run_silver_feedback(ctx.spark, ctx.store, ctx.window, config.pseudonym_key, config.max_text_chars,
                                 config.dedup_lookback_days)
    outcome.log("info", f"silver {ctx.window.start}..{ctx.window.end}: {report.silver_rows} rows, "
                f"{report.reject_rows} rejects ({report.duplicate_rows} duplicates)")
    outcome.assets.append(AssetOutcome("silver_feedback", {
        **window_metadata(ctx.window, report.silver_rows),
        "rejects": outcomes.integer(report.reject_rows),
        "duplicates": outcomes.integer(report.duplicate_rows),
        "rejects_by_reason": outcomes.as_json(report.rejects_by_reason),
        "pii_redactions": outcomes.as_json(report.pii_redactions),
        "pii_redactions_total": outcomes.integer(sum(report.pii_redactions.values())),
        "rows_by_channel": outcomes.as_json(report.channels),
        "rows_by_language": outcomes.as_json(report.languages),
        "field_values_dropped": outcomes.as_json(report.field_issues),
        "sample": markdown_table(report.sample_rows),
    }, rows_per_day(ctx.store, tables.SILVER_FEEDBACK, ctx.window)))
    outcome.assets.append(AssetOutcome("silver_rejects", {
        **window_metadata(ctx.window, report.reject_rows),
        "duplicates": outcomes.integer(report.duplicate_rows),
        "rejects_by_reason": outcomes.as_json(report.rejects_by_reason),
    }, rows_per_day(ctx.store, tables.SILVER_REJECTS, ctx.window)))
    null_columns = {c: n for c, n in report.key_column_nulls.items() if n}
    outcome.checks += [
        CheckOutcome("reconciles_with_bronze", "silver_feedback", not report.unreconciled_days, {
            "unreconciled_days": outcomes.as_json(report.unreconciled_days[:20]),
            "silver_rows": outcomes.integer(report.silver_rows), "reject_rows": outcomes.integer(report.reject_rows)}),
        CheckOutcome("key_columns_not_null", "silver_feedback", not null_columns, {
            "columns_checked": outcomes.text(", ".join(SILVER_KEY_COLUMNS)), "null_counts": outcomes.as_json(null_columns)}),
        CheckOutcome("no_pii_residue", "silver_feedback", not any(report.pii_residue.values()),
                     {"rows_matching": outcomes.as_json(report.pii_residue)}),
    ]
    return outcome


# ---- enrichment


def _classifications(ctx: StepContext) -> StepOutcome:
    from feedback_assets.enrichment.corrections_store import read_ledger
    from feedback_assets.enrichment.entities import EntityCatalog
    from feedback_assets.enrichment.step import entity_catalog, run_enrichment

    outcome = StepOutcome()
    window = ctx.window
    backend = ctx.enrichment.build(entity_catalog(ctx.spark, ctx.store, window.start, window.end), read_ledger(ctx.store))
    # The golden set is scored by the version itself (no corrections), in realtime (never a day-long batch), by a
    # classifier of its own, so its requests and circuit breaker stay apart from the run's.
    gate = _golden_gate(ctx, ctx.enrichment.build(EntityCatalog(), realtime=True))
    outcome.checks.append(gate)
    if not gate.passed:
        outcome.failure = f"the classifier version {backend.code_version} is not rolled out: {gate.metadata['reason'].value}"
        return outcome
    report = run_enrichment(ctx.spark, ctx.store, window.start, window.end, backend, ctx.run_id, ctx.log)
    usage = report.usage
    outcome.assets += [
        AssetOutcome("feedback_classifications", {
            **window_metadata(window, report.classified_rows),
            "backend": outcomes.text(backend.name),
            "model": outcomes.text(backend.model),
            "prompt_version": outcomes.text(backend.prompt_version),
            "distinct_texts": outcomes.integer(report.distinct_texts),
            "cache_hits": outcomes.integer(report.cache_hits),
            "classified_now": outcomes.integer(report.classified_now),
            "labels": outcomes.as_json(report.labels),
            "llm_calls": outcomes.integer(usage.calls),
            "llm_failed_calls": outcomes.integer(usage.failed_calls),
            "llm_invalid_responses": outcomes.integer(usage.invalid_responses),
            "llm_invalid_items": outcomes.integer(usage.invalid_items),
            "llm_unasked_items": outcomes.integer(usage.unasked_items),
            "llm_circuit_breaker": outcomes.text(usage.circuit_breaker or "closed"),
            "prompt_tokens": outcomes.integer(usage.prompt_tokens),
            "cached_prompt_tokens": outcomes.integer(usage.cached_tokens),
            "completion_tokens": outcomes.integer(usage.completion_tokens),
            "estimated_cost_usd": outcomes.number(round(usage.cost_usd(backend.model), 6)),
        }, rows_per_day(ctx.store, tables.FEEDBACK_CLASSIFICATIONS, window)),
        AssetOutcome("triage_queue", {**window_metadata(window, report.triage_rows),
                                      "review_reasons": outcomes.as_json(report.review_reasons)},
                     rows_per_day(ctx.store, tables.TRIAGE_QUEUE, window)),
        AssetOutcome("classification_dead_letters", window_metadata(window, report.dead_letter_rows),
                     rows_per_day(ctx.store, tables.CLASSIFICATION_DEAD_LETTERS, window)),
    ]
    share = report.triage_rows / report.classified_rows if report.classified_rows else 0.0
    if usage.circuit_breaker:
        outcome.log("error", f"classification stopped early: {usage.circuit_breaker}")
    outcome.checks += [
        CheckOutcome("every_item_accounted_for", "feedback_classifications", report.unaccounted == 0, outcomes.metadata_of({
            "silver_items": report.silver_items, "classified": report.classified_rows,
            "dead_letters": report.dead_letter_rows, "unaccounted": report.unaccounted})),
        CheckOutcome("label_mix_stable", "feedback_classifications",
                     report.label_shift is None or report.label_shift <= MAX_LABEL_SHIFT,
                     {"total_variation": outcomes.number(report.label_shift if report.label_shift is not None else -1.0)},
                     severity="WARN"),
        CheckOutcome("review_share", "feedback_classifications", share <= MAX_REVIEW_SHARE,
                     {"share": outcomes.number(share)}, severity="WARN"),
        CheckOutcome("classifier_answers_usable", "feedback_classifications", usage.circuit_breaker is None, {
            "circuit_breaker": outcomes.text(usage.circuit_breaker or "closed"),
            "invalid_responses": outcomes.integer(usage.invalid_responses),
            "invalid_items": outcomes.integer(usage.invalid_items),
            "dead_letters": outcomes.integer(report.dead_letter_rows)}),
    ]
    return outcome


def _golden_gate(ctx: StepContext, backend) -> CheckOutcome:
    """Scores the backend's version on the golden set (once per version) and judges it against the accepted one."""
    from feedback_assets.enrichment.gate import golden_gate, load_gate_config
    from feedback_assets.enrichment.governance import default_history_dir
    from feedback_assets.enrichment.taxonomy import load_taxonomy

    calls_before = backend.usage.calls
    verdict, score = golden_gate(ctx.store, backend.classify, load_taxonomy(), code_version=backend.code_version,
                                 backend=backend.name, model=backend.model,
                                 config=load_gate_config(ctx.settings.config_dir / "evaluation.yaml"),
                                 history_dir=default_history_dir())
    ctx.log(f"golden set: {verdict.reason}")
    return CheckOutcome("golden_set_quality", "feedback_classifications", verdict.passed, {
        "reason": outcomes.text(verdict.reason),
        "classifier_version": outcomes.text(backend.code_version),
        "macro_f1": outcomes.number(round(score.macro_f1, 4)),
        "accuracy": outcomes.number(round(score.accuracy, 4)),
        "calibration_error": outcomes.number(round(score.calibration_error, 4)),
        "golden_items": outcomes.integer(score.items),
        "golden_llm_calls": outcomes.integer(backend.usage.calls - calls_before),
        "golden_estimated_cost_usd": outcomes.number(round(backend.usage.cost_usd(backend.model), 6)),
        "accepted_version": outcomes.text(verdict.baseline_version or "none"),
        "accepted_macro_f1": outcomes.number(round(verdict.baseline_macro_f1, 4) if verdict.baseline_macro_f1 is not None else -1.0),
        "worst_hit_labels": markdown_table(verdict.worst_labels),
        "per_label_scores": markdown_table([{"label": label, **scores} for label, scores in score.per_label.items()]),
    })


def _feedback_labels(ctx: StepContext) -> StepOutcome:
    from feedback_assets.enrichment.labels_step import run_feedback_labels
    from feedback_assets.enrichment.taxonomy import load_taxonomy

    report = run_feedback_labels(ctx.spark, ctx.store, ctx.window, load_taxonomy())
    if report.ignored:
        ctx.log(f"{report.ignored} correction(s) name a label the taxonomy no longer has: the model's label stands")
    return StepOutcome(assets=[AssetOutcome("feedback_labels", {
        **window_metadata(ctx.window, report.items),
        "corrected_items": outcomes.integer(report.corrected),
        "corrected_share": outcomes.number(round(report.corrected / report.items, 4) if report.items else 0.0),
        "corrections_ignored": outcomes.integer(report.ignored),
        "corrections_without_item": outcomes.integer(report.corrections_without_item),
        "label_changes_by_analysts": outcomes.as_json(report.moves),
        "primary_label_counts_corrected": outcomes.as_json(report.label_counts),
    }, rows_per_day(ctx.store, tables.FEEDBACK_LABELS, ctx.window))])


def _classification_diff(ctx: StepContext) -> StepOutcome:
    from feedback_assets.alerts.config import load_alerting
    from feedback_assets.enrichment.diff import render_markdown
    from feedback_assets.enrichment.diff_step import run_classification_diff

    report = run_classification_diff(ctx.spark, ctx.store, ctx.window, load_alerting(ctx.settings.config_dir / "alerting.yaml"))
    diff = report.diff
    metadata = {**window_metadata(ctx.window, report.rows),
                "current_version": outcomes.text(report.current_version or "none"),
                "previous_version": outcomes.text(report.previous_version or "none")}
    if diff is None:
        metadata["diff"] = outcomes.markdown("_No earlier classifier version classified these days: nothing to compare._")
    else:
        gained = sum(c.change == "gained" for c in diff.alert_changes)
        metadata |= {
            "items_compared": outcomes.integer(diff.items_compared),
            "items_moved": outcomes.integer(diff.items_moved),
            "moved_share": outcomes.number(round(diff.moved_share, 4)),
            "label_migrations": outcomes.as_json([{"from": old, "to": new, "items": n} for (old, new), n in diff.moves[:50]]),
            "labels_before": outcomes.as_json(dict(diff.before.most_common())),
            "labels_after": outcomes.as_json(dict(diff.after.most_common())),
            "alerts_gained": outcomes.integer(gained),
            "alerts_lost": outcomes.integer(len(diff.alert_changes) - gained),
            "diff": outcomes.markdown(render_markdown(diff)),
        }
    return StepOutcome(assets=[AssetOutcome("classification_diff", metadata,
                                            rows_per_day(ctx.store, tables.CLASSIFICATION_DIFF, ctx.window))])


def _themes(ctx: StepContext) -> StepOutcome:
    from feedback_assets.theming.embeddings import EmbeddingsUnavailable
    from feedback_assets.theming.step import run_themes

    window, themes = ctx.window, ctx.themes
    embedder = themes.build_embedder()
    try:
        report = run_themes(ctx.spark, ctx.store, window.start, window.end, embedder, themes.cluster_params(),
                            ctx.run_id, themes.products_by, ctx.log)
    except EmbeddingsUnavailable as error:
        raise StepFailed(str(error)) from None
    return StepOutcome(assets=[AssetOutcome("feedback_themes", {
        **window_metadata(window, report.complaint_items),
        "themed_items": outcomes.integer(report.themed_items),
        "outliers": outcomes.integer(report.outliers),
        "outlier_share": outcomes.number(round(report.outlier_share, 4)),
        "skipped_items": outcomes.integer(report.classified_items - report.complaint_items),
        "new_themes": outcomes.integer(report.new_themes),
        "existing_themes": outcomes.integer(report.existing_themes),
        "top_themes": markdown_table(report.top_themes),
        "embedding_model": outcomes.text(embedder.name),
        "embedding_cache_hits": outcomes.integer(report.cache_hits),
        "embedded_now": outcomes.integer(report.embedded_now),
        "embedding_requests": outcomes.integer(embedder.usage.calls),
        "embedding_tokens": outcomes.integer(embedder.usage.tokens),
        "estimated_cost_usd": outcomes.number(round(embedder.usage.cost_usd(getattr(embedder, "model", embedder.name)), 6)),
    }, rows_per_day(ctx.store, tables.FEEDBACK_THEMES, window))])


# ---- gold


def _issue_metrics(ctx: StepContext) -> StepOutcome:
    from feedback_assets.alerts.config import load_alerting
    from feedback_assets.gold_steps import run_issue_metrics

    report = run_issue_metrics(ctx.spark, ctx.store, ctx.window, load_alerting(ctx.settings.config_dir / "alerting.yaml"))
    return StepOutcome(assets=[AssetOutcome("issue_daily_metrics", {
        **window_metadata(ctx.window, report.rows),
        "issues": outcomes.integer(report.issues),
        "series": outcomes.integer(report.series),
        "complaints_by_label": outcomes.as_json(report.complaints_by_label),
    }, rows_per_day(ctx.store, tables.ISSUE_DAILY_METRICS, ctx.window))])


def _series_commerce(ctx: StepContext) -> StepOutcome:
    from feedback_assets.gold_steps import run_series_commerce

    report = run_series_commerce(ctx.spark, ctx.store, ctx.window)
    return StepOutcome(assets=[AssetOutcome("series_commerce", {
        **window_metadata(ctx.window, report.rows),
        "values_per_dimension": outcomes.as_json(report.values),
        "shop_orders": outcomes.integer(report.shop_orders),
        "shop_revenue": outcomes.number(report.shop_revenue),
    }, rows_per_day(ctx.store, tables.SERIES_COMMERCE, ctx.window))])


def _velocity(ctx: StepContext) -> StepOutcome:
    from feedback_assets.alerts.chart import read_velocity_history
    from feedback_assets.alerts.config import load_alerting
    from feedback_assets.alerts.raised import day_counts, raised_markdown
    from feedback_assets.gold_steps import run_velocity

    window = ctx.window
    report = run_velocity(ctx.spark, ctx.store, window, load_alerting(ctx.settings.config_dir / "alerting.yaml"))
    alerts = [{"day": a["feedback_date"].isoformat(), "series": a["series_key"], "complaints": a["complaints"],
               "lift": round(a["lift"], 1), "p_value": f"{a['p_value']:.1e}"} for a in report.alerts]
    velocity = read_velocity_history(ctx.store, window.start, window.end)
    per_day: dict[str, outcomes.Metadata] = {}
    # Per partition: its own counts (for the Plots view) and, where it alerted, charts and links to the dispatch runs.
    for day, counts in day_counts(velocity, window.days).items():
        of_day = [a for a in report.alerts if a["feedback_date"] == day]
        metadata = {"series_assessed": outcomes.integer(counts.series),
                    "breaches_on_day": outcomes.integer(counts.breaches),
                    "alerts_on_day": outcomes.integer(counts.alerts)}
        if len(window.days) > 1:
            metadata["dagster/row_count"] = outcomes.integer(counts.series)
        if of_day:
            metadata["alerts_raised"] = outcomes.markdown(raised_markdown(velocity, day, of_day, ctx.ui_base_url))
        per_day[day.isoformat()] = metadata
    return StepOutcome(
        assets=[AssetOutcome("complaint_velocity", {
            **window_metadata(window, report.rows),
            "breaches": outcomes.integer(report.breaches),
            "alerts": outcomes.integer(len(report.alerts)),
            "statuses": outcomes.as_json(report.statuses),
            "alerting_series": markdown_table(alerts[-20:]),
        }, per_day)],
        checks=[CheckOutcome("every_series_day_assessed", "complaint_velocity", report.metrics_rows == report.rows,
                             outcomes.metadata_of({"metrics_rows": report.metrics_rows, "velocity_rows": report.rows}))],
    )


def _priorities(ctx: StepContext) -> StepOutcome:
    from feedback_assets.gold_steps import run_priorities
    from feedback_assets.transforms.priority import load_priority

    config = load_priority(ctx.settings.config_dir / "priority.yaml")
    report = run_priorities(ctx.spark, ctx.store, ctx.window, config)
    top = [{"label": r["label"], "sku": r["sku"], "region": r["region"], "score": r["priority_score"],
            "complaints_7d": r["complaints_7d"], "revenue_at_risk": r["revenue_at_risk"],
            "top_components": ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["components"].items(), key=lambda kv: -kv[1])[:3])}
           for r in report.top]
    return StepOutcome(assets=[AssetOutcome("issue_priorities", {
        **window_metadata(ctx.window, report.rows),
        "weights_version": outcomes.text(config.version),
        "weights": outcomes.as_json(config.weights),
        "top_priorities_last_day": markdown_table(top),
    }, rows_per_day(ctx.store, tables.ISSUE_PRIORITIES, ctx.window))])


STEPS: dict[str, Callable[[StepContext], StepOutcome]] = {
    **{bronze_step_name(channel): _bronze(channel) for channel in FEEDBACK_CHANNELS},
    **{name: _commerce(contract) for contract, name in COMMERCE_ASSET_NAMES.items()},
    "silver_feedback": _silver,
    "feedback_classifications": _classifications,
    "classification_diff": _classification_diff,
    "feedback_labels": _feedback_labels,
    "feedback_themes": _themes,
    "issue_daily_metrics": _issue_metrics,
    "series_commerce": _series_commerce,
    "complaint_velocity": _velocity,
    "issue_priorities": _priorities,
}

# Which configured factories each step needs (the runner passes these, locally or to the cluster).
RESOURCES_OF_STEP: dict[str, tuple[str, ...]] = {
    **{bronze_step_name(channel): ("landing",) for channel in FEEDBACK_CHANNELS},
    **{name: ("landing",) for name in COMMERCE_ASSET_NAMES.values()},
    "feedback_classifications": ("enrichment",),
    "feedback_themes": ("themes",),
}


def run_step(name: str, ctx: StepContext) -> StepOutcome:
    """Runs the named step for the context's window and returns what the UI should show."""
    if name not in STEPS:
        raise KeyError(f"unknown step {name!r}; known: {', '.join(sorted(STEPS))}")
    return STEPS[name](ctx)
