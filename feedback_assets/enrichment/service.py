"""Choosing a backend and classifying prepared items with it, so every item comes back exactly once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from feedback_assets.enrichment.batch import BatchClassifier, BatchSettings
from feedback_assets.enrichment.corrections import Correction
from feedback_assets.enrichment.llm import LLMClassifier, LLMConnection, LLMSettings, Usage, client_factory
from feedback_assets.enrichment.entities import EntityCatalog
from feedback_assets.enrichment.embedders import configured_model, encoder_for
from feedback_assets.enrichment.local import (
    LocalClassifier,
    LocalParams,
    Prototype,
    default_params,
    known_corrections,
    taxonomy_prototypes,
    training_examples,
)
from feedback_assets.enrichment.models import FeedbackItem
from feedback_assets.enrichment.prompt import build_prompt
from feedback_assets.enrichment.taxonomy import load_taxonomy

@dataclass
class Classification:
    results: list[dict]
    backend: str
    model: str
    prompt_version: str
    usage: Usage = field(default_factory=Usage)


def local_classifier(corrections: Sequence[Prototype] = (), catalog: EntityCatalog | None = None,
                     params: LocalParams | None = None, model: str | None = None) -> LocalClassifier:
    """The local classifier (the configured embedder unless `model` names one), recalling analysts' corrections."""
    taxonomy = load_taxonomy()
    model = model or configured_model()
    # The few-shot examples are not training examples: they are long, multi-issue texts written for the LLM.
    return LocalClassifier(taxonomy, encoder_for(model), taxonomy_prototypes(taxonomy, training_examples(taxonomy)),
                           catalog or EntityCatalog(), params or default_params(model),
                           known_corrections(taxonomy, corrections))


def resolve_backend(requested: str, connection: LLMConnection | None) -> str:
    """`auto` means the LLM when credentials are configured, the local classifier otherwise."""
    if requested == "auto":
        return "openai" if connection else "local"
    if requested == "openai" and connection is None:
        raise ValueError("the openai backend needs OPENAI_API_KEY, or AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY")
    return requested


def llm_classifier(connection: LLMConnection, settings: LLMSettings | None = None, catalog: EntityCatalog | None = None,
                   corrections: Sequence[Correction] = (), batch: BatchSettings | None = None) -> LLMClassifier | BatchClassifier:
    """The LLM classifier (realtime, or through the Batch API when `batch` is given), with analysts' examples."""
    taxonomy = load_taxonomy()
    settings = settings or LLMSettings(model=connection.model)
    backend = "azure_openai" if connection.provider == "azure" else "openai"
    prompt = build_prompt(taxonomy, corrections=corrections)
    if batch is not None:
        return BatchClassifier(client_factory(connection), taxonomy, prompt, settings, backend=backend,
                               catalog=catalog or EntityCatalog(), batch_settings=batch)
    return LLMClassifier(client_factory(connection), taxonomy, prompt, settings, backend=backend,
                         catalog=catalog or EntityCatalog())


def classify_with_backend(items: Sequence[FeedbackItem], backend: str = "auto") -> Classification:
    """One classification per item, in input order, from the chosen backend."""
    connection = LLMConnection.from_env()
    chosen = resolve_backend(backend, connection)
    if chosen == "local":
        classifier = local_classifier()
        return Classification(classifier.classify(items), "local", classifier.model, classifier.version)
    llm = llm_classifier(connection)
    results = llm.classify(items)
    return Classification(results, llm.backend, llm.settings.model, llm.prompt.version, llm.usage)
