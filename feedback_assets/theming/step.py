"""The theming step for a window of days: classified complaints → gold.feedback_themes, and the themes founded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import groupby

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


from feedback_assets import tables
from feedback_assets.theming.cache import EmbeddingCache, embed_with_cache
from feedback_assets.theming.clustering import ClusterParams
from feedback_assets.theming.embeddings import Embedder
from feedback_assets.theming.items import ComplaintItem, complaint_items
from feedback_assets.theming.registry import ThemeRegistry
from feedback_assets.theming.schema import FEEDBACK_THEMES
from feedback_assets.theming.themer import Placement, Themer
from feedback_assets.window import days_in
from resources.table_store import TableStore

TOP_THEMES = 10


@dataclass
class ThemesReport:
    classified_items: int
    complaint_items: int
    themed_items: int
    outliers: int
    new_themes: int
    existing_themes: int  # themes founded before the window that the window's items joined
    cache_hits: int
    embedded_now: int
    top_themes: list[dict]

    @property
    def outlier_share(self) -> float:
        return self.outliers / self.complaint_items if self.complaint_items else 0.0


def run_themes(spark: SparkSession, store: TableStore, start: date, end: date, embedder: Embedder,
               params: ClusterParams, run_id: str, products_by: str = "category",
               log: Callable[[str], None] = lambda _: None) -> ThemesReport:
    """Themes the window's complaints day by day, writes their rows and refounds the window's themes in the registry."""
    classified = [row.asDict(recursive=True) for row in store.read(
        spark, tables.FEEDBACK_LABELS, start, end).select(
        "feedback_id", "feedback_date", "primary_label", "domain", "labels", "entities").collect()]
    categories = {r["sku"]: r["category"] for r in
                  store.read(spark, tables.SKU_CATALOG, end, end).select("sku", "category").collect()}
    items = complaint_items(classified, categories, products_by)
    registry = ThemeRegistry(store, embedder.name)
    known = registry.founded_before(start)
    pool = recent_outliers(spark, store, start, params.pool_days, embedder.name)
    embedded = embed_with_cache({i.text_hash: i.embedding_text for i in [*pool, *items]}, embedder,
                                EmbeddingCache(store, embedder.name), log)
    themer = Themer(embedder.name, params, embedded.vectors, known, pool)
    placements: list[Placement] = []
    for day, day_items in groupby(items, key=lambda item: item.day):
        placements += themer.place_day(day, list(day_items))
    outliers = sum(p.theme is None for p in placements)
    log(f"{len(items)} complaints: {outliers} outliers, {len(themer.founded)} new themes")
    rows = [_row(p, embedder.name, run_id) for p in placements]
    store.overwrite_partitions(spark.createDataFrame(rows, FEEDBACK_THEMES), tables.FEEDBACK_THEMES, start, end)
    registry.replace_days(days_in(start, end), themer.founded)
    return ThemesReport(
        classified_items=len(classified), complaint_items=len(items),
        themed_items=len(placements) - outliers, outliers=outliers, new_themes=len(themer.founded),
        existing_themes=len({p.theme.theme_id for p in placements if p.theme and p.theme.created_date < start}),
        cache_hits=embedded.cache_hits, embedded_now=embedded.embedded_now, top_themes=top_themes(placements, start),
    )


def recent_outliers(spark: SparkSession, store: TableStore, start: date, days: int,
                    embedding_model: str) -> list[ComplaintItem]:
    """Outlier rows of the `days` before the window: they may still found a theme with the window's items."""
    recent = store.read(spark, tables.FEEDBACK_THEMES, start - timedelta(days=days), start - timedelta(days=1))
    rows = recent.where(F.col("theme_id").isNull() & (F.col("embedding_model") == embedding_model)).collect()
    return [ComplaintItem(r["feedback_id"], r["feedback_date"], r["label"], r["group_key"], r["sku"], r["category"],
                          r["theme_text"]) for r in rows]


def top_themes(placements: list[Placement], start: date, limit: int = TOP_THEMES) -> list[dict]:
    """The window's largest themes: name, label, group, items in the window, founded in the window or before."""
    themes = {p.theme.theme_id: p.theme for p in placements if p.theme}
    counts = Counter(p.theme.theme_id for p in placements if p.theme)
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))[:limit]
    return [{"theme": themes[i].name, "label": themes[i].label, "group": themes[i].group_key, "items": n,
             "founded": themes[i].created_date.isoformat() + (" (new)" if themes[i].created_date >= start else "")}
            for i, n in ranked]


def _row(placement: Placement, embedding_model: str, run_id: str) -> dict:
    item, theme = placement.item, placement.theme
    return {"feedback_id": item.feedback_id, "label": item.label, "group_key": item.group_key, "sku": item.sku,
            "category": item.category, "theme_id": theme.theme_id if theme else None,
            "theme_name": theme.name if theme else None, "new_theme": placement.new_theme,
            "similarity": placement.similarity, "theme_text": item.text, "text_hash": item.text_hash,
            "embedding_model": embedding_model, "run_id": run_id, "feedback_date": item.day}
