"""The Dagster assets end to end on local Spark: ranged and single-day runs, checks, idempotency, late files."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from feedback_assets import tables
from feedback_assets.definitions import ALL_ASSETS, build_resources
from feedback_assets.landing.mapping import load_preset
from feedback_assets.sample_data import generate_sample
from tests.conftest import settings_for
from sensors.landing import landing_sensor
from tests.test_landing import REVIEWS_HEADER, write
from tests.test_silver import review_row

FIRST, LAST = date(2026, 10, 1), date(2026, 10, 4)
DAYS = [f"2026-10-0{d}" for d in range(1, 5)]


@pytest.fixture
def config(spark, feedback_home):
    return settings_for(feedback_home)


@pytest.fixture
def seeded(config):
    return generate_sample(config.landing_dir, config.feedback_home / "manifest.json", days=4, end_date=LAST,
                           items_per_day=60, seed=3)


def materialize(config, instance, **kwargs) -> dg.ExecuteInJobResult:
    return dg.materialize(ALL_ASSETS, selection=dg.AssetSelection.groups("bronze", "silver"),
                          resources=build_resources(config), instance=instance, **kwargs)


def ranged(first: date, last: date) -> dict[str, str]:
    return {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}


def table_rows(spark, store, table) -> list[tuple]:
    """Rows as hashable tuples (map columns as sorted pairs), in a stable order."""
    def hashable(value):
        return tuple(sorted(value.items())) if isinstance(value, dict) else value

    return sorted(tuple(hashable(v) for v in row) for row in store.read(spark, table).collect())


def test_a_ranged_run_materializes_every_day_and_passes_its_checks(spark, config, seeded):
    with dg.instance_for_test() as instance:
        result = materialize(config, instance, tags=ranged(FIRST, LAST))
        assert result.success
        for key in ["bronze_product_reviews", "bronze_support_tickets", "silver_feedback", "silver_rejects", "orders", "sku_catalog"]:
            assert instance.get_materialized_partitions(dg.AssetKey(key)) == set(DAYS), key
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks == {"reconciles_with_bronze": True, "key_columns_not_null": True, "no_pii_residue": True}
        per_day = {m.partition: m.metadata for m in result.asset_materializations_for_node("silver_feedback")
                   if m.asset_key == dg.AssetKey("silver_feedback")}
        assert set(per_day) == set(DAYS)
        window_total = per_day[DAYS[0]]["rows_in_window"].value
        # Each day carries its own count, not the window's, so the Plots view shows days.
        counts = [per_day[day]["dagster/row_count"].value for day in DAYS]
        assert window_total > 150 and sum(counts) == window_total and len(set(counts)) > 1
        assert per_day[DAYS[0]]["pii_redactions_total"].value > 0 and "sample" in per_day[DAYS[0]]


def test_running_a_day_twice_gives_identical_tables(spark, config, seeded):
    store = build_resources(config)["table_store"]
    checked = [tables.BRONZE["product_reviews"], tables.SILVER_FEEDBACK, tables.SILVER_REJECTS]
    with dg.instance_for_test() as instance:
        result = materialize(config, instance, partition_key="2026-10-02")
        assert result.success
        assert result.asset_materializations_for_node("silver_feedback")[0].metadata["dagster/row_count"].value > 30
        first = [table_rows(spark, store, t) for t in checked]
        assert materialize(config, instance, partition_key="2026-10-02").success
        second = [table_rows(spark, store, t) for t in checked]
    assert all(first) and first == second


def test_a_late_file_lands_in_its_old_day_and_the_sensor_asks_for_that_day(spark, config, seeded):
    resources = build_resources(config)
    store, landing = resources["table_store"], resources["landing"]
    with dg.instance_for_test() as instance:
        assert materialize(config, instance, tags=ranged(FIRST, LAST)).success
        before = table_rows(spark, store, tables.SILVER_FEEDBACK)

        late = write(config.feedback_home / "incoming" / "late_reviews_2026-10-20.csv",
                     "\n".join([REVIEWS_HEADER, review_row("late-1", "The zip broke on day two", when="2026-10-02T15:00:00Z")]))
        landing.registry(store).stage(late, load_preset("product_reviews"))
        with dg.build_sensor_context(instance=instance, resources={"landing": landing, "table_store": store}) as context:
            requests = list(landing_sensor(context))
            cursor = context.cursor
        assert [r.partition_key for r in requests] == ["2026-10-02"]

        assert materialize(config, instance, partition_key="2026-10-02").success
        after = table_rows(spark, store, tables.SILVER_FEEDBACK)
        added = set(after) - set(before)
        assert [row[2] for row in added] == ["late-1"] and set(before) <= set(after)

        with dg.build_sensor_context(instance=instance, resources={"landing": landing, "table_store": store},
                                     cursor=cursor) as context:
            assert isinstance(landing_sensor(context), dg.SkipReason)
