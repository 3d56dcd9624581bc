"""The offline backend: a multilingual sentence embedder and a small trained head over the taxonomy.

Every sentence of an item, and the item as a whole (the mean of its sentences), is embedded and
scored by a logistic-regression head fitted on the taxonomy's descriptions and examples and the
written training examples in `prompts/local_training/` (never on an evaluation set). A label's score is half its best sentence's log-probability and half the whole
item's, so a review that complains about two things gets two labels, each with the sentence that
says it as evidence. The star rating moves the line between praise and complaint (a 5-star "love
it, runs a bit small" is praise with a minor fit note; the same words at 2 stars are a complaint).
Confidence is the temperature-scaled probability of the primary label; below
`review_below_confidence` the item is left for an analyst.

Analyst corrections are also a memory: an item at least `memory_threshold` cosine-similar to a
corrected text, each taken as a whole, takes that correction's label as primary, with the
similarity as confidence.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from feedback_assets.enrichment.embedders import Encoder, configured_model
from feedback_assets.enrichment.entities import EntityCatalog
from feedback_assets.enrichment.evidence import split_sentences
from feedback_assets.enrichment.models import FeedbackItem
from feedback_assets.enrichment.review import PRAISE, Producer, classification_record
from feedback_assets.enrichment.taxonomy import Taxonomy, content_version, prompts_dir

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
TRAINING_EXAMPLES = "local_training"
UNCLEAR = "other_unclear"


@dataclass(frozen=True)
class LocalParams:
    """The head's settings and the thresholds of the decision; cosine thresholds depend on the embedder."""

    head_c: float = 10.0
    whole_weight: float = 0.5
    rating_weight: float = 1.0  # log-odds of praise per star away from 3 (halved: 5 stars → +1)
    unclear_penalty: float = 0.0  # log-odds taken from other_unclear: it should win only when nothing else fits
    temperature: float = 1.0
    secondary_margin: float = 3.0  # how far (log-probability) below the primary a second label may score
    secondary_floor: float = 0.2  # the probability its clearest sentence must give it
    max_labels: int = 3
    review_below_confidence: float = 0.35
    tone_scale: float = 4.0
    sentiment_rating_weight: float = 0.6
    churn_threshold: float = 0.62
    memory_threshold: float = 0.9


# Cosine similarities of one model are not those of another: e5 puts any two texts at 0.7-0.9.
PARAMS_BY_MODEL = {
    "minilm": LocalParams(rating_weight=3.0, unclear_penalty=1.0, temperature=0.7),
    "use": LocalParams(rating_weight=3.0, unclear_penalty=1.0, temperature=0.7, churn_threshold=0.42,
                       memory_threshold=0.85),
    "e5": LocalParams(rating_weight=3.0, unclear_penalty=1.0, temperature=0.5, tone_scale=12.0, churn_threshold=0.88,
                      memory_threshold=0.95),
}


