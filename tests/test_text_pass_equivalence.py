"""The fast text pass (prefiltered recognizers, batched language scoring) equals the plain per-text one."""

from __future__ import annotations

import csv
import re
import unicodedata
from collections import Counter

import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from feedback_assets.transforms import pii
from feedback_assets.transforms.clean import CLEAN_SCHEMA, clean_texts
from feedback_assets.transforms.language import detect_language, detect_languages
from feedback_assets.transforms.text import _INVISIBLE, normalize_text, strip_html
from tests.conftest import SHARED_DATA

PII_KINDS = pii.PII_KINDS


def reference_normalize(text: str) -> str:
    """normalize_text as first written: every space run rewritten, line breaks always collapsed."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFC", strip_html(text)).replace("\r", "\n"))
    return re.sub(r"\s*\n\s*", "\n", re.sub(r"[^\S\n]+", " ", text)).strip()


def reference_scrub(text: str) -> pii.Scrubbed:
    """scrub_pii's recognizers without any prefilter: every pattern, and every phone region, on every text."""
    counts: Counter[str] = Counter()

    def count(kind: str):
        def replace(_match: re.Match[str]) -> str:
            counts[kind] += 1
            return f"[{kind.upper()}]"

        return replace

    text = pii._EMAIL.sub(count("email"), text)
    text = pii._replace_cards(text, counts)
    for region in pii.PHONE_REGIONS:
        matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)
        for match in reversed([m for m in matcher if sum(c.isdigit() for c in m.raw_string) >= pii.MIN_PHONE_DIGITS]):
            text = text[: match.start] + "[PHONE]" + text[match.end :]
            counts["phone"] += 1
    for pattern, _words in pii._ADDRESSES:
        text = pattern.sub(count("address"), text)
    return pii.Scrubbed(text, {kind: counts.get(kind, 0) for kind in PII_KINDS})


def reference_clean(text: str) -> tuple:
    normalized = reference_normalize(text)
    scrubbed = reference_scrub(normalized)
    return (scrubbed.text, *detect_language(normalized), *(scrubbed.redactions[kind] for kind in PII_KINDS))


def assert_text_pass_equal(texts: list[str]) -> None:
    columns = clean_texts(texts)
    assert list(columns) == CLEAN_SCHEMA.fieldNames()
    for index, text in enumerate(texts):
        row = tuple(columns[name][index] for name in CLEAN_SCHEMA.fieldNames())
        expected = reference_clean(text)
        assert row[:2] == expected[:2] and row[3:] == expected[3:], text
        assert abs(row[2] - expected[2]) <= 1e-6, text


# Pieces that sit on the edges of the prefilters: digits in other scripts (isdigit but not \d, or
# \d but not ASCII), phone and card shapes, street words, the placeholders themselves, markup.
PIECES = [
    "(415) 555-0132", "+49 30 1234567", "0176 12345678", "+44 20 7946 0958", "(11) 98765-4321", "+33 1 42 68 53 00",
    "555-0132 ext. 12", "212 555 0100 x 7", "+49 30 12345", "030 123456", "4111 1111 1111 1111", "5500-0000-0000-0004",
    "4222222222222", "378282246310005", "4111111111111112",
    "1234567890123", "34-26-36", "5'6\"", "2026-10-01", "10/09/2026", "ORD-7F3K9Q", "$129.99",
    "jane.doe+returns@example.co.uk", "a@b.io", "@", "221 Baker Street, Apt 4B", "1600 Pennsylvania Ave NW",
    "12 elm street", "12 Elm St.", "9 main lane", "Hauptstraße 12", "Lindenweg 3a", "Calle Mayor 5",
    "Rua das Flores 120", "Avenida Paulista 1578", "Av. Brasil 12", "way", "Drive", "ring", "[PHONE]", "[CARD]",
    "[ADDRESS]", "[EMAIL]", "٤١٥ ٥٥٥ ٠١٣٢", "４１５５５５０１３２", "²³¹", "①②③", "(", ")", "[", "+", "/", "-", ".", "#",
    "<p>", "</p><br>", "&amp;", "&nbsp;", "\u200b", "\u00a0", "\t", "\n", "\r\n", "  ", "\u2028", "e\u0301", "ſt", "K",
    "The jacket is far too tight", "La chaqueta es muy pequeña", "O pedido chegou atrasado", "Die Lieferung kam spät",
    "LA CHAQUETA ES MUY PEQUEÑA", "😡", "لم يصل الطلب",
]
SEPARATORS = st.sampled_from(["", " ", "  ", "-", ", ", "\n", "/", "."])
PIECE = st.one_of(
    st.sampled_from(PIECES),
    st.integers(0, 10**19).map(str),
    st.lists(st.integers(0, 9999).map(str), min_size=2, max_size=5).flatmap(
        lambda groups: SEPARATORS.map(lambda separator: separator.join(groups))),
    st.text(max_size=12),
)
TEXTS = st.lists(st.tuples(PIECE, SEPARATORS), max_size=14).map(lambda parts: "".join(p + s for p, s in parts))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS)
# the fewest digits each gate lets through: a 13-digit card, a 9-digit phone, a phone after a card
@example("card 4222222222222")
@example("ruf an +49 30 12345")
@example("4111 1111 1111 1111 or (415) 555-0132")
def test_prefiltered_pii_scrubbing_equals_the_plain_recognizers(text):
    assert pii.scrub_pii(text) == reference_scrub(text)


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_normalization_equals_the_first_version(text):
    assert normalize_text(text) == reference_normalize(text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXTS, max_size=40))
def test_batched_language_detection_equals_one_text_at_a_time(texts):
    for (language, probability), (expected, expected_probability) in zip(
            detect_languages(texts), map(detect_language, texts), strict=True):
        assert language == expected and abs(probability - expected_probability) <= 1e-6


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXTS, max_size=20))
def test_the_batched_text_pass_equals_the_plain_one(texts):
    assert_text_pass_equal(texts)


def test_an_empty_batch_has_the_columns_and_no_rows():
    assert clean_texts([]) == {name: [] for name in CLEAN_SCHEMA.fieldNames()}


def real_reviews() -> list[str]:
    texts = []
    for name, column in [("womens_clothing_ecommerce_reviews.csv", "Review Text"),
                         ("amazon_datafiniti_device_reviews_5k.csv", "reviews.text")]:
        with (SHARED_DATA / name).open(encoding="utf-8-sig", newline="") as handle:
            texts += [row[column] for row in csv.DictReader(handle)]
    return texts


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not present")
def test_the_text_pass_equals_the_plain_one_on_the_real_reviews():
    """Every real review, and a quarter of them with PII, markup or odd spacing added, in Arrow-sized batches."""
    texts = real_reviews()
    variants = [
        " Call me on (415) 555-0132.", " My email is jane.doe@example.com", " Card 4111 1111 1111 1111 charged twice.",
        " Ship to 221 Baker Street, Apt 4B.", " ruf an: +49 30 1234567", " Lieferung an Hauptstraße 12",
    ]
    texts += [text + variants[index % len(variants)] for index, text in enumerate(texts[::4])]
    texts += [f"<p>{text}</p><br>" for text in texts[1::16]] + [text.replace(" ", "  \t") for text in texts[2::16]]
    for start in range(0, len(texts), 10_000):
        assert_text_pass_equal(texts[start : start + 10_000])
