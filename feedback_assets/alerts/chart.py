"""A picture of one complaint series: daily complaints against its 7- and 28-day means, breaches marked.

Rendered offline to PNG (matplotlib's Agg backend) for the velocity asset's page and the ticket.
Series values come from customer-facing data, so every label is drawn as plain text (no mathtext).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc


from feedback_assets import tables
from feedback_assets.window import days_in
from resources.table_store import TableStore

HISTORY_DAYS = 42
MAX_TITLE_CHARS = 80


@dataclass(frozen=True)
class SeriesDay:
    day: date
    complaints: int
    ma7: float
    ma28: float
    breach: bool


def read_velocity_history(store: TableStore, first: date, last: date) -> pa.Table | None:
    """Velocity rows from `HISTORY_DAYS` before `first` through `last`: every chart of those days, read once."""
    return store.read_days(tables.COMPLAINT_VELOCITY, days_in(first - timedelta(days=HISTORY_DAYS - 1), last))


def series_history(velocity: pa.Table | None, series_key: str, day: date, days: int = HISTORY_DAYS) -> list[SeriesDay]:
    """The series' rows of `velocity` for the `days` days up to and including `day`, oldest first."""
    if velocity is None:
        return []
    first = day - timedelta(days=days - 1)
    series = velocity.filter(pc.equal(velocity["series_key"], series_key))
    rows = series.select(["feedback_date", "complaints", "ma7", "ma28", "breach"]).to_pylist()
    return sorted((SeriesDay(r["feedback_date"], r["complaints"], r["ma7"], r["ma28"], r["breach"]) for r in rows
                   if first <= r["feedback_date"] <= day), key=lambda r: r.day)


def velocity_chart_png(history: list[SeriesDay], title: str, alert_day: date) -> bytes:
    """A 640×280 PNG of the series; an empty history still gives a chart that says so."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    shown = title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1] + "…"
    figure = Figure(figsize=(6.4, 2.8), dpi=100)
    axes = figure.subplots()
    days = [row.day for row in history]
    axes.bar(days, [row.complaints for row in history], color="#9db4d0", label="complaints per day")
    axes.plot(days, [row.ma7 for row in history], color="#1f4e8c", linewidth=1.6, label="7-day mean")
    axes.plot(days, [row.ma28 for row in history], color="#7a7a7a", linewidth=1.2, linestyle="--", label="28-day mean")
    breaches = [row for row in history if row.breach]
    axes.scatter([row.day for row in breaches], [row.complaints for row in breaches], color="#c0392b", zorder=3,
                 s=18, label="breach")
    axes.axvline(alert_day, color="#c0392b", linewidth=0.8, alpha=0.6)
    if not history:
        axes.text(0.5, 0.5, "no velocity rows for this series", ha="center", va="center", transform=axes.transAxes,
                  parse_math=False)
    axes.set_title(shown, fontsize=9, loc="left", parse_math=False)
    axes.set_ylabel("complaints", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.legend(fontsize=7, loc="upper left", frameon=False)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """The PNG inline, as the Dagster UI renders markdown images (alt text kept to safe characters)."""
    safe_alt = "".join(c for c in alt if c.isalnum() or c in " =-_.,@")[:MAX_TITLE_CHARS]
    return f"![{safe_alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
