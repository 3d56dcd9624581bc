"""How feedback gets classified: the LLM when credentials are configured, the local model otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import dagster as dg

from feedback_assets.enrichment.corrections import Correction, prototypes_from
from feedback_assets.enrichment.entities import EntityCatalog
from feedback_assets.enrichment.identity import ClassifierIdentity, llm_identity, local_identity
from feedback_assets.enrichment.llm import LLMConnection, LLMSettings
from feedback_assets.enrichment.local import LocalParams, Prototype, default_params
from feedback_assets.enrichment.service import llm_classifier, local_classifier, resolve_backend
from feedback_assets.enrichment.batch import BatchSettings
from feedback_assets.enrichment.step import BATCH_CHUNK, Backend
from feedback_assets.enrichment.taxonomy import load_taxonomy


def correction_prototypes(corrections: Sequence[Correction]) -> list[Prototype]:
    return [Prototype(label, text) for label, text in prototypes_from(corrections)]


class EnrichmentResource(dg.ConfigurableResource):
    """Backend choice and limits; credentials come from the environment (OPENAI_*, AZURE_OPENAI_*), never config."""

    backend: str = "auto"  # auto | local | openai
    batch_size: int = 8
    max_concurrency: int = 4
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    review_below_confidence: float | None = None
    # realtime | batch: `batch` sends the LLM's requests through the Batch API (half the price, results
    # within 24 h), for large backfills; `feedback backfill --batch` sets it for one backfill.
    mode: str = "realtime"
    batch_poll_seconds: float = 60.0

    def _local_params(self) -> LocalParams:
        if self.review_below_confidence is None:
            return default_params()
        return replace(default_params(), review_below_confidence=self.review_below_confidence)

    def llm_settings(self, model: str) -> LLMSettings:
        """Batching, concurrency and rate limits for the LLM named `model`."""
        return LLMSettings(model=model, batch_size=self.batch_size, max_concurrency=self.max_concurrency,
                           rpm_limit=self.rpm_limit, tpm_limit=self.tpm_limit,
                           review_below_confidence=self.review_below_confidence or LLMSettings.review_below_confidence)

    def identity(self) -> ClassifierIdentity:
        """The classifier `build` would make, named without loading a model or opening a connection."""
        connection = LLMConnection.from_env()
        taxonomy = load_taxonomy()
        if resolve_backend(self.backend, connection) == "local":
            return local_identity(taxonomy, self._local_params())
        return llm_identity(taxonomy, "azure_openai" if connection.provider == "azure" else "openai", connection.model)

    def build(self, catalog: EntityCatalog, corrections: Sequence[Correction] = (), realtime: bool = False) -> Backend:
        """The configured classifier; analysts' corrections become the local classifier's memory."""
        connection = LLMConnection.from_env()
        if resolve_backend(self.backend, connection) == "local":
            classifier = local_classifier(correction_prototypes(corrections), catalog=catalog, params=self._local_params())
            return Backend("local", classifier.model, classifier.version, classifier.classify,
                           taxonomy_version=classifier.taxonomy.version)
        if self.mode not in ("realtime", "batch"):
            raise ValueError(f"the enrichment mode must be realtime or batch, got {self.mode!r}")
        settings = self.llm_settings(connection.model)
        batch = BatchSettings(poll_interval_s=self.batch_poll_seconds) if self.mode == "batch" and not realtime else None
        llm = llm_classifier(connection, settings, catalog, corrections, batch)
        # A batch waits for its results as a whole: one batch for the window rather than one per checkpoint.
        return Backend(llm.backend, settings.model, llm.prompt.version, llm.classify, llm.usage,
                       taxonomy_version=llm.taxonomy.version, chunk_size=BATCH_CHUNK if batch else 0)
