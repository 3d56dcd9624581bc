"""Sentence embeddings for themes: the local model by default, OpenAI or Azure OpenAI embeddings when configured.

Every embedder returns unit-length float32 rows, so a dot product is a cosine similarity. `name`
identifies the vector space (the cache and the theme registry are kept per name): vectors of two
models are never compared.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import openai

from feedback_assets.enrichment.llm import LLMConnection, client_factory
from feedback_assets.enrichment.embedders import EMBEDDERS, Encoder, configured_model, default_encoder

DEFAULT_OPENAI_MODEL = "text-embedding-3-small"
# USD per million input tokens; unknown models are costed as text-embedding-3-small.
PRICES_PER_MILLION = {"text-embedding-3-small": 0.02, "text-embedding-3-large": 0.13, "text-embedding-ada-002": 0.10}


@dataclass
class EmbeddingUsage:
    """API requests and input tokens (zero for the local model)."""

    calls: int = 0
    tokens: int = 0

    def cost_usd(self, model: str) -> float:
        return self.tokens * PRICES_PER_MILLION.get(model, PRICES_PER_MILLION[DEFAULT_OPENAI_MODEL]) / 1e6


class EmbeddingsUnavailable(RuntimeError):
    """The configured embeddings endpoint does not serve embeddings (said in words, with the way out)."""


class Embedder(Protocol):
    name: str
    usage: EmbeddingUsage

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length one (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


class LocalEmbedder:
    """The classifier's embedder on the CPU (FEEDBACK_LOCAL_MODEL); loaded only when something is not cached."""

    def __init__(self, encoder_factory: Callable[[], Encoder] = default_encoder, model: str | None = None):
        self._encoder_factory = encoder_factory
        self.name = EMBEDDERS[model or configured_model()].name
        self.usage = EmbeddingUsage()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return unit_rows(self._encoder_factory().encode(list(texts)))


@dataclass
class OpenAIEmbedder:
    """`embeddings.create` through the openai SDK, in batches, a few requests at a time; the SDK retries 429/5xx."""

    # A fresh client per embed() call: async clients are bound to the event loop that made them.
    client_factory: Callable[[], openai.AsyncOpenAI]
    model: str
    name: str
    batch_size: int = 256
    max_concurrency: int = 4
    usage: EmbeddingUsage = field(default_factory=EmbeddingUsage)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return asyncio.run(self._embed(list(texts)))

    async def _embed(self, texts: list[str]) -> np.ndarray:
        semaphore = asyncio.Semaphore(self.max_concurrency)
        batches = [texts[i: i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        async with self.client_factory() as client:
            parts = await asyncio.gather(*(self._request(client, batch, semaphore) for batch in batches))
        return unit_rows(np.concatenate(parts)) if parts else np.zeros((0, 0), dtype=np.float32)

    async def _request(self, client: openai.AsyncOpenAI, batch: list[str], semaphore: asyncio.Semaphore) -> np.ndarray:
        async with semaphore:
            try:
                response = await client.embeddings.create(model=self.model, input=batch)
            except openai.APIStatusError as error:
                if error.status_code in (400, 404, 405, 501):
                    raise EmbeddingsUnavailable(
                        f"the embeddings endpoint at {client.base_url} answered HTTP {error.status_code} for model "
                        f"{self.model!r}: it serves no embeddings for it (many vLLM and Ollama servers serve chat only). "
                        "Theme with the local model (FEEDBACK_EMBEDDINGS=local, or unset OPENAI_EMBEDDING_MODEL), "
                        "or point OPENAI_EMBEDDING_BASE_URL at a server that embeds."
                    ) from None
                raise
        if len(response.data) != len(batch):
            raise ValueError(f"the embeddings response has {len(response.data)} vectors for {len(batch)} texts")
        self.usage.calls += 1
        self.usage.tokens += response.usage.prompt_tokens if response.usage else 0
        return np.array([d.embedding for d in sorted(response.data, key=lambda d: d.index)], dtype=np.float32)


def openai_embedder(connection: LLMConnection, model: str = DEFAULT_OPENAI_MODEL, *, batch_size: int = 256,
                    max_concurrency: int = 4) -> OpenAIEmbedder:
    """An embedder for the configured provider; on Azure OpenAI `model` names the embedding deployment."""
    deployment = LLMConnection(connection.provider, model)
    name = f"azure/{model}" if connection.provider == "azure" else model
    env = dict(os.environ)
    if env.get("OPENAI_EMBEDDING_BASE_URL"):
        env["OPENAI_BASE_URL"] = env["OPENAI_EMBEDDING_BASE_URL"]
    return OpenAIEmbedder(client_factory(deployment, env), model, name, batch_size, max_concurrency)
