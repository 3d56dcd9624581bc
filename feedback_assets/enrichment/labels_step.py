"""The labels step: the window's classifications with each item's latest analyst correction applied."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from feedback_assets import tables
from feedback_assets.enrichment.corrections import (
    ANALYST,
    CORRECTION_COLUMNS,
    MODEL,
    apply_corrections,
    label_counts_delta,
    latest_corrections,
)
from feedback_assets.enrichment.corrections_store import corrections_of_days
from feedback_assets.enrichment.taxonomy import Taxonomy
from feedback_assets.schemas import FEEDBACK_LABELS
from feedback_assets.window import DayWindow
from resources.table_store import TableStore


@dataclass
class LabelsReport:
    items: int
    corrected: int
    ignored: int
    corrections_without_item: int
    moves: dict[str, int]  # "model_label → analyst_label" → items
    label_counts: dict[str, dict[str, int]]  # primary-label counts the corrections changed: the model's and gold's


def run_feedback_labels(spark: SparkSession, store: TableStore, window: DayWindow, taxonomy: Taxonomy) -> LabelsReport:
    classified = store.read(spark, tables.FEEDBACK_CLASSIFICATIONS, window.start, window.end)
    latest = latest_corrections(corrections_of_days(store, window.days))
    ids = sorted(latest)
    uncorrected = classified.where(~F.col("feedback_id").isin(ids)) if ids else classified
    as_model = uncorrected.select(
        *[c for c in classified.columns if c != "feedback_date"],
        *[(F.lit(MODEL) if name == "label_source" else F.lit(None).cast("string")).alias(name) for name in CORRECTION_COLUMNS],
        "feedback_date",
    )
    model_rows = [row.asDict(recursive=True) for row in classified.where(F.col("feedback_id").isin(ids)).collect()] if ids else []
    rows = apply_corrections(model_rows, latest, taxonomy)
    labels = as_model.select(*FEEDBACK_LABELS.fieldNames())
    if rows:
        labels = labels.unionByName(spark.createDataFrame(rows, FEEDBACK_LABELS))
    store.overwrite_partitions(labels, tables.FEEDBACK_LABELS, window.start, window.end)
    corrected = [r for r in rows if r["label_source"] == ANALYST]
    return LabelsReport(
        items=classified.count(), corrected=len(corrected), ignored=len(rows) - len(corrected),
        corrections_without_item=len(ids) - len(rows),
        moves=dict(Counter(f"{r['model_primary_label']} → {r['primary_label']}" for r in corrected
                           if r["model_primary_label"] != r["primary_label"]).most_common()),
        label_counts={label: {"model": change.before, "with_corrections": change.after}
                      for label, change in label_counts_delta(model_rows, rows).items() if change.change},
    )
