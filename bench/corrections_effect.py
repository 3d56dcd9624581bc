"""Triage corrections and the local classifier: the rejected design (prototypes) against the corrections memory.

What it measures: how analysts' corrections move the local classifier's golden-set macro-F1,
accuracy and calibration error (ECE), without leakage, for each way of using them. The golden set
is split k-fold (shuffled with `random.Random(seed)`, for several seeds). For each held-out fold,
the other folds' items become a corrections pool, as if an analyst had corrected every one of
them: a `Correction` whose label is the item's gold `primary_label` and whose text is prepared as
silver prepares it (`prepare_text`). The pool goes through `resources.enrichment.correction_prototypes`
(→ `prototypes_from`, which caps per label and dedups by text). Each design is scored with
`gate.score_golden` on the held-out fold only, next to the same fold scored without a pool, so
every delta is paired. Designs:

- rejected: the pool as extra prototypes of the local classifier (what production did before);
- rejected, diagnosis: the pool in the label centroids only, the nearest prototype over the taxonomy's own;
- memory ≥ floor (production, `local_classifier(corrections, params)`): an item at least `floor`
  cosine-similar to a corrected text, each as a whole (`local.text_embeddings`: the mean of its
  sentence embeddings), takes the correction's label, with the similarity as confidence;
- memory ≥ default floor, plus the pool in the centroids;
- diagnosis: the memory matched on the item's best sentence instead of the item as a whole.

Scenarios:

- golden: the held-out fold as it is (the golden items are distinct hand-written cases; no wording recurs);
- recurring: production, where wording recurs. Each held-out item is rewritten by `perturb` (case,
  punctuation, a word added or removed, the order of its sentences; deterministic per seed and
  item) and its original is in the pool beside the training fold's items: with one edit per item,
  and with all four;
- siblings: hand-written minimal pairs of sibling labels ("run small" / "run large"): one side is
  the pool, the other is classified, and the count of texts a wrong-label memory takes over is the
  risk a low floor runs.

    .venv/bin/python bench/corrections_effect.py [--folds 2] [--seeds 0 1 2 3 4] [--floors 0.7 0.75 0.8 0.85 0.9 0.95]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feedback_assets.enrichment.corrections import MAX_TEXT_CHARS, Correction  # noqa: E402
from feedback_assets.enrichment.evidence import split_sentences  # noqa: E402
from feedback_assets.enrichment.gate import golden_items, score_golden  # noqa: E402
from feedback_assets.enrichment.items import prepare_text  # noqa: E402
from feedback_assets.enrichment.local import (  # noqa: E402
    MODEL_NAME,
    LocalClassifier,
    LocalParams,
    Prototype,
    Recollection,
    default_encoder,
    taxonomy_prototypes,
    text_embeddings,
)
from feedback_assets.enrichment.models import FeedbackItem  # noqa: E402
from feedback_assets.enrichment.service import local_classifier  # noqa: E402
from feedback_assets.enrichment.taxonomy import Taxonomy, load_taxonomy  # noqa: E402
from resources.enrichment import correction_prototypes  # noqa: E402

CORRECTED_AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
FEEDBACK_DATE = date(2026, 11, 30)
DEFAULT_FLOOR = LocalParams().memory_threshold

FILLERS = ("honestly", "really", "just", "so", "tbh", "again")
# A removed negation would change what the item says, and so its gold label.
NEGATIONS = frozenset({"not", "no", "never", "nor", "nothing", "none", "without", "cannot"})
EDITS = ("order", "word", "punctuation", "case")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")

# (label, text, sibling label, sibling text): the same wording, a different analyst's decision.
SIBLINGS = (
    ("size_runs_small", "These shoes run small, order a size up.", "size_runs_large", "These shoes run large, order a size down."),
    ("size_runs_small", "The jacket is a size too small.", "size_runs_large", "The jacket is a size too big."),
    ("size_runs_small", "Runs small.", "size_runs_large", "Runs big."),
    ("fit_cut_issue", "The sleeves are far too long for the size.", "size_runs_large", "The whole shirt is far too big for the size."),
    ("delivery_delay", "The package arrived a week late.", "damaged_in_transit", "The package arrived crushed and torn open."),
    ("delivery_delay", "My order still has not arrived.", "refund_or_return_problem", "My refund still has not arrived."),
    ("tracking_communication", "Tracking has not updated in five days.", "delivery_delay", "Delivery is five days late."),
    ("wrong_or_missing_item", "I received someone else's order instead of mine.", "missing_parts", "I received my order but the screws were missing."),
    ("color_or_appearance_mismatch", "The colour looks nothing like the photo.", "not_as_described", "The material is nothing like the description."),
    ("defect_or_damage", "The zipper broke the first time I used it.", "poor_materials_or_durability", "The zipper wore out after a few months of use."),
    ("account_login_issue", "The app logs me out every time I open it.", "app_or_site_bug", "The app crashes every time I open it."),
    ("checkout_payment_issue", "Checkout fails every time I try to pay.", "account_login_issue", "Login fails every time I try to sign in."),
    ("praise_no_issue", "Great quality, I love it.", "price_value_concern", "Great quality, but far too expensive for what it is."),
    ("feature_request", "Please add a dark mode to the app.", "app_or_site_bug", "The dark mode in the app is broken."),
    ("support_unhelpful", "Support never answered my emails about the refund.", "refund_or_return_problem", "I never got the refund I was promised."),
    ("search_navigation_ux", "I can't find the size filter anywhere on the site.", "feature_request", "Please add a size filter to the site."),
)

Classify = Callable[[Sequence[FeedbackItem]], list[dict]]
Recall = Callable[[Sequence[FeedbackItem]], list[Recollection | None]]


@dataclass(frozen=True)
class Tested:
    """A design under test: how it classifies, and which items its memory decided (none for prototypes)."""

    classify: Classify
    recall: Recall


@dataclass(frozen=True)
class Score:
    macro_f1: float
    accuracy: float
    ece: float
    predicted: dict[str, str]  # held-out item id → primary label
    recalled: dict[str, str]  # held-out item id → the label the memory gave it


@dataclass(frozen=True)
class Run:
    """One held-out fold scored with one design and pool, next to the same fold's baseline."""

    base: Score
    pooled: Score
    fixed: int  # held-out items wrong without the pool and right with it
    broken: int  # right without, wrong with
    recalled_right: int  # items the memory decided that got their gold label


