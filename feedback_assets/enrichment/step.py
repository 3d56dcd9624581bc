"""The enrichment step for a window of days: silver items → classifications, triage queue, dead letters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from feedback_assets import tables
from feedback_assets.enrichment.cache import ClassificationCache
from feedback_assets.enrichment.entities import EntityCatalog
from feedback_assets.enrichment.history import history_table, record_version
from feedback_assets.enrichment.identity import code_version_of
from feedback_assets.enrichment.llm import Usage
from feedback_assets.enrichment.models import FeedbackItem
from feedback_assets.schemas import FEEDBACK_CLASSIFICATIONS
from resources.table_store import TableStore

CHECKPOINT_EVERY = 1000
# Through the Batch API, texts are cached per batch of this many (the API takes up to 50,000 lines a file).
BATCH_CHUNK = 40_000


@dataclass
class Backend:
    """What the step needs from a classifier: a name, a model, a version, and classify()."""

    name: str
    model: str
    prompt_version: str
    classify: Callable[[Sequence[FeedbackItem]], list[dict]]
    usage: Usage = field(default_factory=Usage)
    taxonomy_version: str = ""
    chunk_size: int = 0  # texts per checkpoint; 0: CHECKPOINT_EVERY

    @property
    def code_version(self) -> str:
        return code_version_of(self.name, self.model, self.prompt_version)


@dataclass
class EnrichmentReport:
    silver_items: int
    distinct_texts: int
    cache_hits: int
    classified_now: int
    classified_rows: int
    triage_rows: int
    dead_letter_rows: int
    unaccounted: int
    labels: dict[str, int]
    review_reasons: dict[str, int]
    label_shift: float | None
    usage: Usage


def entity_catalog(spark: SparkSession, store: TableStore, start: date, end: date) -> EntityCatalog:
    skus = [r["sku"] for r in store.read(spark, tables.SKU_CATALOG, end, end).select("sku").distinct().collect()]
    orders = store.read(spark, tables.ORDERS, start, end).select("region", "carrier").distinct().collect()
    return EntityCatalog.from_values(skus, [r["region"] for r in orders], [r["carrier"] for r in orders])


def run_enrichment(spark: SparkSession, store: TableStore, start: date, end: date, backend: Backend,
                   run_id: str, log: Callable[[str], None] = lambda _: None) -> EnrichmentReport:
    # Ordered, so the item that speaks for a text shared by several rows (its rating, channel) does not
    # depend on how the store happens to return rows.
    silver = store.read(spark, tables.SILVER_FEEDBACK, start, end).select(
        "feedback_id", "content_hash", "text_clean", "rating", "channel", "sku", "region", "feedback_date",
    ).orderBy("feedback_id").collect()
    by_hash: dict[str, FeedbackItem] = {}
    for row in silver:
        by_hash.setdefault(row["content_hash"], FeedbackItem(row["content_hash"], row["text_clean"], row["rating"],
                                                              row["channel"], row["sku"], row["region"]))
    cache = ClassificationCache(store, backend.prompt_version, backend.model)
    cached = cache.lookup(set(by_hash))
    missing = [item for content_hash, item in sorted(by_hash.items()) if content_hash not in cached]
    log(f"{len(silver)} silver items, {len(by_hash)} distinct texts, {len(cached)} cached, {len(missing)} to classify")
    fresh: dict[str, dict] = {}
    chunk_size = backend.chunk_size or CHECKPOINT_EVERY
    for offset in range(0, len(missing), chunk_size):
        # Chunks are cached as they finish: progress is logged, and a crashed run resumes where it stopped.
        chunk = {r["id"]: r for r in backend.classify(missing[offset: offset + chunk_size])}
        cache.store_results(chunk)
        fresh.update(chunk)
        log(f"classified {len(fresh)}/{len(missing)} texts")
    rows = []
    for row in silver:
        result = cached.get(row["content_hash"]) or fresh[row["content_hash"]]
        entities = dict(result.get("entities") or {})
        if entities:
            entities["sku"] = row["sku"] or entities.get("sku")
            entities["region"] = row["region"] or entities.get("region")
        rows.append({
            **{name: result.get(name) for name in FEEDBACK_CLASSIFICATIONS.fieldNames()},
            "feedback_id": row["feedback_id"], "content_hash": row["content_hash"], "channel": row["channel"],
            "entities": entities or None, "cache_hit": row["content_hash"] in cached, "run_id": run_id,
            "feedback_date": row["feedback_date"],
        })
    frame = spark.createDataFrame(rows, FEEDBACK_CLASSIFICATIONS) if rows else spark.createDataFrame([], FEEDBACK_CLASSIFICATIONS)
    classified = frame.where(F.col("error").isNull())
    store.overwrite_partitions(classified, tables.FEEDBACK_CLASSIFICATIONS, start, end)
    store.overwrite_partitions(classified.where("needs_review"), tables.TRIAGE_QUEUE, start, end)
    store.overwrite_partitions(frame.where(F.col("error").isNotNull()), tables.CLASSIFICATION_DEAD_LETTERS, start, end)
    # What this version said about these days stays queryable after a later version replaces it.
    store.overwrite_partitions(classified, history_table(backend.code_version), start, end)
    record_version(store, backend.code_version, backend.name, backend.model, backend.prompt_version,
                   backend.taxonomy_version, run_id, [start, end])
    good = [r for r in rows if not r["error"]]
    return EnrichmentReport(
        silver_items=len(silver), distinct_texts=len(by_hash), cache_hits=sum(r["cache_hit"] for r in rows),
        classified_now=len(fresh), classified_rows=len(good), triage_rows=sum(bool(r["needs_review"]) for r in good),
        dead_letter_rows=len(rows) - len(good), unaccounted=len(silver) - len(rows),
        labels=dict(Counter(r["primary_label"] for r in good).most_common()),
        review_reasons=dict(Counter(reason for r in good for reason in (r["review_reason"] or "").split(",") if reason)),
        label_shift=label_shift(spark, store, start, Counter(r["primary_label"] for r in good)),
        usage=backend.usage,
    )


def label_shift(spark: SparkSession, store: TableStore, start: date, current: Counter, trailing_days: int = 28) -> float | None:
    """Total-variation distance between this window's label mix and the trailing window's (None without history)."""
    history = store.read(spark, tables.FEEDBACK_CLASSIFICATIONS, start - timedelta(days=trailing_days),
                         start - timedelta(days=1))
    baseline = Counter({r["primary_label"]: r["count"] for r in history.groupBy("primary_label").count().collect()})
    if not baseline or not current:
        return None
    labels = set(baseline) | set(current)
    total_now, total_then = sum(current.values()), sum(baseline.values())
    return 0.5 * sum(abs(current[l] / total_now - baseline[l] / total_then) for l in labels)
