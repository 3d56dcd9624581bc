"""Scoring classifications against the golden set: per-label precision/recall/F1, accuracy, confusions."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LabelScore:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvalReport:
    items: int
    accuracy: float
    macro_f1: float
    domain_accuracy: float
    any_label_hit_rate: float
    per_label: list[LabelScore]
    confusions: list[tuple[str, str, int]]
    review_rate: float
    expected_calibration_error: float


def load_golden(paths: list[Path]) -> list[dict]:
    items = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from error
    return items


def evaluate(golden: list[dict], predicted: dict[str, dict], labels: list[str], domain_of: dict[str, str]) -> EvalReport:
    """Primary-label metrics over the golden items; `predicted` maps item id → classification record."""
    pairs = [(item, predicted[item["id"]]) for item in golden]
    truth = [item["primary_label"] for item, _ in pairs]
    guess = [p["primary_label"] for _, p in pairs]
    per_label = []
    for label in labels:
        tp = sum(t == label and g == label for t, g in zip(truth, guess, strict=True))
        predicted_n, support = guess.count(label), truth.count(label)
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label.append(LabelScore(label, precision, recall, f1, support))
    scored = [s for s in per_label if s.support]
    confusions = Counter((t, g) for t, g in zip(truth, guess, strict=True) if t != g)
    any_hit = sum(bool({l["label"] for l in p["labels"]} & set(item["labels"])) for item, p in pairs)
    return EvalReport(
        items=len(pairs),
        accuracy=sum(t == g for t, g in zip(truth, guess, strict=True)) / len(pairs),
        macro_f1=sum(s.f1 for s in scored) / len(scored),
        domain_accuracy=sum(domain_of[t] == domain_of.get(g) for t, g in zip(truth, guess, strict=True)) / len(pairs),
        any_label_hit_rate=any_hit / len(pairs),
        per_label=per_label,
        confusions=[(t, g, n) for (t, g), n in confusions.most_common(10)],
        review_rate=sum(bool(p["needs_review"]) for _, p in pairs) / len(pairs),
        expected_calibration_error=calibration_error([p["confidence"] for _, p in pairs],
                                                     [t == g for t, g in zip(truth, guess, strict=True)]),
    )


def calibration_error(confidences: list[float], correct: list[bool], bins: int = 10) -> float:
    """Expected calibration error: the gap between stated confidence and accuracy, weighted by bin size."""
    total, error = len(confidences), 0.0
    for index in range(bins):
        low, high = index / bins, (index + 1) / bins
        members = [i for i, c in enumerate(confidences) if low <= c < high or (index == bins - 1 and c == 1.0)]
        if members:
            accuracy = sum(correct[i] for i in members) / len(members)
            confidence = sum(confidences[i] for i in members) / len(members)
            error += len(members) / total * abs(accuracy - confidence)
    return error


def render(report: EvalReport) -> str:
    lines = [f"{'label':<32}{'precision':>10}{'recall':>8}{'f1':>7}{'support':>9}"]
    lines += [f"{s.label:<32}{s.precision:>10.2f}{s.recall:>8.2f}{s.f1:>7.2f}{s.support:>9}" for s in report.per_label]
    lines += [
        "",
        f"items {report.items}   accuracy {report.accuracy:.3f}   macro-F1 {report.macro_f1:.3f}   "
        f"domain accuracy {report.domain_accuracy:.3f}",
        f"any gold label among predicted labels {report.any_label_hit_rate:.3f}   needs_review {report.review_rate:.3f}   "
        f"calibration error (ECE) {report.expected_calibration_error:.3f}",
        "most common confusions (gold → predicted):",
        *[f"  {t} → {g}: {n}" for t, g, n in report.confusions],
    ]
    return "\n".join(lines)
