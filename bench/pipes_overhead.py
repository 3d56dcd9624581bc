"""What a Databricks run through Pipes costs per step, against the loopback workspace, versus the same step in-process.

Three seeded days go through five kinds of step (bronze, commerce, silver, classifications, a gold
step), once in-process on local Spark and once as Databricks runs through the real Pipes client,
the loopback workspace and the project's entrypoint (a fresh Python and Spark per task, as a job
cluster would start one). Both write Delta tables. Prints seconds per step and the overhead.
Usage:

    .venv/bin/python bench/pipes_overhead.py
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import dagster as dg

from feedback_assets.definitions import ALL_ASSETS
from feedback_assets.sample_data import generate_sample
from resources.compute import LocalStepRunner
from resources.spark import local_spark_resource
from resources.table_store import DeltaTableStore
from tests.conftest import settings_for
from tests.test_databricks_runner import FIRST, LAST, STEPS, databricks_runner, factories, loopback, ranged


def timed_steps(resources: dict, instance: dg.DagsterInstance) -> dict[str, float]:
    seconds = {}
    for step in STEPS:
        started = time.monotonic()
        result = dg.materialize(ALL_ASSETS, selection=dg.AssetSelection.assets(step).required_multi_asset_neighbors(),
                                resources=resources, instance=instance, tags=ranged(FIRST, LAST), raise_on_error=False)
        seconds[step] = time.monotonic() - started
        if not result.success:
            raise SystemExit(f"{step} failed")
    return seconds


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-pipes-") as tmp:
        root = Path(tmp)
        seed_home = root / "seed"
        generate_sample(settings_for(seed_home).landing_dir, seed_home / "manifest.json", days=3, end_date=LAST,
                        items_per_day=60, seed=11)
        for side in ("local", "pipes"):
            shutil.copytree(seed_home / "landing", root / side / "landing")
        volumes = root / "Volumes"
        volumes.mkdir()
        with dg.instance_for_test() as instance:
            local = timed_steps({"step_runner": LocalStepRunner(pyspark=local_spark_resource(settings_for(root / "spark"))),
                                 "table_store": DeltaTableStore(root=str(root / "local" / "warehouse")),
                                 **factories(root / "local")}, instance)
            with loopback(volumes, root / "cluster_home") as dbx:
                pipes = timed_steps({"step_runner": databricks_runner(dbx, volumes, root / "pipes" / "warehouse"),
                                     "table_store": DeltaTableStore(root=str(root / "pipes" / "warehouse")),
                                     **factories(root / "pipes")}, instance)
    print(f"{FIRST}..{LAST}, 60 items/day; in-process shares one warm Spark session, each Pipes task starts its own")
    print(f"{'step':<28}{'in-process s':>14}{'pipes s':>10}{'overhead s':>12}")
    for step in STEPS:
        print(f"{step:<28}{local[step]:>14.1f}{pipes[step]:>10.1f}{pipes[step] - local[step]:>12.1f}")
    print(f"{'total':<28}{sum(local.values()):>14.1f}{sum(pipes.values()):>10.1f}{sum(pipes.values()) - sum(local.values()):>12.1f}")


if __name__ == "__main__":
    main()
