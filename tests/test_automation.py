"""The daily chain runs by itself: roots at the configured hour for the newest complete day, the rest as inputs change.

Evaluated in-process with Dagster's automation-condition evaluator over two consecutive days;
materializations are reported to the instance as the runs would record them.
"""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from feedback_assets.automation import daily_at
from feedback_assets.definitions import defs

GRAPH = defs.resolve_asset_graph()
EVERY_ASSET = list(GRAPH.toposorted_asset_keys)
ROOTS = {key for key in EVERY_ASSET if not GRAPH.get(key).parent_keys}
LATE_FILE_RUN = [dg.AssetKey("bronze_product_reviews"), dg.AssetKey("silver_feedback"), dg.AssetKey("silver_rejects")]


def days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def materialized(instance: dg.DagsterInstance, keys, partitions: list[str]) -> None:
    for key in keys:
        for partition in partitions:
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))


class Ticks:
    """Successive evaluations sharing one cursor, as the automation daemon keeps it."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance, self.cursor = instance, None

    def at(self, when: datetime) -> dict[str, list[str]]:
        result = dg.evaluate_automation_conditions(defs=defs, instance=self.instance, evaluation_time=when,
                                                   cursor=self.cursor)
        self.cursor = result.cursor
        return {key.to_user_string(): sorted(result.get_requested_partitions(key))
                for key in EVERY_ASSET if result.get_num_requested(key)}


def days_read_back(key: dg.AssetKey) -> int:
    """How many days before a partition its readers look at this asset (trailing windows: dedup, baselines, reach)."""
    offsets = [0]
    for child in GRAPH.get(key).child_keys:
        mapping = GRAPH.get_partition_mapping(child, key)
        if isinstance(mapping, dg.TimeWindowPartitionMapping):
            offsets.append(-mapping.start_offset)
    return max(offsets)


@pytest.fixture()
def ticks():
    history_end = date(2026, 11, 7)
    with dg.instance_for_test() as instance:
        # Each asset's history reaches as far back as its readers' trailing windows, and a week more.
        for key in EVERY_ASSET:
            materialized(instance, [key], days(history_end - timedelta(days=days_read_back(key) + 7), history_end))
        yield Ticks(instance), instance


def test_two_days_run_by_themselves_and_a_late_file_reruns_only_what_it_touched(ticks):
    tick, instance = ticks
    every_asset = {key.to_user_string() for key in EVERY_ASSET}

    assert tick.at(datetime(2026, 11, 9, 4, 59, tzinfo=UTC)) == {}, "nothing runs before the daily hour"
    day_one = tick.at(datetime(2026, 11, 9, 5, 1, tzinfo=UTC))
    assert day_one == {name: ["2026-11-08"] for name in every_asset}, "the whole chain, for the newest complete day only"

    materialized(instance, EVERY_ASSET, ["2026-11-08"])
    assert tick.at(datetime(2026, 11, 9, 5, 30, tzinfo=UTC)) == {}, "once it ran, nothing is asked again"

    # A late export for 3 November: the landing sensor's ingest run rebuilt that day's bronze and silver.
    materialized(instance, LATE_FILE_RUN, ["2026-11-03"])
    late = tick.at(datetime(2026, 11, 9, 6, 0, tzinfo=UTC))
    assert not ROOTS & {dg.AssetKey(name) for name in late}, "roots are never re-run for a late file"
    assert late["feedback_classifications"] == days(date(2026, 11, 3), date(2026, 11, 8))
    assert late["complaint_velocity"] == days(date(2026, 11, 3), date(2026, 11, 8))
    # Silver de-duplicates against the previous days, so the days after the late one are rebuilt too.
    assert late["silver_feedback"] == days(date(2026, 11, 4), date(2026, 11, 8))
    assert min(p for partitions in late.values() for p in partitions) == "2026-11-03", "no day before the late one"

    materialized(instance, [k for k in EVERY_ASSET if k not in ROOTS and k not in LATE_FILE_RUN],
                 days(date(2026, 11, 3), date(2026, 11, 8)))
    assert tick.at(datetime(2026, 11, 9, 23, 0, tzinfo=UTC)) == {}
    day_two = tick.at(datetime(2026, 11, 10, 5, 1, tzinfo=UTC))
    assert day_two == {name: ["2026-11-09"] for name in every_asset}


def test_nothing_runs_while_an_input_is_missing(ticks):
    tick, instance = ticks
    tick.at(datetime(2026, 11, 9, 4, 0, tzinfo=UTC))
    materialized(instance, [dg.AssetKey("bronze_surveys")], ["2026-11-08"])
    requested = tick.at(datetime(2026, 11, 9, 4, 30, tzinfo=UTC))
    assert "silver_feedback" not in requested, "silver waits for every channel's bronze of the day"


def test_the_daily_hour_is_configurable_and_checked():
    assert daily_at(7).get_label() == "on_cron(0 7 * * *, UTC)"
    with pytest.raises(ValueError, match="0..23"):
        daily_at(24)
