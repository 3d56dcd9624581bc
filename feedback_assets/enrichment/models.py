"""What every classifier is given: one feedback item, its text already normalized and PII-scrubbed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeedbackItem:
    id: str
    text: str
    rating: float | None = None
    channel: str | None = None
    sku: str | None = None
    region: str | None = None
