"""Entities named in feedback text: SKUs, sizes/variants, regions, carriers, shipping methods, order ids."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from feedback_assets.enrichment.schema import Entities

_SKU = re.compile(r"\b[A-Z]{2,4}-\d{3,5}\b")
_ORDER = re.compile(r"\b(?:ORD|ORDER|SO)-[A-Z0-9]{5,10}\b", re.IGNORECASE)
_SIZE = re.compile(r"\b(?:size|talla|tamanho|größe|grösse)\s+([0-9]{1,2}|xxs|xs|s|m|l|xl|xxl|small|medium|large)\b", re.IGNORECASE)
_SHIPPING = {"next day": "next_day", "next-day": "next_day", "overnight": "next_day", "express": "express",
             "two-day": "express", "2-day": "express", "standard shipping": "standard", "free shipping": "standard"}


@dataclass(frozen=True)
class EntityCatalog:
    """Known values from the commerce data, so entity extraction never invents a SKU, region or carrier."""

    skus: frozenset[str] = frozenset()
    regions: dict[str, str] = field(default_factory=dict)  # spelling in text (lower case) -> region id
    carriers: dict[str, str] = field(default_factory=dict)  # spelling in text (lower case) -> carrier name

    @classmethod
    def from_values(cls, skus: Iterable[str], regions: Iterable[str], carriers: Iterable[str]) -> EntityCatalog:
        region_map = {r.lower(): r for r in regions if r}
        region_map.update({r.lower().replace("_", " "): r for r in regions if r})
        return cls(frozenset(s for s in skus if s), region_map, {c.lower(): c for c in carriers if c})


def _word_match(text: str, phrases: dict[str, str]) -> str | None:
    lowered = text.lower()
    for phrase in sorted(phrases, key=len, reverse=True):
        if re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", lowered):
            return phrases[phrase]
    return None


def extract_entities(text: str, catalog: EntityCatalog, *, sku: str | None = None, region: str | None = None) -> Entities:
    """Entities from the text, preferring structured fields the channel already gave (sku, region)."""
    sku_in_text = next((s for s in _SKU.findall(text) if not catalog.skus or s in catalog.skus), None)
    size = _SIZE.search(text)
    order = _ORDER.search(text)
    return Entities(
        sku=sku or sku_in_text,
        variant=size.group(1).upper() if size else None,
        region=region or _word_match(text, catalog.regions),
        carrier=_word_match(text, catalog.carriers),
        shipping_method=_word_match(text, _SHIPPING),
        order_id=order.group(0).upper() if order else None,
    )
