"""When a classification should be looked at by an analyst (the triage queue), whatever backend made it."""

from __future__ import annotations

from feedback_assets.enrichment.injection import injection_signals

PRAISE = "praise_no_issue"
MINOR_LABELS = frozenset({PRAISE, "other_unclear", "feature_request", "feature_confusion", "search_navigation_ux",
                          "price_value_concern"})


def review_reasons(text: str, primary_label: str, confidence: float, sentiment: float, label_count: int,
                   review_below_confidence: float) -> list[str]:
    """Low confidence, suspected prompt injection, or labels and tone that contradict each other."""
    reasons = []
    if confidence < review_below_confidence:
        reasons.append("low_confidence")
    if injection_signals(text):
        reasons.append("suspected_injection")
    praise_but_unhappy = primary_label == PRAISE and (sentiment < -0.3 or label_count > 1)
    complaint_but_delighted = primary_label not in MINOR_LABELS and sentiment > 0.6
    if praise_but_unhappy or complaint_but_delighted:
        reasons.append("conflicting_signals")
    return reasons
