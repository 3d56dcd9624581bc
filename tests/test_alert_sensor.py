"""The velocity sensor: new complaint_velocity partitions become one dispatch run per recent alert, once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pyarrow as pa
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from feedback_assets import tables
from feedback_assets.alerts.ledger import POSTED, RECORDED, DispatchLedger
from feedback_assets.alerts.planning import plan_alerts
from feedback_assets.dispatch import dispatch_alerts_job
from feedback_assets.gold import complaint_velocity

from resources.slack import SlackNotifierResource
from resources.compute import LocalStepRunner
from resources.spark import local_spark_resource
from resources.tickets import TicketsResource
from sensors import velocity as velocity_sensor

# The sensor pages by the date a partition was computed, so the test's days end yesterday.
START = datetime.now(UTC).date() - timedelta(days=40)
DAYS = [START + timedelta(days=k) for k in range(40)]
OLD_SPIKE, RECENT_SPIKE = DAYS[30], DAYS[38]


def _metrics_row(label: str, value: str, complaints: int) -> dict:
    return {"label": label, "domain": "product_quality", "dimension": "sku", "value": value, "complaints": complaints,
            "mean_severity": 0.5, "churn_items": 0, "mean_sentiment": -0.4, "mean_confidence": 0.8, "orders": 500,
            "complaints_per_1k_orders": 2 * complaints}


def _write_metrics(store, days) -> None:
    for day in days:
        rows = [_metrics_row("defect_or_damage", "ELC-2207", 14 if day == OLD_SPIKE else 1),
                _metrics_row("poor_materials_or_durability", "JKT-1042", 15 if day == RECENT_SPIKE else 2)]
        store.write_part(tables.ISSUE_DAILY_METRICS, day, "part-0", pa.Table.from_pylist(rows))


def _materialize_velocity(instance, resources, first: date, last: date) -> None:
    result = dg.materialize([complaint_velocity], resources=resources, instance=instance, tags={
        ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()})
    assert result.success


@pytest.fixture
def resources(store, feedback_home, spark):
    from resources.settings import read_settings

    return {"step_runner": LocalStepRunner(pyspark=local_spark_resource(read_settings())), "table_store": store,
            "tickets": TicketsResource(ticket_dir=str(feedback_home / "tickets")),
            "slack": SlackNotifierResource(outbox_path=str(feedback_home / "outbox.jsonl"))}


def _tick(instance, resources, cursor=None):
    context = dg.build_multi_asset_sensor_context(
        monitored_assets=[complaint_velocity.key], instance=instance, cursor=cursor,
        definitions=dg.Definitions(assets=[complaint_velocity], jobs=[dispatch_alerts_job],
                                   sensors=[velocity_sensor.velocity_alerts], resources=resources),
        resources={"table_store": resources["table_store"]})
    return context, velocity_sensor.velocity_alerts(context)


def test_a_backfill_pages_only_recent_alerts_records_the_rest_and_a_retick_requests_nothing(resources, store):
    _write_metrics(store, DAYS)
    with dg.instance_for_test() as instance:
        _materialize_velocity(instance, resources, DAYS[0], DAYS[-1])
        context, result = _tick(instance, resources)
        requests = [r for r in result if isinstance(r, dg.RunRequest)]
        assert [r.run_key for r in requests] == [f"poor_materials_or_durability:sku=JKT-1042@{RECENT_SPIKE}"]
        assert requests[0].run_config["ops"]["dispatch_alert"]["config"]["day"] == RECENT_SPIKE.isoformat()
        ledger = DispatchLedger(store)
        assert ledger.get(f"defect_or_damage:sku=ELC-2207@{OLD_SPIKE}").status == RECORDED

        _, again = _tick(instance, resources, context.cursor)
        assert isinstance(again, dg.SkipReason)

        dispatched = [dispatch_alerts_job.execute_in_process(run_config=requests[0].run_config, instance=instance,
                                                             resources=resources) for _ in range(2)]
        assert all(run.success for run in dispatched)
        assert ledger.get(requests[0].run_key).status == POSTED
        tickets = resources["tickets"].sink().tickets()
        assert len(tickets) == 1 and tickets[0]["breach_key"] == requests[0].run_key
        assert len(resources["slack"].sink().messages()) == 1


def test_several_new_partitions_in_one_tick_are_all_seen(resources, store):
    _write_metrics(store, DAYS)
    with dg.instance_for_test() as instance:
        _materialize_velocity(instance, resources, DAYS[0], DAYS[35])
        context, _ = _tick(instance, resources)
        _materialize_velocity(instance, resources, DAYS[36], DAYS[37])
        _materialize_velocity(instance, resources, DAYS[38], DAYS[39])
        _, result = _tick(instance, resources, context.cursor)
        assert [r.run_key for r in result] == [f"poor_materials_or_durability:sku=JKT-1042@{RECENT_SPIKE}"]


def test_a_day_computed_on_time_pages_even_when_the_sensor_ticks_late(store):
    day = date(2026, 11, 20)
    store.write_part(tables.COMPLAINT_VELOCITY, day, "part-0", pa.Table.from_pylist(
        [{"series_key": "defect_or_damage:sku=ELC-2207", "alert": True}, {"series_key": "x:sku=Y", "alert": False}]))
    on_time = plan_alerts(store, {day: day + timedelta(days=1)}, window_days=2)
    backfilled = plan_alerts(store, {day: day + timedelta(days=30)}, window_days=2)
    assert [(p.breach_key, p.page) for p in on_time] == [("defect_or_damage:sku=ELC-2207@2026-11-20", True)]
    assert [p.page for p in backfilled] == [False]


def test_a_failed_dispatch_run_is_requested_again_with_its_attempt_in_the_run_key(resources, store):
    breach_key = "defect_or_damage:sku=ELC-2207@2026-10-05"
    config = {"ops": {"dispatch_alert": {"config": {"series_key": "defect_or_damage:sku=ELC-2207", "day": "2026-10-05"}}}}
    with dg.instance_for_test() as instance:
        failed = dispatch_alerts_job.execute_in_process(run_config=config, instance=instance, resources=resources,
                                                        tags={"breach_key": breach_key}, raise_on_error=False)
        assert not failed.success
        assert "materialize complaint_velocity first" in str(failed.failure_data_for_node("dispatch_alert").error.message)
        ledger = DispatchLedger(store)
        assert [r.run_key for r in velocity_sensor.retry_requests(instance, ledger)] == [f"{breach_key}#attempt2"]
        for _ in range(2):
            dispatch_alerts_job.execute_in_process(run_config=config, instance=instance, resources=resources,
                                                   tags={"breach_key": breach_key}, raise_on_error=False)
        assert velocity_sensor.retry_requests(instance, ledger) == []


def test_a_run_that_died_mid_dispatch_is_requested_again_once_its_ledger_row_goes_stale(store):
    from feedback_assets.alerts.ledger import LedgerEntry

    breach_key = "defect_or_damage:sku=ELC-2207@2026-10-05"
    with dg.instance_for_test() as instance:
        run = instance.create_run_for_job(dispatch_alerts_job, run_config={"ops": {"dispatch_alert": {"config": {
            "series_key": "defect_or_damage:sku=ELC-2207", "day": "2026-10-05"}}}}, tags={"breach_key": breach_key})
        instance.handle_run_event(run.run_id, dg.DagsterEvent(
            event_type_value="PIPELINE_START", job_name=run.job_name))
        ledger = DispatchLedger(store)
        ledger.put(LedgerEntry(breach_key, "defect_or_damage:sku=ELC-2207", date(2026, 10, 5), "created", attempts=1))
        assert velocity_sensor.retry_requests(instance, ledger) == []
        later = datetime.now(UTC) + timedelta(hours=1)
        assert [r.run_key for r in velocity_sensor.retry_requests(instance, ledger, now=later)] == [f"{breach_key}#attempt2"]
