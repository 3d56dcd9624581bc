"""PII recognizers: e-mail addresses, phone numbers, payment cards (Luhn-checked), street addresses.

Presidio's analyzer needs a spaCy model that cannot be installed here, so this module keeps the
same approach (pattern recognizers with validation) and leans on `phonenumbers`, the library
Presidio itself uses, for phones. Each match becomes a typed placeholder such as `[EMAIL]`.

Every recognizer runs behind a cheap prefilter that skips it only where it cannot match, so most
reviews (no `@`, few or no digits) cost a digit count and a few substring checks.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import phonenumbers
from phonenumbers import phonenumbermatcher as _phone_matcher

PII_KINDS = ("email", "phone", "card", "address")

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CARD_CANDIDATE = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_MIN_CARD_DIGITS = 13
_STREET_SUFFIX = (
    r"(?i:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|"
    r"terrace|circle|parkway|pkwy|highway|hwy)"
)
_LOWER_CASE_SUFFIXES = ("street", "avenue", "boulevard", "lane")
_GERMAN_SUFFIXES = ("straße", "strasse", "weg", "platz", "allee", "gasse", "ring")
_IBERIAN_KEYWORDS = ("Calle", "Avenida", "Av.", "Rua", "Travessa", "Carrer")
_UNIT = r"(?:,?\s*(?i:apt|apartment|suite|ste|unit|#)\.?\s*[\w-]+)?"


def _alternation(words: tuple[str, ...]) -> str:
    return "|".join(map(re.escape, words))


# Each address pattern needs a \d and, all but the first, one of its case-sensitive literal words
# (checked with `in`). The first gets no word check: searching its case-insensitive suffix
# alternation costs four times what the pattern itself does.
_ADDRESSES: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    # 221 Baker Street, 1600 Pennsylvania Ave NW, 12 Elm St. Apt 4B: capitalised street names
    (re.compile(rf"\b\d{{1,5}}\s+(?:[A-Z][\w'-]*\s+){{1,3}}{_STREET_SUFFIX}\b\.?(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?{_UNIT}"),
     ()),
    # 221 baker street: in lower case only with a suffix that is no everyday verb or noun ("drive", "road")
    (re.compile(rf"\b\d{{1,5}}\s+(?:[a-z][\w'-]*\s+){{1,3}}(?:{_alternation(_LOWER_CASE_SUFFIXES)})\b{_UNIT}"),
     _LOWER_CASE_SUFFIXES),
    # Hauptstraße 12, Lindenweg 3a
    (re.compile(rf"\b[A-ZÄÖÜ][a-zäöüß]+(?:{_alternation(_GERMAN_SUFFIXES)})\s+\d{{1,4}}[a-z]?\b"), _GERMAN_SUFFIXES),
    # Calle Mayor 5, Rua das Flores 120, Avenida Paulista 1578
    (re.compile(rf"\b(?:{_alternation(_IBERIAN_KEYWORDS)})\s+(?:[\wÀ-ÿ]+\s+){{1,4}}?\d{{1,5}}\b"), _IBERIAN_KEYWORDS),
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


# Characters with str.isdigit, a superset of what \d matches; ASCII text is counted in C.
def _digit_count(text: str) -> int:
    if text.isascii():
        return len(text) - len(text.encode().translate(None, b"0123456789"))
    return sum(map(str.isdigit, text))


def _replace_cards(text: str, counts: Counter) -> str:
    def replace(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match[0])
        if _MIN_CARD_DIGITS <= len(digits) <= 19 and luhn_valid(digits):
            counts["card"] += 1
            return _PLACEHOLDER["card"]
        return match[0]

    return _CARD_CANDIDATE.sub(replace, text)


# National formats differ by country; numbers written with +country code match under any region.
PHONE_REGIONS = ("US", "DE", "GB", "BR", "ES", "FR")
MIN_PHONE_DIGITS = 9
# phonenumbers' matcher (9.0) only reports a candidate, or a part of one, and each candidate is
# its _PATTERN matched at where the candidate starts (a lead character or a digit): a text where no
# such match holds MIN_PHONE_DIGITS digits has no phone to redact, under any region.
_PHONE_CANDIDATE = _phone_matcher._PATTERN
_PHONE_CANDIDATE_START = re.compile(rf"\d|{_phone_matcher._LEAD_CLASS}")


def _may_hold_phone(text: str) -> bool:
    for start in _PHONE_CANDIDATE_START.finditer(text):
        candidate = _PHONE_CANDIDATE.match(text, start.start())
        if candidate and _digit_count(candidate[0]) >= MIN_PHONE_DIGITS:
            return True
    return False


def _replace_phones(text: str, counts: Counter, digits: int) -> str:
    may_hold_phone = digits >= MIN_PHONE_DIGITS and _may_hold_phone(text)
    for region in PHONE_REGIONS:
        if not may_hold_phone:
            break
        matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)
        # Short valid numbers exist, but in reviews 6-8 digit runs are body measurements or sizes.
        matches = [m for m in matcher if _digit_count(m.raw_string) >= MIN_PHONE_DIGITS]
        for match in reversed(matches):
            text = text[: match.start] + _PLACEHOLDER["phone"] + text[match.end :]
            counts["phone"] += 1
        if matches:
            may_hold_phone = _may_hold_phone(text)
    return text


def scrub_pii(text: str) -> Scrubbed:
    """Replaces PII with placeholders; SKU codes, sizes, prices, order numbers and dates survive."""
    counts: Counter[str] = Counter()

    def count(kind: str):
        def replace(_match: re.Match[str]) -> str:
            counts[kind] += 1
            return _PLACEHOLDER[kind]

        return replace

    # Replacements only remove digits (placeholders hold none), so a count bounds the digits of the
    # text at every later step; it is taken again only where cards were replaced.
    digits = _digit_count(text)
    if "@" in text:
        text = _EMAIL.sub(count("email"), text)
    if digits >= _MIN_CARD_DIGITS:
        text = _replace_cards(text, counts)
        if counts["card"]:
            digits = _digit_count(text)
    text = _replace_phones(text, counts, digits)
    if digits:
        for pattern, words in _ADDRESSES:
            if not words or any(word in text for word in words):
                text = pattern.sub(count("address"), text)
    return Scrubbed(text, {kind: counts.get(kind, 0) for kind in PII_KINDS})


RESIDUE_PATTERNS: dict[str, str] = {
    # Java-regex versions for Spark-side residue checks: no e-mail, long digit run or card survives.
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    "phone": r"\+?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}",
    "card": r"\b(\d[ -]?){12,18}\d\b",
}
