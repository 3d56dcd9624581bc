"""How complaints are themed: which embeddings, how alike items must be, how big a new theme must be."""

from __future__ import annotations

import os

import dagster as dg

from feedback_assets.enrichment.embedders import configured_model
from feedback_assets.enrichment.llm import LLMConnection
from feedback_assets.theming.clustering import ClusterParams
from feedback_assets.theming.embeddings import (
    DEFAULT_OPENAI_MODEL,
    Embedder,
    LocalEmbedder,
    openai_embedder,
)


# (join, cluster) per local model. e5 puts any two texts at 0.8+: its values are MiniLM's mapped by
# quantile of pairwise cosines over real complaint sentences (the 99.2nd and 99.9th percentiles).
LOCAL_CLUSTER_SIMILARITIES = {
    "minilm": (ClusterParams.join_similarity, ClusterParams.cluster_similarity),
    "use": (ClusterParams.join_similarity, ClusterParams.cluster_similarity),
    "e5": (0.93, 0.9),
}


class ThemesResource(dg.ConfigurableResource):
    """Embedding backend and clustering thresholds; credentials only from the environment (OPENAI_*, AZURE_OPENAI_*).

    The embedding backend is chosen apart from the classifier's: an OpenAI-compatible chat server
    (vLLM, Ollama...) often serves no embeddings. `auto` embeds through the API only when embeddings
    are configured (OPENAI_EMBEDDING_MODEL, AZURE_OPENAI_EMBEDDING_DEPLOYMENT, or an OpenAI key with
    no custom base URL) and with the local model otherwise. FEEDBACK_EMBEDDINGS (auto | local |
    openai) overrides `backend`; OPENAI_EMBEDDING_BASE_URL points embeddings at another server.

    The thresholds are cosine similarities of the chosen embedding model: unset, the local model's own
    apply (`LOCAL_CLUSTER_SIMILARITIES`; the defaults suit all-MiniLM-L6-v2 and the Universal Sentence
    Encoder, whose cosines run alike); another model needs its own (and gets its own registry and cache).
    """

    backend: str = "auto"  # auto | local | openai
    embedding_model: str | None = None  # OpenAI model or Azure deployment; default from the environment
    join_similarity: float | None = None
    cluster_similarity: float | None = None
    min_theme_size: int = ClusterParams.min_size
    pool_days: int = ClusterParams.pool_days
    products_by: str = "category"  # category | sku
    batch_size: int = 256
    max_concurrency: int = 4

    def cluster_params(self) -> ClusterParams:
        """The configured thresholds, or the defaults of the model `build_embedder` embeds with."""
        local = embedding_choice(os.environ.get("FEEDBACK_EMBEDDINGS") or self.backend, dict(os.environ),
                                 self.embedding_model) is None
        join, cluster = LOCAL_CLUSTER_SIMILARITIES[configured_model()] if local else (
            ClusterParams.join_similarity, ClusterParams.cluster_similarity)
        return ClusterParams(join if self.join_similarity is None else self.join_similarity,
                             cluster if self.cluster_similarity is None else self.cluster_similarity,
                             self.min_theme_size, self.pool_days)

    def build_embedder(self) -> Embedder:
        """The local model, or OpenAI / Azure OpenAI embeddings when chosen or configured (see the class)."""
        choice = embedding_choice(os.environ.get("FEEDBACK_EMBEDDINGS") or self.backend, dict(os.environ),
                                  self.embedding_model)
        if choice is None:
            return LocalEmbedder()
        connection, model = choice
        return openai_embedder(connection, model, batch_size=self.batch_size, max_concurrency=self.max_concurrency)


def embedding_choice(backend: str, env: dict[str, str], model: str | None = None) -> tuple[LLMConnection, str] | None:
    """The API connection and embedding model to use, or None for the local model."""
    if backend not in ("auto", "local", "openai"):
        raise ValueError(f"FEEDBACK_EMBEDDINGS must be auto, local or openai, not {backend!r}")
    if backend == "local":
        return None
    connection = LLMConnection.from_env(env)
    if connection is None:
        if backend == "openai":
            raise ValueError("embeddings through the API need OPENAI_API_KEY, or AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY")
        return None
    if connection.provider == "azure":
        configured = model or env.get("AZURE_OPENAI_EMBEDDING_DEPLOYMENT")
    else:
        official = not env.get("OPENAI_BASE_URL") or env.get("OPENAI_EMBEDDING_BASE_URL")
        configured = model or env.get("OPENAI_EMBEDDING_MODEL") or (DEFAULT_OPENAI_MODEL if official else None)
    if configured is None:
        if backend == "openai":
            raise ValueError("name the embedding model (OPENAI_EMBEDDING_MODEL, or AZURE_OPENAI_EMBEDDING_DEPLOYMENT "
                             "on Azure): a custom OPENAI_BASE_URL may serve chat only")
        return None
    return connection, configured
