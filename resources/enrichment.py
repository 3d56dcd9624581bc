"""How feedback gets classified: the LLM when credentials are configured, the local model otherwise."""

from __future__ import annotations

import dagster as dg

from feedback_assets.enrichment.entities import EntityCatalog
from feedback_assets.enrichment.llm import LLMConnection, LLMSettings
from feedback_assets.enrichment.local import LocalParams
from feedback_assets.enrichment.service import llm_classifier, local_classifier, resolve_backend
from feedback_assets.enrichment.step import Backend


class EnrichmentResource(dg.ConfigurableResource):
    """Backend choice and limits; credentials come from the environment (OPENAI_*, AZURE_OPENAI_*), never config."""

    backend: str = "auto"  # auto | local | openai
    batch_size: int = 8
    max_concurrency: int = 4
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    review_below_confidence: float | None = None

    def build(self, catalog: EntityCatalog) -> Backend:
        connection = LLMConnection.from_env()
        if resolve_backend(self.backend, connection) == "local":
            params = LocalParams() if self.review_below_confidence is None else LocalParams(
                review_below_confidence=self.review_below_confidence)
            classifier = local_classifier(catalog=catalog, params=params)
            return Backend("local", "all-MiniLM-L6-v2", classifier.version, classifier.classify)
        settings = LLMSettings(model=connection.model, batch_size=self.batch_size, max_concurrency=self.max_concurrency,
                               rpm_limit=self.rpm_limit, tpm_limit=self.tpm_limit,
                               review_below_confidence=self.review_below_confidence or LLMSettings.review_below_confidence)
        llm = llm_classifier(connection, settings, catalog)
        return Backend(llm.backend, settings.model, llm.prompt.version, llm.classify, llm.usage)
