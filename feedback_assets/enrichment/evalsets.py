"""The sets classifiers are scored on: the golden set, real reviews (by row id), and the multilingual slice.

The real-review set stores row ids and labels only: its texts are read at run time from the review
exports it was drawn from (FEEDBACK_REVIEW_DATA, by default the `shared/data` folder beside the
repository), checked against their MD5 so a row id always means the row that was labelled.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from feedback_assets.enrichment.evaluation import load_golden
from feedback_assets.enrichment.items import prepare_text
from feedback_assets.enrichment.models import FeedbackItem
from feedback_assets.enrichment.taxonomy import prompts_dir
from feedback_assets.transforms.language import UNDETERMINED, detect_language


@dataclass(frozen=True)
class ReviewExport:
    file: str
    md5: str
    title: str
    text: str
    rating: str


REVIEW_EXPORTS = {
    "womens_clothing": ReviewExport("womens_clothing_ecommerce_reviews.csv", "0a739940276c8d252de145f7d5f830b2",
                                    "Title", "Review Text", "Rating"),
    "amazon_devices": ReviewExport("amazon_datafiniti_device_reviews_5k.csv", "83514f15f90c18f9f89c614a812fe8a7",
                                   "reviews.title", "reviews.text", "reviews.rating"),
}


@dataclass(frozen=True)
class EvalSet:
    name: str
    items: list[dict]  # golden-style records: id, text, rating, channel, labels, primary_label, domain, language...

    def feedback(self) -> list[FeedbackItem]:
        return [FeedbackItem(str(i["id"]), i["text"], i.get("rating"), i.get("channel")) for i in self.items]


class EvalSetUnavailable(RuntimeError):
    """A set whose texts cannot be read here (the review exports are absent or not the labelled files)."""


def review_data_dir() -> Path:
    configured = os.environ.get("FEEDBACK_REVIEW_DATA")
    return Path(configured) if configured else Path(__file__).resolve().parents[3] / "shared" / "data"


def golden_set() -> EvalSet:
    return EvalSet("golden", [{**item, "language": _golden_language(item)} for item in
                              load_golden(sorted((prompts_dir() / "golden").glob("*.jsonl")))])


def multilingual_set() -> EvalSet:
    """The golden set's non-English items and the multilingual slice written for this purpose."""
    golden = [item for item in golden_set().items if item["language"] != "en"]
    return EvalSet("multilingual", golden + load_golden([prompts_dir() / "evalsets" / "multilingual_v1.jsonl"]))


def real_review_set(data_dir: Path | None = None) -> EvalSet:
    """The labelled real reviews, their texts read from the exports and prepared as silver prepares them."""
    data_dir = data_dir or review_data_dir()
    labelled = load_golden([prompts_dir() / "evalsets" / "real_reviews_v1.jsonl"])
    rows = {source: _export_rows(data_dir, export) for source, export in REVIEW_EXPORTS.items()
            if any(item["source"] == source for item in labelled)}
    items = []
    for item in labelled:
        export, row = REVIEW_EXPORTS[item["source"]], rows[item["source"]][item["row"]]
        text = "\n".join(part for part in (row[export.title].strip(), row[export.text].strip()) if part)
        items.append({**item, "text": prepare_text(text), "rating": float(row[export.rating]),
                      "channel": "product_reviews", "language": "en"})
    return EvalSet("real_reviews", items)


def _export_rows(data_dir: Path, export: ReviewExport) -> list[dict]:
    path = data_dir / export.file
    if not path.is_file():
        raise EvalSetUnavailable(f"{path} is not there: set FEEDBACK_REVIEW_DATA to the folder holding {export.file}")
    if hashlib.md5(path.read_bytes()).hexdigest() != export.md5:
        raise EvalSetUnavailable(f"{path} is not the export the set was labelled on (MD5 differs)")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _golden_language(item: dict) -> str:
    """The golden set tags non-English items without naming the language: silver's detector names it."""
    if item.get("language"):
        return item["language"]
    if "non_english" not in item.get("tags", ()):
        return "en"
    language, _ = detect_language(item["text"])
    return language if language != UNDETERMINED else "other"
