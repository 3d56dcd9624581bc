"""The dispatch ledger: one row per breach, moving pending → created → posted (or recorded, never paged).

Each row is its own part file in the table store, replaced atomically on every transition, so a
crash leaves the last state that was fully written. The ledger is what makes ticket and Slack side
effects happen once across sensor ticks, step retries and re-executions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime

import pyarrow as pa

from feedback_assets import tables
from feedback_assets.alerts.model import breach_key_of, short_hash
from resources.table_store import TableStore


PENDING, CREATED, POSTED, RECORDED = "pending", "created", "posted", "recorded"


@dataclass
class LedgerEntry:
    breach_key: str
    series_key: str
    alert_day: date
    status: str = PENDING
    attempts: int = 0
    # Unix seconds, set before the create call: a later attempt searches for that ticket before creating another.
    create_attempted_at: float | None = None
    ticket_key: str | None = None
    ticket_url: str | None = None
    ticket_action: str | None = None
    slack_channel: str | None = None
    # Unix seconds of the post call, whose channel and thread are kept: a retry looks there before posting again.
    post_attempted_at: float | None = None
    slack_ts: str | None = None
    slack_thread_ts: str | None = None
    run_id: str | None = None
    note: str | None = None
    updated_at: str | None = None


LEDGER_SCHEMA = pa.schema([
    ("breach_key", pa.string()), ("series_key", pa.string()), ("alert_day", pa.date32()), ("status", pa.string()),
    ("attempts", pa.int64()), ("create_attempted_at", pa.float64()), ("ticket_key", pa.string()), ("ticket_url", pa.string()),
    ("ticket_action", pa.string()), ("slack_channel", pa.string()), ("post_attempted_at", pa.float64()),
    ("slack_ts", pa.string()), ("slack_thread_ts", pa.string()), ("run_id", pa.string()), ("note", pa.string()),
    ("updated_at", pa.string()),
])


class DispatchLedger:
    """Reads and writes ledger rows through the table store (one part file per breach key)."""

    def __init__(self, store: TableStore):
        self.store = store

    def get(self, breach_key: str) -> LedgerEntry | None:
        part = self.store.read_part(tables.DISPATCH_LEDGER, None, _part_name(breach_key))
        return _entries(part)[0] if part is not None else None

    def put(self, entry: LedgerEntry) -> LedgerEntry:
        entry.updated_at = datetime.now(UTC).isoformat(timespec="seconds")
        row = pa.Table.from_pylist([asdict(entry)], schema=LEDGER_SCHEMA)
        self.store.write_part(tables.DISPATCH_LEDGER, None, _part_name(entry.breach_key), row)
        return entry

    def record(self, series_key: str, day: date, run_id: str, reason: str) -> LedgerEntry:
        """Keeps a breach that must not page (e.g. found by a backfill) on the ledger, without side effects."""
        breach_key = breach_key_of(series_key, day)
        existing = self.get(breach_key)
        if existing is not None:
            return existing
        return self.put(LedgerEntry(breach_key, series_key, day, RECORDED, run_id=run_id, note=reason))

    def entries(self) -> list[LedgerEntry]:
        table = self.store.read_parts(tables.DISPATCH_LEDGER)
        return [] if table is None else sorted(_entries(table), key=lambda e: (e.alert_day, e.breach_key))

    def thread_of(self, ticket_key: str) -> tuple[str, str] | None:
        """The Slack channel and message that announced `ticket_key`, where later updates go."""
        for entry in self.entries():
            if entry.ticket_key == ticket_key and entry.ticket_action == "created" and entry.slack_ts:
                return entry.slack_channel, entry.slack_ts
        return None


def _part_name(breach_key: str) -> str:
    return short_hash(breach_key, 24)


def _entries(table: pa.Table) -> list[LedgerEntry]:
    names = {f.name for f in fields(LedgerEntry)}
    return [LedgerEntry(**{k: v for k, v in row.items() if k in names}) for row in table.to_pylist()]
