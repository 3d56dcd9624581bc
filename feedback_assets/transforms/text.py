"""Text normalization applied before anything else looks at customer text."""

from __future__ import annotations

import html
import re
import unicodedata

_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b[^>]*>.*?(</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_BLOCK_BREAK = re.compile(r"<\s*(br|/p|/div|/li|/h\d)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z!][^<>]*>")
_INVISIBLE = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b\u200c\u200d\u2060\ufeff]")
# A run of spaces (not line breaks) other than one plain space: rewriting each single space costs more.
_SPACES = re.compile(r"[^\S\n](?:[^\S\n]+|(?<! ))")
_LINE_BREAKS = re.compile(r"\s*\n\s*")


def strip_html(text: str) -> str:
    """Drops tags (and script/style bodies) and decodes entities; text without markup is unchanged."""
    if "<" in text:
        text = _SCRIPT_OR_STYLE.sub(" ", text)
        text = _BLOCK_BREAK.sub("\n", text)
        text = _TAG.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    return text


def normalize_text(text: str) -> str:
    """HTML stripped, Unicode NFC, invisible characters removed, spaces collapsed, line breaks kept single."""
    text = unicodedata.normalize("NFC", strip_html(text)).replace("\r", "\n")
    text = _SPACES.sub(" ", _INVISIBLE.sub("", text))
    if "\n" in text:
        text = _LINE_BREAKS.sub("\n", text)
    return text.strip()
