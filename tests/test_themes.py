"""Themes: paraphrases share a theme, later days join it, ids survive re-runs, names tell themes apart."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import dagster as dg
import numpy as np
import pytest

from feedback_assets import tables
from feedback_assets.enrichment.llm import LLMConnection

from feedback_assets.enrichment.taxonomy import load_taxonomy
from feedback_assets.schemas import FEEDBACK_LABELS, SKU_CATALOG
from feedback_assets.themes import feedback_themes
from feedback_assets.theming.clustering import ClusterParams, theme_day
from feedback_assets.theming.embeddings import LocalEmbedder, openai_embedder
from feedback_assets.theming.items import complaint_items
from feedback_assets.theming.naming import name_themes
from feedback_assets.theming.themer import Themer
from resources.settings import read_settings
from resources.compute import LocalStepRunner
from resources.spark import local_spark_resource
from resources.themes import ThemesResource, embedding_choice
from tests.loopback_openai import (
    DEFAULT_API_KEY,
    LoopbackOpenAI,
    bag_of_words_embedding,
)
from tests.conftest import settings_for
from tests.test_assets import ranged

DAY_1, DAY_2 = date(2026, 10, 1), date(2026, 10, 2)
RETURN_LABEL = ["The return label is not working.", "My return label won't scan at the post office.",
                "The return label you sent is broken."]
REFUND = ["I still have not received my refund.", "Still waiting for my refund after two weeks.",
          "My refund never arrived."]
TAXONOMY = load_taxonomy()


def unit(*components: float) -> np.ndarray:
    vector = np.array(components, dtype=np.float32)
    return vector / np.linalg.norm(vector)


class TestClustering:
    def test_paraphrases_of_one_complaint_found_one_theme_and_a_different_complaint_another(self):
        texts = [*RETURN_LABEL, *REFUND, "The courier was rude to me at the door."]
        vectors = LocalEmbedder().embed(texts)
        empty = np.zeros((0, vectors.shape[1]), np.float32)
        result = theme_day(vectors, empty, empty, ClusterParams())
        assert len(result.new_themes) == 2
        assert len(set(result.theme[:3])) == 1 and len(set(result.theme[3:6])) == 1
        assert result.theme[0] != result.theme[3] and result.theme[6] == -1

    def test_an_item_joins_the_known_theme_whose_centroid_is_close_enough(self):
        centroids = np.stack([unit(1, 0, 0), unit(0, 1, 0)])
        today = np.stack([unit(0.1, 1, 0), unit(1, 1, 1)])
        result = theme_day(today, centroids, np.zeros((0, 3), np.float32), ClusterParams(join_similarity=0.8))
        assert result.theme.tolist() == [1, -1] and result.new_themes == []
        assert result.similarity[0] == pytest.approx(float(today[0] @ centroids[1]), abs=1e-5)

    def test_a_cluster_below_the_minimum_size_leaves_outliers(self):
        today = np.stack([unit(1, 0, 0), unit(1, 0.05, 0), unit(0, 0, 1)])
        result = theme_day(today, np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32), ClusterParams(min_size=3))
        assert result.theme.tolist() == [-1, -1, -1] and np.isnan(result.similarity).all()


class TestThemer:
    """Days in order: the pool of recent outliers, founding, and joining on the next day."""

    @staticmethod
    def item(feedback_id: str, day: date, text: str):
        return complaint_items([_classified(feedback_id, day, "delivery_delay", text)], {})[0]

    def test_recent_outliers_found_a_theme_with_todays_items_and_keep_their_outlier_row(self):
        vectors = {}
        days = [DAY_1, DAY_2, DAY_2, DAY_2 + timedelta(days=1)]
        items = [self.item(f"f{i}", day, f"late parcel {i}") for i, day in enumerate(days)]
        for index, item in enumerate(items):
            vectors[item.text_hash] = unit(1, 0.02 * index, 0)
        themer = Themer("m", ClusterParams(min_size=3), vectors)
        first = themer.place_day(DAY_1, items[:1])
        second = themer.place_day(DAY_2, items[1:3])
        third = themer.place_day(days[3], items[3:])
        assert first[0].theme is None
        assert {p.theme.theme_id for p in second} == {themer.founded[0].theme_id}
        assert themer.founded[0].member_ids == ("f0", "f1", "f2") and all(p.new_theme for p in second)
        assert third[0].theme.theme_id == themer.founded[0].theme_id and not third[0].new_theme

    def test_outliers_older_than_the_pool_window_found_nothing(self):
        old = self.item("old", DAY_1, "a")
        new = [self.item(f"n{i}", DAY_1 + timedelta(days=9), f"b{i}") for i in range(2)]
        vectors = {i.text_hash: unit(1, 0, 0) for i in [old, *new]}
        themer = Themer("m", ClusterParams(min_size=3, pool_days=7), vectors, pool=[old])
        assert all(p.theme is None for p in themer.place_day(new[0].day, new)) and themer.founded == []


class TestNaming:
    def test_names_are_the_words_that_tell_a_groups_themes_apart(self):
        names = name_themes({
            "shoulders": ["Runs small in the shoulders.", "Tight in the shoulders, runs small.",
                          "Small across the shoulders."],
            "sleeves": ["Sleeves are too short, runs small.", "Short sleeves, small.",
                        "The sleeves are short and small."],
        })
        assert "shoulders" in names["shoulders"].keywords and "sleeves" in names["sleeves"].keywords
        assert "small" not in names["shoulders"].keywords + names["sleeves"].keywords

    def test_placeholders_and_stop_words_never_name_a_theme(self):
        names = name_themes({"t": ["Return label broken, email me at [EMAIL]", "the return label is broken [EMAIL]",
                                   "return label broken, call [PHONE]"]})
        assert names["t"].name == "return label broken"
        assert not {"email", "phone", "the", "is"} & set(names["t"].keywords)

    def test_naming_is_deterministic(self):
        texts = {1: ["late parcel", "parcel late again"], 2: ["rude courier", "courier rude"]}
        assert name_themes(texts) == name_themes(dict(reversed(texts.items())))


def _classified(feedback_id: str, day: date, label: str | None, evidence: str, sku: str | None = None) -> dict:
    row = {name: None for name in FEEDBACK_LABELS.fieldNames()} | {"label_source": "model"}
    domain = TAXONOMY.domain_of(label) if label else None
    labels = [{"label": label, "domain": domain, "severity": 0.5, "evidence": evidence}] if label else []
    return row | {"feedback_id": feedback_id, "content_hash": feedback_id, "labels": labels, "primary_label": label,
                  "domain": domain, "summary": evidence,
                  "entities": {"sku": sku, "variant": None, "region": None, "carrier": None, "shipping_method": None,
                               "order_id": None},
                  "feedback_date": day}


@pytest.fixture
def warehouse(spark, store):
    """Two days of labelled feedback (as gold reads it): paraphrased complaints, an odd one out, praise, and an unlabelled item."""
    rows = [_classified(f"a{i}", DAY_1, "refund_or_return_problem", text) for i, text in enumerate(RETURN_LABEL)]
    rows += [_classified(f"b{i}", DAY_1, "refund_or_return_problem", text) for i, text in enumerate(REFUND)]
    rows += [_classified("odd", DAY_1, "refund_or_return_problem", "The courier was rude to me at the door."),
             _classified("praise", DAY_1, "praise_no_issue", "Love it!"),
             _classified("unlabelled", DAY_1, None, "Hello?"),
             _classified("fit", DAY_1, "size_runs_small", "Runs a size small.", sku="JKT-1042"),
             _classified("a9", DAY_2, "refund_or_return_problem", "Return label doesn't work at all."),
             _classified("b9", DAY_2, "refund_or_return_problem", "Where is my refund? It has been weeks.")]
    labelled = spark.createDataFrame(rows, FEEDBACK_LABELS)
    store.overwrite_partitions(labelled, tables.FEEDBACK_LABELS, DAY_1, DAY_2)
    catalog = [{"sku": "JKT-1042", "name": "Jacket", "category": "apparel", "subcategory": "jackets", "brand": "B",
                "price": 90.0, "margin": 0.5, "launch_date": DAY_1, "feedback_date": day} for day in (DAY_1, DAY_2)]
    store.overwrite_partitions(spark.createDataFrame(catalog, SKU_CATALOG), tables.SKU_CATALOG, DAY_1, DAY_2)
    return store


def materialize(feedback_home, store, instance, first: date, last: date, themes: ThemesResource | None = None):
    config = replace(read_settings(), feedback_home=feedback_home)
    resources = {"step_runner": LocalStepRunner(pyspark=local_spark_resource(config)), "table_store": store,
                 "themes": themes or ThemesResource(backend="local")}
    result = dg.materialize([feedback_themes], resources=resources, instance=instance, tags=ranged(first, last))
    assert result.success
    return {k: v.value for k, v in result.asset_materializations_for_node("feedback_themes")[0].metadata.items()}


def themes_by_id(spark, store) -> dict[str, tuple]:
    rows = store.read(spark, tables.FEEDBACK_THEMES).collect()
    return {r["feedback_id"]: (r["theme_id"], r["theme_name"], r["feedback_date"]) for r in rows}


def test_day_by_day_paraphrases_join_yesterdays_theme_and_a_rerun_keeps_every_id(spark, feedback_home, warehouse):
    store = warehouse
    with dg.instance_for_test() as instance:
        first = materialize(feedback_home, store, instance, DAY_1, DAY_1)
        second = materialize(feedback_home, store, instance, DAY_2, DAY_2)
        daily = themes_by_id(spark, store)
        ranged_rerun = materialize(feedback_home, store, instance, DAY_1, DAY_2)
        assert themes_by_id(spark, store) == daily

    assert first["dagster/row_count"] == 8
    assert (first["skipped_items"], first["new_themes"], first["outliers"]) == (2, 2, 2)
    assert first["outlier_share"] == pytest.approx(2 / 8, abs=1e-4)
    assert daily["a9"][0] == daily["a0"][0] != daily["b0"][0] == daily["b9"][0]
    assert daily["odd"][0] is None and daily["fit"][0] is None and "praise" not in daily and "unlabelled" not in daily
    assert "label" in daily["a0"][1] and "refund" in daily["b0"][1]
    assert (second["new_themes"], second["existing_themes"], second["outliers"]) == (0, 2, 0)
    assert ranged_rerun["new_themes"] == 2 and ranged_rerun["embedded_now"] == 0
    assert first["embedded_now"] == 8 and first["embedding_model"] == LocalEmbedder().name
    registry = store.read_parts(tables.THEME_REGISTRY).to_pylist()
    assert len(registry) == len({r["theme_id"] for r in registry}) == 2


class TestItems:
    CATALOG = {"JKT-1042": "apparel"}

    def test_product_complaints_are_grouped_by_category_and_the_rest_across_the_catalogue(self):
        rows = [_classified("fit", DAY_1, "size_runs_small", "Runs small.", sku="JKT-1042"),
                _classified("zip", DAY_1, "defect_or_damage", "Zip broke.", sku="NEW-0001"),
                _classified("late", DAY_1, "delivery_delay", "Late again.", sku="JKT-1042")]
        groups = {i.feedback_id: (i.group_key, i.category) for i in complaint_items(rows, self.CATALOG)}
        assert groups == {"fit": ("category:apparel", "apparel"), "zip": ("category:unknown", None),
                          "late": ("all", "apparel")}
        by_sku = {i.feedback_id: i.group_key for i in complaint_items(rows, self.CATALOG, products_by="sku")}
        assert by_sku == {"fit": "sku:JKT-1042", "zip": "sku:NEW-0001", "late": "all"}

    def test_the_evidence_of_the_primary_label_is_embedded_and_praise_is_skipped(self):
        row = _classified("two", DAY_1, "delivery_delay", "Late again.")
        row["labels"] = [{"label": "support_unhelpful", "evidence": "Nobody answered."}, *row["labels"]]
        items = complaint_items([row, _classified("p", DAY_1, "praise_no_issue", "Love it!")], {})
        assert [(i.feedback_id, i.text) for i in items] == [("two", "Late again.")]


class TestOpenAIEmbeddings:
    def test_batches_go_through_the_sdk_in_order_and_a_rate_limit_is_retried(self, monkeypatch):
        texts = ["late parcel", "rude courier", "broken zip", "late parcel again", "no refund"]
        with LoopbackOpenAI(embedding_faults=["429"]) as server:
            monkeypatch.setenv("OPENAI_API_KEY", DEFAULT_API_KEY)
            monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
            embedder = openai_embedder(LLMConnection("openai", "gpt-4o-mini"), "text-embedding-3-small", batch_size=2)
            vectors = embedder.embed(texts)
            bodies = [r["body"] for r in server.requests if r["status"] == 200]
        assert server.embedding_calls == 3 == embedder.usage.calls and server.calls == 0
        assert sorted(len(b["input"]) for b in bodies) == [1, 2, 2]
        assert {b["model"] for b in bodies} == {"text-embedding-3-small"}
        assert np.allclose(vectors, np.array([bag_of_words_embedding(t) for t in texts]), atol=1e-6)
        assert embedder.name == "text-embedding-3-small" and embedder.usage.tokens > 0

    def test_azure_uses_the_embedding_deployment(self, monkeypatch):
        with LoopbackOpenAI() as server:
            monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
            monkeypatch.setenv("AZURE_OPENAI_API_KEY", DEFAULT_API_KEY)
            embedder = openai_embedder(LLMConnection("azure", "chat-deployment"), "embed-deployment")
            embedder.embed(["late parcel"])
            paths = [r["path"] for r in server.requests]
        assert paths[0].startswith("/openai/deployments/embed-deployment/embeddings?api-version=")
        assert embedder.name == "azure/embed-deployment"

    def test_with_an_embedding_model_configured_the_asset_embeds_through_the_api_once(self, spark, feedback_home,
                                                                                       warehouse, monkeypatch):
        for name in ["AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "FEEDBACK_EMBEDDINGS"]:
            monkeypatch.delenv(name, raising=False)
        with LoopbackOpenAI() as server, dg.instance_for_test() as instance:
            monkeypatch.setenv("OPENAI_API_KEY", DEFAULT_API_KEY)
            monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
            monkeypatch.setenv("OPENAI_EMBEDDING_MODEL", "text-embedding-3-small")
            first = materialize(feedback_home, warehouse, instance, DAY_1, DAY_2, ThemesResource())
            calls = server.embedding_calls
            second = materialize(feedback_home, warehouse, instance, DAY_1, DAY_2, ThemesResource())
        assert calls > 0 and server.embedding_calls == calls and server.calls == 0
        assert first["embedding_model"] == "text-embedding-3-small" and first["embedded_now"] == 10
        assert first["embedding_requests"] == calls and first["estimated_cost_usd"] > 0
        assert second["embedded_now"] == 0 and second["embedding_cache_hits"] == 10


class TestChatOnlyServers:
    """Many OpenAI-compatible servers (vLLM, Ollama) serve chat and no embeddings."""

    @pytest.fixture
    def chat_only(self, monkeypatch):
        for name in ["AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "FEEDBACK_EMBEDDINGS", "OPENAI_EMBEDDING_MODEL",
                     "OPENAI_EMBEDDING_BASE_URL"]:
            monkeypatch.delenv(name, raising=False)
        with LoopbackOpenAI(serve_embeddings=False) as server:
            monkeypatch.setenv("OPENAI_API_KEY", DEFAULT_API_KEY)
            monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
            yield server

    def test_a_chat_server_alone_themes_with_the_local_model(self, spark, feedback_home, warehouse, chat_only):
        with dg.instance_for_test() as instance:
            metadata = materialize(feedback_home, warehouse, instance, DAY_1, DAY_2, ThemesResource())
        assert metadata["embedding_model"] == LocalEmbedder().name and metadata["embedded_now"] == 10
        assert chat_only.requests == []

    def test_embeddings_asked_of_a_chat_only_server_fail_with_the_way_out(self, spark, feedback_home, warehouse,
                                                                         chat_only, monkeypatch):
        monkeypatch.setenv("OPENAI_EMBEDDING_MODEL", "text-embedding-3-small")
        resources = {"step_runner": LocalStepRunner(pyspark=local_spark_resource(settings_for(feedback_home))), "table_store": warehouse,
                     "themes": ThemesResource()}
        with dg.instance_for_test() as instance:
            result = dg.materialize([feedback_themes], resources=resources, instance=instance, tags=ranged(DAY_1, DAY_2),
                                    raise_on_error=False)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        message = failure.step_failure_data.error.message + (failure.step_failure_data.user_failure_data.description or "")
        assert "HTTP 404" in message and "FEEDBACK_EMBEDDINGS=local" in message

    def test_embeddings_can_be_served_by_another_server(self, spark, feedback_home, warehouse, chat_only, monkeypatch):
        with LoopbackOpenAI() as embeddings_server, dg.instance_for_test() as instance:
            monkeypatch.setenv("OPENAI_EMBEDDING_MODEL", "text-embedding-3-small")
            monkeypatch.setenv("OPENAI_EMBEDDING_BASE_URL", embeddings_server.base_url)
            metadata = materialize(feedback_home, warehouse, instance, DAY_1, DAY_2, ThemesResource())
            assert embeddings_server.embedding_calls > 0
        assert metadata["embedding_model"] == "text-embedding-3-small" and chat_only.requests == []

    @pytest.mark.parametrize(("env", "expected"), [
        ({}, None),
        ({"OPENAI_API_KEY": "k"}, "text-embedding-3-small"),  # api.openai.com serves embeddings
        ({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}, None),  # maybe chat only: local
        ({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "OPENAI_EMBEDDING_MODEL": "bge"}, "bge"),
        ({"AZURE_OPENAI_ENDPOINT": "https://x", "AZURE_OPENAI_API_KEY": "k"}, None),
        ({"AZURE_OPENAI_ENDPOINT": "https://x", "AZURE_OPENAI_API_KEY": "k", "AZURE_OPENAI_EMBEDDING_DEPLOYMENT": "emb"}, "emb"),
    ])
    def test_auto_embeds_through_the_api_only_when_embeddings_are_configured(self, env, expected):
        choice = embedding_choice("auto", env)
        assert (choice[1] if choice else None) == expected
