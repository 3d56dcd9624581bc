"""Text normalization, PII scrubbing and language detection on the kinds of text customers write."""

from __future__ import annotations

import pytest

from feedback_assets.transforms.language import detect_language, detect_languages
from feedback_assets.transforms.pii import luhn_valid, scrub_pii
from feedback_assets.transforms.text import normalize_text


class TestNormalization:
    def test_html_is_stripped_and_entities_decoded(self):
        assert normalize_text("<p>Zipper&nbsp;broke &amp; seam ripped</p><br>") == "Zipper broke & seam ripped"

    def test_script_and_style_bodies_disappear(self):
        assert normalize_text("ok<script>alert('x')</script><style>p{}</style> fine") == "ok fine"

    def test_unicode_is_composed_and_invisible_characters_removed(self):
        assert normalize_text("Cafe\u0301\u200b  au\u00a0lait\ufeff") == "Café au lait"

    def test_line_breaks_survive_once_and_spaces_collapse(self):
        assert normalize_text("Too small\r\n\r\n  Sleeves   short ") == "Too small\nSleeves short"

    def test_emoji_and_rtl_text_are_kept(self):
        assert normalize_text("لم يصل الطلب 😡") == "لم يصل الطلب 😡"

    def test_text_that_is_only_markup_becomes_empty(self):
        assert normalize_text("<div><br/></div>") == ""


class TestPiiScrubbing:
    @pytest.mark.parametrize(
        ("text", "scrubbed", "kind"),
        [
            ("mail me at jane.doe+returns@example.co.uk asap", "mail me at [EMAIL] asap", "email"),
            ("call (415) 555-0132 tomorrow", "call [PHONE] tomorrow", "phone"),
            ("ruf an: +49 30 1234567", "ruf an: [PHONE]", "phone"),
            ("Handy 0176 12345678", "Handy [PHONE]", "phone"),
            ("card 4111 1111 1111 1111 was charged twice", "card [CARD] was charged twice", "card"),
            ("card 5500-0000-0000-0004 declined", "card [CARD] declined", "card"),
            ("send it to 221 Baker Street, Apt 4B please", "send it to [ADDRESS] please", "address"),
            ("ship to 12 elm street", "ship to [ADDRESS]", "address"),
            ("Lieferung an Hauptstraße 12", "Lieferung an [ADDRESS]", "address"),
            ("envíen a Calle Mayor 5", "envíen a [ADDRESS]", "address"),
        ],
    )
    def test_pii_is_replaced_by_a_typed_placeholder(self, text, scrubbed, kind):
        result = scrub_pii(text)
        assert result.text == scrubbed
        assert result.redactions[kind] == 1 and sum(result.redactions.values()) == 1

    @pytest.mark.parametrize(
        "text",
        [
            "SKU JKT-1042-M runs small, size 8 fits",
            "ordered 2026-10-01, order ORD-7F3K9Q, arrived 10/09/2026",
            "i'm 5'6\", 135 lbs, 34-26-36 and wore a size 4",
            "order number 1234567890123 never arrived",
            "paid $129.99 for 2 jackets",
            "the 6 petite way too small",
            "there are only 2 things that drive me insane",
            "we were taking an 8 hour road trip",
            "card ending 4111 1111 1111 1112 is not a real card",
        ],
    )
    def test_business_facts_survive(self, text):
        assert scrub_pii(text).text == text

    def test_luhn(self):
        assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")

    def test_a_phone_after_a_card_is_still_found(self):
        result = scrub_pii("card 4111 1111 1111 1111, call (415) 555-0132")
        assert result.text == "card [CARD], call [PHONE]"

    def test_several_kinds_are_counted_separately(self):
        result = scrub_pii("a@b.io, b@c.io or (212) 555-0100")
        assert result.redactions == {"email": 2, "phone": 1, "card": 0, "address": 0}


class TestLanguage:
    @pytest.mark.parametrize(
        ("text", "language"),
        [
            ("The jacket is far too tight across the shoulders", "en"),
            ("La chaqueta es muy pequeña en los hombros", "es"),
            ("O pedido chegou atrasado e a caixa estava amassada", "pt"),
            ("Die Lieferung kam eine Woche zu spät an", "de"),
        ],
    )
    def test_languages_our_customers_write_are_recognised(self, text, language):
        assert detect_language(text)[0] == language

    @pytest.mark.parametrize("text", ["", "ok", "😡😡", "12345"])
    def test_too_little_text_is_undetermined(self, text):
        assert detect_language(text) == ("und", 0.0)

    def test_a_batch_gets_for_each_text_what_it_gets_alone(self):
        texts = ["The jacket is far too tight across the shoulders", "ok", "", "La chaqueta es muy pequeña en los hombros",
                 "12345", "DIE LIEFERUNG KAM EINE WOCHE ZU SPÄT AN", "لم يصل الطلب 😡"]
        assert detect_languages(texts) == [detect_language(text) for text in texts]
        assert [language for language, _ in detect_languages(texts)][:6] == ["en", "und", "und", "es", "und", "de"]
