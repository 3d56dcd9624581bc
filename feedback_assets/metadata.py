"""Helpers that turn step reports into typed Dagster metadata (customer text escaped for markdown)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import dagster as dg

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


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> dg.MarkdownMetadataValue:
    if not rows:
        return dg.MetadataValue.md("_no rows_")
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(escape_markdown_cell(row[c]) for c in columns) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))


def window_of(context: dg.AssetExecutionContext) -> DayWindow:
    """The days a (possibly ranged) partitioned run covers."""
    time_window = context.partition_time_window
    last_day = date.fromordinal(time_window.end.date().toordinal() - 1)
    return DayWindow(time_window.start.date(), last_day)


def window_metadata(window: DayWindow, rows: int) -> dict[str, dg.MetadataValue]:
    """The run's window and its row count; `dagster/row_count` only when the run covered one day.

    A ranged run records the same metadata on every partition it wrote, so a window total there
    would read as each day's count.
    """
    count_key = "dagster/row_count" if len(window.days) == 1 else "rows_in_window"
    return {
        "window_start": dg.MetadataValue.text(window.start.isoformat()),
        "window_end": dg.MetadataValue.text(window.end.isoformat()),
        "days": dg.MetadataValue.int(len(window.days)),
        count_key: dg.MetadataValue.int(rows),
    }


def record_rows_per_day(context: dg.AssetExecutionContext, store: TableStore, table: str, window: DayWindow,
                        asset_key: dg.AssetKey | None = None) -> None:
    """Gives each partition of a ranged run its own `dagster/row_count`, so the Plots view shows days, not the window."""
    if len(window.days) == 1:
        return  # the run's own metadata already holds that day's count
    for day, rows in store.row_counts(table, window.days).items():
        context.add_asset_metadata({"dagster/row_count": dg.MetadataValue.int(rows)}, asset_key=asset_key,
                                   partition_key=day.isoformat())
