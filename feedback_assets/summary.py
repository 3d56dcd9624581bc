"""A printable account of what the warehouse holds: days, rows per layer, rejects, PII redactions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from feedback_assets import tables
from resources.table_store import TableStore


@dataclass
class WarehouseSummary:
    rows: dict[str, int] = field(default_factory=dict)
    days: dict[str, int] = field(default_factory=dict)
    first_day: str | None = None
    last_day: str | None = None
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    pii_redactions: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    primary_labels: dict[str, int] = field(default_factory=dict)


def _column(store: TableStore, table: tables.Table, days: list, column: str) -> list:
    rows = store.read_days(table, days, [column]) if days else None
    return [] if rows is None else rows.column(column).to_pylist()


def summarize(store: TableStore) -> WarehouseSummary:
    summary = WarehouseSummary()
    days_of = {}
    for table in [*tables.BRONZE.values(), tables.SILVER_FEEDBACK, tables.SILVER_REJECTS, tables.ORDERS,
                  tables.RETURNS_REFUNDS, tables.SKU_CATALOG, tables.FEEDBACK_CLASSIFICATIONS, tables.TRIAGE_QUEUE,
                  tables.CLASSIFICATION_DEAD_LETTERS]:
        days_of[table] = store.partition_days(table)
        summary.rows[table.name] = sum(store.row_counts(table, days_of[table]).values())
        summary.days[table.name] = len(days_of[table])
    silver_days = days_of[tables.SILVER_FEEDBACK]
    if silver_days:
        summary.first_day, summary.last_day = silver_days[0].isoformat(), silver_days[-1].isoformat()
    summary.rejects_by_reason = dict(sorted(Counter(_column(store, tables.SILVER_REJECTS, days_of[tables.SILVER_REJECTS],
                                                            "reason")).items()))
    totals: Counter[str] = Counter()
    for redactions in _column(store, tables.SILVER_FEEDBACK, silver_days, "pii_redactions"):
        totals.update(dict(redactions or {}))
    summary.pii_redactions = dict(sorted(totals.items()))
    summary.languages = dict(Counter(_column(store, tables.SILVER_FEEDBACK, silver_days, "language")).most_common())
    labels = _column(store, tables.FEEDBACK_CLASSIFICATIONS, days_of[tables.FEEDBACK_CLASSIFICATIONS], "primary_label")
    summary.primary_labels = dict(Counter(labels).most_common())
    return summary


def render(summary: WarehouseSummary, feedback_home: Path) -> str:
    lines = [f"Warehouse: {feedback_home / 'warehouse'}"]
    if summary.first_day:
        lines.append(f"Silver covers {summary.first_day} .. {summary.last_day}")
    lines.append(f"{'table':<40}{'days':>6}{'rows':>11}")
    lines += [f"{table:<40}{summary.days[table]:>6}{rows:>11,}" for table, rows in summary.rows.items()]
    bronze_total = sum(rows for table, rows in summary.rows.items() if table.startswith("bronze."))
    lines.append(f"{'bronze (all channels)':<40}{'':>6}{bronze_total:>11,}")
    lines.append("Rejects by reason: " + (", ".join(f"{k} {v:,}" for k, v in summary.rejects_by_reason.items()) or "none"))
    lines.append("PII redactions: " + (", ".join(f"{k} {v:,}" for k, v in summary.pii_redactions.items()) or "none"))
    lines.append("Languages: " + ", ".join(f"{k} {v:,}" for k, v in summary.languages.items()))
    if summary.primary_labels:
        lines.append("Primary labels: " + ", ".join(f"{k} {v:,}" for k, v in list(summary.primary_labels.items())[:10]) + ", …")
    return "\n".join(lines)
