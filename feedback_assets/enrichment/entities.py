"""Entities named in feedback text: SKUs, sizes/variants, regions, carriers, shipping methods, order ids.

Entities become series keys downstream (complaints per carrier, per region, per SKU), so whatever
a classifier proposes is only an entity when it is grounded: a value the commerce catalog knows
(or a well-formed id), that the text itself names, or that the channel's structured fields carry.
A proposal that is not grounded is kept, length-bounded, in `unresolved` as raw evidence and never
becomes a key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass, field

from feedback_assets.enrichment.schema import Entities

_SKU = re.compile(r"\b[A-Z]{2,4}-\d{3,5}\b")
_ORDER = re.compile(r"\b(?:ORD|ORDER|SO)-[A-Z0-9]{5,10}\b", re.IGNORECASE)
_SIZE = re.compile(r"\b(?:size|talla|tamanho|größe|grösse)\s+([0-9]{1,2}|xxs|xs|s|m|l|xl|xxl|small|medium|large)\b", re.IGNORECASE)
_SIZE_VALUE = re.compile(r"^(?:[0-9]{1,2}|xxs|xs|s|m|l|xl|xxl|small|medium|large)$", re.IGNORECASE)
ENTITY_FIELDS = ("sku", "variant", "region", "carrier", "shipping_method", "order_id")
MAX_ENTITY_CHARS = 64
MAX_UNRESOLVED_CHARS = 120
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


@dataclass(frozen=True)
class ResolvedEntities:
    entities: Entities
    unresolved: dict[str, str]  # field -> a proposed value that was not grounded (bounded), as evidence


def _mentioned(text: str, phrases: Mapping[str, str], value: str) -> bool:
    """Whether the text names `value` under any of its spellings."""
    spellings = {phrase: target for phrase, target in phrases.items() if target == value}
    return _word_match(text, spellings) is not None


def _grounded(name: str, proposed: str, text: str, catalog: EntityCatalog) -> str | None:
    """The entity value a proposal stands for, when the catalog knows it and the text names it."""
    value = " ".join(proposed.split())
    if not value or len(value) > MAX_ENTITY_CHARS:
        return None
    lowered = value.lower()
    match name:
        case "sku":
            sku = value.upper()
            known = sku in catalog.skus if catalog.skus else bool(_SKU.fullmatch(sku))
            return sku if known and _SKU.fullmatch(sku) and sku in text.upper() else None
        case "region" | "carrier":
            phrases = catalog.regions if name == "region" else catalog.carriers
            target = phrases.get(lowered) or phrases.get(lowered.replace("-", " ").replace("_", " "))
            return target if target and _mentioned(text, phrases, target) else None
        case "shipping_method":
            methods = set(_SHIPPING.values())
            return lowered if lowered in methods else _SHIPPING.get(lowered)
        case "variant":
            size = re.search(rf"(?<!\w){re.escape(lowered)}(?!\w)", text.lower()) if _SIZE_VALUE.fullmatch(value) else None
            return value.upper() if size else None
        case "order_id":
            order = value.upper()
            return order if _ORDER.fullmatch(order) and order in text.upper() else None
    return None


def one_line(value: object, limit: int = MAX_UNRESOLVED_CHARS) -> str:
    """Untrusted output as printable, one-line text of at most `limit` characters."""
    text = value if isinstance(value, str) else repr(value)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def resolve_entities(proposed: Mapping[str, object] | None, text: str, catalog: EntityCatalog, *,
                     sku: str | None = None, region: str | None = None) -> ResolvedEntities:
    """The grounded entities of an item: the channel's own fields, then grounded proposals, then the text's."""
    from_text = extract_entities(text, catalog, sku=sku, region=region).model_dump()
    kept: dict[str, str | None] = dict(from_text)
    unresolved: dict[str, str] = {}
    for name, value in (proposed or {}).items():
        if name not in ENTITY_FIELDS or value is None or value == "":
            continue
        grounded = _grounded(name, value, text, catalog) if isinstance(value, str) else None
        if grounded is None:
            unresolved[name] = one_line(value)
        elif not (name == "sku" and sku) and not (name == "region" and region):
            kept[name] = grounded
    return ResolvedEntities(Entities(**kept), unresolved)
