"""The one daily partitioning shared by every asset in the code location."""

import os

import dagster as dg

# Real exports carry old dates. The default start admits a few years of history; an earlier start
# can be set with FEEDBACK_PARTITIONS_START, or an export can be replayed onto recent dates with
# `feedback ingest --shift-to-end`.
DEFAULT_PARTITIONS_START = "2024-01-01"
PARTITIONS_START = os.environ.get("FEEDBACK_PARTITIONS_START", DEFAULT_PARTITIONS_START)

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START, timezone="UTC", end_offset=1
)

__all__ = ["PARTITIONS_START", "daily_partitions"]