class CentroidOnlyPool(LocalClassifier):
    """Diagnosis only: the pool moves the label centroids; the nearest prototype is one of the taxonomy's own."""

    def __init__(self, taxonomy: Taxonomy, pool: list[Prototype], corrections: Sequence[Prototype] = (),
                 params: LocalParams | None = None):
        super().__init__(taxonomy, default_encoder(), taxonomy_prototypes(taxonomy, pool), params=params or LocalParams(),
                         corrections=corrections)
        self._own = len(taxonomy_prototypes(taxonomy))

    def label_scores(self, sentence_embeddings: np.ndarray) -> np.ndarray:
        similarity = sentence_embeddings @ self._prototype_matrix[: self._own].T
        labels = self._prototype_label[: self._own]
        nearest = np.stack([similarity[:, labels == index].max(axis=1) for index in range(len(self._labels))], axis=1)
        return 0.5 * nearest + 0.5 * (sentence_embeddings @ self._centroids.T)


def perturb(text: str, rng: random.Random, edits: Sequence[str] = EDITS) -> str:
    """The text as a customer might write it again: sentences rotated, a word added or removed, punctuation, case."""
    if "order" in edits:
        sentences = _SENTENCE_BREAK.split(text.strip())
        if len(sentences) > 1:
            turn = rng.randrange(1, len(sentences))
            text = " ".join(sentences[turn:] + sentences[:turn])
    if "word" in edits:
        words = text.split(" ")
        removable = [i for i, word in enumerate(words)
                     if word.strip(".,!?;:'\"").casefold() not in NEGATIONS and "n't" not in word.casefold()]
        if len(words) > 4 and removable and rng.random() < 0.5:
            del words[rng.choice(removable)]
        else:
            words.insert(rng.randrange(len(words) + 1), rng.choice(FILLERS))
        text = " ".join(words)
    if "punctuation" in edits:
        kind = rng.randrange(3)
        if kind == 0:
            text = text.replace(",", "")
        elif kind == 1:
            text = re.sub(r"[.!?]+(\s|$)", r"!\1", text)
        else:
            text = text.rstrip(".!? ") + "!!"
    if "case" in edits:
        text = text.lower() if rng.randrange(2) == 0 else text.upper()
    return text


