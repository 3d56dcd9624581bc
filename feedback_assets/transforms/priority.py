"""Issue priority: eight commerce and feedback signals scaled to 0..1 and weighted into a 0–100 score.

Weights and saturation points live in config/priority.yaml, so product and support can tune them
without code; every score keeps its components so a ticket can say why it ranks where it does.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml


COMPONENTS = ("volume", "velocity", "severity", "churn_intent", "revenue_share", "refund_return", "customer_value",
              "confidence")


@dataclass(frozen=True)
class PriorityConfig:
    window_days: int
    baseline_days: int
    weights: dict[str, float]
    scale: dict[str, float]
    high_value_tiers: frozenset[str]
    version: str


@dataclass(frozen=True)
class IssueSignals:
    """Raw signals of one (label, SKU, region) over the window; shares and means are 0..1."""

    complaints: int
    baseline_weekly_mean: float
    mean_severity: float
    churn_share: float
    revenue_share: float
    return_rate: float
    high_value_share: float
    mean_confidence: float
    # An alert's own lift (its day against the 28-day mean); without it, the window's over the baseline.
    lift: float | None = None


def parse_priority(raw: bytes) -> PriorityConfig:
    document = yaml.safe_load(raw)
    weights = {name: float(value) for name, value in document["weights"].items()}
    if set(weights) != set(COMPONENTS):
        raise ValueError(f"priority.yaml weights must name exactly {list(COMPONENTS)}; got {sorted(weights)}")
    if any(w < 0 for w in weights.values()) or not sum(weights.values()):
        raise ValueError("priority.yaml weights must be non-negative and not all zero")
    return PriorityConfig(int(document.get("window_days", 7)), int(document.get("baseline_days", 28)), weights,
                          {k: float(v) for k, v in document["scale"].items()},
                          frozenset(document.get("high_value_tiers", [])), hashlib.sha256(raw).hexdigest()[:12])


@cache
def load_priority(path: Path) -> PriorityConfig:
    return parse_priority(path.read_bytes())


def _clip(value: float) -> float:
    return max(0.0, min(1.0, value))


def components(signals: IssueSignals, config: PriorityConfig) -> dict[str, float]:
    """Each signal scaled to 0..1."""
    scale = config.scale
    lift = signals.lift if signals.lift is not None else signals.complaints / max(signals.baseline_weekly_mean, 1.0)
    return {
        "volume": _clip(math.log1p(signals.complaints) / math.log1p(scale["volume"])),
        "velocity": _clip((lift - 1) / (scale["velocity"] - 1)),
        "severity": _clip(signals.mean_severity),
        "churn_intent": _clip(signals.churn_share),
        "revenue_share": _clip(signals.revenue_share / scale["revenue_share"]),
        "refund_return": _clip(signals.return_rate / scale["refund_return"]),
        "customer_value": _clip(signals.high_value_share),
        "confidence": _clip(signals.mean_confidence),
    }


def priority_score(parts: dict[str, float], config: PriorityConfig) -> float:
    """The weighted mean of the components on a 0–100 scale."""
    total = sum(config.weights.values())
    return round(100 * sum(config.weights[name] * parts[name] for name in COMPONENTS) / total, 2)
