"""Offline language identification (py3langid), limited to the languages our customers write in."""

from __future__ import annotations

from functools import lru_cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

SUPPORTED_LANGUAGES = ("en", "es", "pt", "de", "fr", "it", "nl")
UNDETERMINED = "und"
MIN_LETTERS = 3
MIN_CONFIDENCE = 0.5
MAX_CHARS_EXAMINED = 300


@lru_cache(maxsize=1)
def _identifier() -> LanguageIdentifier:
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(SUPPORTED_LANGUAGES))
    return identifier


def detect_language(text: str) -> tuple[str, float]:
    """ISO 639-1 code and probability, or ('und', 0.0) for text with too little to go on."""
    if sum(char.isalpha() for char in text) < MIN_LETTERS:
        return UNDETERMINED, 0.0
    # The first few hundred characters settle the language; the rest only costs time.
    language, probability = _identifier().classify(text[:MAX_CHARS_EXAMINED])
    if probability < MIN_CONFIDENCE:
        return UNDETERMINED, float(probability)
    return language, float(probability)
