"""The theme registry: every theme ever founded, per embedding model, so themes keep their id across days.

A theme is founded on one day by its founding members and never changes afterwards: its id is a
hash of label, group, embedding model and founding member ids, and its centroid (the members' mean
direction) is what later items are compared with. Kept in the table store as the unpartitioned table
`gold.theme_registry`, one part per (model, founding day). Re-materializing a window rewrites the
parts of its days (empty when nothing was founded), so themes founded inside the window are dropped
and founded again deterministically, while themes founded before it are read and reused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from feedback_assets import tables
from feedback_assets.theming.store import model_slug
from resources.table_store import TableStore

REGISTRY_SCHEMA = pa.schema([
    ("theme_id", pa.string()), ("embedding_model", pa.string()), ("label", pa.string()), ("group_key", pa.string()),
    ("name", pa.string()), ("keywords", pa.list_(pa.string())), ("centroid", pa.list_(pa.float32())),
    ("member_ids", pa.list_(pa.string())), ("examples", pa.list_(pa.string())), ("size", pa.int64()),
    ("created_date", pa.date32()),
])


@dataclass(frozen=True, eq=False)  # identity equality: comparing numpy centroids has no single truth value
class Theme:
    theme_id: str
    embedding_model: str
    label: str
    group_key: str
    name: str
    keywords: tuple[str, ...]
    centroid: np.ndarray
    member_ids: tuple[str, ...]  # founding members, sorted
    examples: tuple[str, ...]  # founding texts nearest the centroid, nearest first
    created_date: date

    @property
    def size(self) -> int:
        return len(self.member_ids)


def theme_id(label: str, group_key: str, embedding_model: str, member_ids: Iterable[str]) -> str:
    """The stable id of a theme: the same founders in the same group always give the same id."""
    payload = "\x1f".join([label, group_key, embedding_model, *sorted(member_ids)])
    return "thm_" + hashlib.sha256(payload.encode()).hexdigest()[:16]


class ThemeRegistry:
    def __init__(self, store: TableStore, embedding_model: str):
        self.store, self.embedding_model = store, embedding_model

    def founded_before(self, day: date) -> list[Theme]:
        """The model's themes founded before `day`, ordered by founding day and id."""
        table = self.store.read_parts(tables.THEME_REGISTRY)
        if table is None:
            return []
        table = table.filter(pc.and_(pc.equal(table["embedding_model"], self.embedding_model),
                                     pc.less(table["created_date"], pa.scalar(day, pa.date32()))))
        themes = [Theme(r["theme_id"], r["embedding_model"], r["label"], r["group_key"], r["name"],
                        tuple(r["keywords"]), np.asarray(r["centroid"], dtype=np.float32), tuple(r["member_ids"]),
                        tuple(r["examples"]), r["created_date"]) for r in table.to_pylist()]
        return sorted(themes, key=lambda t: (t.created_date, t.theme_id))

    def replace_days(self, days: Iterable[date], themes: Iterable[Theme]) -> None:
        """Makes `themes` the model's themes founded on `days` (a day without themes gets an empty part)."""
        by_day: dict[date, list[Theme]] = {day: [] for day in days}
        for theme in themes:
            by_day[theme.created_date].append(theme)
        for day, founded in sorted(by_day.items()):
            rows = [{"theme_id": t.theme_id, "embedding_model": t.embedding_model, "label": t.label,
                     "group_key": t.group_key, "name": t.name, "keywords": list(t.keywords),
                     "centroid": t.centroid.astype(np.float32).tolist(), "member_ids": list(t.member_ids),
                     "examples": list(t.examples), "size": t.size, "created_date": t.created_date}
                    for t in sorted(founded, key=lambda t: t.theme_id)]
            self.store.write_part(tables.THEME_REGISTRY, None, f"{model_slug(self.embedding_model)}-{day.isoformat()}",
                                  pa.Table.from_pylist(rows, schema=REGISTRY_SCHEMA))
