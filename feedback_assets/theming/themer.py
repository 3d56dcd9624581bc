"""Themes day by day: each group's items join its known themes or found new ones, which the next day's items can join.

The state carried from one day to the next is the themes founded so far and each group's recent
outliers (the pool, `pool_days` back). An item's theme depends only on what was known on its day,
so a window themed in one ranged run gives the same rows as the same days themed one run each.
Outliers that later help found a theme keep their outlier row: it records their own day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from feedback_assets.theming.clustering import ClusterParams, NewTheme, theme_day
from feedback_assets.theming.items import ComplaintItem
from feedback_assets.theming.naming import name_themes
from feedback_assets.theming.registry import Theme, theme_id

EXAMPLES_PER_THEME = 5

Group = tuple[str, str]  # (label, group_key)


@dataclass(frozen=True)
class Placement:
    item: ComplaintItem
    theme: Theme | None  # None: an outlier
    similarity: float | None

    @property
    def new_theme(self) -> bool:
        return self.theme is not None and self.theme.created_date == self.item.day


class Themer:
    def __init__(self, embedding_model: str, params: ClusterParams, vectors: Mapping[str, np.ndarray],
                 themes: Iterable[Theme] = (), pool: Iterable[ComplaintItem] = ()):
        self.embedding_model, self.params, self.vectors = embedding_model, params, vectors
        self.themes: dict[Group, list[Theme]] = defaultdict(list)
        self.founded: list[Theme] = []
        for theme in themes:
            self.themes[(theme.label, theme.group_key)].append(theme)
        founders = {member for group in self.themes.values() for theme in group for member in theme.member_ids}
        self.pool: dict[Group, list[ComplaintItem]] = defaultdict(list)
        for item in sorted(pool, key=lambda i: (i.day, i.feedback_id)):
            if item.feedback_id not in founders:
                self.pool[(item.label, item.group_key)].append(item)

    def place_day(self, day: date, items: Iterable[ComplaintItem]) -> list[Placement]:
        """Themes one day's items; call for days in order."""
        by_group: dict[Group, list[ComplaintItem]] = defaultdict(list)
        for item in sorted(items, key=lambda i: i.feedback_id):
            by_group[(item.label, item.group_key)].append(item)
        placements = []
        for group in sorted(by_group):
            placements += self._place_group(day, group, by_group[group])
        return placements

    def _place_group(self, day: date, group: Group, items: list[ComplaintItem]) -> list[Placement]:
        known = self.themes[group]
        pool = [p for p in self.pool[group] if p.day >= day - timedelta(days=self.params.pool_days)]
        today = self._matrix(items)
        centroids = np.stack([t.centroid for t in known]) if known else np.zeros((0, today.shape[1]), np.float32)
        result = theme_day(today, centroids, self._matrix(pool, today.shape[1]), self.params)
        new = self._found(day, group, pool, items, result.new_themes)
        themes = [*known, *new]
        placements = [Placement(item, themes[t] if t >= 0 else None, None if np.isnan(s) else round(float(s), 4))
                      for item, t, s in zip(items, result.theme, result.similarity, strict=True)]
        founders = {m for theme in new for m in theme.member_ids}
        self.themes[group] = themes
        self.founded += new
        self.pool[group] = [p for p in pool if p.feedback_id not in founders] + [
            p.item for p in placements if p.theme is None]
        return placements

    def _found(self, day: date, group: Group, pool: list[ComplaintItem], items: list[ComplaintItem],
               new_themes: list[NewTheme]) -> list[Theme]:
        """Theme records for the clusters founded today, named against the group's other themes."""
        founders = [sorted([pool[i] for i in new.pool_members] + [items[i] for i in new.today_members],
                           key=lambda m: (-float(self.vectors[m.text_hash] @ new.centroid), m.feedback_id))
                    for new in new_themes]
        texts: dict[object, list[str]] = {index: [m.text for m in members] for index, members in enumerate(founders)}
        names = name_themes(texts | {theme.theme_id: list(theme.examples) for theme in self.themes[group]})
        label, group_key = group
        themes = []
        for index, (members, new) in enumerate(zip(founders, new_themes, strict=True)):
            ids = tuple(sorted(m.feedback_id for m in members))
            examples = tuple(dict.fromkeys(m.text for m in members))[:EXAMPLES_PER_THEME]
            themes.append(Theme(theme_id(label, group_key, self.embedding_model, ids), self.embedding_model, label,
                                group_key, names[index].name, names[index].keywords, new.centroid, ids, examples, day))
        return themes

    def _matrix(self, items: list[ComplaintItem], dimension: int | None = None) -> np.ndarray:
        if not items:
            return np.zeros((0, dimension or 0), dtype=np.float32)
        return np.stack([self.vectors[item.text_hash] for item in items])
