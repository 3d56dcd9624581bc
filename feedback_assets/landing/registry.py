"""The landing registry: lands each export file exactly once and records it in a ledger.

A file is identified by the SHA-256 of its bytes, so a re-run, a renamed copy or a second sweep
never lands it twice. Its records are written as one part per day (named after the file) into the
`landed.*` tables, routed by each record's own timestamp: a late file for an old date lands in that
date's partition. Bronze assets read those parts.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import Counter, defaultdict
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from feedback_assets.landing.contract import contract_columns, landed_arrow_schema, landed_table
from feedback_assets.landing.mapping import Contract, LandingMapping, MappingError, load_mapping, load_preset
from feedback_assets.landing.parse import (
    LandingError,
    assigned_timestamp,
    field_value,
    parse_timestamp,
    read_records,
)
from resources.file_lock import exclusive_lock
from resources.table_store import LocalParquetTableStore

LEDGER_TABLE = "ops.landing_ledger"
MAPPING_FILE = "_mapping.yaml"
_FILE_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")

@dataclass
class Registration:
    """What happened to one file."""

    file: str
    sha256: str
    mapping: str
    status: str  # registered | already_registered | rejected
    rows: int = 0
    days: list[date] = field(default_factory=list)
    rows_with_errors: int = 0
    unknown_columns: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class DateOptions:
    """How records get their day when the export has no usable dates, or dates to be replayed."""

    anchor: date | None = None
    shift_to_end: date | None = None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LandingRegistry:
    """Lands files from `landing/<mapping>/` into `landed.*` tables, once per distinct file."""

    def __init__(self, landing_dir: Path, store: LocalParquetTableStore, partitions_start: date):
        self.landing_dir = landing_dir
        self.store = store
        self.partitions_start = partitions_start

    def _lock(self) -> AbstractContextManager[None]:
        return exclusive_lock(self.landing_dir / ".registry.lock")

    def ledger(self) -> list[dict]:
        table = self.store.read_parts(LEDGER_TABLE)
        return [] if table is None else table.to_pylist()

    def _ledger_entry(self, sha256: str) -> dict | None:
        part = self.store.location(LEDGER_TABLE) / f"{sha256}.parquet"
        return pq.read_table(part).to_pylist()[0] if part.exists() else None

    def _ledger_name(self, path: Path) -> str:
        """Paths inside the landing folder are recorded relative to it, so the folder can move."""
        return str(path.relative_to(self.landing_dir)) if path.is_relative_to(self.landing_dir) else str(path)

    def mapping_for_folder(self, folder: Path) -> LandingMapping:
        custom = folder / MAPPING_FILE
        return load_mapping(custom) if custom.exists() else load_preset(folder.name)

    def stage(self, source: Path, mapping: LandingMapping, mapping_file: Path | None = None) -> Path:
        """Copies an export into the landing folder of its mapping (immutable from then on)."""
        folder = self.landing_dir / mapping.name
        folder.mkdir(parents=True, exist_ok=True)
        if mapping_file is not None:
            shutil.copyfile(mapping_file, folder / MAPPING_FILE)
        destination = folder / source.name
        if destination.exists() and file_sha256(destination) != file_sha256(source):
            destination = folder / f"{source.stem}.{file_sha256(source)[:12]}{source.suffix}"
        if not destination.exists():
            shutil.copyfile(source, destination)
        return destination

    def pending_files(self, contract: Contract | None = None, channel: str | None = None) -> list[tuple[Path, LandingMapping]]:
        """Files in the landing folders that match the filter and are not in the ledger yet."""
        ledger = self.ledger()
        known = {row["sha256"] for row in ledger}
        # Landing files are immutable (`stage` never overwrites), so a registered path need not be re-hashed.
        registered_paths = {row["file"] for row in ledger if row["status"] == "registered"}
        pending = []
        if not self.landing_dir.exists():
            return pending
        for folder in sorted(p for p in self.landing_dir.iterdir() if p.is_dir()):
            try:
                mapping = self.mapping_for_folder(folder)
            except MappingError:
                continue
            if contract and mapping.contract != contract or channel and mapping.channel != channel:
                continue
            for path in sorted(folder.iterdir()):
                if not path.is_file() or path.name.startswith((".", "_")):
                    continue
                if self._ledger_name(path) not in registered_paths and file_sha256(path) not in known:
                    pending.append((path, mapping))
        return pending

    def register_pending(self, ingest_run_id: str, contract: Contract | None = None,
                         channel: str | None = None) -> list[Registration]:
        return [self.register(path, mapping, ingest_run_id) for path, mapping in self.pending_files(contract, channel)]

    def register(self, path: Path, mapping: LandingMapping, ingest_run_id: str,
                 options: DateOptions = DateOptions(), now: datetime | None = None) -> Registration:
        """Lands one file; idempotent by content hash. A rejected file gets a ledger row with the error."""
        now = now or datetime.now(UTC)
        sha256 = file_sha256(path)
        with self._lock():
            existing = self._ledger_entry(sha256)
            if existing and existing["status"] == "registered":
                return Registration(self._ledger_name(path), sha256, existing["mapping"], "already_registered",
                                    rows=existing["rows"], days=[date.fromisoformat(d) for d in json.loads(existing["days"])])
            try:
                registration = self._land(path, sha256, mapping, ingest_run_id, options, now)
            except LandingError as error:
                registration = Registration(self._ledger_name(path), sha256, mapping.name, "rejected", error=str(error))
            self._record(registration, mapping, ingest_run_id, now)
            return registration

    def _land(self, path: Path, sha256: str, mapping: LandingMapping, ingest_run_id: str,
              options: DateOptions, now: datetime) -> Registration:
        records = list(read_records(path, mapping))
        unknown_columns = _unknown_columns(records, mapping)
        fallback_day = _file_date(path) or now.date()
        rows = [self._row(index, record, mapping, options, fallback_day) for index, record in enumerate(records)]
        if options.shift_to_end is not None:
            _shift_to_end(rows, options.shift_to_end)
        _check_dates(rows, self.partitions_start, now.date() + timedelta(days=1), path.name)

        by_day: dict[date, list[dict]] = defaultdict(list)
        for row in rows:
            row.update(file_sha256=sha256, mapping=mapping.name, ingested_at=now, ingest_run_id=ingest_run_id,
                       source_file=self._ledger_name(path))
            by_day[row.pop("_day")].append(row)
        schema = landed_arrow_schema(mapping.contract)
        table = landed_table(mapping.contract, mapping.channel)
        for day, day_rows in sorted(by_day.items()):
            self.store.write_part(table, day, sha256[:24], pa.Table.from_pylist(day_rows, schema=schema))
        return Registration(
            self._ledger_name(path), sha256, mapping.name, "registered", rows=len(rows), days=sorted(by_day),
            rows_with_errors=sum(1 for r in rows if r["parse_error"] or r["timestamp_error"] or r["encoding_error"]),
            unknown_columns=unknown_columns,
        )

    @staticmethod
    def _row(index: int, record, mapping: LandingMapping, options: DateOptions, fallback_day: date) -> dict:
        fields = record.fields or {}
        row: dict = {column: None for column in contract_columns(mapping.contract)}
        for target in mapping.fields:
            separator = "\n" if target == "text" else "|"
            row[target] = field_value(fields, mapping.source_paths(target), separator) if record.fields else None
        row.update(mapping.constants)
        event_at, timestamp_error, raw_time, origin = None, None, None, "event"
        if mapping.timestamp is not None:
            raw_time = field_value(fields, [mapping.timestamp.field]) if record.fields else None
            if record.fields:
                event_at, timestamp_error = parse_timestamp(fields, mapping.timestamp)
        elif mapping.date_assignment is not None:
            anchor = datetime.combine(options.anchor or fallback_day, time(), UTC)
            event_at, origin = assigned_timestamp(index, anchor, mapping.date_assignment.span_days), "assigned"
        low, high = mapping.rating_scale or (None, None)
        row.update(
            event_at=event_at, event_at_raw=raw_time, date_origin=origin if event_at else "file_date",
            raw_record=record.raw, parse_error=record.parse_error, timestamp_error=timestamp_error,
            encoding_error=record.encoding_error, rating_scale_low=low, rating_scale_high=high,
            channel=mapping.channel, source_line=record.line,
            _day=event_at.date() if event_at else fallback_day,
        )
        return row

    def _record(self, registration: Registration, mapping: LandingMapping, ingest_run_id: str, now: datetime) -> None:
        entry = {
            "sha256": registration.sha256, "file": registration.file, "mapping": mapping.name,
            "contract": mapping.contract.value, "channel": mapping.channel, "status": registration.status,
            "rows": registration.rows, "rows_with_errors": registration.rows_with_errors,
            "days": json.dumps([d.isoformat() for d in registration.days]),
            "unknown_columns": json.dumps(registration.unknown_columns), "error": registration.error,
            "registered_at": now, "ingest_run_id": ingest_run_id,
        }
        self.store.write_part(LEDGER_TABLE, None, registration.sha256, pa.Table.from_pylist([entry]))


def _unknown_columns(records, mapping: LandingMapping) -> list[str]:
    seen = {key for record in records[:1000] if record.fields for key in record.fields}
    return sorted(seen - mapping.mapped_columns())


def _file_date(path: Path) -> date | None:
    match = _FILE_DATE.search(path.name)
    if not match:
        return None
    try:
        return date.fromisoformat(match[1])
    except ValueError:
        return None


def _shift_to_end(rows: list[dict], end: date) -> None:
    """Replays dated records so the newest lands on `end`, keeping the gaps between them."""
    dated = [r["event_at"] for r in rows if r["event_at"] is not None]
    if not dated:
        return
    offset = timedelta(days=(end - max(dated).date()).days)
    for row in rows:
        if row["event_at"] is not None:
            row["event_at"] += offset
            row["_day"] = row["event_at"].date()
            row["date_origin"] = "shifted"


def _check_dates(rows: list[dict], first: date, last: date, file_name: str) -> None:
    days = Counter(row["_day"] for row in rows)
    early = sorted(d for d in days if d < first)
    late = sorted(d for d in days if d > last)
    if early:
        raise LandingError(
            f"{file_name}: {sum(days[d] for d in early)} record(s) dated {early[0]}..{early[-1]} fall before the "
            f"first partition ({first}); replay them onto recent days with `feedback ingest --shift-to-end DATE` "
            "or set FEEDBACK_PARTITIONS_START earlier"
        )
    if late:
        raise LandingError(
            f"{file_name}: {sum(days[d] for d in late)} record(s) dated {late[0]}..{late[-1]} lie in the future "
            f"(after {last}); check the source's time zone or timestamp format"
        )
