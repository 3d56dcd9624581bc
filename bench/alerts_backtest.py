"""Alerting backtest: recall on the planted incidents, detection delay, false alerts, sensor tick time.

For each seed, a fresh sample is generated, landed and run through the whole pipeline (local
classifier included) with the CLI, exactly as `make demo` does; the alerts complaint_velocity
fired are scored against the seed's incident manifest. Then 365 days of synthetic complaint metrics
(a steady background plus spikes) are materialized and one velocity_alerts sensor tick is timed
over all 365 new partitions, and again with one new partition. Usage:

    .venv/bin/python bench/alerts_backtest.py [--seeds 7 11] [--days 60] [--items-per-day 200] [--series 1500]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

FEEDBACK = Path(sys.executable).parent / "feedback"
END_DATE = date(2026, 11, 27)
# The sensor pages by the date a partition was computed: the synthetic history ends yesterday.
TICK_END = datetime.now(UTC).date() - timedelta(days=1)


def run_pipeline(home: Path, seed: int, days: int, items_per_day: int) -> float:
    env = {**os.environ, "FEEDBACK_HOME": str(home / "feedback_home"), "DAGSTER_HOME": str(home / "dagster_home")}
    (home / "dagster_home").mkdir(parents=True)
    started = time.perf_counter()
    for command in (["seed", "--seed", str(seed), "--days", str(days), "--items-per-day", str(items_per_day),
                     "--end-date", END_DATE.isoformat()], ["materialize"]):
        subprocess.run([str(FEEDBACK), *command], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def backtest_seed(seed: int, days: int, items_per_day: int) -> dict:
    from feedback_assets.enrichment.taxonomy import load_taxonomy
    from feedback_assets.sample_data.incidents import fired_alerts, score_alerts
    from resources.table_store import LocalParquetTableStore

    with tempfile.TemporaryDirectory(prefix=f"backtest-{seed}-") as tmp:
        home = Path(tmp)
        seconds = run_pipeline(home, seed, days, items_per_day)
        manifest = json.loads((home / "feedback_home" / "sample" / "manifest.json").read_text())
        alerts, series_weeks = fired_alerts(LocalParquetTableStore(root=str(home / "feedback_home" / "warehouse")))
        domains = {label.id: label.domain for label in load_taxonomy().labels.values()}
        score = score_alerts(manifest, alerts, series_weeks, domains)
    return {"seed": seed, "pipeline_s": seconds, "score": score, "alerts": len(alerts)}


def sensor_tick_times(days: int, series: int) -> tuple[float, float, int]:
    """Seconds of one tick over `days` new partitions, then of one tick over one more partition."""
    import dagster as dg
    import pyarrow as pa
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from feedback_assets.dispatch import dispatch_alerts_job
    from feedback_assets.gold import complaint_velocity
    from feedback_assets import tables
    from resources.settings import read_settings
    from resources.slack import SlackNotifierResource
    from resources.compute import LocalStepRunner
    from resources.spark import local_spark_resource
    from resources.table_store import LocalParquetTableStore
    from resources.tickets import TicketsResource
    from sensors import velocity as velocity_sensor

    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="sensor-tick-") as tmp, dg.instance_for_test() as instance:
        store = LocalParquetTableStore(root=tmp)
        first = TICK_END - timedelta(days=days)
        calendar = [first + timedelta(days=k) for k in range(days + 1)]
        rates = [rng.choice([0.3, 1, 2, 4]) for _ in range(series)]
        for index, day in enumerate(calendar):
            rows = []
            for s, rate in enumerate(rates):
                spike = 10 if (s * 7 + index) % 97 == 0 else 0
                complaints = sum(rng.random() < rate / 6 for _ in range(6)) + spike
                if complaints:
                    rows.append({"label": "defect_or_damage", "domain": "product_quality", "dimension": "sku",
                                 "value": f"SKU-{s:05d}", "complaints": complaints, "mean_severity": 0.5, "churn_items": 0,
                                 "mean_sentiment": -0.3, "mean_confidence": 0.8, "orders": 400,
                                 "complaints_per_1k_orders": complaints * 2.5})
            store.write_part(tables.ISSUE_DAILY_METRICS, day, "part-0", pa.Table.from_pylist(rows))
        resources = {"step_runner": LocalStepRunner(pyspark=local_spark_resource(read_settings())), "table_store": store,
                     "tickets": TicketsResource(ticket_dir=f"{tmp}/tickets"),
                     "slack": SlackNotifierResource(outbox_path=f"{tmp}/outbox.jsonl")}
        definitions = dg.Definitions(assets=[complaint_velocity], jobs=[dispatch_alerts_job],
                                     sensors=[velocity_sensor.velocity_alerts], resources=resources)

        def materialize(start: date, end: date) -> None:
            dg.materialize([complaint_velocity], resources=resources, instance=instance, tags={
                ASSET_PARTITION_RANGE_START_TAG: start.isoformat(), ASSET_PARTITION_RANGE_END_TAG: end.isoformat()})

        def tick(cursor: str | None) -> tuple[float, str, int]:
            context = dg.build_multi_asset_sensor_context(monitored_assets=[complaint_velocity.key], instance=instance,
                                                          cursor=cursor, definitions=definitions,
                                                          resources={"table_store": store})
            started = time.perf_counter()
            result = velocity_sensor.velocity_alerts(context)
            elapsed = time.perf_counter() - started
            requests = [r for r in result if isinstance(r, dg.RunRequest)] if isinstance(result, list) else []
            return elapsed, context.cursor, len(requests)

        materialize(calendar[0], calendar[-2])
        backfill_tick, cursor, backfill_requests = tick(None)
        materialize(calendar[-1], calendar[-1])
        daily_tick, _, requests = tick(cursor)
    return backfill_tick, backfill_requests, daily_tick, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[7, 11], help="none: only time the sensor")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--items-per-day", type=int, default=200)
    parser.add_argument("--series", type=int, default=1500)
    parser.add_argument("--tick-days", type=int, default=365)
    args = parser.parse_args()

    results = [backtest_seed(seed, args.days, args.items_per_day) for seed in args.seeds]
    if results:
        print(f"Backtest: {len(args.seeds)} seed(s), {args.days} days, {args.items_per_day} items/day, local classifier")
        print("| seed | incidents found | delay (days) per incident | false alerts | per 100 series-weeks | side-effect alerts | pipeline |")
        print("|---:|---:|---|---:|---:|---:|---:|")
    for result in results:
        score = result["score"]
        delays = ", ".join(f"{k} {'missed' if v is None else v}" for k, v in score.detection_delay.items())
        print(f"| {result['seed']} | {score.recall:.0%} | {delays} | {len(score.false_alerts)} | "
              f"{score.false_alerts_per_100_series_weeks:.2f} | {len(score.side_effect_alerts)} | {result['pipeline_s']:.0f} s |")
    for result in results:
        for alert in result["score"].false_alerts:
            print(f"  seed {result['seed']} false alert: {alert.day} {alert.label} {alert.dimension}={alert.value}")
    backfill, backfill_requests, daily, requests = sensor_tick_times(args.tick_days, args.series)
    print(f"\nSensor tick, {args.series} series: {args.tick_days} new partitions in one tick {backfill:.2f} s "
          f"({backfill_requests} run request(s) for the days in the alert window, the rest recorded); "
          f"one new partition {daily:.3f} s ({requests} run request(s))")


if __name__ == "__main__":
    main()
