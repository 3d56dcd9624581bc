"""The local (offline) classifier per embedder: load time, items/s on real reviews, peak memory.

Each model runs in its own process, one after the other in the same run, so peak memory is that
model's and the ratios compare like with like. Items are real reviews from ../shared/data (title and
text, prepared as silver prepares them), each distinct, classified cold (nothing remembered), in
batches of 256 as the enrichment step sends them. Quality is `feedback eval`'s job.

    .venv/bin/python bench/local_classifier.py [--items 2000] [--models use e5 minilm]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feedback_assets.enrichment.items import prepare_text  # noqa: E402
from feedback_assets.enrichment.models import FeedbackItem  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BATCH = 256


def real_reviews(limit: int) -> list[FeedbackItem]:
    """The first `limit` distinct non-empty clothing reviews, then device reviews, with their ratings."""
    items, seen = [], set()
    for name, title, text, rating in [("womens_clothing_ecommerce_reviews.csv", "Title", "Review Text", "Rating"),
                                      ("amazon_datafiniti_device_reviews_5k.csv", "reviews.title", "reviews.text",
                                       "reviews.rating")]:
        with (SHARED_DATA / name).open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                body = prepare_text(f"{row[title]}\n{row[text]}".strip())
                if row[text].strip() and body not in seen and len(items) < limit:
                    seen.add(body)
                    items.append(FeedbackItem(f"r{len(items)}", body, float(row[rating])))
    return items


def measure(model: str, count: int) -> dict:
    from feedback_assets.enrichment.service import local_classifier

    items = real_reviews(count)
    started = time.perf_counter()
    classifier = local_classifier(model=model)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, len(items), BATCH):
        classifier.classify(items[start:start + BATCH])
    elapsed = time.perf_counter() - started
    return {"model": model, "name": classifier.model, "load_s": loaded, "items": len(items),
            "chars": sum(len(i.text) for i in items) / len(items), "seconds": elapsed,
            "items_per_s": len(items) / elapsed, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--models", nargs="+", default=["use", "e5", "minilm"])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.items)))
        return
    results = []
    for model in args.models:
        done = subprocess.run([sys.executable, __file__, "--one", model, "--items", str(args.items)],
                              capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
        if done.returncode:
            print(f"{model}: failed\n{done.stderr.strip().splitlines()[-1]}")
            continue
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    if not results:
        sys.exit(1)
    base = results[-1]
    print(f"{results[0]['items']:,} real reviews (mean {results[0]['chars']:.0f} characters), batches of {BATCH}, 2 threads")
    print(f"{'model':<8}{'embedder':<44}{'load s':>8}{'items/s':>9}{'× ' + base['model']:>10}{'peak MB':>9}")
    for r in results:
        print(f"{r['model']:<8}{r['name']:<44}{r['load_s']:>8.1f}{r['items_per_s']:>9.1f}"
              f"{r['items_per_s'] / base['items_per_s']:>10.2f}{r['peak_rss_mb']:>9.0f}")


if __name__ == "__main__":
    main()
