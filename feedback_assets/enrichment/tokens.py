"""Token counts with the o200k_base encoding (GPT-4o family), offline via bpe-openai."""

from __future__ import annotations

from functools import cache


@cache
def _encoding():
    import bpe_openai

    return bpe_openai.get_encoding("o200k_base")


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text))