def recurring(items: list[dict], seed: int, all_edits: bool) -> list[dict]:
    """The items rewritten by `perturb`: every edit, or one chosen per item (sentence order only where there are two)."""
    rewritten = []
    for item in items:
        rng = random.Random(f"{seed}:{item['id']}:{all_edits}")
        applicable = [e for e in EDITS if e != "order" or len(_SENTENCE_BREAK.split(item["text"].strip())) > 1]
        rewritten.append({**item, "text": perturb(item["text"], rng, EDITS if all_edits else [rng.choice(applicable)])})
    return rewritten


def as_corrections(items: list[dict], model_label: dict[str, str]) -> list[Correction]:
    """The items as an analyst's accepted corrections: gold primary label, text as silver keeps it."""
    return [Correction(
        feedback_id=str(item["id"]), feedback_date=FEEDBACK_DATE, label=item["primary_label"],
        previous_label=model_label.get(str(item["id"])), text=prepare_text(item["text"])[:MAX_TEXT_CHARS], note=None,
        analyst="bench", corrected_at=CORRECTED_AT + timedelta(seconds=index), source="bench/corrections_effect.py",
        source_sha256="0" * 64, line=index + 2,
    ) for index, item in enumerate(items)]


def nothing_recalled(batch: Sequence[FeedbackItem]) -> list[Recollection | None]:
    return [None] * len(batch)


def whole_item_recall(classifier: LocalClassifier) -> Recall:
    return lambda batch: classifier.recall([item.text for item in batch])


def as_prototypes(taxonomy: Taxonomy, pool: list[Prototype]) -> Tested:
    """The rejected design: corrections as ordinary prototypes."""
    return Tested(LocalClassifier(taxonomy, default_encoder(), taxonomy_prototypes(taxonomy, pool)).classify,
                  nothing_recalled)


def in_centroids(taxonomy: Taxonomy, pool: list[Prototype]) -> Tested:
    return Tested(CentroidOnlyPool(taxonomy, pool).classify, nothing_recalled)


def memory(floor: float) -> Callable[[Taxonomy, list[Prototype]], Tested]:
    """Production: `local_classifier` with the pool as its corrections memory, at `floor`."""
    def build(taxonomy: Taxonomy, pool: list[Prototype]) -> Tested:
        classifier = local_classifier(pool, params=LocalParams(memory_threshold=floor))
        return Tested(classifier.classify, whole_item_recall(classifier))
    return build


def memory_and_centroids(taxonomy: Taxonomy, pool: list[Prototype]) -> Tested:
    classifier = CentroidOnlyPool(taxonomy, pool, corrections=pool)
    return Tested(classifier.classify, whole_item_recall(classifier))


