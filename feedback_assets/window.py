"""The days a run covers: one partition or a backfill's range, both ends included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


def days_in(start: date, end: date) -> list[date]:
    """Every day from start to end, both included."""
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


@dataclass(frozen=True)
class DayWindow:
    start: date
    end: date

    @property
    def days(self) -> list[date]:
        return days_in(self.start, self.end)
