"""Step reports as metadata the UI shows: window, row counts per day, markdown tables (customer text escaped).

Builders return `outcomes.Meta` values, so they work the same in-process and on a cluster.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from feedback_assets import outcomes
from feedback_assets.outcomes import Meta, Metadata
from feedback_assets.tables import Table
from feedback_assets.window import DayWindow
from resources.table_store import TableStore

_MARKDOWN_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_{}[]()#+!|~>"})


def escape_markdown_cell(value: object, limit: int = 120) -> str:
    """Customer text rendered inert in a markdown table: no HTML, links, emphasis or column breaks."""
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=False).translate(_MARKDOWN_SPECIAL)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> Meta:
    if not rows:
        return outcomes.markdown("_no rows_")
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(escape_markdown_cell(row[c]) for c in columns) + " |" for row in rows]
    return outcomes.markdown("\n".join(lines))


def window_metadata(window: DayWindow, rows: int) -> Metadata:
    """The run's window and its row count; `dagster/row_count` only when the run covered one day.

    A ranged run records the same metadata on every partition it wrote, so a window total there
    would read as each day's count.
    """
    count_key = "dagster/row_count" if len(window.days) == 1 else "rows_in_window"
    return {
        "window_start": outcomes.text(window.start.isoformat()),
        "window_end": outcomes.text(window.end.isoformat()),
        "days": outcomes.integer(len(window.days)),
        count_key: outcomes.integer(rows),
    }


def rows_per_day(store: TableStore, table: Table, window: DayWindow) -> dict[str, Metadata]:
    """Each partition of a ranged run gets its own `dagster/row_count`, so the Plots view shows days, not the window."""
    if len(window.days) == 1:
        return {}  # the run's own metadata already holds that day's count
    return {day.isoformat(): {"dagster/row_count": outcomes.integer(rows)}
            for day, rows in store.row_counts(table, window.days).items()}
