"""Data-quality measurements behind the asset checks: reconciliation, nulls, PII residue."""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from feedback_assets.transforms.pii import RESIDUE_PATTERNS


def counts_by_day(df: DataFrame) -> dict[date, int]:
    return {row["feedback_date"]: row["count"] for row in df.groupBy("feedback_date").count().collect()}


def reconcile(bronze: dict[date, int], silver: dict[date, int], rejects: dict[date, int], days: list[date]) -> list[dict]:
    """Days where bronze rows ≠ silver rows + rejects (duplicates included), with the three counts."""
    return [
        {"day": day.isoformat(), "bronze": bronze.get(day, 0), "silver": silver.get(day, 0), "rejects": rejects.get(day, 0)}
        for day in days
        if bronze.get(day, 0) != silver.get(day, 0) + rejects.get(day, 0)
    ]


def null_count_columns(columns: list[str]) -> list[Column]:
    """Aggregates counting nulls per column, named `null:<column>`."""
    return [F.sum(F.col(c).isNull().cast("int")).alias(f"null:{c}") for c in columns]


def pii_residue_columns(column: str = "text_clean") -> list[Column]:
    """Aggregates counting rows that still match an e-mail, phone or card pattern, named `residue:<kind>`."""
    return [F.sum(F.col(column).rlike(pattern).cast("int")).alias(f"residue:{kind}") for kind, pattern in RESIDUE_PATTERNS.items()]


def prefixed(row: dict, prefix: str) -> dict[str, int]:
    """The `prefix:<name>` entries of an aggregate row, keyed by name (null sums count as 0)."""
    return {key.split(":", 1)[1]: int(value or 0) for key, value in row.items() if key.startswith(prefix + ":")}
