"""The landing registry: lands each export file exactly once and records it in a ledger.

A file is identified by the SHA-256 of its bytes, so a re-run, a renamed copy or a second sweep
never lands it twice. Its records are written as one part per day (named after the file) into the
`landed.*` tables, routed by each record's own timestamp: a late file for an old date lands in that
date's partition. Bronze assets read those parts.

Every file ends with a ledger row, whatever it holds: `registered` (its records landed, bad ones
flagged to become rejects in silver), `rejected` (refused as a whole, with the reason: no header,
required columns missing, every record outside the partitions), or `quarantined` (reading it failed
in a way nobody foresaw; the error is kept and nothing of it landed). A rejected or quarantined file
is not tried again on every sweep, only when its mapping or date options change, or when someone
asks (`replace=True`). A sweep leaves files alone while they are still being written (modified in
the last `settle_seconds`), and a file that changes in place after it landed replaces its earlier
landing (the old parts are retracted), so a file picked up half-written still lands whole, once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections import defaultdict
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path

import pyarrow as pa

from feedback_assets import tables
from feedback_assets.landing.contract import contract_columns, landed_arrow_schema
from feedback_assets.landing.mapping import (
    Contract,
    LandingMapping,
    MappingError,
    is_preset,
    load_mapping,
    load_preset,
    mapping_version,
)
from feedback_assets.landing.parse import (
    LandingError,
    SourceRecord,
    assigned_timestamp,
    clean_text,
    field_value,
    parse_timestamp,
    read_records,
)
from resources.file_lock import exclusive_lock
from resources.table_store import TableStore

MAPPING_FILE = "_mapping.yaml"
DEFAULT_SETTLE_SECONDS = 30
ERROR_CHARS = 600
_FILE_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")


class Status(StrEnum):
    registered = "registered"
    already_registered = "already_registered"
    rejected = "rejected"
    quarantined = "quarantined"
    superseded = "superseded"


@dataclass
class Registration:
    """What happened to one file."""

    file: str
    sha256: str
    mapping: str
    status: str
    rows: int = 0
    days: list[date] = field(default_factory=list)
    rows_with_errors: int = 0
    rows_out_of_range: int = 0
    unknown_columns: list[str] = field(default_factory=list)
    error: str | None = None
    replaced_days: list[date] = field(default_factory=list)
    # True when the outcome comes from the ledger (the file was seen before with the same mapping).
    repeat: bool = False


@dataclass(frozen=True)
class DateOptions:
    """How records get their day when the export has no usable dates, or dates to be replayed."""

    anchor: date | None = None
    shift_to_end: date | None = None

    def fingerprint(self) -> str:
        return f"anchor={self.anchor};shift_to_end={self.shift_to_end}"


@dataclass(frozen=True)
class PendingFile:
    path: Path
    mapping: LandingMapping
    sha256: str
    # The ledger row of an earlier version of this path, when the file changed after it landed.
    replaces: dict | None = None


@dataclass(frozen=True)
class SkippedFile:
    """A file a sweep did not land, and why (still being written, unreadable, no usable mapping)."""

    file: str
    reason: str


@dataclass
class Sweep:
    pending: list[PendingFile] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def display_name(path_text: str) -> str:
    """A file name as valid text (names with undecodable bytes would break every table they reach)."""
    return os.fsencode(path_text).decode("utf-8", errors="replace")


class LandingRegistry:
    """Lands files from `landing/<mapping>/` into `landed.*` tables, once per distinct file."""

    def __init__(self, landing_dir: Path, store: TableStore, partitions_start: date,
                 settle_seconds: float = DEFAULT_SETTLE_SECONDS):
        self.landing_dir = landing_dir
        self.store = store
        self.partitions_start = partitions_start
        self.settle_seconds = settle_seconds

    def _lock(self) -> AbstractContextManager[None]:
        return exclusive_lock(self.landing_dir / ".registry.lock")

    def ledger(self) -> list[dict]:
        table = self.store.read_parts(tables.LANDING_LEDGER)
        return [] if table is None else table.to_pylist()

    def _ledger_entry(self, sha256: str) -> dict | None:
        part = self.store.read_part(tables.LANDING_LEDGER, None, sha256)
        return part.to_pylist()[0] if part is not None and part.num_rows else None

    def _ledger_name(self, path: Path) -> str:
        """Paths inside the landing folder are recorded relative to it, so the folder can move."""
        name = str(path.relative_to(self.landing_dir)) if path.is_relative_to(self.landing_dir) else str(path)
        return display_name(name)

    def mapping_for_folder(self, folder: Path) -> LandingMapping:
        custom = folder / MAPPING_FILE
        return load_mapping(custom) if custom.exists() else load_preset(folder.name)

    def stage(self, source: Path, mapping: LandingMapping, mapping_file: Path | None = None) -> Path:
        """Copies an export into the landing folder of its mapping (immutable from then on)."""
        if mapping_file is not None and is_preset(mapping.name):
            raise MappingError(
                f"mapping {mapping_file} is named {mapping.name!r}, the name of a preset; files dropped into "
                f"landing/{mapping.name}/ would then be read with it instead of the preset: give it a name of its own"
            )
        folder = self.landing_dir / mapping.name
        folder.mkdir(parents=True, exist_ok=True)
        if mapping_file is not None:
            shutil.copyfile(mapping_file, folder / MAPPING_FILE)
        digest = file_sha256(source)
        destination = folder / source.name
        if destination.exists() and file_sha256(destination) != digest:
            destination = folder / f"{source.stem}.{digest[:12]}{source.suffix}"
        if not destination.exists():
            temporary = folder / f".{destination.name}.{uuid.uuid4().hex}.partial"
            shutil.copyfile(source, temporary)
            os.replace(temporary, destination)
        return destination

    def sweep(self, contract: Contract | None = None, channel: str | None = None,
              now: datetime | None = None) -> Sweep:
        """Files in the landing folders that match the filter and still need landing, and those left for later."""
        now = now or datetime.now(UTC)
        ledger = self.ledger()
        known = {row["sha256"] for row in ledger}
        by_path: dict[str, dict] = {}
        for row in sorted(ledger, key=lambda r: r["registered_at"]):
            if row["status"] != Status.superseded:
                by_path[row["file"]] = row
        sweep = Sweep()
        if not self.landing_dir.exists():
            return sweep
        for folder in sorted(p for p in self.landing_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            try:
                mapping = self.mapping_for_folder(folder)
            except MappingError as error:
                files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "_"))]
                sweep.skipped += [SkippedFile(self._ledger_name(p), f"no usable mapping: {error}") for p in files]
                continue
            if contract and mapping.contract != contract or channel and mapping.channel != channel:
                continue
            for path in sorted(folder.iterdir()):
                if not path.is_file() or path.name.startswith((".", "_")):
                    continue
                name = self._ledger_name(path)
                try:
                    stat = path.stat()
                    previous = by_path.get(name)
                    if previous and _unchanged(previous, stat):
                        continue
                    if now.timestamp() - stat.st_mtime < self.settle_seconds:
                        sweep.skipped.append(SkippedFile(name, f"still being written (modified less than "
                                                               f"{self.settle_seconds:g} s ago)"))
                        continue
                    digest = file_sha256(path)
                except OSError as error:
                    sweep.skipped.append(SkippedFile(name, f"unreadable: {error.strerror or error}"))
                    continue
                if digest in known:
                    continue
                replaces = previous if previous and previous["status"] == Status.registered else None
                sweep.pending.append(PendingFile(path, mapping, digest, replaces))
        return sweep

    def land_pending(self, ingest_run_id: str, contract: Contract | None = None,
                     channel: str | None = None) -> tuple[list[Registration], list[SkippedFile]]:
        """Lands every pending file of the filter; says which files were left for later, and why."""
        sweep = self.sweep(contract, channel)
        registrations = [self.register(p.path, p.mapping, ingest_run_id, sha256=p.sha256, replaces=p.replaces)
                         for p in sweep.pending]
        return registrations, sweep.skipped

    def register_pending(self, ingest_run_id: str, contract: Contract | None = None,
                         channel: str | None = None) -> list[Registration]:
        return self.land_pending(ingest_run_id, contract, channel)[0]

    def register(self, path: Path, mapping: LandingMapping, ingest_run_id: str,
                 options: DateOptions = DateOptions(), now: datetime | None = None, *,
                 replace: bool = False, sha256: str | None = None, replaces: dict | None = None) -> Registration:
        """Lands one file; idempotent by content hash. Every outcome, refusals included, gets a ledger row.

        `replace` lands content that was landed (or refused) before again, with this mapping and
        these options, retracting what the earlier landing wrote. `replaces` is the ledger row of
        an earlier version of the same path, retracted once the new version has landed.
        """
        now = now or datetime.now(UTC)
        with self._lock():
            sha256 = sha256 or file_sha256(path)
            existing = self._ledger_entry(sha256)
            key = _landing_key(mapping, options)
            if existing and not replace:
                if existing["status"] == Status.registered:
                    return _from_entry(existing, Status.already_registered)
                if existing["status"] in (Status.rejected, Status.quarantined) and existing.get("landing_key") == key:
                    return _from_entry(existing, existing["status"])
            retract = [e for e in (existing, replaces) if e and e["status"] == Status.registered]
            try:
                registration, written = self._land(path, sha256, mapping, ingest_run_id, options, now)
            except LandingError as error:
                registration, written = self._refusal(path, sha256, mapping, Status.rejected, str(error)), []
            except Exception as error:  # noqa: BLE001 - one unforeseen file must not stop the others
                message = f"{type(error).__name__}: {clean_text(str(error))[0]}"
                registration, written = self._refusal(path, sha256, mapping, Status.quarantined, message), []
            for entry in retract:
                self._retract(entry, keep=set(written) if entry["sha256"] == sha256 else set())
                registration.replaced_days = sorted({*registration.replaced_days,
                                                     *(date.fromisoformat(d) for d in json.loads(entry["days"]))})
            self._record(registration, mapping, key, ingest_run_id, now, path)
            if replaces and replaces["sha256"] != sha256:
                self.store.write_part(tables.LANDING_LEDGER, None, replaces["sha256"], pa.Table.from_pylist(
                    [{**replaces, "status": Status.superseded.value, "superseded_by": sha256}]))
            return registration

    def _refusal(self, path: Path, sha256: str, mapping: LandingMapping, status: Status, error: str) -> Registration:
        return Registration(self._ledger_name(path), sha256, mapping.name, status, error=error[:ERROR_CHARS])

    def _land(self, path: Path, sha256: str, mapping: LandingMapping, ingest_run_id: str,
              options: DateOptions, now: datetime) -> tuple[Registration, list[tuple[str, date]]]:
        records = list(read_records(path, mapping))
        unknown_columns = _unknown_columns(records, mapping)
        fallback_day = _file_date(path) or now.date()
        rows = [_row_of(index, record, mapping, options, fallback_day) for index, record in enumerate(records)]
        if options.shift_to_end is not None:
            _shift_to_end(rows, options.shift_to_end)
        out_of_range = _flag_out_of_range(rows, self.partitions_start, now.date() + timedelta(days=1), fallback_day,
                                          path.name)

        by_day: dict[date, list[dict]] = defaultdict(list)
        source_file = self._ledger_name(path)
        for row in rows:
            row.update(file_sha256=sha256, mapping=mapping.name, ingested_at=now, ingest_run_id=ingest_run_id,
                       source_file=source_file)
            by_day[row.pop("_day")].append(row)
        schema = landed_arrow_schema(mapping.contract)
        table = tables.landed(mapping.contract, mapping.channel)
        # Every table is built before anything is written, so a file that cannot be converted leaves nothing behind.
        parts = {day: pa.Table.from_pylist(day_rows, schema=schema) for day, day_rows in sorted(by_day.items())}
        written: list[tuple[str, date]] = []
        try:
            for day, rows_of_day in parts.items():
                self.store.write_part(table, day, sha256[:24], rows_of_day)
                written.append((table, day))
        except BaseException:
            for written_table, day in written:
                self.store.delete_part(written_table, day, sha256[:24])
            raise
        registration = Registration(
            self._ledger_name(path), sha256, mapping.name, Status.registered, rows=len(rows), days=sorted(by_day),
            rows_with_errors=sum(1 for r in rows if r["parse_error"] or r["timestamp_error"] or r["encoding_error"]),
            rows_out_of_range=out_of_range, unknown_columns=unknown_columns,
        )
        return registration, written

    def _retract(self, entry: dict, keep: set[tuple[str, date]]) -> None:
        """Removes the parts a registered file wrote, except those in `keep` (just rewritten under the same name)."""
        table = tables.landed(Contract(entry["contract"]), entry["channel"])
        for day in (date.fromisoformat(d) for d in json.loads(entry["days"])):
            if (table, day) not in keep:
                self.store.delete_part(table, day, entry["sha256"][:24])

    def _record(self, registration: Registration, mapping: LandingMapping, key: str, ingest_run_id: str,
                now: datetime, path: Path) -> None:
        try:
            stat = path.stat()
            size, mtime_ns = stat.st_size, stat.st_mtime_ns
        except OSError:
            size, mtime_ns = None, None
        entry = {
            "sha256": registration.sha256, "file": registration.file, "mapping": mapping.name,
            "contract": mapping.contract.value, "channel": mapping.channel, "status": str(registration.status),
            "rows": registration.rows, "rows_with_errors": registration.rows_with_errors,
            "rows_out_of_range": registration.rows_out_of_range,
            "days": json.dumps([d.isoformat() for d in registration.days]),
            "replaced_days": json.dumps([d.isoformat() for d in registration.replaced_days]),
            "unknown_columns": json.dumps(registration.unknown_columns), "error": registration.error,
            "landing_key": key, "size_bytes": size, "mtime_ns": mtime_ns, "superseded_by": None,
            "registered_at": now, "ingest_run_id": ingest_run_id,
        }
        self.store.write_part(tables.LANDING_LEDGER, None, registration.sha256, pa.Table.from_pylist([entry], schema=LEDGER_SCHEMA))


LEDGER_SCHEMA = pa.schema([
    ("sha256", pa.string()), ("file", pa.string()), ("mapping", pa.string()), ("contract", pa.string()),
    ("channel", pa.string()), ("status", pa.string()), ("rows", pa.int64()), ("rows_with_errors", pa.int64()),
    ("rows_out_of_range", pa.int64()), ("days", pa.string()), ("replaced_days", pa.string()),
    ("unknown_columns", pa.string()), ("error", pa.string()), ("landing_key", pa.string()), ("size_bytes", pa.int64()),
    ("mtime_ns", pa.int64()), ("superseded_by", pa.string()), ("registered_at", pa.timestamp("us", tz="UTC")),
    ("ingest_run_id", pa.string()),
])


def _landing_key(mapping: LandingMapping, options: DateOptions) -> str:
    """What a refusal depends on besides the bytes: a changed mapping or date option deserves another try."""
    return hashlib.sha256(f"{mapping_version(mapping)}|{options.fingerprint()}".encode()).hexdigest()[:16]


def _unchanged(entry: dict, stat: os.stat_result) -> bool:
    """Whether a path looks as it did when the ledger saw it (rows from before sizes were kept: trust them)."""
    if entry.get("size_bytes") is None or entry.get("mtime_ns") is None:
        return entry["status"] == Status.registered
    return entry["size_bytes"] == stat.st_size and entry["mtime_ns"] == stat.st_mtime_ns


def _from_entry(entry: dict, status: str) -> Registration:
    return Registration(
        entry["file"], entry["sha256"], entry["mapping"], status, rows=entry["rows"] or 0,
        days=[date.fromisoformat(d) for d in json.loads(entry["days"])],
        rows_with_errors=entry.get("rows_with_errors") or 0, rows_out_of_range=entry.get("rows_out_of_range") or 0,
        unknown_columns=json.loads(entry.get("unknown_columns") or "[]"), error=entry.get("error"), repeat=True,
    )


def _row_of(index: int, record: SourceRecord, mapping: LandingMapping, options: DateOptions, fallback_day: date) -> dict:
    """The landed row of a record; a record the mapping cannot be applied to lands as a malformed row."""
    try:
        return _mapped_row(index, record, mapping, options, fallback_day)
    except Exception as error:  # noqa: BLE001 - the record is kept, with the reason, instead of failing the file
        broken = SourceRecord(record.line, None, record.raw, encoding_error=record.encoding_error,
                              parse_error=f"cannot apply mapping {mapping.name!r}: {type(error).__name__}")
        return _mapped_row(index, broken, mapping, options, fallback_day)


def _mapped_row(index: int, record: SourceRecord, mapping: LandingMapping, options: DateOptions, fallback_day: date) -> dict:
    fields = record.fields or {}
    row: dict = {column: None for column in contract_columns(mapping.contract)}
    encoding_error = record.encoding_error
    for target in mapping.fields:
        separator = "\n" if target == "text" else "|"
        value = field_value(fields, mapping.source_paths(target), separator) if record.fields else None
        if value is not None and not value.isascii():
            value, dirty = clean_text(value)
            encoding_error = encoding_error or dirty
        row[target] = value
    row.update(mapping.constants)
    event_at, timestamp_error, raw_time, origin = None, None, None, "event"
    if mapping.timestamp is not None:
        raw_time = field_value(fields, [mapping.timestamp.field]) if record.fields else None
        raw_time = clean_text(raw_time)[0] if raw_time is not None else None
        if record.fields:
            event_at, timestamp_error = parse_timestamp(fields, mapping.timestamp)
    elif mapping.date_assignment is not None:
        anchor = datetime.combine(options.anchor or fallback_day, time(), UTC)
        event_at, origin = assigned_timestamp(index, anchor, mapping.date_assignment.span_days), "assigned"
    low, high = mapping.rating_scale or (None, None)
    row.update(
        event_at=event_at, event_at_raw=raw_time, date_origin=origin if event_at else "file_date",
        raw_record=record.raw, parse_error=record.parse_error, timestamp_error=timestamp_error,
        encoding_error=encoding_error, rating_scale_low=low, rating_scale_high=high,
        channel=mapping.channel, source_line=record.line,
        _day=event_at.date() if event_at else fallback_day,
    )
    return row


def _unknown_columns(records: list[SourceRecord], mapping: LandingMapping) -> list[str]:
    seen = {key for record in records if record.fields for key in record.fields}
    return sorted(seen - mapping.mapped_columns())[:50]


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
            try:
                row["event_at"] += offset
            except OverflowError:
                row.update(event_at=None, timestamp_error="cannot shift this date onto the partitions")
                continue
            row["_day"] = row["event_at"].date()
            row["date_origin"] = "shifted"


def _flag_out_of_range(rows: list[dict], first: date, last: date, fallback_day: date, file_name: str) -> int:
    """Records dated outside the partitions become timestamp errors (rejects in silver) on the file's day.

    When no dated record at all falls inside, the export as a whole is refused with the way forward:
    landing every record as a reject would hide that it only needs replaying onto recent days.
    """
    dated = [row for row in rows if row["event_at"] is not None]
    early = [row for row in dated if row["_day"] < first]
    late = [row for row in dated if row["_day"] > last]
    if dated and len(early) + len(late) == len(dated):
        if early:
            days = sorted(row["_day"] for row in early)
            raise LandingError(
                f"{file_name}: {len(early)} record(s) dated {days[0]}..{days[-1]} fall before the first partition "
                f"({first}); replay them onto recent days with `feedback ingest --shift-to-end DATE` or set "
                "FEEDBACK_PARTITIONS_START earlier"
            )
        days = sorted(row["_day"] for row in late)
        raise LandingError(
            f"{file_name}: {len(late)} record(s) dated {days[0]}..{days[-1]} lie in the future (after {last}); "
            "check the source's time zone or timestamp format"
        )
    home = min(max(fallback_day, first), last)
    for row in early:
        row.update(event_at=None, _day=home, date_origin="file_date",
                   timestamp_error=f"dated {row['_day']}, before the first partition ({first})")
    for row in late:
        row.update(event_at=None, _day=home, date_origin="file_date",
                   timestamp_error=f"dated {row['_day']}, in the future (after {last})")
    for row in rows:
        if row["event_at"] is None and not first <= row["_day"] <= last:
            row["_day"] = home
    return len(early) + len(late)
