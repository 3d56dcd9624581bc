"""What the theming tables need from the table store: named part files, read back without Spark."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Protocol

import pyarrow as pa


class PartStore(Protocol):
    def write_part(self, table: str, day: date | None, part_name: str, rows: pa.Table) -> None: ...

    def read_parts(self, table: str, days: Iterable[date] | None = None) -> pa.Table | None: ...


def model_slug(model: str) -> str:
    """A file-name-safe spelling of an embedding model's name."""
    return re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_")
