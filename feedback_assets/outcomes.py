"""What a step run reports, in a form that travels: materializations, per-day metadata, check results, logs.

A step produces one `StepOutcome` wherever it runs. In-process, the Dagster adapter turns it into
materializations and check results directly; on a cluster, the Pipes entrypoint sends the same
outcome through Dagster Pipes and the adapter rebuilds it on the orchestrator. Either way the UI
shows the same metadata. Nothing here imports Dagster or Spark.

Metadata values are `Meta(type, value)` pairs whose types are those Dagster Pipes carries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

MetaType = Literal["text", "int", "float", "bool", "json", "md", "url"]


@dataclass(frozen=True)
class Meta:
    type: MetaType
    value: Any

    def to_pipes(self) -> dict[str, Any]:
        return {"type": self.type, "raw_value": self.value}


def text(value: object) -> Meta:
    return Meta("text", str(value))


def integer(value: int) -> Meta:
    return Meta("int", int(value))


def number(value: float) -> Meta:
    return Meta("float", float(value))


def as_json(value: Any) -> Meta:
    # Round-tripped so what is kept is exactly what JSON can carry (dates as strings), here as on a cluster.
    return Meta("json", json.loads(json.dumps(value, default=str)))


def markdown(value: str) -> Meta:
    return Meta("md", value)


def url(value: str) -> Meta:
    return Meta("url", value)


def plain(value: Any) -> Meta:
    """A metadata value typed from its Python type (ints, floats, bools, text; anything else as JSON)."""
    if isinstance(value, Meta):
        return value
    if isinstance(value, bool):
        return Meta("bool", value)
    if isinstance(value, int):
        return integer(value)
    if isinstance(value, float):
        return number(value)
    if isinstance(value, str):
        return text(value)
    return as_json(value)


Metadata = dict[str, Meta]


def metadata_of(values: Mapping[str, Any]) -> Metadata:
    return {key: plain(value) for key, value in values.items()}


@dataclass
class AssetOutcome:
    """One asset's materialization: its run metadata, and metadata of individual days (for the Plots view)."""

    asset_key: str
    metadata: Metadata
    per_day: dict[str, Metadata] = field(default_factory=dict)


@dataclass
class CheckOutcome:
    check_name: str
    asset_key: str
    passed: bool
    metadata: Metadata
    severity: Literal["ERROR", "WARN"] = "ERROR"


@dataclass
class StepOutcome:
    assets: list[AssetOutcome] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)  # (level, message)
    # Set when the step refused to write (e.g. a blocking gate): its checks are still reported, then the step fails.
    failure: str | None = None

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))


PER_DAY_KEY = "feedback/per_day_metadata"


def encode_per_day(per_day: Mapping[str, Metadata]) -> dict[str, Any]:
    """Per-day metadata as one JSON metadata entry, the way it crosses Pipes (which has no per-partition reports)."""
    return {day: {key: meta.to_pipes() for key, meta in values.items()} for day, values in per_day.items()}


def pipes_metadata(metadata: Metadata, per_day: Mapping[str, Metadata] | None = None) -> dict[str, dict[str, Any]]:
    """Metadata in the form `dagster_pipes` reports, per-day metadata folded into one JSON entry."""
    reported = {key: meta.to_pipes() for key, meta in metadata.items()}
    if per_day:
        reported[PER_DAY_KEY] = Meta("json", encode_per_day(per_day)).to_pipes()
    return reported


META_TYPES = frozenset(get_args(MetaType))


def decode_per_day(raw: Any, days: Sequence[str]) -> dict[str, Metadata]:
    """Per-day metadata as a task sent it, accepted only for the run's own days and the metadata types it knows."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"per-day metadata must be an object of days, got {type(raw).__name__}")
    decoded: dict[str, Metadata] = {}
    for day, values in raw.items():
        if day not in days:
            raise ValueError(f"per-day metadata for {str(day)[:40]!r}, which this run did not cover")
        if not isinstance(values, Mapping):
            raise ValueError(f"per-day metadata of {day} must be an object")
        decoded[day] = {}
        for key, entry in values.items():
            if not isinstance(entry, Mapping) or entry.get("type") not in META_TYPES or "raw_value" not in entry:
                raise ValueError(f"per-day metadata {str(key)[:60]!r} of {day} is not a typed value")
            decoded[day][str(key)] = Meta(entry["type"], entry["raw_value"])
    return decoded


def asset_keys(outcomes: Sequence[AssetOutcome]) -> list[str]:
    return [outcome.asset_key for outcome in outcomes]
