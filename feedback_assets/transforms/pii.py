"""PII recognizers: e-mail addresses, phone numbers, payment cards (Luhn-checked), street addresses.

Presidio's analyzer needs a spaCy model that cannot be installed here, so this module keeps the
same approach (pattern recognizers with validation) and leans on `phonenumbers`, the library
Presidio itself uses, for phones. Each match becomes a typed placeholder such as `[EMAIL]`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import phonenumbers

PII_KINDS = ("email", "phone", "card", "address")

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CARD_CANDIDATE = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_STREET_SUFFIX = (
    r"(?i:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|"
    r"terrace|circle|parkway|pkwy|highway|hwy)"
)
_UNIT = r"(?:,?\s*(?i:apt|apartment|suite|ste|unit|#)\.?\s*[\w-]+)?"
_ADDRESSES = [
    # 221 Baker Street, 1600 Pennsylvania Ave NW, 12 Elm St. Apt 4B: capitalised street names
    re.compile(rf"\b\d{{1,5}}\s+(?:[A-Z][\w'-]*\s+){{1,3}}{_STREET_SUFFIX}\b\.?(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?{_UNIT}"),
    # 221 baker street: in lower case only with a suffix that is no everyday verb or noun ("drive", "road")
    re.compile(rf"\b\d{{1,5}}\s+(?:[a-z][\w'-]*\s+){{1,3}}(?:street|avenue|boulevard|lane)\b{_UNIT}"),
    # Hauptstraße 12, Lindenweg 3a
    re.compile(r"\b[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|weg|platz|allee|gasse|ring)\s+\d{1,4}[a-z]?\b"),
    # Calle Mayor 5, Rua das Flores 120, Avenida Paulista 1578
    re.compile(r"\b(?:Calle|Avenida|Av\.|Rua|Travessa|Carrer)\s+(?:[\wÀ-ÿ]+\s+){1,4}?\d{1,5}\b"),
]
_PLACEHOLDER = {kind: f"[{kind.upper()}]" for kind in PII_KINDS}


@dataclass(frozen=True)
class Scrubbed:
    text: str
    redactions: dict[str, int]


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _replace_cards(text: str, counts: Counter) -> str:
    def replace(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match[0])
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            counts["card"] += 1
            return _PLACEHOLDER["card"]
        return match[0]

    return _CARD_CANDIDATE.sub(replace, text)


# National formats differ by country; numbers written with +country code match under any region.
PHONE_REGIONS = ("US", "DE", "GB", "BR", "ES", "FR")
MIN_PHONE_DIGITS = 9


def _replace_phones(text: str, counts: Counter) -> str:
    for region in PHONE_REGIONS:
        if sum(char.isdigit() for char in text) < 7:
            break
        matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)
        # Short valid numbers exist, but in reviews 6-8 digit runs are body measurements or sizes.
        for match in reversed([m for m in matcher if sum(c.isdigit() for c in m.raw_string) >= MIN_PHONE_DIGITS]):
            text = text[: match.start] + _PLACEHOLDER["phone"] + text[match.end :]
            counts["phone"] += 1
    return text


def scrub_pii(text: str) -> Scrubbed:
    """Replaces PII with placeholders; SKU codes, sizes, prices, order numbers and dates survive."""
    counts: Counter[str] = Counter()

    def count(kind: str):
        def replace(_match: re.Match[str]) -> str:
            counts[kind] += 1
            return _PLACEHOLDER[kind]

        return replace

    if "@" in text:
        text = _EMAIL.sub(count("email"), text)
    text = _replace_cards(text, counts)
    text = _replace_phones(text, counts)
    for pattern in _ADDRESSES:
        text = pattern.sub(count("address"), text)
    return Scrubbed(text, {kind: counts.get(kind, 0) for kind in PII_KINDS})


RESIDUE_PATTERNS: dict[str, str] = {
    # Java-regex versions for Spark-side residue checks: no e-mail, long digit run or card survives.
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    "phone": r"\+?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}",
    "card": r"\b(\d[ -]?){12,18}\d\b",
}
