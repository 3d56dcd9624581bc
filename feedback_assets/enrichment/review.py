"""The classification row every backend returns, and when it should go to an analyst (the triage queue)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from feedback_assets.enrichment.entities import EntityCatalog, one_line, resolve_entities
from feedback_assets.enrichment.evidence import verified_evidence
from feedback_assets.enrichment.injection import injection_signals
from feedback_assets.enrichment.models import FeedbackItem
from feedback_assets.enrichment.taxonomy import Taxonomy

SUMMARY_CHARS = 300

PRAISE = "praise_no_issue"
MINOR_LABELS = frozenset({PRAISE, "other_unclear", "feature_request", "feature_confusion", "search_navigation_ux",
                          "price_value_concern"})


def review_reasons(text: str, primary_label: str, confidence: float, sentiment: float,
                   review_below_confidence: float) -> list[str]:
    """Low confidence, suspected prompt injection, or labels and tone that contradict each other.

    Praise with a second label is no contradiction: a happy review with a minor note ("love it, runs
    a bit small") is praise, and the note is kept as its second label."""
    reasons = []
    if confidence < review_below_confidence:
        reasons.append("low_confidence")
    if injection_signals(text):
        reasons.append("suspected_injection")
    praise_but_unhappy = primary_label == PRAISE and sentiment < -0.3
    complaint_but_delighted = primary_label not in MINOR_LABELS and sentiment > 0.6
    if praise_but_unhappy or complaint_but_delighted:
        reasons.append("conflicting_signals")
    return reasons


@dataclass(frozen=True)
class Producer:
    """Who classified: backend, model and the version of what the model was shown."""

    backend: str
    model: str
    prompt_version: str
    taxonomy: Taxonomy


def classification_record(producer: Producer, item: FeedbackItem, catalog: EntityCatalog, *,
                          labels: list[tuple[str, float, str]], primary_label: str, sentiment: float,
                          churn_intent: bool, proposed_entities: Mapping[str, object] | None, summary: str,
                          confidence: float, review_below_confidence: float) -> dict:
    """The classification row every backend returns, whatever the classifier said.

    Domains, owner and review come from the taxonomy and the rule; entities are grounded in the
    catalog and the text (`resolve_entities`); each evidence string is checked to be a quote of the
    text (`verified_evidence`); free text is bounded. So a classifier's output can be wrong, but it
    can never put foreign text, an invented key or an owner of its choosing into a row.
    """
    taxonomy = producer.taxonomy
    reasons = review_reasons(item.text, primary_label, confidence, sentiment, review_below_confidence)
    resolved = resolve_entities(proposed_entities, item.text, catalog, sku=item.sku, region=item.region)
    assignments = []
    for label, severity, evidence in labels:
        quote, origin = verified_evidence(evidence, item.text)
        assignments.append({"label": label, "domain": taxonomy.domain_of(label), "severity": severity,
                            "evidence": quote, "evidence_origin": origin})
    return {
        "id": item.id,
        "labels": assignments,
        "primary_label": primary_label,
        "domain": taxonomy.domain_of(primary_label),
        "sentiment": sentiment,
        "churn_intent": churn_intent,
        "entities": resolved.entities.model_dump(),
        "unresolved_entities": resolved.unresolved or None,
        "summary": one_line(summary, SUMMARY_CHARS) if summary else None,
        "suggested_owner": taxonomy.labels[primary_label].owner.team,
        "confidence": confidence,
        **_provenance(producer),
        "needs_review": bool(reasons),
        "review_reason": ",".join(reasons) or None,
        "injection_signals": injection_signals(item.text),
    }


def dead_letter_record(producer: Producer, item_id: str, text: str, error: str) -> dict:
    """The row of an item that could not be classified: kept, with the error, for review and a retry."""
    return {
        "id": item_id, "labels": [], "primary_label": None, "domain": None, "sentiment": None, "churn_intent": None,
        "entities": None, "summary": None, "suggested_owner": None, "confidence": None, **_provenance(producer),
        "needs_review": True, "review_reason": "classification_failed", "error": error,
        "injection_signals": injection_signals(text),
    }


def _provenance(producer: Producer) -> dict:
    return {"backend": producer.backend, "model": producer.model, "prompt_version": producer.prompt_version,
            "taxonomy_version": producer.taxonomy.version, "classified_at": datetime.now(UTC).isoformat()}
