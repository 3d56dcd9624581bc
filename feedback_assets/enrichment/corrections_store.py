"""Where triage corrections are kept: a ledger of every accepted row, one part per imported file.

A file is recorded under its content hash, so importing the same file twice (from the CLI or the
inbox folder) keeps its corrections once. The `label_corrections` asset spreads the ledger over the
days of the corrected items; `feedback_labels` applies the latest correction of each item.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa

from feedback_assets import tables
from feedback_assets.tables import PARTITION_COLUMN
from feedback_assets.enrichment.corrections import (
    LEDGER_SCHEMA,
    MAX_FILE_BYTES,
    Correction,
    CorrectionFileError,
    ImportResult,
    KnownItem,
    known_items_from,
    parse_corrections,
)
from feedback_assets.enrichment.taxonomy import load_taxonomy
from resources.table_store import TableStore

DAY_PART = "corrections"
# A day's part: the ledger's columns but the day, which is the part's partition.
DAY_PART_SCHEMA = pa.schema([field for field in LEDGER_SCHEMA if field.name != PARTITION_COLUMN])


def read_ledger(store: TableStore) -> list[Correction]:
    rows = store.read_parts(tables.LABEL_CORRECTIONS_LEDGER)
    return [] if rows is None else [Correction.from_record(r) for r in rows.to_pylist()]


def recorded_files(store: TableStore) -> set[str]:
    """The content hashes of every file whose corrections are in the ledger."""
    rows = store.read_parts(tables.LABEL_CORRECTIONS_LEDGER)
    return set() if rows is None else set(rows.column("source_sha256").to_pylist())


def record(store: TableStore, result: ImportResult) -> None:
    """Keeps a file's accepted corrections (nothing when none were accepted), once per file content."""
    if result.accepted:
        rows = pa.Table.from_pylist([c.to_record() for c in result.accepted], schema=LEDGER_SCHEMA)
        store.write_part(tables.LABEL_CORRECTIONS_LEDGER, None, result.sha256[:32], rows)


def known_items(store: TableStore) -> dict[str, KnownItem]:
    """Every classified item (its day, the model's label and its text), so a correction names a real one."""
    days = store.partition_days(tables.FEEDBACK_CLASSIFICATIONS)
    if not days:
        return {}
    labels = store.read_days(tables.FEEDBACK_CLASSIFICATIONS, days, ["feedback_id", "primary_label", "feedback_date"])
    texts = store.read_days(tables.SILVER_FEEDBACK, days, ["feedback_id", "text_clean"])
    text_of = dict(zip(texts.column("feedback_id").to_pylist(), texts.column("text_clean").to_pylist())) if texts else {}
    return known_items_from({**row, "text": text_of.get(row["feedback_id"])} for row in labels.to_pylist())


def import_file(store: TableStore, raw: bytes, *, source: str, analyst: str, now: datetime) -> ImportResult:
    """Validates a corrections file against the classified items and the taxonomy, and records its good rows."""
    result = parse_corrections(raw, known_items=known_items(store), label_ids=load_taxonomy().label_ids,
                               analyst=analyst, source=source, corrected_at=now)
    record(store, result)
    return result


def days_of(corrections: Iterable[Correction]) -> list[date]:
    return sorted({c.feedback_date for c in corrections})


def write_day_parts(store: TableStore, days: Iterable[date], corrections: Iterable[Correction]) -> dict[date, int]:
    """The ledger's corrections of each day as that day's part (an empty day's part removed); counts per day."""
    by_day: dict[date, list[Correction]] = {}
    for correction in corrections:
        by_day.setdefault(correction.feedback_date, []).append(correction)
    holding = set(store.partition_days(tables.LABEL_CORRECTIONS))
    counts = {}
    for day in days:
        found = sorted(by_day.get(day, []), key=lambda c: (c.feedback_id, c.corrected_at, c.source, c.line))
        if found:
            rows = pa.Table.from_pylist([c.to_record() for c in found], schema=LEDGER_SCHEMA)
            store.write_part(tables.LABEL_CORRECTIONS, day, DAY_PART, rows.drop_columns([PARTITION_COLUMN]))
        elif day in holding:
            store.delete_part(tables.LABEL_CORRECTIONS, day, DAY_PART)
        counts[day] = len(found)
    return counts


