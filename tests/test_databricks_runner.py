"""Spark steps on Databricks through Pipes, against a loopback workspace that runs each task as a local process.

One prepared input (three days of the seeded sample) is run twice, step by step: in-process on
local Spark, and as Databricks runs through the real `PipesDatabricksClient` and the project's
entrypoint. Both write Delta tables; they must hold the same rows, and the UI must get the same
metadata and check results. The submitted payloads are checked field by field, secrets included.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from feedback_assets import tables
from feedback_assets.definitions import ALL_ASSETS
from feedback_assets.sample_data import generate_sample
from resources.compute import (
    DAGSTER_PIPES_REQUIREMENT, WHEEL_ENTRY_POINT, WHEEL_PACKAGE, DatabricksStepRunner, LocalStepRunner, step_runner_for,
)
from resources.enrichment import EnrichmentResource
from resources.landing import LandingResource
from resources.settings import settings
from resources.spark import local_spark_resource
from resources.table_store import DeltaTableStore
from resources.themes import ThemesResource
from tests.conftest import REPO, TEST_PARTITIONS_START, settings_for
from tests.loopback_databricks import LoopbackDatabricks
from tests.test_landing import REVIEWS_HEADER, write
from tests.test_silver import review_row

FIRST, LAST = date(2026, 10, 2), date(2026, 10, 4)
# One of each kind of step: a bronze, a commerce table, the silver, the enrichment, the labels gold counts and a gold step.
STEPS = ["bronze_product_reviews", "orders", "silver_feedback", "feedback_classifications", "feedback_labels",
         "issue_daily_metrics"]
COMPARED = [tables.BRONZE["product_reviews"], tables.LANDED_FEEDBACK["product_reviews"], tables.ORDERS,
            tables.SILVER_FEEDBACK, tables.SILVER_REJECTS, tables.FEEDBACK_CLASSIFICATIONS, tables.TRIAGE_QUEUE,
            tables.CLASSIFICATION_DEAD_LETTERS, tables.FEEDBACK_LABELS, tables.ISSUE_DAILY_METRICS]
# The local classifier never gives up on an item, so it dead-letters nothing (on either side).
MAY_BE_EMPTY = {tables.CLASSIFICATION_DEAD_LETTERS}
# Columns that name the run or the moment that wrote a row: they differ between any two runs.
RUN_SPECIFIC = {"ingest_run_id", "ingested_at", "run_id", "classified_at"}
PIPES_RUN_KEYS = {"Databricks Job Run ID", "Databricks Job Run URL"}
WHEEL = "/Volumes/main/feedback/artifacts/feedback_to_fix-0.1.0-py3-none-any.whl"
SECRET_SCOPE = "feedback"
SECRETS = {"pseudonym-key": settings().pseudonym_key, "openai-api-key": "sk-loopback-secret-value-1",
           "azure-openai-api-key": "azure-loopback-secret-value-2"}


def ranged(first: date, last: date) -> dict[str, str]:
    return {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}


def factories(home: Path) -> dict:
    return {
        "landing": LandingResource(landing_dir=str(home / "landing"), settle_seconds=0,
                                   partitions_start=TEST_PARTITIONS_START.isoformat()),
        "enrichment": EnrichmentResource(backend="local"),
        "themes": ThemesResource(backend="local"),
    }


def databricks_runner(dbx: LoopbackDatabricks, volumes: Path, warehouse: Path, **overrides) -> DatabricksStepRunner:
    return DatabricksStepRunner(**{
        "host": dbx.url, "token": dbx.token, "volume_path": str(volumes / "main" / "feedback" / "pipes"),
        "wheel_path": WHEEL, "warehouse_root": str(warehouse), "secret_scope": SECRET_SCOPE,
        "poll_interval_seconds": 0.3, "message_interval_seconds": 0.3, "ui_base_url": "http://dagster.example",
        **overrides})


def loopback(volumes: Path, cluster_home: Path) -> LoopbackDatabricks:
    return LoopbackDatabricks(
        volume_root=volumes, secrets={SECRET_SCOPE: SECRETS},
        # An existing cluster gets its secrets the way an admin configures it: scope references in its environment.
        clusters={"0101-existing": {"spark_env_vars": {"FEEDBACK_PSEUDONYM_KEY": "{{secrets/feedback/pseudonym-key}}"}}},
        wheel_entry_points={(WHEEL_PACKAGE, WHEEL_ENTRY_POINT): "feedback_assets.pipes_entrypoint"},
        # The task's Spark (a fresh local session on this "cluster") binds to loopback only.
        extra_env={"PYTHONPATH": str(REPO), "FEEDBACK_HOME": str(cluster_home), "SPARK_LOCAL_IP": "127.0.0.1"},
        workdir=REPO)


def materialize_steps(resources: dict, instance: dg.DagsterInstance) -> dict[str, dg.ExecuteInJobResult]:
    results = {}
    for step in STEPS:
        result = dg.materialize(ALL_ASSETS, selection=dg.AssetSelection.assets(step).required_multi_asset_neighbors(),
                                resources=resources, instance=instance, tags=ranged(FIRST, LAST), raise_on_error=False)
        assert result.success, f"{step} failed: {[e.message for e in result.all_events if e.is_failure]}"
        results[step] = result
    return results


@pytest.fixture(scope="module")
def both_runs(spark, tmp_path_factory):
    """The same three days run in-process and through the loopback workspace, each on its own copy of the input."""
    root = tmp_path_factory.mktemp("databricks")
    seed_home = root / "seed"
    landing = settings_for(seed_home).landing_dir
    generate_sample(landing, seed_home / "manifest.json", days=3, end_date=LAST, items_per_day=60, seed=11)
    # Rows silver must refuse (an empty review, a duplicate, an unreadable time), so rejects are compared too.
    write(landing / "product_reviews" / "late_export.csv", "\n".join([
        REVIEWS_HEADER, review_row("dbx-1", "Zipper broke on the first day", when="2026-10-03T09:00:00Z"),
        review_row("dbx-2", "Zipper broke on the first day", when="2026-10-03T09:05:00Z"),
        review_row("dbx-3", "", when="2026-10-03T10:00:00Z"), review_row("dbx-4", "Fine", when="not a time")]) + "\n")
    homes = {}
    for side in ("local", "pipes"):
        homes[side] = root / side
        shutil.copytree(seed_home / "landing", homes[side] / "landing")
    local_store = DeltaTableStore(root=str(homes["local"] / "warehouse"))
    pipes_store = DeltaTableStore(root=str(homes["pipes"] / "warehouse"))
    volumes = root / "Volumes"
    volumes.mkdir()
    with dg.instance_for_test() as instance:
        local = materialize_steps({"step_runner": LocalStepRunner(pyspark=local_spark_resource(settings_for(root / "spark"))),
                                   "table_store": local_store, **factories(homes["local"])}, instance)
        with loopback(volumes, root / "cluster_home") as dbx:
            started = time.monotonic()
            pipes = materialize_steps({"step_runner": databricks_runner(dbx, volumes, homes["pipes"] / "warehouse"),
                                       "table_store": pipes_store, **factories(homes["pipes"])}, instance)
            yield {"local": local, "pipes": pipes, "local_store": local_store, "pipes_store": pipes_store,
                   "requests": dbx.requests, "runs": dbx.runs, "url": dbx.url, "seconds": time.monotonic() - started}


def table_rows(spark, store, table) -> list[tuple]:
    def hashable(value):
        if isinstance(value, dict):
            return tuple(sorted((k, hashable(v)) for k, v in value.items()))
        if isinstance(value, list):
            return tuple(hashable(v) for v in value)
        if hasattr(value, "asDict"):
            return hashable(value.asDict(recursive=True))
        return value

    def without_floats(row: tuple) -> str:
        return repr(tuple(None if isinstance(v, float) else v for v in row))

    frame = store.read(spark, table)
    kept = [c for c in frame.columns if c not in RUN_SPECIFIC]
    return sorted((tuple(hashable(row[c]) for c in kept) for row in frame.select(*kept).collect()),
                  key=lambda row: (without_floats(row), repr(row)))


def same_value(a, b) -> bool:
    """Equal, except that a float may differ by one unit of the 4th decimal the gold tables round to.

    Spark's averages add in partition order, so two clusters can land either side of a rounding boundary.
    """
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1.01e-4
    return a == b


@pytest.mark.parametrize("table", COMPARED, ids=str)
def test_a_pipes_run_writes_the_same_rows_as_the_in_process_run(spark, both_runs, table):
    local = table_rows(spark, both_runs["local_store"], table)
    assert local or table in MAY_BE_EMPTY, f"{table} is empty: the comparison would prove nothing"
    pipes = table_rows(spark, both_runs["pipes_store"], table)
    assert len(pipes) == len(local)
    for pipes_row, local_row in zip(pipes, local):
        assert len(pipes_row) == len(local_row) and all(map(same_value, pipes_row, local_row)), (pipes_row, local_row)


def materializations(result: dg.ExecuteInJobResult, step: str) -> dict[str, dict[str, dict]]:
    """Per asset and partition: metadata as plain values."""
    found: dict[str, dict[str, dict]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        found.setdefault(materialization.asset_key.to_user_string(), {})[materialization.partition] = {
            key: value.value for key, value in materialization.metadata.items()}
    return found


@pytest.mark.parametrize("step", STEPS)
def test_the_ui_gets_the_same_metadata_and_checks_from_a_pipes_run(both_runs, step):
    local = materializations(both_runs["local"][step], step)
    pipes = materializations(both_runs["pipes"][step], step)
    assert set(pipes) == set(local) and local
    for asset, partitions in local.items():
        assert set(pipes[asset]) == set(partitions) == {"2026-10-02", "2026-10-03", "2026-10-04"}
        for partition, metadata in partitions.items():
            remote = pipes[asset][partition]
            assert set(remote) - set(metadata) == PIPES_RUN_KEYS, asset
            assert {k: remote[k] for k in metadata} == metadata, f"{asset} {partition}"
            assert remote["Databricks Job Run URL"].startswith(both_runs["url"])

    def checks(result):
        return sorted((e.asset_key.to_user_string(), e.check_name, e.passed) for e in result.get_asset_check_evaluations())

    assert checks(both_runs["pipes"][step]) == checks(both_runs["local"][step])


def submitted(requests: list[dict]) -> list[dict]:
    return [r["body"] for r in requests if r["method"] == "POST" and r["path"].endswith("/jobs/runs/submit")]


def test_one_databricks_run_per_step_and_range_with_the_wheel_task_and_its_libraries(both_runs):
    payloads = submitted(both_runs["requests"])
    assert [p["tasks"][0]["python_wheel_task"]["parameters"][:2] for p in payloads] == [["--step", s] for s in STEPS]
    for step, payload in zip(STEPS, payloads, strict=True):
        assert payload["run_name"] == f"feedback-to-fix {step} {FIRST}..{LAST}"
        assert payload["timeout_seconds"] == 4 * 3600
        (task,) = payload["tasks"]
        assert task["task_key"] == step
        assert task["python_wheel_task"]["package_name"] == WHEEL_PACKAGE
        assert task["python_wheel_task"]["entry_point"] == WHEEL_ENTRY_POINT
        assert task["libraries"] == [{"whl": WHEEL}, {"pypi": {"package": DAGSTER_PIPES_REQUIREMENT}}]
        cluster = task["new_cluster"]
        assert (cluster["spark_version"], cluster["node_type_id"], cluster["num_workers"]) == ("16.4.x-scala2.13", "i3.xlarge", 1)
        assert cluster["data_security_mode"] == "SINGLE_USER"
        env = cluster["spark_env_vars"]
        # A new cluster gets the Pipes bootstrap in its environment; secrets only as scope references.
        assert {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"} <= set(env)
        assert {k: v for k, v in env.items() if not k.startswith("DAGSTER_PIPES")} == {
            "FEEDBACK_PSEUDONYM_KEY": "{{secrets/feedback/pseudonym-key}}",
            "OPENAI_API_KEY": "{{secrets/feedback/openai-api-key}}",
            "AZURE_OPENAI_API_KEY": "{{secrets/feedback/azure-openai-api-key}}",
        }


def test_no_secret_value_ever_leaves_the_orchestrator(both_runs):
    everything = json.dumps(both_runs["requests"], default=str)
    for value in SECRETS.values():
        assert value not in everything
    contexts = [r["body"] or json.loads(r["data"]) for r in both_runs["requests"]
                if r["method"] == "PUT" and r["path"].endswith("/context.json")]
    assert len(contexts) == len(STEPS)
    assert {c["extras"]["step"] for c in contexts} == set(STEPS)
    assert "token" not in json.dumps([c["extras"] for c in contexts])


def test_the_secrets_reach_the_task_through_the_secret_scope(both_runs):
    for run in both_runs["runs"].values():
        (task,) = run["tasks"].values()
        assert {"FEEDBACK_PSEUDONYM_KEY", "OPENAI_API_KEY"} <= set(task["env_keys"]) and task["exit_code"] == 0


@pytest.fixture
def workspace(tmp_path):
    volumes = tmp_path / "Volumes"
    volumes.mkdir()
    with loopback(volumes, tmp_path / "cluster_home") as dbx:
        yield dbx, volumes, tmp_path


def materialize_one(runner: DatabricksStepRunner, home: Path, step: str = "issue_daily_metrics") -> dg.ExecuteInJobResult:
    with dg.instance_for_test() as instance:
        return dg.materialize(ALL_ASSETS, selection=[step], instance=instance, partition_key=LAST.isoformat(),
                              raise_on_error=False,
                              resources={"step_runner": runner, "table_store": DeltaTableStore(root=str(home / "warehouse")),
                                         **factories(home)})


def run_and_submit(workspace, **runner_settings) -> tuple[dict, dict]:
    """One gold step through a runner with these settings: the submitted payload and its only task."""
    dbx, volumes, home = workspace
    result = materialize_one(databricks_runner(dbx, volumes, home / "warehouse", **runner_settings), home)
    assert result.success
    (payload,) = submitted(dbx.requests)
    (task,) = payload["tasks"]
    return payload, task


def test_an_existing_cluster_gets_the_pipes_bootstrap_as_task_parameters(workspace):
    _, task = run_and_submit(workspace, existing_cluster_id="0101-existing")
    assert task["existing_cluster_id"] == "0101-existing" and "new_cluster" not in task
    parameters = task["python_wheel_task"]["parameters"]
    assert parameters[:2] == ["--step", "issue_daily_metrics"]
    assert "--dagster-pipes-context" in parameters and "--dagster-pipes-messages" in parameters
    assert task["libraries"] == [{"whl": WHEEL}, {"pypi": {"package": DAGSTER_PIPES_REQUIREMENT}}]


def test_serverless_runs_in_an_environment_with_the_wheel_and_dagster_pipes(workspace):
    payload, task = run_and_submit(workspace, compute="serverless")
    assert task["environment_key"] == "feedback" and not {"new_cluster", "existing_cluster_id", "libraries"} & set(task)
    assert payload["environments"] == [{"environment_key": "feedback",
                                        "spec": {"client": "2", "dependencies": [WHEEL, DAGSTER_PIPES_REQUIREMENT]}}]
    assert "--dagster-pipes-context" in task["python_wheel_task"]["parameters"]


def test_a_failing_task_fails_the_step_with_the_clusters_message_and_run_page(workspace):
    dbx, volumes, home = workspace
    dbx.extra_env["FEEDBACK_CONFIG_DIR"] = str(home / "no-such-config")
    result = materialize_one(databricks_runner(dbx, volumes, home / "warehouse"), home)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = str(failure.event_specific_data.error)
    assert "FileNotFoundError" in message and "no-such-config" in message
    (run_id,) = dbx.runs
    assert f"Databricks run {run_id}: {dbx.url}" in message  # the run page, for the operator to open


CANCELLED_RUN = """
import sys
import dagster as dg
from tests.test_databricks_runner import databricks_runner, factories, loopback_for_child
from feedback_assets.definitions import ALL_ASSETS
from resources.table_store import DeltaTableStore
from pathlib import Path
home, url, volumes = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
runner = databricks_runner(loopback_for_child(url), volumes, home / "warehouse")
with dg.instance_for_test() as instance:
    result = dg.materialize(ALL_ASSETS, selection=["issue_daily_metrics"], instance=instance, partition_key="2026-10-04",
                            raise_on_error=False, resources={"step_runner": runner, "table_store": DeltaTableStore(root=str(home / "warehouse")),
                                                             **factories(home)})
