"""Triage corrections and the local classifier: the corrections memory at a similarity floor against the pool fitted into the head.

What it measures: how analysts' corrections move the local classifier's golden-set macro-F1,
accuracy and calibration error (ECE), without leakage, for each way of using them. The golden set
is split k-fold (shuffled with `random.Random(seed)`, for several seeds). For each held-out fold,
the other folds' items become a corrections pool, as if an analyst had corrected every one of
them: a `Correction` whose label is the item's gold `primary_label` and whose text is prepared as
silver prepares it (`prepare_text`). The pool goes through `resources.enrichment.correction_prototypes`
(→ `prototypes_from`, which caps per label and dedups by text). Each design is scored with
`gate.score_golden` on the held-out fold only, next to the same fold scored without a pool (the
production classifier of `--model`, the configured embedder by default), so every delta is paired. Designs:

- memory ≥ floor (production, `local_classifier(pool, params=replace(default_params(), memory_threshold=floor))`):
  an item at least `floor` cosine-similar to a corrected text, each as a whole (`local.text_embeddings`:
  the mean of its sentence embeddings), takes the correction's label, with the similarity as confidence;
- in the head: the pool fitted into the logistic-regression head as extra training examples
  (`taxonomy_prototypes(taxonomy, training_examples(taxonomy)) + pool`), no memory;
- in the head + memory ≥ the model's default floor.

Scenarios:

- golden: the held-out fold as it is (the golden items are distinct hand-written cases; no wording recurs);
  also with a pool of only the training items the unaided classifier got wrong, the ones an analyst would correct;
- recurring: production, where wording recurs. Each held-out item is rewritten by `perturb` (case,
  punctuation, a word added or removed, the order of its sentences; deterministic per seed and
  item) and its original is in the pool beside the training fold's items: with one edit per item,
  and with all four;
- siblings: hand-written minimal pairs of sibling labels ("run small" / "run large"): one side is
  the pool, the other is classified, and the count of texts a wrong-label correction takes over is the
  risk a low floor (or a head trained on the pool) runs.

Beside them, how alike each golden item and its rewording are, by edit: what a floor lets the memory catch.

    .venv/bin/python bench/corrections_effect.py [--folds 2] [--seeds 0 1 2 3 4] [--floors 0.7 0.75 0.8 0.85 0.9 0.95] [--model use]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feedback_assets.enrichment import local  # noqa: E402
from feedback_assets.enrichment.corrections import MAX_TEXT_CHARS, Correction  # noqa: E402
from feedback_assets.enrichment.embedders import EMBEDDERS, Encoder, configured_model, encoder_for  # noqa: E402
from feedback_assets.enrichment.gate import golden_items, score_golden  # noqa: E402
from feedback_assets.enrichment.items import prepare_text  # noqa: E402
from feedback_assets.enrichment.local import (  # noqa: E402
    LocalClassifier,
    Prototype,
    default_params,
    taxonomy_prototypes,
    text_embeddings,
    training_examples,
)
from feedback_assets.enrichment.models import FeedbackItem  # noqa: E402
from feedback_assets.enrichment.service import local_classifier  # noqa: E402
from feedback_assets.enrichment.taxonomy import Taxonomy, load_taxonomy  # noqa: E402
from resources.enrichment import correction_prototypes  # noqa: E402

CORRECTED_AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
FEEDBACK_DATE = date(2026, 11, 30)
HEAD = "in the head"

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

Design = Callable[[list[Prototype]], LocalClassifier]  # a corrections pool → the classifier under test


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


def memory(model: str, floor: float) -> Design:
    """Production: `local_classifier` with the pool as its corrections memory, at `floor`."""
    params = replace(default_params(model), memory_threshold=floor)
    return lambda pool: local_classifier(pool, params=params, model=model)


def in_head(taxonomy: Taxonomy, model: str, remembered: bool = False) -> Design:
    """The pool as extra training examples of the head; `remembered`: also the memory, at the model's default floor."""
    def build(pool: list[Prototype]) -> LocalClassifier:
        return LocalClassifier(taxonomy, encoder_for(model), taxonomy_prototypes(taxonomy, training_examples(taxonomy)) + pool,
                               params=default_params(model), corrections=pool if remembered else ())
    return build


