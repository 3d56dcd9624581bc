"""Evidence quotes that are quotes: a model's evidence is kept only when the customer really wrote it.

A classifier names, for each label, the words of the feedback that show it. A model may paraphrase,
or an injected instruction may make it "quote" something else; such text would then be shown to
teams as what customers say and would name themes. So an evidence string is kept only when it is a
verbatim part of the (scrubbed) feedback text, compared after normalising case, spacing, quote
marks and dashes; otherwise the sentence of the text that best matches it stands in, and the row
records that (`evidence_origin`: `quote` or `fallback`).
"""

from __future__ import annotations

import re
import unicodedata

QUOTE = "quote"
FALLBACK = "fallback"
MAX_EVIDENCE_CHARS = 200
MIN_QUOTE_CHARS = 3

_SENTENCE_END = re.compile(r"(?<=[.!?¡¿])\s+|\n+")
_LOOKALIKES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u201c": '"', "\u201d": '"',
                             "\u201e": '"', "\u00ab": '"', "\u00bb": '"', "\u2013": "-", "\u2014": "-", "\u2212": "-",
                             "\u2026": "..."})
_EDGES = " \t\n\"'.,;:!?…-"
_WORD = re.compile(r"\w{3,}")


def normalized(text: str) -> str:
    """Case, spacing, quote marks and dashes folded, so a faithful quote matches its source."""
    folded = unicodedata.normalize("NFKC", text).translate(_LOOKALIKES).casefold()
    return " ".join(folded.split())


def split_sentences(text: str, limit: int = 8) -> list[str]:
    """Sentences worth scoring (at most `limit`, the longest kept); the whole text when it has none."""
    parts = [p.strip() for p in _SENTENCE_END.split(text) if len(p.strip()) >= 3]
    if not parts:
        return [text.strip() or "(empty)"]
    if len(parts) > limit:
        keep = sorted(sorted(range(len(parts)), key=lambda i: -len(parts[i]))[:limit])
        parts = [parts[i] for i in keep]
    return [p[:400] for p in parts]


def is_quote(evidence: str, text: str) -> bool:
    """Whether `evidence` (without surrounding quote marks or ellipses) is a verbatim part of `text`."""
    needle = normalized(evidence).strip(_EDGES)
    return len(needle) >= MIN_QUOTE_CHARS and needle in normalized(text)


def best_sentence(text: str, hint: str = "") -> str:
    """The sentence of `text` sharing the most words with `hint`; among equals, the one with most words."""
    sentences = split_sentences(text)
    wanted = set(_WORD.findall(normalized(hint)))
    words = [set(_WORD.findall(normalized(s))) for s in sentences]
    return sentences[max(range(len(sentences)), key=lambda i: (len(wanted & words[i]), len(words[i]), -i))]


def verified_evidence(evidence: object, text: str) -> tuple[str, str]:
    """(evidence, origin): the quote itself when it is one, else the best sentence of the text."""
    claimed = evidence if isinstance(evidence, str) else ""
    if is_quote(claimed, text):
        return " ".join(claimed.split()).strip(" \"'“”‘’")[:MAX_EVIDENCE_CHARS], QUOTE
    return best_sentence(text, claimed)[:MAX_EVIDENCE_CHARS], FALLBACK
