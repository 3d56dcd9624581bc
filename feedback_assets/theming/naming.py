"""Short theme names from c-TF-IDF keywords: the words that make one theme's texts differ from its neighbours'.

The themes of a group are treated as one document each; a word scores by its share of the theme's
words times log(1 + A / f), where A is the average number of words per theme and f the word's count
over all themes of the group (class-based TF-IDF). English stop words and PII placeholders such as
`[EMAIL]` are ignored; a word that every theme of the group uses is left out (it names the group);
a keyword should occur in at least two of the theme's texts, so one customer's wording does not name
a theme (only when fewer than two words qualify do single-text words fill in). Deterministic: ties
go alphabetically.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

K = TypeVar("K", bound=Hashable)
MIN_KEYWORDS = 2
_PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")
_WORD = re.compile(r"[^\W\d_]{3,}")
# scikit-learn's list also drops words that carry a complaint ("empty box", "top seam", "call me back").
_CONTENT_WORDS = {"back", "bill", "bottom", "call", "detail", "empty", "fill", "fire", "front", "full", "move", "name",
                  "part", "show", "side", "system", "thick", "thin", "top"}
# Contraction stems left by splitting on apostrophes, and filler common in feedback.
_STOP_WORDS = (ENGLISH_STOP_WORDS - _CONTENT_WORDS) | {
    "didn", "doesn", "don", "isn", "wasn", "won", "aren", "couldn", "wouldn", "haven", "hasn", "just", "really", "got",
    "like", "did", "does"}


@dataclass(frozen=True)
class ThemeName:
    name: str
    keywords: tuple[str, ...]


def words(text: str) -> list[str]:
    """Lower-case words of a text, without stop words, placeholders, numbers or words shorter than three letters."""
    return [w for w in _WORD.findall(_PLACEHOLDER.sub(" ", text).lower()) if w not in _STOP_WORDS]


def name_themes(texts: Mapping[K, Sequence[str]], keywords: int = 3) -> dict[K, ThemeName]:
    """A name of up to `keywords` words for each theme, its texts given most representative first."""
    tokens = {key: [words(text) for text in theme_texts] for key, theme_texts in texts.items()}
    counts = {key: Counter(w for text in theme for w in text) for key, theme in tokens.items()}
    overall: Counter[str] = Counter()
    for count in counts.values():
        overall.update(count)
    average = sum(overall.values()) / max(len(counts), 1)
    # A word every theme of the group uses names the group (often the label itself), not one theme.
    shared = set.intersection(*(set(count) for count in counts.values())) if len(counts) > 1 else set()
    names = {}
    for key, count in counts.items():
        total = sum(count.values())
        support = Counter(w for text in tokens[key] for w in set(text))
        scores = {w: n / total * math.log(1 + average / overall[w]) for w, n in count.items()}
        ordered = sorted(scores, key=lambda w: (-scores[w], w))
        ranked = [w for w in ordered if w not in shared] or ordered
        chosen = [w for w in ranked if support[w] >= min(2, len(tokens[key]))][:keywords]
        if len(chosen) < MIN_KEYWORDS:
            chosen += [w for w in ranked if w not in chosen][: MIN_KEYWORDS - len(chosen)]
        name = " ".join(_reading_order(chosen, tokens[key])) or _shortened(texts[key][0])
        names[key] = ThemeName(name, tuple(chosen))
    return names


def _shortened(text: str, limit: int = 40) -> str:
    """A theme without a single keyword is named by its most representative text."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reading_order(chosen: list[str], texts: list[list[str]]) -> list[str]:
    """Keywords in the order the most representative text using them has them ("return label", not "label return")."""
    def place(word: str) -> tuple[int, int]:
        return next((i, text.index(word)) for i, text in enumerate(texts) if word in text)

    return sorted(chosen, key=place)
