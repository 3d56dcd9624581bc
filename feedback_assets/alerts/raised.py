"""What each complaint-velocity day raised, for that day's page in the UI: counts, charts, links to its dispatch runs.

Everything here works on velocity rows read once (`chart.read_velocity_history`) for the whole run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote

import pyarrow as pa

from feedback_assets.alerts.chart import markdown_image, series_history, velocity_chart_png
from feedback_assets.alerts.model import breach_key_of
from feedback_assets.alerts.render import markdown_escape

# Each chart is ~20 KB inline; beyond this many a day lists the rest without pictures.
MAX_CHARTS_PER_DAY = 6


@dataclass(frozen=True)
class DayCounts:
    series: int
    breaches: int
    alerts: int


def day_counts(velocity: pa.Table | None, days: Iterable[date]) -> dict[date, DayCounts]:
    """Series assessed, breaches and alerts of each day, from its velocity rows."""
    counts = {day: DayCounts(0, 0, 0) for day in days}
    rows = [] if velocity is None else velocity.select(["feedback_date", "breach", "alert"]).to_pylist()
    for row in rows:
        if (old := counts.get(row["feedback_date"])) is not None:
            counts[row["feedback_date"]] = DayCounts(old.series + 1, old.breaches + row["breach"],
                                                     old.alerts + row["alert"])
    return counts


def dispatch_runs_url(ui_base_url: str, breach_key: str) -> str:
    """The Runs page filtered to the dispatch runs of one breach (they carry it as the `breach_key` tag)."""
    return f"{ui_base_url.rstrip('/')}/runs?q%5B0%5D={quote(f'tag:breach_key={breach_key}', safe='')}"


def raised_markdown(velocity: pa.Table | None, day: date, alerts: list[dict], ui_base_url: str) -> str:
    """One section per alert of `day`: the series, its numbers, a link to its dispatch runs and its chart."""
    sections = []
    for index, alert in enumerate(sorted(alerts, key=lambda a: -a["lift"])):
        series_key = alert["series_key"]
        breach_key = breach_key_of(series_key, day)
        heading = (f"**{markdown_escape(series_key)}**: {alert['complaints']} complaints, "
                   f"{alert['lift']:.1f}× the 28-day mean, p={alert['p_value']:.1e}. "
                   f"[Dispatch runs]({dispatch_runs_url(ui_base_url, breach_key)})")
        if index < MAX_CHARTS_PER_DAY:
            png = velocity_chart_png(series_history(velocity, series_key, day), series_key, day)
            heading += "\n\n" + markdown_image(png, breach_key)
        sections.append(heading)
    return "\n\n".join(sections) if sections else "_no alerts on this day_"
