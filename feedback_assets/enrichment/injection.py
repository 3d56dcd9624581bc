"""Heuristics for feedback that tries to steer the classifier instead of describing an experience."""

from __future__ import annotations

import re

_PATTERNS = [
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(previous|prior|above|earlier|all|system|your)\b.{0,20}\b(instructions?|prompts?|rules?|messages?)",
    r"\b(new|updated|real)\s+instructions?\b",
    r"^\s*(system|assistant|developer)\s*:",
    r"\n\s*(system|assistant|developer)\s*:",
    r"</?\s*(feedback|feedback_items|item|system|instructions?)\s*>",
    r"\byou\s+are\s+now\b",
    r"\b(act|behave)\s+as\s+(an?|the)\b",
    r"\"?\b(primary_label|labels|suggested_owner|needs_review|confidence)\b\"?\s*[:=]",
    r"\b(label|classify|tag|categori[sz]e)\s+(this|it|me)\s+(as|with)\b",
    r"\b(assign|route|escalate|send)\s+(this|it)\s+to\s+(the\s+)?\w+\s+team\b",
    r"```",
]
_INJECTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE | re.MULTILINE)


def injection_signals(text: str) -> list[str]:
    """The fragments of the text that look like instructions to the model (empty when none)."""
    return [match.group(0).strip()[:60] for match in _INJECTION.finditer(text)]


def looks_like_injection(text: str) -> bool:
    return _INJECTION.search(text) is not None
