"""Which classified items are themed, what of them is embedded, and the group each one is clustered in.

Only complaints are themed: items whose primary label is `praise_no_issue`, or that carry no labels,
are skipped. The embedded text is the evidence quote of the primary label, one short on-topic
sentence (all-MiniLM-L6-v2 embeds ~350 of those a second on 2 CPU cores against ~40 whole reviews),
checked to be a quote of the customer's text (never the model's own words).

Groups. Product complaints (domains `product_quality` and `product_fit_expectations`) are clustered
per product category (`category:apparel`) by default, or per SKU (`sku:JKT-1042`) when volume
allows: on the 60-day demo (~12k items, 40 SKUs) per-SKU groups left 82% of product complaints
without a theme, too few items per SKU and day to found one. A product complaint whose SKU or
category is unknown goes to `category:unknown` (`sku:unknown`). Every other complaint (delivery,
site and app, service, other) is clustered per label across the catalogue (`all`): a late parcel is
the carrier's problem whatever was in the box. The SKU (classification entities, which already
prefer silver's `sku`) and its category stay on every row, so themes can be counted per SKU downstream.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property

PRAISE = "praise_no_issue"
PRODUCT_DOMAINS = frozenset({"product_quality", "product_fit_expectations"})
ACROSS_CATALOGUE = "all"
PRODUCT_GROUPINGS = ("category", "sku")
_TRAILING_PUNCTUATION = re.compile(r"[\W_]+$")


@dataclass(frozen=True)
class ComplaintItem:
    feedback_id: str
    day: date
    label: str
    group_key: str
    sku: str | None
    category: str | None
    text: str

    @cached_property
    def embedding_text(self) -> str:
        return embedding_text(self.text)

    @cached_property
    def text_hash(self) -> str:
        return hashlib.sha256(self.embedding_text.encode()).hexdigest()[:32]


def normalize_text(text: str) -> str:
    """Whitespace collapsed, ends trimmed."""
    return " ".join(text.split())


def embedding_text(text: str) -> str:
    """What is embedded: lower case, no trailing punctuation ("Arrived early!!" and "arrived early." embed once)."""
    return _TRAILING_PUNCTUATION.sub("", normalize_text(text).lower()) or normalize_text(text)


def group_key(domain: str | None, sku: str | None, category: str | None, products_by: str = "category") -> str:
    """Per category (or SKU) for product complaints, across the catalogue for the rest (see the module docstring)."""
    if domain not in PRODUCT_DOMAINS:
        return ACROSS_CATALOGUE
    return f"{products_by}:{(category if products_by == 'category' else sku) or 'unknown'}"


def complaint_items(rows: Iterable[Mapping], categories: Mapping[str, str], products_by: str = "category"
                    ) -> list[ComplaintItem]:
    """Complaint items of classification rows, by day and feedback id; praise and unlabelled rows are left out."""
    if products_by not in PRODUCT_GROUPINGS:
        raise ValueError(f"products_by must be one of {PRODUCT_GROUPINGS}, got {products_by!r}")
    items = []
    for row in rows:
        labels = row["labels"] or []
        label = row["primary_label"]
        if not labels or not label or label == PRAISE:
            continue
        evidence = next((each["evidence"] for each in labels if each["label"] == label and each["evidence"]), None)
        text = normalize_text(evidence or "")
        if not text:
            continue
        sku = (row["entities"] or {}).get("sku")
        category = categories.get(sku) if sku else None
        items.append(ComplaintItem(row["feedback_id"], row["feedback_date"], label,
                                   group_key(row["domain"], sku, category, products_by), sku, category, text))
    return sorted(items, key=lambda item: (item.day, item.feedback_id))