def default_params(model: str | None = None) -> LocalParams:
    """The tuned parameters of `model` (the configured embedder when not given)."""
    return PARAMS_BY_MODEL[model or configured_model()]


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
        self._unclear = labels.index(UNCLEAR)
        unknown = sorted({p.label for p in [*self.prototypes, *self.corrections]} - set(labels))
        if unknown:
            raise ValueError(f"examples or corrections filed under labels the taxonomy does not have: {', '.join(unknown)}")
        # Corrections are not fitted: the head is part of the version, and an import must not make every
        # classified day stale; the memory below applies them at once, and each corrected item is settled anyway.
        self._head = fit_head(text_embeddings(self.encoder, [p.text for p in self.prototypes]),
                              np.array([labels.index(p.label) for p in self.prototypes]), len(labels), self.params.head_c)
        anchors = self.encoder.encode([*POSITIVE_ANCHORS, *NEGATIVE_ANCHORS, *CHURN_ANCHORS])
        self._positive = anchors[: len(POSITIVE_ANCHORS)]
        self._negative = anchors[len(POSITIVE_ANCHORS): len(POSITIVE_ANCHORS) + len(NEGATIVE_ANCHORS)]
        self._churn = anchors[len(POSITIVE_ANCHORS) + len(NEGATIVE_ANCHORS):]
        self._correction_matrix = text_embeddings(self.encoder, [c.text for c in self.corrections])

    @property
    def model(self) -> str:
        return self.encoder.name

    @property
    def version(self) -> str:
        """Changes whenever the model, the training examples, the parameters or the taxonomy change."""
        return local_version(self.taxonomy, self.prototypes, self.params, self.encoder.key)

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

    def classify(self, items: Sequence[FeedbackItem]) -> list[dict]:
        producer = Producer("local", self.model, self.version, self.taxonomy)
        sentences = [split_sentences(item.text) for item in items]
        embeddings = self.encoder.encode([s for group in sentences for s in group])
        wholes = _as_wholes(embeddings, sentences) if items else embeddings
        # An analyst labelled a whole item, so the whole item (not one of its sentences) must match a
        # corrected text: a sentence shared with a corrected item ("Still waiting.") says little of its primary.
        recalled = self._recall(wholes)
        sentence_scores = self._head.predict_log_proba(embeddings) if len(embeddings) else embeddings
        whole_scores = self._head.predict_log_proba(wholes) if len(wholes) else wholes
        results, offset = [], 0
        for index, (item, group, recollection) in enumerate(zip(items, sentences, recalled, strict=True)):
            span = slice(offset, offset + len(group))
            offset += len(group)
            results.append(self._decide(item, group, embeddings[span], sentence_scores[span], whole_scores[index],
                                        recollection, producer))
        return results

    def _decide(self, item: FeedbackItem, sentences: list[str], embeddings: np.ndarray, sentence_scores: np.ndarray,
                whole_score: np.ndarray, recollection: Recollection | None, producer: Producer) -> dict:
        params = self.params
        praise = self._labels.index(PRAISE)
        label_score = (1 - params.whole_weight) * sentence_scores.max(axis=0) + params.whole_weight * whole_score
        best_sentence = sentence_scores.argmax(axis=0)
        if item.rating is not None:
            label_score[praise] += params.rating_weight * (item.rating - 3) / 2
        label_score[self._unclear] -= params.unclear_penalty
        probabilities = _softmax(label_score / params.temperature)
        primary = int(label_score.argmax())
        chosen = [primary]
        # A second issue is what another sentence mainly says, said clearly enough, and not far below the primary.
        sentence_top = sentence_scores.argmax(axis=1)
        candidates = sorted({int(label) for label in sentence_top} - {primary, praise, self._unclear},
                            key=lambda label: -label_score[label])
        for label in candidates:
            if len(chosen) == params.max_labels:
                break
            said_clearly = np.exp(sentence_scores[:, label].max()) >= params.secondary_floor
            if said_clearly and label_score[label] >= label_score[primary] - params.secondary_margin:
                chosen.append(label)
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
            closeness = (embeddings @ self._positive.T).max(axis=1) - (embeddings @ self._negative.T).max(axis=1)
            tone = float(np.tanh(self.params.tone_scale * closeness.mean()))
        else:
            tone = 0.0
        if rating is None:
            return tone
        weight = self.params.sentiment_rating_weight
        return float(np.clip(weight * (rating - 3) / 2 + (1 - weight) * tone, -1, 1))


def fit_head(features: np.ndarray, targets: np.ndarray, classes: int, c: float) -> LogisticRegression:
    """A multinomial logistic regression over every label (classes without an example are never predicted)."""
    missing = sorted(set(range(classes)) - set(targets.tolist()))
    if missing:
        raise ValueError(f"labels without a single example or description: {missing}")
    return LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(features, targets)


def training_examples(taxonomy: Taxonomy, directory: Path | None = None) -> list[Prototype]:
    """The written training examples (`prompts/local_training/*.jsonl`) of labels the taxonomy has."""
    directory = directory or prompts_dir() / TRAINING_EXAMPLES
    examples = []
    for path in sorted(directory.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                    examples.append(Prototype(str(record["label"]), str(record["text"])))
                except (json.JSONDecodeError, KeyError, TypeError) as error:
                    raise ValueError(f"{path}:{number}: not a training example ({error})") from error
    return [e for e in examples if e.label in taxonomy.labels]


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


def local_version(taxonomy: Taxonomy, prototypes: Sequence[Prototype], params: LocalParams, model: str) -> str:
    """The local classifier's version without loading its model: embedder, taxonomy, training examples and parameters
    (the memory's floor included). The corrections it remembers are not part of it: an import would otherwise mark all of history
    stale, and each corrected item is settled by `feedback_labels` anyway."""
    return "local-" + content_version(model.encode(), taxonomy.version.encode(), _lines(prototypes).encode(),
                                      repr(params).encode())


def _lines(prototypes: Sequence[Prototype]) -> str:
    return "\n".join(f"{p.label}\t{p.text}" for p in prototypes)


def taxonomy_prototypes(taxonomy: Taxonomy, extra: Sequence[Prototype] = ()) -> list[Prototype]:
    """Description and examples of every label, plus the `extra` prototypes of labels the taxonomy has.

    What the head is fitted on is `taxonomy_prototypes(taxonomy, training_examples(taxonomy))`."""
    prototypes = [Prototype(label.id, label.description) for label in taxonomy.labels.values()]
    prototypes += [Prototype(label.id, example) for label in taxonomy.labels.values() for example in label.examples]
    return prototypes + [p for p in extra if p.label in taxonomy.labels]


def known_corrections(taxonomy: Taxonomy, corrections: Sequence[Prototype]) -> list[Prototype]:
    """The corrections whose label the taxonomy still has: a removed label cannot be recalled."""
    return [c for c in corrections if c.label in taxonomy.labels]
