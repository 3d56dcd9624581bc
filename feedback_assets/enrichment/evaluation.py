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
    acceptable_accuracy: float  # the primary is the gold one or one of its acceptable alternatives
    label_set_f1: float  # micro-F1 of predicted labels against gold labels, secondary labels included
    accuracy_when_confident: float  # accuracy on the items not sent to review
    majority_accuracy: float  # always answering the set's most common primary label


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
    acceptable = sum(p["primary_label"] in (item["primary_label"], *item.get("acceptable", ())) for item, p in pairs)
    found = sum(len({l["label"] for l in p["labels"]} & set(item["labels"])) for item, p in pairs)
    said, gold = sum(len(p["labels"]) for _, p in pairs), sum(len(item["labels"]) for item, _ in pairs)
    confident = [t == g for (t, g), (_, p) in zip(zip(truth, guess, strict=True), pairs) if not p["needs_review"]]
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
        acceptable_accuracy=acceptable / len(pairs),
        label_set_f1=2 * found / (said + gold) if said + gold else 0.0,
        accuracy_when_confident=sum(confident) / len(confident) if confident else 0.0,
        majority_accuracy=Counter(truth).most_common(1)[0][1] / len(pairs),
    )


def summary_line(name: str, report: EvalReport) -> str:
    """One row of the per-set table: the figures a reader compares across models and sets."""
    return (f"{name:<22}{report.items:>6}{report.accuracy:>8.3f}{report.acceptable_accuracy:>8.3f}{report.macro_f1:>8.3f}"
            f"{report.domain_accuracy:>8.3f}{report.label_set_f1:>8.3f}{report.majority_accuracy:>8.3f}"
            f"{report.review_rate:>8.3f}{report.accuracy_when_confident:>10.3f}{report.expected_calibration_error:>7.3f}")


SUMMARY_HEADER = (f"{'set':<22}{'items':>6}{'acc':>8}{'acc_ok':>8}{'mF1':>8}{'domain':>8}{'setF1':>8}{'major':>8}"
                  f"{'review':>8}{'acc_rest':>10}{'ECE':>7}")


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
        f"acceptable primary {report.acceptable_accuracy:.3f}   label-set F1 {report.label_set_f1:.3f}   "
        f"any gold label among predicted labels {report.any_label_hit_rate:.3f}   "
        f"always the most common label {report.majority_accuracy:.3f}",
        f"needs_review {report.review_rate:.3f}   accuracy of the rest {report.accuracy_when_confident:.3f}   "
        f"calibration error (ECE) {report.expected_calibration_error:.3f}",
        "most common confusions (gold → predicted):",
        *[f"  {t} → {g}: {n}" for t, g, n in report.confusions],
    ]
    return "\n".join(lines)


def scored_rows(set_name: str, items: list[dict], predicted: dict[str, dict], labels: list[str],
                domain_of: dict[str, str]) -> list[tuple[str, EvalReport]]:
    """The set's report, then one per language when the set holds more than one (each language with its items)."""
    rows = [(set_name, evaluate(items, predicted, labels, domain_of))]
    languages = sorted({item.get("language", "en") for item in items})
    if len(languages) > 1:
        for language in languages:
            members = [item for item in items if item.get("language", "en") == language]
            rows.append((f"  {set_name}:{language}", evaluate(members, predicted, labels, domain_of)))
    return rows
