"""The evaluation gate: a classifier version is scored on the golden set and refused when it is worse than the accepted one.

Scores are kept per version (`ops.golden_evaluations`), so each version is scored once. The baseline
is the last accepted taxonomy version's score for the same backend, recorded by `feedback taxonomy
accept` in the taxonomy change log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import yaml

from feedback_assets import tables
from feedback_assets.enrichment.evaluation import EvalReport, evaluate, load_golden
from feedback_assets.enrichment.items import prepare_text
from feedback_assets.enrichment.models import FeedbackItem
from feedback_assets.enrichment.taxonomy import Taxonomy, content_version, prompts_dir

EVALUATIONS_SCHEMA = pa.schema([
    ("code_version", pa.string()), ("backend", pa.string()), ("model", pa.string()), ("taxonomy_version", pa.string()),
    ("evaluated_at", pa.timestamp("us", tz="UTC")), ("items", pa.int64()), ("macro_f1", pa.float64()),
    ("accuracy", pa.float64()), ("calibration_error", pa.float64()), ("per_label_f1", pa.string()),
    ("unclassified", pa.int64()), ("per_label", pa.string()),
])


@dataclass(frozen=True)
class GateConfig:
    max_macro_f1_drop: float = 0.02
    worst_labels_shown: int = 5


def load_gate_config(path: Path) -> GateConfig:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    config = GateConfig(**(raw or {}))
    if not 0 <= config.max_macro_f1_drop <= 1:
        raise ValueError(f"{path}: max_macro_f1_drop must be between 0 and 1, got {config.max_macro_f1_drop}")
    return config


@dataclass(frozen=True)
class GoldenScore:
    """One classifier version's golden-set score."""

    code_version: str
    backend: str
    model: str
    taxonomy_version: str
    evaluated_at: datetime
    items: int
    macro_f1: float
    accuracy: float
    calibration_error: float
    per_label_f1: dict[str, float]
    unclassified: int = 0  # golden items the classifier could not classify (counted as wrong)
    per_label: dict[str, dict[str, float]] = field(default_factory=dict)  # precision, recall, F1 and support per label

    @property
    def complete(self) -> bool:
        """Every golden item got an answer: the score says something about the version, not about an outage."""
        return self.unclassified == 0

    def as_evaluation(self) -> dict:
        """The score as the change log keeps it (per backend)."""
        return {"code_version": self.code_version, "model": self.model, "items": self.items,
                "macro_f1": round(self.macro_f1, 4), "accuracy": round(self.accuracy, 4),
                "calibration_error": round(self.calibration_error, 4),
                "per_label_f1": {k: round(v, 4) for k, v in sorted(self.per_label_f1.items())}}


def golden_items(paths: Sequence[Path] | None = None) -> list[dict]:
    return load_golden(list(paths) if paths else sorted((prompts_dir() / "golden").glob("*.jsonl")))


def score_golden(classify: Callable[[Sequence[FeedbackItem]], list[dict]], taxonomy: Taxonomy, golden: list[dict],
                 code_version: str, backend: str, model: str) -> tuple[GoldenScore, EvalReport]:
    """Classifies the golden items (prepared as silver prepares text) and scores the primary labels.

    Items whose gold label the taxonomy no longer has are left out (a removed label cannot be
    scored); an item the classifier could not classify counts as wrong.
    """
    scored = [item for item in golden if item["primary_label"] in taxonomy.labels]
    results = classify([FeedbackItem(str(i["id"]), prepare_text(i["text"]), i.get("rating"), i.get("channel"))
                        for i in scored])
    unanswered = {"primary_label": None, "labels": [], "confidence": 0.0, "needs_review": True}
    predicted = {r["id"]: r if not r.get("error") else {**r, **unanswered} for r in results}
    report = evaluate(scored, predicted, taxonomy.label_ids, {l: taxonomy.domain_of(l) for l in taxonomy.label_ids})
    score = GoldenScore(code_version, backend, model, taxonomy.version, datetime.now(UTC), report.items, report.macro_f1,
                        report.accuracy, report.expected_calibration_error,
                        {s.label: s.f1 for s in report.per_label if s.support},
                        unclassified=sum(bool(r.get("error")) for r in results),
                        per_label={s.label: {"precision": round(s.precision, 4), "recall": round(s.recall, 4),
                                             "f1": round(s.f1, 4), "support": s.support} for s in report.per_label})
    return score, report


def golden_version(golden: list[dict]) -> str:
    """A content hash of the golden set: a relabelled or extended set is scored anew."""
    return content_version(json.dumps(golden, sort_keys=True, ensure_ascii=False).encode())


def stored_score(store, code_version: str, golden: str = "") -> GoldenScore | None:
    row = store.read_part(tables.GOLDEN_EVALUATIONS, None, _part(code_version, golden))
    if row is None or not row.num_rows:
        return None
    record = row.to_pylist()[0]
    return GoldenScore(**{**record, "per_label_f1": json.loads(record["per_label_f1"]),
                          "per_label": json.loads(record.get("per_label") or "{}")})


