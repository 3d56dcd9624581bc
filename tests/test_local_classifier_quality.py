"""The offline classifier as a team meets it: multilingual, praise told from complaints, measured on real reviews."""

from __future__ import annotations

import json
import re
import shutil
import sys

import pytest
from typer.testing import CliRunner

from feedback_assets.cli import app
from feedback_assets.enrichment import evaluation
from feedback_assets.enrichment.embedders import EMBEDDERS, configured_model, encoder_for
from feedback_assets.enrichment.evalsets import (
    EvalSetUnavailable,
    golden_set,
    multilingual_set,
    real_review_set,
)
from feedback_assets.enrichment.local import training_examples
from feedback_assets.enrichment.models import FeedbackItem
from feedback_assets.enrichment.service import local_classifier
from feedback_assets.enrichment.taxonomy import load_taxonomy, prompts_dir
from tests.conftest import SHARED_DATA

TAXONOMY = load_taxonomy()
DOMAIN_OF = {label: TAXONOMY.domain_of(label) for label in TAXONOMY.label_ids}
needs_real_reviews = pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not present")


@pytest.fixture(scope="module")
def classifier():
    return local_classifier()


def one(classifier, text: str, rating: float | None) -> dict:
    [result] = classifier.classify([FeedbackItem("x", text, rating)])
    return result


class TestChoosingTheEmbedder:
    def test_the_default_is_the_multilingual_universal_sentence_encoder(self, monkeypatch):
        monkeypatch.delenv("FEEDBACK_LOCAL_MODEL", raising=False)
        assert configured_model() == "use"
        monkeypatch.setenv("FEEDBACK_LOCAL_MODEL", " E5 ")
        assert configured_model() == "e5"

    def test_an_unknown_model_is_refused_with_the_choices(self, monkeypatch):
        monkeypatch.setenv("FEEDBACK_LOCAL_MODEL", "bert")
        with pytest.raises(ValueError, match="use, e5, minilm"):
            configured_model()

    def test_minilm_without_torch_says_what_to_install(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "sentence_transformers", None)
        with pytest.raises(RuntimeError, match=r"feedback-to-fix\[minilm\]"):
            EMBEDDERS["minilm"].load(1)

    @pytest.mark.parametrize("model", ["use", "e5"])
    def test_each_embedder_gives_unit_vectors_and_its_own_version(self, model):
        vectors = encoder_for(model).encode(["Chegou quebrado.", "Arrived broken."])
        assert vectors.shape[0] == 2 and abs(float((vectors ** 2).sum(axis=1).max()) - 1) < 1e-4
        assert local_classifier(model=model).version != local_classifier(model="use" if model == "e5" else "e5").version


class TestPraiseAndComplaints:
    def test_a_happy_review_with_a_minor_note_is_praise_that_keeps_the_note(self, classifier):
        result = one(classifier, "Love this dress, so soft and flattering. Runs a bit small, so size up.", 5)
        assert result["primary_label"] == "praise_no_issue"
        assert [label["label"] for label in result["labels"]][1:] == ["size_runs_small"]
        assert "small" in result["labels"][1]["evidence"] and not result["needs_review"]

    def test_the_same_words_at_two_stars_are_a_complaint(self, classifier):
        result = one(classifier, "Love this dress, so soft and flattering. Runs a bit small, so size up.", 2)
        assert result["primary_label"] == "size_runs_small"

    @pytest.mark.parametrize(("text", "domain"), [
        ("Chegou quebrado, a tela não liga.", "product_quality"),
        ("El pedido lleva dos semanas de retraso y nadie me dice nada.", "delivery_fulfillment"),
        ("Die Zahlung schlägt in der App jedes Mal fehl.", "site_app_experience"),
        ("Je veux être remboursée, le retour a été accepté il y a un mois.", "service_experience"),
        ("Adorei, chegou rápido e muito bem embalado!", "other"),
    ])
    def test_complaints_in_other_languages_reach_their_team(self, classifier, text, domain):
        assert one(classifier, text, None)["domain"] == domain

    def test_text_with_nothing_to_act_on_is_unclear_not_a_guess(self, classifier):
        assert one(classifier, "hmm", None)["primary_label"] == "other_unclear"