def fitting_each_head_once() -> None:
    """Makes `local.fit_head` fit each distinct training set once (the fit is deterministic).

    A fit takes seconds, and most designs differ only in their memory: every floor, and the head with
    or without the memory, would otherwise refit the same head for every pool."""
    fit = local.fit_head
    heads: dict[bytes, LogisticRegression] = {}

    def fit_once(features: np.ndarray, targets: np.ndarray, classes: int, c: float) -> LogisticRegression:
        key = hashlib.sha256(features.tobytes() + targets.tobytes() + repr((features.shape, classes, c)).encode()).digest()
        if key not in heads:
            heads[key] = fit(features, targets, classes, c)
        return heads[key]

    local.fit_head = fit_once


def score(classifier: LocalClassifier, taxonomy: Taxonomy, items: list[dict]) -> Score:
    """`gate.score_golden` on `items`, keeping each item's predicted primary label and what the memory decided."""
    predicted: dict[str, str] = {}
    recalled: dict[str, str] = {}

    def classify(batch: Sequence[FeedbackItem]) -> list[dict]:
        results = classifier.classify(batch)
        predicted.update((r["id"], r["primary_label"]) for r in results)
        recollections = classifier.recall([item.text for item in batch])
        recalled.update((item.id, r.label) for item, r in zip(batch, recollections, strict=True) if r)
        return results

    result, _ = score_golden(classify, taxonomy, items, "bench", "local", classifier.model)
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


def rewordings(encoder: Encoder, golden: list[dict], seeds: Sequence[int], floors: Sequence[float]) -> None:
    """How alike (as the memory compares texts) each golden item and its `perturb` rewording are, by edit."""
    originals = text_embeddings(encoder, [prepare_text(item["text"]) for item in golden])
    cosines: dict[str, list[float]] = {}
    for seed in seeds:
        for name, edits in [*((edit, (edit,)) for edit in EDITS), ("all four", EDITS)]:
            rewritten = [perturb(item["text"], random.Random(f"{seed}:{item['id']}:{name}"), edits) for item in golden]
            similarity = np.einsum("ij,ij->i", originals, text_embeddings(encoder, [prepare_text(t) for t in rewritten]))
            for item, text, cosine in zip(golden, rewritten, similarity, strict=True):
                if name == "order" and len(_SENTENCE_BREAK.split(item["text"].strip())) < 2:
                    continue
                # The case edit is one of two, and an embedder may read upper case very differently from lower.
                kind = ("upper case" if text.isupper() else "lower case") if name == "case" else name
                cosines.setdefault(kind, []).append(float(cosine))
    print(f"\n### Cosine of a rewording to its original (golden items, seeds {list(seeds)}; as the memory compares texts)\n")
    print("| edit | texts | min | 10th percentile | median | " + " | ".join(f"≥ {floor:.2f}" for floor in floors) + " |")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(floors))
    for kind, values in cosines.items():
        low, tenth, median = np.quantile(values, [0, 0.1, 0.5])
        shares = " | ".join(f"{np.mean(np.asarray(values) >= floor):.0%}" for floor in floors)
        print(f"| {kind} | {len(values)} | {low:.3f} | {tenth:.3f} | {median:.3f} | {shares} |")