def keep_score(store, score: GoldenScore, golden: str = "") -> None:
    """Keeps a complete score, so the version is not scored again; an incomplete one is scored again next time."""
    if not score.complete:
        return
    record = {**asdict(score), "per_label_f1": json.dumps(score.per_label_f1, sort_keys=True),
              "per_label": json.dumps(score.per_label, sort_keys=True)}
    store.write_part(tables.GOLDEN_EVALUATIONS, None, _part(score.code_version, golden),
                     pa.Table.from_pylist([record], schema=EVALUATIONS_SCHEMA))


def _part(code_version: str, golden: str) -> str:
    return tables.GOLDEN_EVALUATIONS.variant(f"{code_version}_{golden}").table_name


# More unanswered golden items than this share, and the score cannot judge the version.
MAX_UNCLASSIFIED_SHARE = 0.05


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    baseline_version: str | None
    baseline_macro_f1: float | None
    macro_f1: float
    worst_labels: list[dict]


def judge(score: GoldenScore, accepted: dict | None, config: GateConfig) -> Verdict:
    """Passes an accepted version, or one whose macro-F1 is within the tolerance of the accepted version's.

    A score with more than `MAX_UNCLASSIFIED_SHARE` of the golden items unanswered (an outage, a
    rate limit, an open circuit breaker) says nothing about quality: the version is not rolled out
    on it, and the next run scores it again.
    """
    if score.unclassified > MAX_UNCLASSIFIED_SHARE * score.items:
        return Verdict(False, f"the golden set could not be scored: {score.unclassified} of {score.items} items got no "
                       "answer from the classifier (see the run's log); the next run scores it again",
                       accepted.get("code_version") if accepted else None,
                       float(accepted["macro_f1"]) if accepted else None, score.macro_f1, [])
    if accepted is None:
        return Verdict(True, f"no accepted golden-set score for the {score.backend} backend yet: the first version is "
                       "the baseline once `feedback taxonomy accept` records it", None, None, score.macro_f1, [])
    before = accepted.get("per_label_f1", {})
    worst = sorted(({"label": label, "f1_accepted": round(f1, 4), "f1_now": round(score.per_label_f1.get(label, 0.0), 4),
                     "change": round(score.per_label_f1.get(label, 0.0) - f1, 4)} for label, f1 in before.items()),
                   key=lambda r: (r["change"], r["label"]))
    worst = [r for r in worst if r["change"] < 0][: config.worst_labels_shown]
    baseline = float(accepted["macro_f1"])
    if accepted.get("code_version") == score.code_version:
        return Verdict(True, "this is the accepted version", score.code_version, baseline, score.macro_f1, worst)
    drop = baseline - score.macro_f1
    if drop > config.max_macro_f1_drop:
        names = ", ".join(f"{w['label']} {w['f1_accepted']:.2f}→{w['f1_now']:.2f}" for w in worst) or "none"
        return Verdict(False, f"macro-F1 {score.macro_f1:.3f} is {drop:.3f} below the accepted version's {baseline:.3f} "
                       f"(tolerance {config.max_macro_f1_drop:.3f}); worst hit: {names}. Fix the taxonomy or prompt, or "
                       "accept the change deliberately with `feedback taxonomy accept`", accepted.get("code_version"),
                       baseline, score.macro_f1, worst)
    return Verdict(True, f"macro-F1 {score.macro_f1:.3f} against the accepted {baseline:.3f} "
                   f"(tolerance {config.max_macro_f1_drop:.3f})", accepted.get("code_version"), baseline, score.macro_f1, worst)


def accepted_evaluation(history_dir: Path, backend: str, model: str) -> dict | None:
    """The last accepted taxonomy version's golden-set score for this backend and model, if one was recorded."""
    from feedback_assets.enrichment.governance import read_changelog

    for entry in reversed(read_changelog(history_dir)):
        evaluation = entry.evaluation.get(backend)
        if isinstance(evaluation, dict) and evaluation.get("model") == model and "macro_f1" in evaluation:
            return evaluation
    return None


def golden_gate(store, classify: Callable[[Sequence[FeedbackItem]], list[dict]], taxonomy: Taxonomy, *,
                code_version: str, backend: str, model: str, config: GateConfig,
                history_dir: Path) -> tuple[Verdict, GoldenScore]:
    """The version's golden-set score (scored once per version, then kept) judged against the accepted one."""
    golden = golden_items()
    score = stored_score(store, code_version, golden_version(golden))
    if score is None:
        score, _ = score_golden(classify, taxonomy, golden, code_version, backend, model)
        keep_score(store, score, golden_version(golden))
    return judge(score, accepted_evaluation(history_dir, backend, model), config), score
