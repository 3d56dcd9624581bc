"""The ROI assumptions: every number the warehouse cannot measure, with its range and where it comes from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

REQUIRED = ("support_contacts_per_complaint", "cost_per_support_contact", "minutes_per_manual_tag",
            "analyst_cost_per_hour", "returns_per_complaint", "churn_share_of_complainers",
            "orders_per_customer_per_year", "compute_cost_per_hour")


class AssumptionsError(ValueError):
    """The assumptions file is not usable; the message names the entry and what is wrong."""


@dataclass(frozen=True)
class Assumption:
    name: str
    value: float
    low: float
    high: float
    unit: str
    source: str


@dataclass(frozen=True)
class Assumptions:
    currency: str
    rolling_days: int
    entries: dict[str, Assumption]
    version: str

    def __getitem__(self, name: str) -> Assumption:
        return self.entries[name]


def parse_assumptions(raw: bytes) -> Assumptions:
    """The file's assumptions, each checked: a number within its low..high range, a unit and a source."""
    try:
        document = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise AssumptionsError(f"roi_assumptions.yaml is not valid YAML: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("assumptions"), dict):
        raise AssumptionsError("roi_assumptions.yaml needs an `assumptions` mapping")
    entries = {}
    for name, entry in document["assumptions"].items():
        if not isinstance(entry, dict):
            raise AssumptionsError(f"assumption {name!r} must be a mapping with value, low, high, unit, source")
        try:
            value, low, high = (float(entry[k]) for k in ("value", "low", "high"))
        except (KeyError, TypeError, ValueError):
            raise AssumptionsError(f"assumption {name!r} needs numeric value, low and high") from None
        if not low <= value <= high or low < 0:
            raise AssumptionsError(f"assumption {name!r}: need 0 <= low <= value <= high, got {low}, {value}, {high}")
        unit, source = str(entry.get("unit") or "").strip(), str(entry.get("source") or "").strip()
        if not unit or not source:
            raise AssumptionsError(f"assumption {name!r} needs a unit and a source (where the number comes from)")
        entries[name] = Assumption(str(name), value, low, high, unit, source)
    missing = [name for name in REQUIRED if name not in entries]
    if missing:
        raise AssumptionsError(f"roi_assumptions.yaml lacks {', '.join(missing)}")
    rolling_days = int(document.get("rolling_days", 90))
    if rolling_days < 7:
        raise AssumptionsError("rolling_days must be at least 7")
    return Assumptions(str(document.get("currency", "USD")), rolling_days, entries, hashlib.sha256(raw).hexdigest()[:12])


@cache
def load_assumptions(path: Path) -> Assumptions:
    return parse_assumptions(path.read_bytes())
