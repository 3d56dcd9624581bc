"""Classifications of earlier classifier versions, kept queryable: one history table per version, and their index.

Every enrichment run writes its window to the history table of the version that produced it, besides
the live table, and records the version in `ops.classifier_versions`. A taxonomy or prompt change thus
never loses what the previous version said: the diff of a backfill compares the two.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pyarrow as pa

from feedback_assets import tables
from resources.table_store import TableStore

VERSIONS_SCHEMA = pa.schema([
    ("code_version", pa.string()), ("backend", pa.string()), ("model", pa.string()), ("version", pa.string()),
    ("taxonomy_version", pa.string()), ("first_run_at", pa.timestamp("us", tz="UTC")),
    ("last_run_at", pa.timestamp("us", tz="UTC")), ("last_run_id", pa.string()),
    ("first_day", pa.date32()), ("last_day", pa.date32()),
])


@dataclass(frozen=True)
class ClassifierVersion:
    """One classifier version that classified feedback, and the span of days its history holds."""

    code_version: str
    backend: str
    model: str
    version: str
    taxonomy_version: str
    first_run_at: datetime
    last_run_at: datetime
    last_run_id: str
    first_day: date
    last_day: date


def history_table(code_version: str) -> tables.Table:
    return tables.CLASSIFICATION_HISTORY.variant(code_version)


def _part_name(code_version: str) -> str:
    return tables.CLASSIFICATION_HISTORY.variant(code_version).table_name


def read_versions(store: TableStore) -> list[ClassifierVersion]:
    """Every recorded version, the most recently run first."""
    found = store.read_parts(tables.CLASSIFIER_VERSIONS)
    rows = found.to_pylist() if found is not None else []
    return sorted((ClassifierVersion(**row) for row in rows), key=lambda v: v.last_run_at, reverse=True)


def record_version(store: TableStore, code_version: str, backend: str, model: str, version: str,
                   taxonomy_version: str, run_id: str, days: Iterable[date], now: datetime | None = None) -> ClassifierVersion:
    """Notes that `code_version` classified `days` in run `run_id` (its first run and day span are kept)."""
    now = now or datetime.now(UTC)
    days = sorted(days)
    earlier = next((v for v in read_versions(store) if v.code_version == code_version), None)
    entry = ClassifierVersion(
        code_version, backend, model, version, taxonomy_version,
        first_run_at=earlier.first_run_at if earlier else now, last_run_at=now, last_run_id=run_id,
        first_day=min([days[0], earlier.first_day]) if earlier else days[0],
        last_day=max([days[-1], earlier.last_day]) if earlier else days[-1],
    )
    store.write_part(tables.CLASSIFIER_VERSIONS, None, _part_name(code_version),
                     pa.Table.from_pylist([entry.__dict__], schema=VERSIONS_SCHEMA))
    return entry


def latest_version(store: TableStore, start: date, end: date) -> ClassifierVersion | None:
    """The version that most recently classified days of [start, end]: the one the live table holds."""
    return next((v for v in read_versions(store) if v.first_day <= end and v.last_day >= start), None)