def best_sentence_memory(taxonomy: Taxonomy, pool: list[Prototype]) -> Tested:
    """Diagnosis: the memory at the default floor matched on each item's best sentence, not the item as a whole."""
    plain = local_classifier()
    remembering = local_classifier(pool)

    def recall(batch: Sequence[FeedbackItem]) -> list[Recollection | None]:
        sentences = [split_sentences(item.text) for item in batch]
        best = remembering.recall([s for group in sentences for s in group])
        found, offset = [], 0
        for group in sentences:
            hits = [r for r in best[offset: offset + len(group)] if r is not None]
            offset += len(group)
            found.append(max(hits, key=lambda r: r.similarity, default=None))
        return found

    def classify(batch: Sequence[FeedbackItem]) -> list[dict]:
        results = plain.classify(batch)
        for result, recollection in zip(results, recall(batch), strict=True):
            if recollection is not None:
                result.update(primary_label=recollection.label, confidence=round(recollection.similarity, 4))
        return results

    return Tested(classify, recall)


def score(tested: Tested, taxonomy: Taxonomy, items: list[dict]) -> Score:
    """`gate.score_golden` on `items`, keeping each item's predicted primary label and what the memory decided."""
    predicted: dict[str, str] = {}
    recalled: dict[str, str] = {}

    def classify(batch: Sequence[FeedbackItem]) -> list[dict]:
        results = tested.classify(batch)
        predicted.update((r["id"], r["primary_label"]) for r in results)
        recalled.update((item.id, r.label) for item, r in zip(batch, tested.recall(batch), strict=True) if r)
        return results

    result, _ = score_golden(classify, taxonomy, items, "bench", "local", MODEL_NAME)
    return Score(result.macro_f1, result.accuracy, result.calibration_error, predicted, recalled)


def paired(base: Score, pooled: Score, held_out: list[dict]) -> Run:
    gold = {str(item["id"]): item["primary_label"] for item in held_out}
    fixed = sum(base.predicted[i] != g and pooled.predicted[i] == g for i, g in gold.items())
    broken = sum(base.predicted[i] == g and pooled.predicted[i] != g for i, g in gold.items())
    return Run(base, pooled, fixed, broken, sum(label == gold[i] for i, label in pooled.recalled.items()))


def mean_std(values: list[float], signed: bool = False) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):{'+' if signed else ''}.3f} ± {spread:.3f}"


