"""Which alerts page and which are only recorded: the rule shared by the sensor and the replay."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from feedback_assets.gold_steps import VELOCITY_TABLE
from resources.table_store import LocalParquetTableStore


@dataclass(frozen=True)
class PlannedAlert:
    series_key: str
    day: date
    page: bool

    @property
    def breach_key(self) -> str:
        return f"{self.series_key}@{self.day.isoformat()}"


def alerting_series(store: LocalParquetTableStore, day: date) -> list[str]:
    """The series whose velocity row alerts on `day`."""
    table = store.read_parts(VELOCITY_TABLE, [day])
    if table is None:
        return []
    return sorted(row["series_key"] for row in table.select(["series_key", "alert"]).to_pylist() if row["alert"])


def plan_alerts(store: LocalParquetTableStore, days: Iterable[date], today: date, window_days: int) -> list[PlannedAlert]:
    """The alerts of `days`; those older than the window are recorded rather than paged."""
    oldest_paged = today - timedelta(days=window_days)
    return [PlannedAlert(series, day, day >= oldest_paged) for day in sorted(set(days)) for series in alerting_series(store, day)]
