"""Landing mappings: YAML that maps a source's own columns onto a landing contract."""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PRESETS_DIR = Path(__file__).parent / "mappings"
# One segment of a source path: a key, optionally with `[*]` or `[key=value]` to reach into a list.
PATH_SEGMENT = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<selector>\*|[^=\]]+=[^\]]*)\])?$")


class Contract(StrEnum):
    feedback = "feedback"
    orders = "orders"
    returns = "returns"
    sku_catalog = "sku_catalog"


# Target fields of each contract; the first group must be mapped, the second may be.
CONTRACT_FIELDS: dict[Contract, tuple[frozenset[str], frozenset[str]]] = {
    Contract.feedback: (
        frozenset({"source_id", "text"}),
        frozenset({"rating", "customer_ref", "order_id", "sku", "variant", "region",
                   "platform", "app_version", "source_language"}),
    ),
    Contract.orders: (
        frozenset({"order_id", "sku"}),
        frozenset({"line_id", "customer_ref", "quantity", "unit_price", "currency", "region",
                   "carrier", "shipping_method", "platform", "customer_tier", "app_version"}),
    ),
    Contract.returns: (
        frozenset({"return_id", "order_id"}),
        frozenset({"sku", "reason_code", "refund_amount", "customer_ref", "comment"}),
    ),
    Contract.sku_catalog: (
        frozenset({"sku"}),
        frozenset({"name", "category", "subcategory", "brand", "price", "margin", "launch_date"}),
    ),
}

FEEDBACK_CHANNELS = (
    "product_reviews",
    "support_tickets",
    "surveys",
    "app_store_reviews",
    "return_reasons",
    "marketplace_messages",
)


class TimestampFormat(StrEnum):
    iso8601 = "iso8601"
    epoch_seconds = "epoch_seconds"
    epoch_millis = "epoch_millis"
    strptime = "strptime"
    rfc2822 = "rfc2822"


class TimestampSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    format: TimestampFormat = TimestampFormat.iso8601
    pattern: str | None = None
    timezone_field: str | None = None
    default_timezone: str = "UTC"

    @model_validator(mode="after")
    def _pattern_goes_with_strptime(self) -> TimestampSpec:
        if (self.format == TimestampFormat.strptime) != (self.pattern is not None):
            raise ValueError("`pattern` is required with format strptime and only allowed with it")
        return self


class DateAssignment(BaseModel):
    """For exports without dates: row k (file order, from 0) lands on anchor - (k mod span_days)."""

    model_config = ConfigDict(extra="forbid")

    strategy: Literal["spread_by_row"] = "spread_by_row"
    span_days: int = Field(default=60, ge=1)


class LandingMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    contract: Contract
    channel: str | None = None
    format: Literal["csv", "jsonl"]
    csv_delimiter: str = ","
    timestamp: TimestampSpec | None = None
    date_assignment: DateAssignment | None = None
    fields: dict[str, str | list[str]]
    constants: dict[str, str] = Field(default_factory=dict)
    rating_scale: tuple[float, float] | None = None
    allow_unknown_columns: bool = True

    @field_validator("fields")
    @classmethod
    def _paths_are_named(cls, fields: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        for target, source in fields.items():
            paths = [source] if isinstance(source, str) else source
            if not paths or any(not p.strip() for p in paths):
                raise ValueError(f"field {target!r} maps to an empty source path")
        return fields

    @model_validator(mode="after")
    def _fits_contract(self) -> LandingMapping:
        required, optional = CONTRACT_FIELDS[self.contract]
        mapped = set(self.fields) | set(self.constants)
        if missing := required - mapped:
            raise ValueError(f"contract {self.contract} needs {sorted(missing)} mapped")
        if unknown := mapped - required - optional:
            raise ValueError(
                f"{sorted(unknown)} are not fields of contract {self.contract}; "
                f"known: {sorted(required | optional)}"
            )
        if self.contract == Contract.feedback:
            if self.channel not in FEEDBACK_CHANNELS:
                raise ValueError(f"feedback mappings name a channel, one of {list(FEEDBACK_CHANNELS)}")
        if self.contract in (Contract.feedback, Contract.orders, Contract.returns):
            if (self.timestamp is None) == (self.date_assignment is None):
                raise ValueError("give exactly one of `timestamp` or `date_assignment`")
        if self.format == "jsonl":
            # CSV columns are matched whole (names may hold dots or brackets); JSON paths are walked.
            for target in self.fields:
                for path in self.source_paths(target):
                    if not all(PATH_SEGMENT.match(segment) for segment in path.split(".")):
                        raise ValueError(f"field {target!r}: {path!r} is not a JSON path (a.b, items[*].text, "
                                         "turns[role=customer].text)")
        if self.contract == Contract.feedback and "rating" in self.fields and not self.rating_scale:
            raise ValueError("a mapped `rating` needs `rating_scale: [low, high]`")
        return self

    def source_paths(self, target: str) -> list[str]:
        source = self.fields.get(target)
        if source is None:
            return []
        return [source] if isinstance(source, str) else list(source)

    def required_columns(self) -> set[str]:
        """Source columns a file must have: those behind required fields and the timestamp."""
        required, _ = CONTRACT_FIELDS[self.contract]
        paths = [p for target in required for p in self.source_paths(target)]
        if self.timestamp:
            paths.append(self.timestamp.field)
        return {self.column_of(p) for p in paths}

    def column_of(self, path: str) -> str:
        """The file column a path reads: CSV columns are flat (names may hold dots), JSON nests."""
        return path if self.format == "csv" else top_level(path)

    def mapped_columns(self) -> set[str]:
        paths = [p for target in self.fields for p in self.source_paths(target)]
        if self.timestamp:
            paths.append(self.timestamp.field)
            if self.timestamp.timezone_field:
                paths.append(self.timestamp.timezone_field)
        return {self.column_of(p) for p in paths}


def top_level(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


class MappingError(ValueError):
    """A mapping file that cannot be used, with the reason in words."""


def load_mapping(path: Path) -> LandingMapping:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise MappingError(f"cannot read mapping {path}: {error}") from error
    if not isinstance(document, dict):
        raise MappingError(f"mapping {path} must be a YAML mapping of keys to values")
    try:
        return LandingMapping.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'mapping'}: {e['msg']}" for e in error.errors()
        )
        raise MappingError(f"mapping {path} is invalid: {problems}") from error


def mapping_version(mapping: LandingMapping) -> str:
    """A content hash of the mapping: a changed mapping is a reason to try a refused file again."""
    return hashlib.sha256(mapping.model_dump_json().encode()).hexdigest()[:16]


def is_preset(name: str) -> bool:
    return (PRESETS_DIR / f"{name}.yaml").exists()


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def load_preset(name: str) -> LandingMapping:
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.exists():
        raise MappingError(f"unknown source preset {name!r}; presets: {', '.join(preset_names())}")
    return load_mapping(path)


def resolve_source(source: str) -> LandingMapping:
    """A preset name, or the path of a mapping YAML file."""
    if source.endswith((".yaml", ".yml")) or "/" in source:
        return load_mapping(Path(source))
    return load_preset(source)

