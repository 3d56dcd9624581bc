"""Which classifier the enrichment assets run, named without loading it: the version Dagster and the cache see."""

from __future__ import annotations

from dataclasses import dataclass

from feedback_assets.enrichment.local import LocalParams, local_version, taxonomy_prototypes
from feedback_assets.enrichment.prompt import build_prompt
from feedback_assets.enrichment.taxonomy import Taxonomy

LOCAL_MODEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class ClassifierIdentity:
    """Backend, model and version of what the classifier is shown (taxonomy, instructions, few-shot examples)."""

    backend: str  # local | openai | azure_openai
    model: str
    version: str  # with the model, what cached results are keyed on (the `prompt_version` column)
    taxonomy_version: str

    @property
    def code_version(self) -> str:
        """The assets' code version: a change marks every classified day stale in the UI."""
        return code_version_of(self.backend, self.model, self.version)


def code_version_of(backend: str, model: str, version: str) -> str:
    return f"{backend}/{model}/{version}"


def local_identity(taxonomy: Taxonomy, params: LocalParams | None = None) -> ClassifierIdentity:
    """What `service.local_classifier(params=params)` reports, with or without corrections, without loading its model."""
    return ClassifierIdentity("local", LOCAL_MODEL, local_version(taxonomy, taxonomy_prototypes(taxonomy), params or LocalParams()),
                              taxonomy.version)


def llm_identity(taxonomy: Taxonomy, backend: str, model: str) -> ClassifierIdentity:
    return ClassifierIdentity(backend, model, build_prompt(taxonomy).version, taxonomy.version)
