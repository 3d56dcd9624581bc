"""The one daily partitioning shared by every asset in the code location.

The latest partition is yesterday (UTC): the newest complete day. Records dated today land in
today's folder and are processed once the day is over.

Where partitions start is a trade-off. Starting early admits the history a real export carries,
but a fresh instance then shows every day since then as missing. The start is therefore chosen
per home, in this order:
1. FEEDBACK_PARTITIONS_START, which a deployment with real history sets to its first day;
2. the `partitions_start` file in $FEEDBACK_HOME, which `feedback seed` writes with the
   sample's first day, so that the demo shows its own days;
3. 2024-01-01.
"""

import os
from datetime import date
from pathlib import Path

import dagster as dg

DEFAULT_PARTITIONS_START = "2024-01-01"
START_FILE_NAME = "partitions_start"


def configured_start() -> str:
    """The first partition day from the environment, the home's start file, or the default."""
    if os.environ.get("FEEDBACK_PARTITIONS_START"):
        return _checked_day(os.environ["FEEDBACK_PARTITIONS_START"], "FEEDBACK_PARTITIONS_START")
    start_file = Path(os.environ.get("FEEDBACK_HOME", ".feedback_home")) / START_FILE_NAME
    if start_file.is_file() and (pinned := start_file.read_text().strip()):
        return _checked_day(pinned, str(start_file))
    return DEFAULT_PARTITIONS_START


def _checked_day(value: str, source: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"{source} must hold a day like 2026-10-01, not {value[:40]!r}") from None


PARTITIONS_START = configured_start()

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")

__all__ = ["PARTITIONS_START", "START_FILE_NAME", "configured_start", "daily_partitions"]
