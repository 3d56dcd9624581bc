"""Offline language identification (py3langid), limited to the languages our customers write in."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from py3langid.langid import MODEL_FILE, LanguageIdentifier

SUPPORTED_LANGUAGES = ("en", "es", "pt", "de", "fr", "it", "nl")
UNDETERMINED = "und"
MIN_LETTERS = 3
MIN_CONFIDENCE = 0.5
MAX_CHARS_EXAMINED = 300
_TEXTS_PER_PASS = 4096


@lru_cache(maxsize=1)
def _identifier() -> LanguageIdentifier:
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(SUPPORTED_LANGUAGES))
    return identifier


@dataclass(frozen=True)
class _Model:
    """py3langid's byte DFA and naive Bayes tables as NumPy arrays, for many texts at once."""

    next_state: np.ndarray  # row_base[state] + byte → state
    row_base: np.ndarray
    feature: np.ndarray  # state → the feature it counts, or -1
    log_probabilities: np.ndarray  # feature × language, float32 as py3langid computes with
    priors: np.ndarray
    languages: tuple[str, ...]


@lru_cache(maxsize=1)
def _model() -> _Model:
    identifier = _identifier()
    if len(set(identifier.nb_classes)) < len(identifier.nb_classes):
        raise ValueError("batched scoring does not fold py3langid's aliased language columns")
    return _Model(
        next_state=np.asarray(identifier.tk_nextmove),
        row_base=np.asarray(identifier.tk_row, dtype=np.intp) << 8,
        feature=np.asarray(identifier.tk_output, dtype=np.int32),
        log_probabilities=identifier.nb_ptc.astype(np.float32),
        priors=identifier.nb_pc,
        languages=tuple(identifier.nb_classes),
    )


def _has_letters(text: str) -> bool:
    letters = 0
    for char in text:
        if char.isalpha():
            letters += 1
            if letters == MIN_LETTERS:
                return True
    return False


def _verdict(language: str, probability: float) -> tuple[str, float]:
    return (UNDETERMINED if probability < MIN_CONFIDENCE else language), float(probability)


def detect_language(text: str) -> tuple[str, float]:
    """ISO 639-1 code and probability, or ('und', 0.0) for text with too little to go on."""
    if not _has_letters(text):
        return UNDETERMINED, 0.0
    # The first few hundred characters settle the language; the rest only costs time.
    return _verdict(*_identifier().classify(text[:MAX_CHARS_EXAMINED]))


def detect_languages(texts: Sequence[str]) -> list[tuple[str, float]]:
    """detect_language of each text, computed for all of them in a few vectorized passes over the model."""
    results = [(UNDETERMINED, 0.0)] * len(texts)
    # py3langid's own preprocessing (upper-case text lowered, NFC, UTF-8), longest first for the DFA
    examined = sorted(((index, LanguageIdentifier._encode(text[:MAX_CHARS_EXAMINED]))
                       for index, text in enumerate(texts) if _has_letters(text)),
                      key=lambda item: len(item[1]), reverse=True)
    languages = _model().languages
    for start in range(0, len(examined), _TEXTS_PER_PASS):
        indexes, encoded = zip(*examined[start : start + _TEXTS_PER_PASS], strict=True)
        probabilities = _probabilities(list(encoded))
        best = probabilities.argmax(axis=1)
        chosen = probabilities[np.arange(len(indexes)), best]
        for index, language, probability in zip(indexes, best.tolist(), chosen.tolist(), strict=True):
            results[index] = _verdict(languages[language], probability)
    return results


def _feature_counts(encoded: list[bytes], model: _Model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(text, feature, count) of the features py3langid's DFA counts in texts given longest first.

    The DFA steps all texts one byte at a time, so the texts still running are a prefix of the
    list. Rows come by text, and within a text in order of first occurrence: py3langid sums in that order.
    """
    lengths = [len(data) for data in encoded]
    longest = lengths[0]
    byte_at = np.frombuffer(b"".join(data.ljust(longest, b"\0") for data in encoded), dtype=np.uint8)
    byte_at = byte_at.reshape(len(encoded), longest).T.copy()
    running = len(encoded) - np.searchsorted(lengths[::-1], np.arange(longest), side="right")
    base = np.full(len(encoded), model.row_base[0], dtype=np.intp)
    emitted = np.full((longest, len(encoded)), -1, dtype=np.int32)
    for position, count in enumerate(running.tolist()):
        state = model.next_state[base[:count] + byte_at[position, :count]]
        base[:count] = model.row_base[state]
        emitted[position, :count] = model.feature[state]
    by_text = emitted.T.ravel()
    hits = np.flatnonzero(by_text >= 0)
    text, feature = hits // longest, by_text[hits]
    # A stable sort groups the hits of each (text, feature) and keeps the first occurrence first.
    pair = text * len(model.log_probabilities) + feature
    grouped = np.argsort(pair, kind="stable")
    starts = np.flatnonzero(np.diff(pair[grouped], prepend=-1))
    counts = np.zeros(len(pair), dtype=np.int64)
    counts[grouped[starts]] = np.diff(np.append(starts, len(pair)))
    first = counts > 0
    return text[first], feature[first], counts[first]


def _probabilities(encoded: list[bytes]) -> np.ndarray:
    """py3langid's probabilities (texts × languages) of texts given longest first, computed as its _decide does."""
    model = _model()
    scores = np.zeros((len(encoded), len(model.languages)), dtype=np.float32)
    text, feature, counts = _feature_counts(encoded, model)
    weights = np.log1p(counts.astype(np.float32))
    rows = model.log_probabilities[feature]
    bounds = np.searchsorted(text, np.arange(len(encoded) + 1))
    # One small product per text, as py3langid computes it, so that the float32 sums round alike.
    for index, (low, high) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)):
        if high > low:
            scores[index] = weights[low:high] @ rows[low:high] + model.priors
    scores *= np.array([1.0 / math.sqrt(len(data) or 1) for data in encoded], dtype=np.float32)[:, None]
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    return scores / scores.sum(axis=1, keepdims=True)
