"""Reading items to classify from JSON Lines, and preparing their text exactly as silver does."""

from __future__ import annotations

import json
from pathlib import Path

from feedback_assets.enrichment.models import FeedbackItem
from feedback_assets.transforms.pii import scrub_pii
from feedback_assets.transforms.text import normalize_text


class InputError(ValueError):
    """Input lines that cannot be classified, each named by its line number."""


def _number(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise ValueError("rating must be a number") from None


def prepare_text(text: str) -> str:
    """The text as silver keeps it: normalized and PII-scrubbed. Nothing else ever leaves the machine."""
    return scrub_pii(normalize_text(text)).text


def read_items(path: Path) -> list[FeedbackItem]:
    """Items of a JSON Lines file (`id` and `text` required; `rating`, `channel`, `context` optional)."""
    items, problems, seen = [], [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"line {number}: not valid JSON ({error.msg})")
            continue
        if not isinstance(record, dict):
            problems.append(f"line {number}: expected a JSON object")
            continue
        item_id, text = record.get("id"), record.get("text")
        if item_id is None or str(item_id).strip() == "":
            problems.append(f"line {number}: missing `id`")
            continue
        if not isinstance(text, str):
            problems.append(f"line {number}: `text` must be a string")
            continue
        if str(item_id) in seen:
            problems.append(f"line {number}: duplicate id {str(item_id)!r}")
            continue
        context = record.get("context") if isinstance(record.get("context"), dict) else {}
        try:
            rating = _number(record.get("rating"))
        except ValueError as error:
            problems.append(f"line {number}: {error}")
            continue
        seen.add(str(item_id))
        items.append(FeedbackItem(str(item_id), prepare_text(text), rating, record.get("channel"),
                                  context.get("sku"), context.get("region")))
    if problems:
        raise InputError("\n".join(problems))
    return items
