"""Data-quality measurements behind the asset checks: reconciliation, nulls, PII residue."""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
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


def null_counts(df: DataFrame, columns: list[str]) -> dict[str, int]:
    row = df.select(*[F.sum(F.col(c).isNull().cast("int")).alias(c) for c in columns]).first()
    return {c: int(row[c] or 0) if row else 0 for c in columns}


def pii_residue(df: DataFrame, column: str = "text_clean") -> dict[str, int]:
    """How many rows still match an e-mail, phone or card pattern after scrubbing."""
    row = df.select(
        *[F.sum(F.col(column).rlike(pattern).cast("int")).alias(kind) for kind, pattern in RESIDUE_PATTERNS.items()]
    ).first()
    return {kind: int(row[kind] or 0) if row else 0 for kind in RESIDUE_PATTERNS}
