"""Which alerts page and which are only recorded: the rule shared by the sensor and the replay."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from feedback_assets import tables
from feedback_assets.alerts.model import breach_key_of

from resources.table_store import TableStore


@dataclass(frozen=True)
class PlannedAlert:
    series_key: str
    day: date
    page: bool

    @property
    def breach_key(self) -> str:
        return breach_key_of(self.series_key, self.day)


def alerting_series(store: TableStore, day: date) -> list[str]:
    """The series whose velocity row alerts on `day`."""
    table = store.read_parts(tables.COMPLAINT_VELOCITY, [day])
    if table is None:
        return []
    return sorted(row["series_key"] for row in table.select(["series_key", "alert"]).to_pylist() if row["alert"])


def plan_alerts(store: TableStore, computed_on: Mapping[date, date], window_days: int) -> list[PlannedAlert]:
    """The alerts of each day, paged when the day was within the window of the date its velocity was computed.

    Judging by the computation date rather than the sensor's clock means a backfill of old days is
    recorded, while a day computed on time still pages after a sensor outage.
    """
    return [PlannedAlert(series, day, day >= computed_on[day] - timedelta(days=window_days))
            for day in sorted(computed_on) for series in alerting_series(store, day)]