def corrections_of_days(store: TableStore, days: Iterable[date]) -> list[Correction]:
    rows = store.read_days(tables.LABEL_CORRECTIONS, list(days))
    if rows is None:
        return []
    columns = [c for c in rows.column_names if c in LEDGER_SCHEMA.names]  # the day's date column included
    return [Correction.from_record({**r, PARTITION_COLUMN: r[PARTITION_COLUMN].isoformat()})
            for r in rows.select(columns).to_pylist()]


@dataclass(frozen=True)
class InboxOutcome:
    """What became of one corrections file dropped in the inbox folder."""

    file: str
    status: str  # imported | duplicate | rejected | waiting
    accepted: int
    rejected_rows: int
    days: list[date]
    report: list[str]


def file_owner(path: Path) -> str:
    """Who dropped a file into the shared inbox: its owner on this machine (the analyst column of the ledger)."""
    try:
        import pwd

        return pwd.getpwuid(path.stat().st_uid).pw_name
    except (ImportError, KeyError):
        return f"uid {path.stat().st_uid}"


def process_inbox(store: TableStore, triage_dir: Path, now: datetime, settle_seconds: float = 30.0) -> list[InboxOutcome]:
    """Imports every settled CSV in `<triage_dir>/inbox` once; each file moves to processed/ or rejected/ with its report.

    A file still being written (changed in the last `settle_seconds`) waits for a later call; a file
    that cannot be read as corrections is rejected alone, and one that fails unexpectedly stays in
    the inbox for the next call: the other files are imported either way.
    """
    inbox = triage_dir / "inbox"
    waiting = sorted(inbox.glob("*.csv")) if inbox.is_dir() else []
    if not waiting:
        return []
    outcomes = []
    known: dict[str, KnownItem] | None = None
    seen = recorded_files(store)
    for path in waiting:
        try:
            if not path.is_symlink() and now.timestamp() - path.stat().st_mtime < settle_seconds:
                outcomes.append(InboxOutcome(path.name, "waiting", 0, 0, [], ["still being written"]))
                continue
            if path.is_symlink():
                # A link could point anywhere on the machine; only files dropped into the inbox are read.
                outcome = InboxOutcome(path.name, "rejected", 0, 0, [], [f"{path.name}: a link, not a file; not read"])
            elif path.stat().st_size > MAX_FILE_BYTES:
                outcome = InboxOutcome(path.name, "rejected", 0, 0, [], [
                    f"{path.name}: {path.stat().st_size:,} bytes; at most {MAX_FILE_BYTES:,} are accepted"])
            else:
                raw = path.read_bytes()
                if hashlib.sha256(raw).hexdigest() in seen:
                    outcome = InboxOutcome(path.name, "duplicate", 0, 0, [],
                                           [f"{path.name}: imported before (same content); nothing applied twice"])
                else:
                    known = known_items(store) if known is None else known
                    outcome = _import_inbox_file(store, path, raw, known, now)
                    seen.add(hashlib.sha256(raw).hexdigest())
            folder = triage_dir / ("rejected" if outcome.status == "rejected" else "processed")
            folder.mkdir(parents=True, exist_ok=True)
            stamped = f"{now:%Y%m%dT%H%M%S}-{path.name}"
            (folder / f"{stamped}.report.txt").write_text("\n".join(outcome.report) + "\n", encoding="utf-8")
            path.replace(folder / stamped)
        except OSError as error:
            outcome = InboxOutcome(path.name, "failed", 0, 0, [], [f"{path.name}: {error}; left in the inbox for the next try"])
        outcomes.append(outcome)
    return outcomes


def _import_inbox_file(store: TableStore, path: Path, raw: bytes, known: dict[str, KnownItem], now: datetime) -> InboxOutcome:
    try:
        result = parse_corrections(raw, known_items=known, label_ids=load_taxonomy().label_ids,
                                   analyst=file_owner(path), source=path.name, corrected_at=now)
    except CorrectionFileError as error:
        return InboxOutcome(path.name, "rejected", 0, 0, [], [f"{path.name}: {error}"])
    record(store, result)
    return InboxOutcome(path.name, "imported", len(result.accepted), len(result.rejected), days_of(result.accepted),
                        result.report())


def unrequested_files(store: TableStore, requested: set[str]) -> tuple[set[str], list[date]]:
    """Ledger files whose days no re-labelling run was asked for yet (CLI imports without --apply included), and those days."""
    ledger = read_ledger(store)
    pending = {c.source_sha256 for c in ledger} - requested
    return pending, sorted({c.feedback_date for c in ledger if c.source_sha256 in pending})