def siblings(designs: list[tuple[str, Design]], plain: LocalClassifier, default_floor: float) -> None:
    """Each side of the minimal pairs in the pool, the other side classified: what the pool fixes and breaks."""
    first = [Prototype(label, text) for label, text, _, _ in SIBLINGS]
    second = [Prototype(label, text) for _, _, label, text in SIBLINGS]
    cosines = [float(a @ b) for a, b in zip(text_embeddings(plain.encoder, [p.text for p in first]),
                                            text_embeddings(plain.encoder, [p.text for p in second]), strict=True)]
    print(f"\n### Siblings: {len(SIBLINGS)} hand-written minimal pairs of sibling labels, each side classified "
          f"with the other side in the pool\n")
    print(f"pair cosine: min {min(cosines):.3f}, median {statistics.median(cosines):.3f}, max {max(cosines):.3f}; "
          f"pairs at or above 0.80: {sum(c >= 0.8 for c in cosines)}, 0.85: {sum(c >= 0.85 for c in cosines)}, "
          f"0.90: {sum(c >= 0.9 for c in cosines)}")
    for (_, text, _, other), cosine in zip(SIBLINGS, cosines, strict=True):
        if cosine >= default_floor:
            print(f"at or above the default floor: {cosine:.3f} {text!r} / {other!r}")
    print("\n| design | right without a pool | right with it | texts relabelled | fixed / broken |")
    print("|---|---:|---:|---:|---:|")
    for name, build in designs:
        right_without = right_with = relabelled = fixed = broken = 0
        for pool, classified in ((first, second), (second, first)):
            items = [FeedbackItem(f"s{i}", p.text) for i, p in enumerate(classified)]
            without = plain.classify(items)
            with_pool = build(pool).classify(items)
            for p, a, b in zip(classified, without, with_pool, strict=True):
                was, now = a["primary_label"] == p.label, b["primary_label"] == p.label
                right_without += was
                right_with += now
                relabelled += a["primary_label"] != b["primary_label"]
                fixed += now and not was
                broken += was and not now
        print(f"| {name} | {right_without} / {2 * len(SIBLINGS)} | {right_with} / {2 * len(SIBLINGS)} "
              f"| {relabelled} | {fixed} / {broken} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--floors", type=float, nargs="+", default=[0.7, 0.75, 0.8, 0.85, 0.9, 0.95],
                        help="memory similarity floors to sweep (the model's default floor is always among them)")
    parser.add_argument("--model", choices=sorted(EMBEDDERS), default=None,
                        help="the embedder (FEEDBACK_LOCAL_MODEL, or use, when not given)")
    args = parser.parse_args()
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    model = args.model or configured_model()
    default_floor = default_params(model).memory_threshold
    floors = sorted({*args.floors, default_floor})
    started = time.perf_counter()
    fitting_each_head_once()
    taxonomy = load_taxonomy()
    golden = [item for item in golden_items() if item["primary_label"] in taxonomy.labels]
    baseline = local_classifier(model=model)
    model_label = {r["id"]: r["primary_label"] for r in baseline.classify(
        [FeedbackItem(str(g["id"]), prepare_text(g["text"]), g.get("rating"), g.get("channel")) for g in golden])}
    embeddings = text_embeddings(baseline.encoder, [prepare_text(g["text"]) for g in golden])
    similarity = embeddings @ embeddings.T
    other_label = np.array([[a["primary_label"] != b["primary_label"] for b in golden] for a in golden])
    print(f"{model} ({baseline.model}): {len(golden)} golden items, {len(taxonomy.label_ids)} labels, "
          f"{len(baseline.prototypes)} training examples; k={args.folds}, seeds {args.seeds}, default floor {default_floor}")
    print(f"highest cosine (as the memory compares texts) between two golden items of different labels: "
          f"{similarity[other_label].max():.3f}; "
          f"of the same label: {np.where(np.eye(len(golden), dtype=bool) | other_label, -1, similarity).max():.3f}")

    remembering = f"memory ≥ {default_floor:.2f}"
    both = f"{HEAD} + memory ≥ {default_floor:.2f}"
    designs: list[tuple[str, Design]] = [
        *((f"memory ≥ {floor:.2f}", memory(model, floor)) for floor in floors),
        (HEAD, in_head(taxonomy, model)),
        (both, in_head(taxonomy, model, remembered=True)),
    ]
    scenarios = ("golden", "recurring, one edit per item", "recurring, all four edits")
    runs: dict[tuple[str, str], list[Run]] = {(s, name): [] for s in scenarios for name, _ in designs}
    mistakes: dict[str, list[Run]] = {name: [] for name in (remembering, HEAD, both)}
    folds: list[tuple[int, int, int, int, Run, Run]] = []  # seed, fold, held-out, pool, head run, memory run
    sanity: list[tuple[float, float]] = []  # training-fold accuracy without and with its own pool as memory
    for seed in args.seeds:
        order = list(golden)
        random.Random(seed).shuffle(order)
        for fold in range(args.folds):
            held_out = [item for position, item in enumerate(order) if position % args.folds == fold]
            training = [item for position, item in enumerate(order) if position % args.folds != fold]
            training_pool = correction_prototypes(as_corrections(training, model_label))
            with_originals = correction_prototypes(as_corrections(training + held_out, model_label))
            rewritten = {scenario: recurring(held_out, seed, all_edits=scenario == scenarios[2]) for scenario in scenarios[1:]}
            # Both recurring scenarios share a pool, and so each design's classifier.
            cases = [(training_pool, {scenarios[0]: held_out}), (with_originals, rewritten)]
            bases = {scenario: score(baseline, taxonomy, items) for _, scored in cases for scenario, items in scored.items()}
            for pool, scored in cases:
                for name, build in designs:
                    classifier = build(pool)
                    for scenario, items in scored.items():
                        runs[scenario, name].append(paired(bases[scenario], score(classifier, taxonomy, items), items))
            wrong_only = correction_prototypes([c for c in as_corrections(training, model_label)
                                                if c.previous_label != c.label])
            for name, build in designs:
                if name in mistakes:
                    mistakes[name].append(paired(bases["golden"], score(build(wrong_only), taxonomy, held_out), held_out))
            folds.append((seed, fold, len(held_out), len(training_pool),
                          runs["golden", HEAD][-1], runs["golden", remembering][-1]))
            # Sanity check of the wiring (not a quality figure): the pool's own items should now come out right.
            sanity.append((score(baseline, taxonomy, training).accuracy,
                           score(memory(model, default_floor)(training_pool), taxonomy, training).accuracy))

    print(f"\n### Golden, per held-out fold (pool = the whole training fold; memory at {default_floor:.2f})\n")
    print("| seed | fold | held-out items | pool | macro-F1 without → in the head → memory "
          "| ECE without → in the head → memory | fixed / broken, in the head | fixed / broken, memory |")
    print("|---:|---:|---:|---:|---|---|---:|---:|")
    for seed, fold, held, pool, head, kept in folds:
        print(f"| {seed} | {fold} | {held} | {pool} | {head.base.macro_f1:.3f} → {head.pooled.macro_f1:.3f} → "
              f"{kept.pooled.macro_f1:.3f} | {head.base.ece:.3f} → {head.pooled.ece:.3f} → {kept.pooled.ece:.3f} "
              f"| {head.fixed} / {head.broken} | {kept.fixed} / {kept.broken} |")
    print(f"\nsanity (wiring, not quality): accuracy on the pool's own items "
          f"{statistics.fmean(b for b, _ in sanity):.3f} without the memory → {statistics.fmean(w for _, w in sanity):.3f} with it")
    for scenario in scenarios:
        title = f"{scenario.capitalize()} (mean ± std over {len(folds)} held-out folds; deltas paired)"
        summary(title, [(name, runs[scenario, name]) for name, _ in designs])
        unpooled = runs[scenario, designs[0][0]]
        print(f"\nwithout a pool: macro-F1 {mean_std([r.base.macro_f1 for r in unpooled])}, "
              f"accuracy {mean_std([r.base.accuracy for r in unpooled])}, ECE {mean_std([r.base.ece for r in unpooled])}")
        if scenario == "golden":
            summary("Golden, pool = only the training items the unaided classifier got wrong", list(mistakes.items()))
    rewordings(baseline.encoder, golden, args.seeds, floors)
    siblings(designs, baseline, default_floor)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
