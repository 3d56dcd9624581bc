"""A printable account of what the warehouse holds: days, rows per layer, rejects, PII redactions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds

from feedback_assets.landing.mapping import FEEDBACK_CHANNELS
from resources.table_store import LocalParquetTableStore


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


def _dataset(store: LocalParquetTableStore, table: str) -> ds.Dataset | None:
    location = store.location(table)
    if not location.exists() or not any(location.rglob("*.parquet")):
        return None
    return ds.dataset(location, format="parquet", partitioning="hive", exclude_invalid_files=True)


def summarize(store: LocalParquetTableStore) -> WarehouseSummary:
    summary = WarehouseSummary()
    tables = [f"bronze.{c}" for c in FEEDBACK_CHANNELS] + [
        "silver.silver_feedback", "silver.silver_rejects", "silver.orders", "silver.returns_refunds", "silver.sku_catalog",
        "enrichment.feedback_classifications", "enrichment.triage_queue", "enrichment.classification_dead_letters",
    ]
    for table in tables:
        dataset = _dataset(store, table)
        summary.rows[table] = dataset.count_rows() if dataset else 0
        summary.days[table] = len(store.partition_days(table))
    silver_days = store.partition_days("silver.silver_feedback")
    if silver_days:
        summary.first_day, summary.last_day = silver_days[0].isoformat(), silver_days[-1].isoformat()
    if rejects := _dataset(store, "silver.silver_rejects"):
        reasons = rejects.to_table(columns=["reason"]).column("reason")
        summary.rejects_by_reason = dict(sorted(Counter(reasons.to_pylist()).items()))
    if silver := _dataset(store, "silver.silver_feedback"):
        table = silver.to_table(columns=["pii_redactions", "language"])
        totals: Counter[str] = Counter()
        for redactions in table.column("pii_redactions").to_pylist():
            totals.update(dict(redactions))
        summary.pii_redactions = dict(sorted(totals.items()))
        counts = pc.value_counts(table.column("language")).to_pylist()
        summary.languages = {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: -c["counts"])}
    if classified := _dataset(store, "enrichment.feedback_classifications"):
        counts = pc.value_counts(classified.to_table(columns=["primary_label"]).column("primary_label")).to_pylist()
        summary.primary_labels = {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: -c["counts"])}
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
