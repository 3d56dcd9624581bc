"""Which classifier the enrichment assets run, named without loading it: the version Dagster and the cache see."""

from __future__ import annotations

from dataclasses import dataclass

from feedback_assets.enrichment.embedders import EMBEDDERS, configured_model
from feedback_assets.enrichment.local import LocalParams, default_params, local_version, taxonomy_prototypes, training_examples
from feedback_assets.enrichment.prompt import build_prompt
from feedback_assets.enrichment.taxonomy import Taxonomy


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


def local_identity(taxonomy: Taxonomy, params: LocalParams | None = None, model: str | None = None) -> ClassifierIdentity:
    """What `service.local_classifier(params=params)` reports, with or without corrections, without loading its model."""
    model = model or configured_model()
    prototypes = taxonomy_prototypes(taxonomy, training_examples(taxonomy))
    return ClassifierIdentity("local", EMBEDDERS[model].name,
                              local_version(taxonomy, prototypes, params or default_params(model), model), taxonomy.version)


def llm_identity(taxonomy: Taxonomy, backend: str, model: str) -> ClassifierIdentity:
    return ClassifierIdentity(backend, model, build_prompt(taxonomy).version, taxonomy.version)
