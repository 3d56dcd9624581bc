"""feedback_classifications end to end: accounting, the cache (0 calls on re-run), LLM by env, dead letters."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from feedback_assets import tables
from feedback_assets.definitions import ALL_ASSETS, build_resources
from feedback_assets.enrichment.entities import EntityCatalog
from feedback_assets.enrichment.gate import golden_items, golden_version, keep_score, score_golden
from feedback_assets.enrichment.taxonomy import load_taxonomy
from resources.enrichment import EnrichmentResource

from feedback_assets.sample_data import generate_sample
from tests.conftest import settings_for
from tests.loopback_openai import DEFAULT_API_KEY, LoopbackOpenAI
from tests.test_assets import ranged
from tests.test_enrichment_llm import classification_responder

FIRST, LAST = date(2026, 10, 1), date(2026, 10, 2)


@pytest.fixture
def prepared(spark, feedback_home, monkeypatch):
    for name in ["OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY"]:
        monkeypatch.delenv(name, raising=False)
    config = settings_for(feedback_home)
    generate_sample(config.landing_dir, feedback_home / "manifest.json", days=2, end_date=LAST, items_per_day=30, seed=5)
    with dg.instance_for_test() as instance:
        assert run(config, instance, "bronze", "silver").success
        yield config, instance


def run(config, instance, *groups: str) -> dg.ExecuteInJobResult:
    return dg.materialize(ALL_ASSETS, selection=dg.AssetSelection.groups(*groups), resources=build_resources(config),
                          instance=instance, tags=ranged(FIRST, LAST))


def metadata(result: dg.ExecuteInJobResult) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node("feedback_classifications")[0].metadata.items()}


def test_every_silver_item_is_classified_and_a_rerun_is_served_from_the_cache(spark, prepared):
    config, instance = prepared
    store = build_resources(config)["table_store"]
    first = run(config, instance, "enrichment")
    assert first.success
    assert {e.check_name: e.passed for e in first.get_asset_check_evaluations()}["every_item_accounted_for"]
    silver = store.read(spark, tables.SILVER_FEEDBACK).count()
    classified = store.read(spark, tables.FEEDBACK_CLASSIFICATIONS).count()
    dead = store.read(spark, tables.CLASSIFICATION_DEAD_LETTERS).count()
    triage = store.read(spark, tables.TRIAGE_QUEUE)
    assert silver == classified + dead and dead == 0 and silver > 40
    assert triage.where("NOT needs_review").count() == 0
    assert metadata(first)["backend"] == "local" and metadata(first)["classified_now"] > 0

    second = run(config, instance, "enrichment")
    assert metadata(second)["classified_now"] == 0 and metadata(second)["cache_hits"] == silver


def golden_check(result):
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == "golden_set_quality")


def test_with_llm_credentials_the_same_asset_uses_the_llm_and_reruns_make_no_calls(spark, prepared, monkeypatch):
    config, instance = prepared
    with LoopbackOpenAI(classification_responder) as server:
        monkeypatch.setenv("OPENAI_API_KEY", DEFAULT_API_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        first = run(config, instance, "enrichment")
        calls_after_first = server.calls
        second = run(config, instance, "enrichment")
        assert server.calls == calls_after_first > 0
    # A new version is first scored on the golden set (by a classifier of its own), once: the rerun scores nothing.
    golden_calls = golden_check(first).metadata["golden_llm_calls"].value
    assert golden_calls > 0 and golden_check(second).metadata["golden_llm_calls"].value == 0
    assert metadata(first)["backend"] == "openai" and metadata(first)["llm_calls"] + golden_calls == calls_after_first
    assert metadata(first)["prompt_tokens"] > 0 and metadata(first)["estimated_cost_usd"] > 0
    assert metadata(second)["llm_calls"] == 0 and metadata(second)["classified_now"] == 0


def score_on_the_golden_set_first(store) -> None:
    """The gate scores a new version once, before it classifies; here that happened before the outage."""
    backend = EnrichmentResource().build(EntityCatalog(), realtime=True)
    golden = golden_items()
    score, _ = score_golden(backend.classify, load_taxonomy(), golden, backend.code_version, backend.name, backend.model)
    keep_score(store, score, golden_version(golden))


def test_items_that_fail_land_in_dead_letters_and_a_rerun_drains_them(spark, prepared, monkeypatch):
    config, instance = prepared
    store = build_resources(config)["table_store"]
    with LoopbackOpenAI(classification_responder) as server:
        monkeypatch.setenv("OPENAI_API_KEY", DEFAULT_API_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        score_on_the_golden_set_first(store)
        server.faults = ["500"] * 200
        failed = run(config, instance, "enrichment")
        dead = store.read(spark, tables.CLASSIFICATION_DEAD_LETTERS)
        assert failed.success and dead.count() > 0 and dead.where("error IS NULL").count() == 0
        server.faults = []
        drained = run(config, instance, "enrichment")
    assert store.read(spark, tables.CLASSIFICATION_DEAD_LETTERS).count() == 0
    assert {e.check_name: e.passed for e in drained.get_asset_check_evaluations()}["every_item_accounted_for"]


def test_classification_is_checkpointed_in_chunks(spark, prepared, monkeypatch):
    """Each finished chunk is cached at once, so a crashed run resumes instead of starting over."""
    from feedback_assets.enrichment import step

    config, instance = prepared
    monkeypatch.setattr(step, "CHECKPOINT_EVERY", 10)
    result = run(config, instance, "enrichment")
    distinct = metadata(result)["distinct_texts"]
    cache_parts = list((config.warehouse_dir / "enrichment").glob("classification_cache_*/*.parquet"))
    assert result.success and len(cache_parts) == -(-distinct // 10)


def test_a_text_shared_by_several_rows_is_classified_from_the_same_row_whatever_the_read_order(spark, prepared):
    """Rows with one text share one classification; which row speaks for it (its rating) must not depend on
    the order the store returns rows in, or two formats (or two runs) would classify it differently."""
    from pyspark.sql import functions as F

    from feedback_assets.enrichment.step import Backend, run_enrichment

    from resources.table_store import DeltaTableStore

    config, _ = prepared
    silver = build_resources(config)["table_store"].read(spark, tables.SILVER_FEEDBACK, FIRST, FIRST)
    store = DeltaTableStore(root=str(config.feedback_home / "delta"))  # keeps rows in the order they were written
    first = silver.orderBy("feedback_id").limit(1)
    twins = first.withColumn("rating", F.lit(5.0)).unionByName(
        first.withColumn("feedback_id", F.lit("zz-twin")).withColumn("rating", F.lit(1.0)))
    twins = spark.createDataFrame(twins.collect(), tables.SILVER_FEEDBACK.schema)  # not read lazily from the table it replaces
    seen: list[float | None] = []

    def classify(items):
        seen.extend(item.rating for item in items)
        return [{"id": item.id, "primary_label": "praise_no_issue", "labels": [], "needs_review": False} for item in items]

    for ordered in (twins.orderBy("feedback_id"), twins.orderBy(F.desc("feedback_id"))):
        store.overwrite_partitions(ordered.coalesce(1), tables.SILVER_FEEDBACK, FIRST, FIRST)
        version = f"order-test-{len(seen)}"  # a fresh cache each time: every text is classified again
        run_enrichment(spark, store, FIRST, FIRST, Backend("test", "test-model", version, classify), "run")
    assert seen == [5.0, 5.0]
