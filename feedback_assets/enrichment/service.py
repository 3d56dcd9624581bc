"""Classifying prepared items with a backend, so that every item comes back exactly once."""

from __future__ import annotations

from collections.abc import Sequence

from feedback_assets.enrichment.local import FeedbackItem, LocalClassifier, default_encoder, taxonomy_prototypes
from feedback_assets.enrichment.taxonomy import load_taxonomy


def local_classifier() -> LocalClassifier:
    taxonomy = load_taxonomy()
    return LocalClassifier(taxonomy, default_encoder(), taxonomy_prototypes(taxonomy))


def classify_with_backend(items: Sequence[FeedbackItem], backend: str) -> list[dict]:
    """One classification per item, in input order."""
    if backend != "local":
        raise ValueError(f"unknown backend {backend!r}")
    results = local_classifier().classify(items)
    assert [r["id"] for r in results] == [i.id for i in items]
    return results
