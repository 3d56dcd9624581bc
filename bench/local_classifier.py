"""The local (offline) classifier: items/s on real reviews and its quality on the golden set.

    .venv/bin/python bench/local_classifier.py [--items 2000]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from feedback_assets.enrichment import evaluation
from feedback_assets.enrichment.items import prepare_text
from feedback_assets.enrichment.models import FeedbackItem
from feedback_assets.enrichment.service import local_classifier
from feedback_assets.enrichment.taxonomy import load_taxonomy, prompts_dir

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def real_reviews(limit: int) -> list[FeedbackItem]:
    items = []
    with (SHARED_DATA / "womens_clothing_ecommerce_reviews.csv").open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Review Text"].strip() and len(items) < limit:
                items.append(FeedbackItem(f"w{len(items)}", prepare_text(f"{row['Title']}\n{row['Review Text']}"), float(row["Rating"])))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    args = parser.parse_args()
    started = time.perf_counter()
    classifier = local_classifier()
    print(f"model load + {len(classifier.prototypes)} prototypes embedded: {time.perf_counter() - started:.1f} s")
    items = real_reviews(args.items)
    chars = sum(len(i.text) for i in items) / len(items)
    started = time.perf_counter()
    classifier.classify(items)
    elapsed = time.perf_counter() - started
    print(f"{len(items):,} real reviews (mean {chars:.0f} characters): {elapsed:.1f} s, {len(items) / elapsed:.1f} items/s")

    taxonomy = load_taxonomy()
    golden = evaluation.load_golden(sorted((prompts_dir() / "golden").glob("*.jsonl")))
    predicted = {r["id"]: r for r in classifier.classify([FeedbackItem(g["id"], g["text"], g.get("rating"), g.get("channel"))
                                                         for g in golden])}
    report = evaluation.evaluate(golden, predicted, taxonomy.label_ids, {l: taxonomy.domain_of(l) for l in taxonomy.label_ids})
    print(f"golden set ({report.items} items): macro-F1 {report.macro_f1:.3f}, accuracy {report.accuracy:.3f}, "
          f"domain accuracy {report.domain_accuracy:.3f}, any-label hit {report.any_label_hit_rate:.3f}, "
          f"ECE {report.expected_calibration_error:.3f}, needs_review {report.review_rate:.3f}")


if __name__ == "__main__":
    main()