def summary(title: str, entries: list[tuple[str, list[Run]]]) -> None:
    print(f"\n### {title}\n")
    print("| design | macro-F1 | Δ macro-F1 | F1 folds better / worse | Δ accuracy | ECE | Δ ECE "
          "| items the memory decided (right) | fixed / broken |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, runs in entries:
        f1_deltas = [r.pooled.macro_f1 - r.base.macro_f1 for r in runs]
        cells = [mean_std([r.pooled.macro_f1 for r in runs]), mean_std(f1_deltas, signed=True),
                 f"{sum(d > 0 for d in f1_deltas)} / {sum(d < 0 for d in f1_deltas)}",
                 mean_std([r.pooled.accuracy - r.base.accuracy for r in runs], signed=True),
                 mean_std([r.pooled.ece for r in runs]), mean_std([r.pooled.ece - r.base.ece for r in runs], signed=True),
                 f"{sum(len(r.pooled.recalled) for r in runs)} ({sum(r.recalled_right for r in runs)})",
                 f"{sum(r.fixed for r in runs)} / {sum(r.broken for r in runs)}"]
        print(f"| {name} | " + " | ".join(cells) + " |")


def siblings(floors: list[float]) -> None:
    """Each side of the minimal pairs in the pool, the other side classified: what the memory fixes and breaks."""
    encoder = default_encoder()
    first = [Prototype(label, text) for label, text, _, _ in SIBLINGS]
    second = [Prototype(label, text) for _, _, label, text in SIBLINGS]
    cosines = [float(a @ b) for a, b in zip(text_embeddings(encoder, [p.text for p in first]),
                                            text_embeddings(encoder, [p.text for p in second]), strict=True)]
    print(f"\n### Siblings: {len(SIBLINGS)} hand-written minimal pairs of sibling labels, each side classified "
          f"with the other side in the pool\n")
    print(f"pair cosine: min {min(cosines):.3f}, median {statistics.median(cosines):.3f}, max {max(cosines):.3f}; "
          f"pairs at or above 0.80: {sum(c >= 0.8 for c in cosines)}, 0.85: {sum(c >= 0.85 for c in cosines)}, "
          f"0.90: {sum(c >= 0.9 for c in cosines)}")
    for (_, text, _, other), cosine in zip(SIBLINGS, cosines, strict=True):
        if cosine >= DEFAULT_FLOOR:
            print(f"at or above the default floor: {cosine:.3f} {text!r} / {other!r}")
    print("\n| floor | right without memory | right with memory | texts the memory relabelled | fixed / broken |")
    print("|---:|---:|---:|---:|---:|")
    plain = local_classifier()
    for floor in floors:
        right_without = right_with = relabelled = fixed = broken = 0
        for pool, classified in ((first, second), (second, first)):
            items = [FeedbackItem(f"s{i}", p.text) for i, p in enumerate(classified)]
            without = plain.classify(items)
            with_memory = local_classifier(pool, params=LocalParams(memory_threshold=floor)).classify(items)
            for p, a, b in zip(classified, without, with_memory, strict=True):
                was, now = a["primary_label"] == p.label, b["primary_label"] == p.label
                right_without += was
                right_with += now
                relabelled += a["primary_label"] != b["primary_label"]
                fixed += now and not was
                broken += was and not now
        print(f"| {floor:.2f} | {right_without} / {2 * len(SIBLINGS)} | {right_with} / {2 * len(SIBLINGS)} "
              f"| {relabelled} | {fixed} / {broken} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--floors", type=float, nargs="+", default=[0.7, 0.75, 0.8, 0.85, 0.9, 0.95],
                        help="memory similarity floors to sweep (the default floor is always among them)")
    args = parser.parse_args()
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    floors = sorted({*args.floors, DEFAULT_FLOOR})
    started = time.perf_counter()
    taxonomy = load_taxonomy()
    golden = [item for item in golden_items() if item["primary_label"] in taxonomy.labels]
    baseline = local_classifier()
    unaided = Tested(baseline.classify, nothing_recalled)
    model_label = {r["id"]: r["primary_label"] for r in baseline.classify(
        [FeedbackItem(str(g["id"]), prepare_text(g["text"]), g.get("rating"), g.get("channel")) for g in golden])}
    embeddings = text_embeddings(default_encoder(), [prepare_text(g["text"]) for g in golden])
    similarity = embeddings @ embeddings.T
    other_label = np.array([[a["primary_label"] != b["primary_label"] for b in golden] for a in golden])
    print(f"{len(golden)} golden items, {len(taxonomy.label_ids)} labels, {len(baseline.prototypes)} taxonomy "
          f"prototypes; k={args.folds}, seeds {args.seeds}, default floor {DEFAULT_FLOOR}")
    print(f"highest cosine (as the memory compares texts) between two golden items of different labels: "
          f"{similarity[other_label].max():.3f}; "
          f"of the same label: {np.where(np.eye(len(golden), dtype=bool) | other_label, -1, similarity).max():.3f}")

    designs: list[tuple[str, Callable[[Taxonomy, list[Prototype]], Tested]]] = [
        ("rejected: corrections as prototypes", as_prototypes),
        ("rejected, diagnosis: in the centroids only", in_centroids),
        *((f"memory ≥ {floor:.2f}", memory(floor)) for floor in floors),
        (f"memory ≥ {DEFAULT_FLOOR:.2f} + in the centroids", memory_and_centroids),
        (f"diagnosis: memory ≥ {DEFAULT_FLOOR:.2f} on the best sentence", best_sentence_memory),
    ]
    scenarios = ("golden", "recurring, one edit per item", "recurring, all four edits")
    runs: dict[tuple[str, str], list[Run]] = {(s, name): [] for s in scenarios for name, _ in designs}
    mistakes: dict[str, list[Run]] = {name: [] for name in ("rejected: corrections as prototypes", "memory (default floor)")}
    folds: list[tuple[int, int, int, int, Run, Run]] = []  # seed, fold, held-out, pool, prototypes run, memory run
    sanity: list[tuple[float, float]] = []  # training-fold accuracy without and with its own pool as memory
    for seed in args.seeds:
        order = list(golden)
        random.Random(seed).shuffle(order)
        for fold in range(args.folds):
            held_out = [item for position, item in enumerate(order) if position % args.folds == fold]
            training = [item for position, item in enumerate(order) if position % args.folds != fold]
            training_pool = correction_prototypes(as_corrections(training, model_label))
            with_originals = correction_prototypes(as_corrections(training + held_out, model_label))
            cases = [("golden", held_out, training_pool),
                     (scenarios[1], recurring(held_out, seed, all_edits=False), with_originals),
                     (scenarios[2], recurring(held_out, seed, all_edits=True), with_originals)]
            for scenario, items, pool in cases:
                base = score(unaided, taxonomy, items)
                for name, build in designs:
                    runs[scenario, name].append(paired(base, score(build(taxonomy, pool), taxonomy, items), items))
            base_golden = runs["golden", designs[0][0]][-1].base
            wrong_only = correction_prototypes([c for c in as_corrections(training, model_label)
                                                if c.previous_label != c.label])
            mistakes["rejected: corrections as prototypes"].append(
                paired(base_golden, score(as_prototypes(taxonomy, wrong_only), taxonomy, held_out), held_out))
            mistakes["memory (default floor)"].append(
                paired(base_golden, score(memory(DEFAULT_FLOOR)(taxonomy, wrong_only), taxonomy, held_out), held_out))
            folds.append((seed, fold, len(held_out), len(training_pool),
                          runs["golden", "rejected: corrections as prototypes"][-1],
                          runs["golden", f"memory ≥ {DEFAULT_FLOOR:.2f}"][-1]))
            # Sanity check of the wiring (not a quality figure): the pool's own items should now come out right.
            sanity.append((score(unaided, taxonomy, training).accuracy,
                           score(memory(DEFAULT_FLOOR)(taxonomy, training_pool), taxonomy, training).accuracy))

    print(f"\n### Golden, per held-out fold (pool = the whole training fold; memory at {DEFAULT_FLOOR:.2f})\n")
    print("| seed | fold | held-out items | pool | macro-F1 without → prototypes → memory "
          "| ECE without → prototypes → memory | fixed / broken, prototypes | fixed / broken, memory |")
    print("|---:|---:|---:|---:|---|---|---:|---:|")
    for seed, fold, held, pool, rejected, kept in folds:
        print(f"| {seed} | {fold} | {held} | {pool} | {rejected.base.macro_f1:.3f} → {rejected.pooled.macro_f1:.3f} → "
              f"{kept.pooled.macro_f1:.3f} | {rejected.base.ece:.3f} → {rejected.pooled.ece:.3f} → {kept.pooled.ece:.3f} "
              f"| {rejected.fixed} / {rejected.broken} | {kept.fixed} / {kept.broken} |")
    print(f"\nsanity (wiring, not quality): accuracy on the pool's own items "
          f"{statistics.fmean(b for b, _ in sanity):.3f} without the memory → {statistics.fmean(w for _, w in sanity):.3f} with it")
    for scenario in scenarios:
        title = f"{scenario.capitalize()} (mean ± std over {len(folds)} held-out folds; deltas paired)"
        summary(title, [(name, runs[scenario, name]) for name, _ in designs])
        unpooled = runs[scenario, designs[0][0]]
        print(f"\nwithout a pool: macro-F1 {mean_std([r.base.macro_f1 for r in unpooled])}, "
              f"accuracy {mean_std([r.base.accuracy for r in unpooled])}, ECE {mean_std([r.base.ece for r in unpooled])}")
        if scenario == "golden":
            summary("Golden, pool = only the training items the baseline got wrong", list(mistakes.items()))
    siblings(floors)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