class TestEvaluationSets:
    def test_the_real_review_set_stores_row_ids_and_labels_never_texts(self):
        lines = (prompts_dir() / "evalsets" / "real_reviews_v1.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        assert len(records) >= 300 and len({r["id"] for r in records}) == len(records)
        assert all(set(r) == {"id", "source", "row", "labels", "primary_label", "acceptable", "domain"} for r in records)
        assert all(r["labels"][0] == r["primary_label"] and DOMAIN_OF[r["primary_label"]] == r["domain"]
                   and set(r["labels"] + r["acceptable"]) <= set(DOMAIN_OF) for r in records)

    def test_the_multilingual_slice_adds_written_items_to_the_golden_sets_non_english_ones(self):
        items = multilingual_set().items
        languages = {item["language"] for item in items}
        assert {"pt", "es", "de", "fr", "it"} <= languages and "en" not in languages
        assert len(items) >= 150 and all(item["primary_label"] in DOMAIN_OF for item in items)

    def test_no_training_example_is_an_evaluation_item(self):
        def words(text):
            return re.sub(r"\W+", " ", text.lower()).strip()

        evaluated = {words(item["text"]) for s in (golden_set(), multilingual_set()) for item in s.items}
        assert not {words(e.text) for e in training_examples(TAXONOMY)} & evaluated

    @pytest.mark.realdata
    @needs_real_reviews
    def test_texts_come_from_the_exports_as_silver_prepares_them(self):
        items = real_review_set().items
        assert len(items) == 330 and all(item["text"] and item["rating"] in {1, 2, 3, 4, 5} for item in items)

    @pytest.mark.realdata
    @needs_real_reviews
    def test_an_export_that_is_not_the_labelled_file_is_refused(self, tmp_path):
        for name in ("womens_clothing_ecommerce_reviews.csv", "amazon_datafiniti_device_reviews_5k.csv"):
            shutil.copy(SHARED_DATA / name, tmp_path / name)
        with (tmp_path / "womens_clothing_ecommerce_reviews.csv").open("a") as handle:
            handle.write("\n")
        with pytest.raises(EvalSetUnavailable, match="MD5 differs"):
            real_review_set(tmp_path)
        with pytest.raises(EvalSetUnavailable, match="FEEDBACK_REVIEW_DATA"):
            real_review_set(tmp_path / "elsewhere")


@pytest.mark.realdata
@needs_real_reviews
def test_on_real_reviews_the_default_beats_always_answering_praise_and_knows_when_it_is_unsure(classifier):
    evalset = real_review_set()
    predicted = {r["id"]: r for r in classifier.classify(evalset.feedback())}
    report = evaluation.evaluate(evalset.items, predicted, TAXONOMY.label_ids, DOMAIN_OF)
    assert report.accuracy >= report.majority_accuracy + 0.15 and report.domain_accuracy >= 0.62
    assert report.accuracy_when_confident >= report.accuracy + 0.08, "what it is sure of is more often right"
    assert report.expected_calibration_error <= 0.1 and report.review_rate <= 0.45


def test_feedback_eval_prints_each_set_per_language_for_each_model():
    result = CliRunner().invoke(app, ["eval", "--set", "golden", "--set", "multilingual", "--models", "use,e5"])
    assert result.exit_code == 0, result.output
    for model in ("local use", "local e5"):
        assert model in result.output
    for row in ("golden ", "golden:en", "golden:pt", "multilingual ", "multilingual:it"):
        assert row in result.output
    assert "acc_ok" in result.output and "ECE" in result.output and "items/s" in result.output


def test_a_shouted_complaint_is_read_like_the_same_words_in_lower_case(classifier):
    shouted = one(classifier, "THE ZIPPER BROKE THE FIRST TIME I WORE IT. TOTAL WASTE OF MONEY.", 1)
    calm = one(classifier, "the zipper broke the first time i wore it. total waste of money.", 1)
    assert shouted["primary_label"] == calm["primary_label"] == "defect_or_damage"