print(f"dagster run success={result.success}")
"""


class loopback_for_child:  # noqa: N801 - stands in for the server object in the child process
    """What `databricks_runner` reads from a loopback server, for a process that only knows its URL."""

    def __init__(self, url: str):
        self.url, self.token = url, "dapi-test"


def test_interrupting_the_dagster_run_cancels_the_databricks_run(workspace):
    dbx, volumes, home = workspace
    script = home / "cancelled_run.py"
    script.write_text(CANCELLED_RUN)
    child = subprocess.Popen([sys.executable, str(script), str(home), dbx.url, str(volumes)], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while not dbx.runs and time.monotonic() < deadline:
            time.sleep(0.2)
        (run_id,) = dbx.runs
        dbx.wait_until_started(run_id, timeout=60)
        child.send_signal(signal.SIGINT)
        output, _ = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert "POST /api/2.2/jobs/runs/cancel" in dbx.calls()
    # The Pipes client swallows the interruption after cancelling; the runner must not report a success.
    assert "dagster run success=True" not in output.decode()
    dbx.wait_for_run(run_id, timeout=60)
    assert dbx.run(run_id)["result_state"] == "CANCELED"


def test_databricks_compute_is_chosen_by_the_environment_and_refuses_a_half_configuration(tmp_path):
    config = settings_for(tmp_path)
    assert isinstance(step_runner_for(config), LocalStepRunner)
    delta = replace(config, compute="databricks", table_format="delta")
    with pytest.raises(ValueError, match="DATABRICKS_TOKEN, DATABRICKS_VOLUME_PATH"):
        step_runner_for(delta, {"DATABRICKS_HOST": "https://x.cloud.databricks.com"})
    with pytest.raises(ValueError, match="FEEDBACK_TABLE_FORMAT=delta"):
        step_runner_for(replace(config, compute="databricks"), {})
    env = {"DATABRICKS_HOST": "https://x", "DATABRICKS_TOKEN": "dapi-x", "DATABRICKS_VOLUME_PATH": "/Volumes/m/f/p",
           "DATABRICKS_WHEEL_PATH": WHEEL, "DATABRICKS_COMPUTE": "serverless"}
    runner = step_runner_for(delta, env)
    assert isinstance(runner, DatabricksStepRunner) and runner.compute == "serverless"
    assert runner.warehouse_root == "/Volumes/m/f/p/warehouse"


@pytest.mark.skipif(not os.environ.get("DATABRICKS_HOST"), reason="no Databricks workspace: set DATABRICKS_HOST, "
                    "DATABRICKS_TOKEN, DATABRICKS_VOLUME_PATH and DATABRICKS_WHEEL_PATH (a deployed wheel) to run it")
def test_a_real_workspace_runs_a_gold_step(tmp_path, monkeypatch):
    """Against a real workspace: one gold step on an empty window, through the configured runner."""
    monkeypatch.setenv("FEEDBACK_TABLE_FORMAT", "delta")
    config = replace_settings(tmp_path)
    runner = step_runner_for(config)
    with dg.instance_for_test() as instance:
        result = dg.materialize(ALL_ASSETS, selection=["issue_daily_metrics"], instance=instance,
                                partition_key=LAST.isoformat(),
                                resources={"step_runner": runner, "table_store": DeltaTableStore(root=runner.warehouse_root,
                                           uc_catalog=config.uc_catalog, uc_schema_prefix=config.uc_schema_prefix)})
    assert result.success


def replace_settings(home: Path):
    return replace(settings_for(home), compute="databricks", table_format="delta",
                   uc_catalog=os.environ.get("FEEDBACK_UC_CATALOG"), uc_schema_prefix=os.environ.get("FEEDBACK_UC_SCHEMA_PREFIX", ""))
