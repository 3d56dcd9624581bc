"""How complaints are themed: which embeddings, how alike items must be, how big a new theme must be."""

from __future__ import annotations

import dagster as dg

from feedback_assets.enrichment.llm import LLMConnection
from feedback_assets.enrichment.service import resolve_backend
from feedback_assets.theming.clustering import ClusterParams
from feedback_assets.theming.embeddings import (
    DEFAULT_OPENAI_MODEL,
    Embedder,
    LocalEmbedder,
    openai_embedder,
)


class ThemesResource(dg.ConfigurableResource):
    """Embedding backend and clustering thresholds; credentials only from the environment (OPENAI_*, AZURE_OPENAI_*).

    The thresholds are cosine similarities of the chosen embedding model: the defaults suit
    all-MiniLM-L6-v2; another model needs its own (and gets its own registry and cache).
    """

    backend: str = "auto"  # auto (OpenAI embeddings when credentials are set) | local | openai
    embedding_model: str = DEFAULT_OPENAI_MODEL  # OpenAI model or Azure deployment; local is always all-MiniLM-L6-v2
    join_similarity: float = ClusterParams.join_similarity
    cluster_similarity: float = ClusterParams.cluster_similarity
    min_theme_size: int = ClusterParams.min_size
    pool_days: int = ClusterParams.pool_days
    products_by: str = "category"  # category | sku
    batch_size: int = 256
    max_concurrency: int = 4

    def cluster_params(self) -> ClusterParams:
        return ClusterParams(self.join_similarity, self.cluster_similarity, self.min_theme_size, self.pool_days)

    def build_embedder(self) -> Embedder:
        """The local model, or OpenAI / Azure OpenAI embeddings when chosen or when `auto` finds credentials."""
        connection = LLMConnection.from_env()
        if resolve_backend(self.backend, connection) == "local":
            return LocalEmbedder()
        return openai_embedder(connection, self.embedding_model, batch_size=self.batch_size,
                               max_concurrency=self.max_concurrency)
