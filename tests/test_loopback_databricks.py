"""The loopback Databricks workspace speaks the contract dagster-databricks' Pipes clients use, through
the real `databricks-sdk` (`WorkspaceClient(host=server.url, token=...)`).

Pipes runs go through `dg.materialize`: classic clusters (`new_cluster`: bootstrap in spark_env_vars;
`existing_cluster_id`: bootstrap as CLI arguments) and serverless (`environment_key` + `environments`),
with the Unity Catalog volumes context injector / message reader on a volume path that is a real
local directory, so the task process reads the context and writes message chunks by path. Then the
failure text, cancellation (SDK and Dagster side), the contract details (404 / 401 / 400 errors, the
SDK's retries through injected 503 / 429, paging) and secret scopes that never leak into a payload.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import dagster._core.pipes.utils as dagster_pipes_utils
import pytest
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster_databricks import PipesDatabricksClient
from dagster_databricks.pipes import (
    PipesDatabricksServerlessClient,
    PipesUnityCatalogVolumesContextInjector,
    PipesUnityCatalogVolumesMessageReader,
)
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    AlreadyExists,
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
    ResourceConflict,
    ResourceDoesNotExist,
    Unauthenticated,
)
from databricks.sdk.service import compute, files, jobs

from tests.loopback_databricks import LoopbackDatabricks, sdk_roundtrip_losses

CLUSTER_ID = "0101-120000-feedback"
WORKSPACE_DIR = "/Workspace/Users/f2f-bot@example.com/feedback"
SECRET = "sk-loopback-9f3e1c5a7b2d4e6f"
SECRET_REF = "{{secrets/feedback/openai_api_key}}"
ENV_KEY = "feedback_env"
DEPENDENCIES = ["dagster-pipes==1.13.27", "/Volumes/main/feedback/wheels/feedback_jobs-0.1-py3-none-any.whl"]
SPARK_VERSION = "15.4.x-scala2.12"
ASSET = "databricks_asset"

TASK_SCRIPT = '''\
"""A Databricks task: Dagster Pipes over Unity Catalog volumes (context and chunks by local path)."""
import argparse
import hashlib
import os
import subprocess
import sys
import time

from dagster_pipes import (
    PipesCliArgsParamsLoader,
    PipesEnvVarParamsLoader,
    PipesUnityCatalogVolumesContextLoader,
    PipesUnityCatalogVolumesMessageWriter,
    open_dagster_pipes,
)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="ok")
    parser.add_argument("--child-pid-file", default="")
    args, _ = parser.parse_known_args()
    via_cli = "--dagster-pipes-context" in sys.argv
    loader = PipesCliArgsParamsLoader() if via_cli else PipesEnvVarParamsLoader()
    with open_dagster_pipes(
        params_loader=loader,
        context_loader=PipesUnityCatalogVolumesContextLoader(),
        message_writer=PipesUnityCatalogVolumesMessageWriter(interval=0),
    ) as pipes:
        pipes.log.info(f"task started as {sys.argv[0]}")
        print("computed 42 rows on the cluster", flush=True)
        if args.mode == "fail":
            raise RuntimeError("boom on the cluster")
        if args.mode == "sleep":
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            with open(args.child_pid_file, "w") as handle:
                handle.write(str(child.pid))
            time.sleep(600)
        secret = os.environ.get("OPENAI_API_KEY", "")
        pipes.report_asset_materialization(
            metadata={
                "rows": 42,
                "params_via": "cli" if via_cli else "env",
                "asset": pipes.asset_key,
                "day": pipes.get_extra("day"),
                "runtime": os.environ.get("DATABRICKS_RUNTIME_VERSION", ""),
                "cluster_env": os.environ.get("FEEDBACK_CLUSTER", ""),
                "secret_sha256": hashlib.sha256(secret.encode()).hexdigest() if secret else "",
            }
        )


if __name__ == "__main__":
    main()
'''

SLEEPER = '''\
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(600)
'''


# ---- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture
def volume(tmp_path) -> Path:
    """The UC volume the Pipes injector and reader use: a real local directory (the cluster's /Volumes FUSE view)."""
    path = tmp_path / "Volumes" / "main" / "feedback" / "pipes"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def workspace(tmp_path) -> Path:
    """The local directory behind WORKSPACE_DIR, holding the task script (and, importable, the 'wheel' module)."""
    path = tmp_path / "workspace"
    path.mkdir()
    (path / "pipes_task.py").write_text(TASK_SCRIPT)
    (path / "feedback_wheel_task.py").write_text(TASK_SCRIPT)
    (path / "sleeper.py").write_text(SLEEPER)
    return path


@pytest.fixture
def dbx(tmp_path, volume, workspace):
    """A loopback workspace: one existing cluster, a secret scope, a wheel entry point and /Workspace mapping."""
    server = LoopbackDatabricks(
        volume_root=tmp_path / "Volumes",
        clusters={CLUSTER_ID: {"spark_env_vars": {"FEEDBACK_CLUSTER": "shared"}}},
        secrets={"feedback": {"openai_api_key": SECRET}},
        wheel_entry_points={("feedback_jobs", "run"): "feedback_wheel_task"},
        path_mapping={WORKSPACE_DIR: workspace},
        extra_env={"PYTHONPATH": os.pathsep.join(filter(None, [str(workspace), os.environ.get("PYTHONPATH")]))},
    )
    with server:
        yield server


@pytest.fixture
def client(dbx) -> WorkspaceClient:
    return WorkspaceClient(host=dbx.url, token="dapi-test")


def new_cluster(**spark_env_vars: str) -> compute.ClusterSpec:
    return compute.ClusterSpec(
        spark_version=SPARK_VERSION, node_type_id="i3.xlarge", num_workers=0, spark_env_vars=spark_env_vars or None
    )


def python_task(*parameters: str) -> jobs.SparkPythonTask:
    return jobs.SparkPythonTask(python_file=f"{WORKSPACE_DIR}/pipes_task.py", parameters=list(parameters))


def uc_io(client: WorkspaceClient, volume: Path, *, stdio: bool = False) -> dict[str, Any]:
    """The UC volumes injector and a fast-polling reader, as `context_injector` / `message_reader` kwargs.

    `stdio` (the reader's default) makes the task tee its stdout/stderr into Pipes messages, which
    costs dagster-pipes about 2 s per stream at close; only one test pays for it.
    """
    reader = PipesUnityCatalogVolumesMessageReader(
        client=client, volume_path=str(volume), interval=0.1, include_stdio_in_messages=stdio
    )
    return {
        "context_injector": PipesUnityCatalogVolumesContextInjector(client=client, volume_path=str(volume)),
        "message_reader": reader,
    }


def materialize(pipes_client, task: jobs.SubmitTask, *, submit_args=None, raise_on_error: bool = True):
    """Run one asset whose body is ``pipes_client.run(...)``; returns (result, instance)."""

    @dg.asset(name=ASSET)
    def databricks_asset(context):
        invocation = pipes_client.run(context=context, task=task, extras={"day": "2026-11-27"}, submit_args=submit_args)
        return invocation.get_materialize_result()

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([databricks_asset], instance=instance, raise_on_error=raise_on_error)
    return result, instance


def materialized_metadata(result) -> dict[str, Any]:
    (materialization,) = result.asset_materializations_for_node(ASSET)
    return {key: value.value for key, value in materialization.metadata.items()}


def observed_states(instance, result) -> list[str]:
    """The life cycle transitions the Pipes client logged while polling runs/get."""
    marker = "observed state transition to RunLifeCycleState."
    return [
        entry.user_message.split(marker)[1]
        for entry in instance.all_logs(result.run_id)
        if marker in (entry.user_message or "")
    ]


def error_text(result) -> str:
    """Every message of the step failure's error chain."""
    (failure,) = result.get_step_failure_events()
    error, parts = failure.step_failure_data.error, []
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return "\n".join(parts)


def submitted(dbx: LoopbackDatabricks) -> dict[str, Any]:
    (entry,) = [e for e in dbx.requests if e["path"].endswith("/jobs/runs/submit")]
    return entry


def only_run(dbx: LoopbackDatabricks) -> dict[str, Any]:
    (run,) = dbx.runs.values()
    return run


def pid_alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for_file(path: Path, timeout: float = 60) -> str:
    """The file's content once something has been written to it."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} was never written"
        time.sleep(0.02)
    return path.read_text()


def gone(pid: int, timeout: float = 30) -> bool:
    """Whether the process is gone within `timeout` (a signalled process dies asynchronously)."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def wait_for_state(client: WorkspaceClient, run_id: int, wanted: jobs.RunLifeCycleState, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while client.jobs.get_run(run_id).state.life_cycle_state != wanted:
        assert time.monotonic() < deadline, f"run {run_id} never reached {wanted}"
        time.sleep(0.05)


def sdk_calls(dbx: LoopbackDatabricks, volume: Path) -> list[str]:
    """The request log as ``METHOD path``, the volume folded to ``{volume}``, Pipes' random temp dirs to ``<tmp>``."""
    calls = [f"{e['method']} {e['path']}".replace(str(volume), "{volume}") for e in dbx.requests]
    return [re.sub(r"\{volume\}/tmp/[A-Za-z]{30}", "{volume}/tmp/<tmp>", call) for call in calls]


# ---- 1. classic clusters through PipesDatabricksClient -------------------------------------------


def test_classic_new_cluster_pipes_run_reports_metadata_and_run_url(dbx, client, volume):
    """A `new_cluster` task runs as a local process that gets the Pipes bootstrap in spark_env_vars
    (env params loader), opens the context file and writes message chunks by path under the volume;
    its materialization metadata and the run URL reach Dagster, the client saw PENDING → RUNNING →
    TERMINATING → TERMINATED, the Pipes temp dirs are cleaned up, and every JSON answer of the
    server round-trips through the SDK's own dataclasses. The reader keeps its default
    `include_stdio_in_messages` here, so the task also tees its stdio into Pipes messages."""
    pipes_client = PipesDatabricksClient(client, poll_interval_seconds=0.2, **uc_io(client, volume, stdio=True))
    task = jobs.SubmitTask(task_key="pipes_task", new_cluster=new_cluster(), spark_python_task=python_task())

    result, instance = materialize(pipes_client, task)

    metadata = materialized_metadata(result)
    run = only_run(dbx)
    assert metadata["rows"] == 42 and metadata["params_via"] == "env" and metadata["day"] == "2026-11-27"
    assert metadata["runtime"] == "15.4"
    assert metadata["Databricks Job Run ID"] == str(run["run_id"])
    assert metadata["Databricks Job Run URL"] == f"{dbx.url}/?o=0#job/{run['job_id']}/run/{run['run_id']}"
    assert observed_states(instance, result) == ["PENDING", "RUNNING", "TERMINATING", "TERMINATED"]
    # The task's stdout is in its record; dagster-pipes 1.13.27 writes the tee'd stdio chunk *after*
    # the `closed` message, and the reader stops at `closed`, so a short task's stdout never reaches Dagster.
    assert "computed 42 rows on the cluster" in dbx.task(run["run_id"])["stdout_tail"]

    sent = submitted(dbx)["body"]["tasks"][0]
    assert set(sent["new_cluster"]["spark_env_vars"]) == {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"}
    record = dbx.task(run["run_id"])
    assert record["compute"] == "new_cluster" and record["exit_code"] == 0 and record["result_state"] == "SUCCESS"
    assert record["argv"] == [sys.executable, str(dbx.path_mapping[WORKSPACE_DIR] / "pipes_task.py")]
    assert {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES", "DATABRICKS_RUNTIME_VERSION"} <= set(record["env_keys"])
    uploads = [e for e in dbx.requests if e["method"] == "PUT" and e["path"].endswith("/context.json")]
    assert len(uploads) == 1 and json.loads(uploads[0]["data"])["asset_keys"] == [ASSET]
    assert list((volume / "tmp").iterdir()) == []  # both Pipes temp dirs deleted through the Files API

    shapes = {"/jobs/runs/get": jobs.Run, "/jobs/runs/submit": jobs.SubmitRunResponse}
    for entry in dbx.requests:
        cls = next((c for suffix, c in shapes.items() if entry["path"].endswith(suffix)), None)
        if entry["path"].startswith("/api/2.0/fs/directories") and entry["method"] == "GET":
            cls = files.ListDirectoryResponse
        if cls is not None and entry["status"] == 200:
            assert sdk_roundtrip_losses(entry["response"], cls) == [], entry["path"]


def test_classic_existing_cluster_pipes_run_passes_bootstrap_as_cli_arguments(dbx, client, volume):
    """An `existing_cluster_id` task gets the Pipes bootstrap as CLI parameters (the CLI params loader),
    runs with the registered cluster's own spark_env_vars, and its `/Workspace/...` python_file is
    resolved through the path mapping."""
    pipes_client = PipesDatabricksClient(client, poll_interval_seconds=0.2, **uc_io(client, volume))
    task = jobs.SubmitTask(task_key="pipes_task", existing_cluster_id=CLUSTER_ID,
                           spark_python_task=python_task("--mode", "ok"))

    result, _ = materialize(pipes_client, task)

    metadata = materialized_metadata(result)
    assert metadata["params_via"] == "cli" and metadata["cluster_env"] == "shared" and metadata["rows"] == 42
    record = dbx.task(only_run(dbx)["run_id"])
    assert record["compute"] == "existing_cluster" and record["cluster_id"] == CLUSTER_ID
    assert record["argv"][2:4] == ["--mode", "ok"]
    assert "--dagster-pipes-context" in record["argv"] and "--dagster-pipes-messages" in record["argv"]
    assert "DAGSTER_PIPES_CONTEXT" not in record["env_keys"] and "FEEDBACK_CLUSTER" in record["env_keys"]
    sent = submitted(dbx)["body"]["tasks"][0]
    assert "new_cluster" not in sent
    # dagster-databricks adds the Pipes invocation `tags` to the task dict, but `jobs.SubmitTask` has no
    # `tags` field, so `SubmitTask.from_dict` drops them before the request is built.
    assert "tags" not in sent

    calls = sdk_calls(dbx, volume)
    context_dir, context_file = "{volume}/tmp/<tmp>", "{volume}/tmp/<tmp>/context.json"
    assert calls[:4] == [
        f"PUT /api/2.0/fs/directories{context_dir}",  # the injector's temp dir, then the context file
        f"PUT /api/2.0/fs/files{context_file}",
        f"PUT /api/2.0/fs/directories{context_dir}",  # the message reader's temp dir
        "POST /api/2.2/jobs/runs/submit",
    ]
    assert calls[-1] == "GET /api/2.2/jobs/runs/get"  # the run URL for the metadata
    assert set(calls) == {
        f"PUT /api/2.0/fs/directories{context_dir}", f"PUT /api/2.0/fs/files{context_file}",
        "POST /api/2.2/jobs/runs/submit", "GET /api/2.2/jobs/runs/get",
        "GET /api/2.0/fs/files{volume}/tmp/<tmp>/1.json",  # 404 until the task has written the chunk
        f"GET /api/2.0/fs/directories{context_dir}",  # cleanup: list, delete files, delete the dir
        "DELETE /api/2.0/fs/files{volume}/tmp/<tmp>/1.json", f"DELETE /api/2.0/fs/files{context_file}",
        f"DELETE /api/2.0/fs/directories{context_dir}",
    }


# ---- 2. serverless through PipesDatabricksServerlessClient ---------------------------------------


@pytest.mark.parametrize("kind", ["spark_python_task", "python_wheel_task"])
def test_serverless_pipes_run_with_environment_key(dbx, client, volume, kind):
    """A serverless task names an environment of the run (`submit_args["environments"]` holds SDK
    dataclasses); it gets the bootstrap as CLI parameters, its environment's dependencies are recorded
    (not installed), and a wheel task runs its mapped module with the parameters."""
    pipes_client = PipesDatabricksServerlessClient(client, volume_path=str(volume), poll_interval_seconds=0.2,
                                                   **uc_io(client, volume))
    if kind == "spark_python_task":
        task = jobs.SubmitTask(task_key="pipes_serverless", environment_key=ENV_KEY, spark_python_task=python_task())
    else:
        task = jobs.SubmitTask(
            task_key="pipes_serverless", environment_key=ENV_KEY,
            python_wheel_task=jobs.PythonWheelTask(package_name="feedback_jobs", entry_point="run",
                                                   parameters=["--mode", "ok"]),
        )
    environment = jobs.JobEnvironment(environment_key=ENV_KEY,
                                      spec=compute.Environment(client="1", dependencies=DEPENDENCIES))

    result, instance = materialize(pipes_client, task, submit_args={"environments": [environment]})

    metadata = materialized_metadata(result)
    assert metadata["params_via"] == "cli" and metadata["runtime"] == "client.1" and metadata["rows"] == 42
    assert "Databricks Job Run URL" in metadata
    assert observed_states(instance, result) == ["PENDING", "RUNNING", "TERMINATING", "TERMINATED"]
    run = only_run(dbx)
    assert submitted(dbx)["body"]["environments"] == [environment.as_dict()]
    record = dbx.task(run["run_id"])
    assert record["compute"] == "serverless" and record["environment_key"] == ENV_KEY
    assert record["dependencies"] == DEPENDENCIES and record["libraries"] == []
    if kind == "python_wheel_task":
        assert record["argv"][:5] == [sys.executable, "-m", "feedback_wheel_task", "--mode", "ok"]
    assert "--dagster-pipes-context" in record["argv"]


# ---- 3. a failing task ----------------------------------------------------------------------------


def test_failing_task_fails_the_step_with_the_tasks_message(dbx, client, volume):
    """A task raising ``RuntimeError("boom on the cluster")`` ends TERMINATED / FAILED with the last
    exception line as state_message, and the Dagster step fails with that text."""
    pipes_client = PipesDatabricksClient(client, poll_interval_seconds=0.2, **uc_io(client, volume))
    task = jobs.SubmitTask(task_key="pipes_task", new_cluster=new_cluster(),
                           spark_python_task=python_task("--mode", "fail"))

    result, _ = materialize(pipes_client, task, raise_on_error=False)

    assert not result.success
    text = error_text(result)
    assert "Error running Databricks job" in text and "RuntimeError: boom on the cluster" in text
    run = only_run(dbx)
    assert run["result_state"] == "FAILED"
    assert run["state_message"] == "Task pipes_task failed with message: RuntimeError: boom on the cluster"
    record = dbx.task(run["run_id"])
    assert record["exit_code"] == 1 and "Traceback" in record["stderr_tail"]


# ---- 4. cancellation ------------------------------------------------------------------------------


def test_cancel_run_kills_the_task_process_group(dbx, client, workspace, tmp_path):
    """`jobs.cancel_run` on a running task kills its process group (the task and its child); the SDK
    waiter sees TERMINATING, then TERMINATED with result CANCELED."""
    child_pid_file = tmp_path / "child.pid"
    waiter = client.jobs.submit(run_name="sleepy", tasks=[sleeper_task("sleeper", child_pid_file)])
    run_id = waiter.run_id
    pid = dbx.wait_until_started(run_id)["pid"]
    wait_for_state(client, run_id, jobs.RunLifeCycleState.RUNNING)
    child_pid = int(wait_for_file(child_pid_file))
    assert pid_alive(pid) and pid_alive(child_pid)

    seen: list[str] = []
    final = client.jobs.cancel_run(run_id).result(timeout=timedelta(seconds=120),
                                                  callback=lambda run: seen.append(run.state.life_cycle_state.value))

    assert final.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED
    assert final.state.result_state == jobs.RunResultState.CANCELED and final.state.user_cancelled_or_timedout
    assert "TERMINATING" in seen
    assert not pid_alive(pid) and gone(child_pid)  # the task was reaped before TERMINATED; its child is killed too
    assert dbx.task(run_id)["result_state"] == "CANCELED"
    cancels = [e for e in dbx.requests if e["path"] == "/api/2.2/jobs/runs/cancel"]
    assert [e["body"] for e in cancels] == [{"run_id": run_id}]


def test_dagster_interruption_forwards_runs_cancel(dbx, client, volume, tmp_path, monkeypatch):
    """When the Dagster step is interrupted while polling (DagsterExecutionInterruptedError raised where
    the SIGINT handler would raise it), the client calls runs/cancel, waits for TERMINATING and the
    loopback has killed the task."""
    # The killed task never sends Pipes' closed message; do not wait Dagster's 10 s for late chunks.
    monkeypatch.setattr(dagster_pipes_utils, "WAIT_FOR_LOGS_AFTER_EXECUTION_INTERVAL", 0)

    child_pid_file = tmp_path / "c.pid"

    class InterruptedWhilePolling(PipesDatabricksClient):
        def _poll_til_success(self, context, run_id):
            dbx.wait_until_started(run_id)
            wait_for_file(child_pid_file)
            raise DagsterExecutionInterruptedError()

    pipes_client = InterruptedWhilePolling(client, poll_interval_seconds=0.2, **uc_io(client, volume))
    task = jobs.SubmitTask(task_key="pipes_task", new_cluster=new_cluster(),
                           spark_python_task=python_task("--mode", "sleep", "--child-pid-file", str(child_pid_file)))

    # The step's own outcome is dagster-databricks' business: 1.13.27's single-task `run` swallows the
    # interruption after cancelling, so the step even succeeds (with no metadata from the killed task).
    materialize(pipes_client, task, raise_on_error=False)

    run = dbx.wait_for_run(only_run(dbx)["run_id"])
    assert run["cancel_requested"] and run["result_state"] == "CANCELED"
    assert [e["body"] for e in dbx.requests if e["path"].endswith("/jobs/runs/cancel")] == [{"run_id": run["run_id"]}]
    assert not pid_alive(dbx.task(run["run_id"])["pid"])
    assert gone(int(child_pid_file.read_text()))


def sleeper_task(task_key: str, pid_file: Path, **fields: Any) -> jobs.SubmitTask:
    return jobs.SubmitTask(
        task_key=task_key, new_cluster=new_cluster(),
        spark_python_task=jobs.SparkPythonTask(python_file=f"{WORKSPACE_DIR}/sleeper.py", parameters=[str(pid_file)]),
        **fields,
    )


def test_closing_the_server_kills_every_task_process(dbx, client, tmp_path):
    """Shutting the server down kills running tasks and the children they started."""
    pid_file = tmp_path / "child.pid"
    run_id = client.jobs.submit(tasks=[sleeper_task("sleeper", pid_file)]).run_id
    pid = dbx.wait_until_started(run_id)["pid"]
    child_pid = int(wait_for_file(pid_file))

    dbx.close()

    assert gone(pid) and gone(child_pid)


def test_task_timeout_and_upstream_failure(dbx, client, tmp_path):
    """A task over its timeout_seconds is killed (TIMEDOUT); a task whose upstream failed does not run
    (UPSTREAM_FAILED) and the run is FAILED naming the failed task."""
    timed = client.jobs.submit(tasks=[sleeper_task("sleeper", tmp_path / "a.pid", timeout_seconds=1)]).run_id
    failing = jobs.SubmitTask(task_key="first", new_cluster=new_cluster(),
                              spark_python_task=python_task("--mode", "fail"))
    after = jobs.SubmitTask(task_key="second", new_cluster=new_cluster(), spark_python_task=python_task(),
                            depends_on=[jobs.TaskDependency(task_key="first")])
    chained = client.jobs.submit(tasks=[failing, after]).run_id

    assert dbx.wait_for_run(timed)["result_state"] == "TIMEDOUT"
    run = dbx.wait_for_run(chained)
    assert run["result_state"] == "FAILED"
    assert run["state_message"] == "Task first failed with message: RuntimeError: boom on the cluster"
    assert run["tasks"]["second"]["result_state"] == "UPSTREAM_FAILED" and run["tasks"]["second"]["argv"] is None
    wait_for_state(client, chained, jobs.RunLifeCycleState.TERMINATED)
    reported = {task.task_key: task.state.result_state for task in client.jobs.get_run(chained).tasks}
    assert reported == {"first": jobs.RunResultState.FAILED, "second": jobs.RunResultState.UPSTREAM_FAILED}


# ---- 5. contract details --------------------------------------------------------------------------


def test_missing_file_is_404_not_found_and_a_chunk_not_yet_written(dbx, client, volume):
    """Downloading a file that does not exist raises the SDK's NotFound with error_code NOT_FOUND, which
    the Pipes message reader treats as "chunk not written yet"; once the task writes the chunk by local
    path, the reader downloads it."""
    api = files.FilesAPI(client.api_client)
    with pytest.raises(NotFound) as missing:
        api.download(f"{volume}/nothing/here.json")
    assert missing.value.error_code == "NOT_FOUND"
    assert dbx.requests[-1]["status"] == 404 and dbx.requests[-1]["response"]["error_code"] == "NOT_FOUND"

    reader = PipesUnityCatalogVolumesMessageReader(client=client, volume_path=str(volume))
    chunks = volume / "chunks"
    api.create_directory(str(chunks))
    assert reader.messages_are_readable({"path": str(chunks)})
    assert reader.download_messages_chunk(1, {"path": str(chunks)}) is None
    (chunks / "1.json").write_text('{"__dagster_pipes_version": "0.1", "method": "opened", "params": {}}')
    assert "opened" in reader.download_messages_chunk(1, {"path": str(chunks)})


def test_files_api_upload_download_list_delete_within_the_volume_root(dbx, client, volume, tmp_path):
    """Files map 1:1 onto the local file system below the volume root: upload (overwrite honoured),
    HEAD metadata, listing with paging, delete rules; paths outside the root answer 403."""
    api = files.FilesAPI(client.api_client)
    folder = volume / "listing"
    api.create_directory(str(folder / "sub"))
    for index in range(5):
        api.upload(f"{folder}/f{index}.txt", io.BytesIO(f"payload {index}".encode()), overwrite=True)
    assert (folder / "f3.txt").read_text() == "payload 3"
    with pytest.raises(AlreadyExists):
        api.upload(f"{folder}/f3.txt", io.BytesIO(b"other"), overwrite=False)
    assert api.get_metadata(f"{folder}/f3.txt").content_length == len("payload 3")
    assert api.download(f"{folder}/f3.txt").contents.read() == b"payload 3"

    dbx.clear_requests()
    entries = list(api.list_directory_contents(str(folder), page_size=2))
    assert [e.name for e in entries] == ["f0.txt", "f1.txt", "f2.txt", "f3.txt", "f4.txt", "sub"]
    assert [e.is_directory for e in entries] == [False] * 5 + [True]
    assert entries[0].file_size == len("payload 0") and entries[0].path == f"{folder}/f0.txt"
    pages = [e for e in dbx.requests if e["method"] == "GET"]
    assert len(pages) == 3 and "page_token" not in pages[0]["query"] and "page_token" in pages[1]["query"]

    with pytest.raises(ResourceConflict):
        api.delete_directory(str(folder))
    api.delete(f"{folder}/f0.txt")
    assert not (folder / "f0.txt").exists()
    with pytest.raises(NotFound):
        api.delete(f"{folder}/f0.txt")
    outside = tmp_path / "workspace" / "pipes_task.py"
    with pytest.raises(PermissionDenied):
        api.download(str(outside))
    with pytest.raises(PermissionDenied):
        api.upload(f"{volume}/../../../../escape.txt", io.BytesIO(b"x"))
    assert not (tmp_path / "escape.txt").exists()


def test_requests_without_the_token_answer_401_json(dbx, volume):
    """No bearer token, or the wrong one, answers 401 with a JSON error_code; the SDK raises Unauthenticated."""
    request = urllib.request.Request(f"{dbx.url}/api/2.2/jobs/runs/get?run_id=1")
    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(request, timeout=30)
    assert raw.value.code == 401 and json.loads(raw.value.read())["error_code"] == "UNAUTHENTICATED"

    wrong = WorkspaceClient(host=dbx.url, token="dapi-wrong")
    with pytest.raises(Unauthenticated):
        files.FilesAPI(wrong.api_client).list_directory_contents(str(volume)).__next__()
    assert dbx.requests[-1]["headers"]["authorization"] == "***"


def _cluster_task(**fields: Any) -> jobs.SubmitTask:
    defaults = {"task_key": "t", "new_cluster": new_cluster(), "spark_python_task": python_task()}
    return jobs.SubmitTask(**(defaults | fields))


MALFORMED: dict[str, tuple[dict[str, Any], str]] = {
    "no task_key": ({"tasks": [_cluster_task(task_key=None).as_dict()]}, "task_key"),
    "no task type": ({"tasks": [_cluster_task(spark_python_task=None).as_dict()]},
                     "spark_python_task or python_wheel_task"),
    "notebook task": ({"tasks": [_cluster_task(spark_python_task=None,
                                               notebook_task=jobs.NotebookTask(notebook_path="/x")).as_dict()]},
                      "notebook_task"),
    "no compute": ({"tasks": [_cluster_task(new_cluster=None).as_dict()]},
                   "new_cluster, existing_cluster_id or environment_key"),
    "two computes": ({"tasks": [_cluster_task(existing_cluster_id=CLUSTER_ID).as_dict()]}, "only one of"),
    "unknown environment": ({"tasks": [_cluster_task(new_cluster=None, environment_key="nope").as_dict()],
                             "environments": [{"environment_key": ENV_KEY, "spec": {"client": "1"}}]},
                            "names no environment"),
    "unknown cluster": ({"tasks": [_cluster_task(new_cluster=None, existing_cluster_id="0000-nope").as_dict()]},
                        "Cluster 0000-nope does not exist"),
    "unknown task field": ({"tasks": [_cluster_task().as_dict() | {"sparkk_env_vars": {"A": "1"}}]}, "sparkk_env_vars"),
    "unknown enum value": ({"tasks": [_cluster_task().as_dict() | {"run_if": "SOMETIMES"}]}, "run_if"),
    "environment without spec": ({"tasks": [_cluster_task(new_cluster=None, environment_key=ENV_KEY).as_dict()],
                                  "environments": [{"environment_key": ENV_KEY}]}, "spec.client"),
    "unknown top-level field": ({"tasks": [_cluster_task().as_dict()], "cluster": "x"}, "cluster"),
    "dangling depends_on": ({"tasks": [_cluster_task(depends_on=[jobs.TaskDependency(task_key="ghost")]).as_dict()]},
                            "ghost"),
    "no tasks": ({"run_name": "empty"}, "At least one task"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_submit_is_refused_with_400(dbx, client, case):
    """A malformed runs/submit answers 400 INVALID_PARAMETER_VALUE naming the problem (the SDK raises
    InvalidParameterValue) and starts no run."""
    body, fragment = MALFORMED[case]
    with pytest.raises(InvalidParameterValue) as refused:
        client.api_client.do("POST", "/api/2.2/jobs/runs/submit", body=body,
                             headers={"Accept": "application/json", "Content-Type": "application/json"})
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE" and fragment in str(refused.value)
    assert dbx.runs == {}


def test_sdk_submit_without_task_key_is_refused(dbx, client):
    """The same refusal reaches a caller of the typed SDK method `jobs.submit`."""
    with pytest.raises(InvalidParameterValue, match="task_key"):
        client.jobs.submit(tasks=[_cluster_task(task_key=None)])


@pytest.mark.parametrize("status", [503, 429])
def test_sdk_retries_through_injected_faults(dbx, client, volume, status):
    """Injected 503 / 429 answers with Retry-After on runs/get and fs/files are retried by the SDK,
    which then gets the real answer."""
    run_id = client.jobs.submit(tasks=[_cluster_task()]).run_id
    dbx.add_fault("runs/get", status, times=2, retry_after=0)
    dbx.add_fault("fs/files", status, times=1, retry_after=0, method="PUT")

    assert client.jobs.get_run(run_id).run_id == run_id
    files.FilesAPI(client.api_client).upload(f"{volume}/retried.txt", io.BytesIO(b"ok"), overwrite=True)

    gets = [e for e in dbx.requests if e["path"].endswith("/jobs/runs/get")]
    assert [e["status"] for e in gets] == [status, status, 200]
    assert gets[0]["response"]["error_code"] in ("TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED")
    assert [e["status"] for e in dbx.requests if e["path"].endswith("/retried.txt")] == [status, 204]
    assert (volume / "retried.txt").read_bytes() == b"ok"
    dbx.wait_for_run(run_id)


def test_sdk_waiter_submit_and_wait(tmp_path, workspace):
    """The SDK's own long-running-operation waiter (`jobs.submit_and_wait`) drives a run to
    TERMINATED / SUCCESS; with ``stepwise_states=False`` the second poll already sees the end."""
    (workspace / "hello.py").write_text("import sys\nprint('hello from the cluster', sys.argv[1:])\n")
    with LoopbackDatabricks(volume_root=tmp_path, stepwise_states=False, path_mapping={WORKSPACE_DIR: workspace}) as fast:
        client = WorkspaceClient(host=fast.url, token="dapi-test")
        task = jobs.SubmitTask(task_key="hello", new_cluster=new_cluster(),
                               spark_python_task=jobs.SparkPythonTask(python_file=f"{WORKSPACE_DIR}/hello.py",
                                                                      parameters=["x"]))
        run = client.jobs.submit_and_wait(run_name="hello", tasks=[task], timeout=timedelta(seconds=120))

        assert run.state.result_state == jobs.RunResultState.SUCCESS and run.run_name == "hello"
        (task_run,) = run.tasks
        assert task_run.state.result_state == jobs.RunResultState.SUCCESS and task_run.task_key == "hello"
        assert "hello from the cluster ['x']" in client.jobs.get_run_output(task_run.run_id).logs


def test_clusters_get_and_run_output(dbx, client):
    """clusters/get answers registered clusters (RUNNING) and maps an unknown id to the SDK's
    ResourceDoesNotExist; runs/get-output answers a task run and refuses the multi-task parent."""
    cluster = client.clusters.get(CLUSTER_ID)
    assert cluster.state == compute.State.RUNNING and cluster.spark_env_vars == {"FEEDBACK_CLUSTER": "shared"}
    with pytest.raises(ResourceDoesNotExist):
        client.clusters.get("0000-nope")

    run_id = client.jobs.submit(tasks=[_cluster_task(spark_python_task=jobs.SparkPythonTask(
        python_file=f"{WORKSPACE_DIR}/pipes_task.py", parameters=["--mode", "fail"]))]).run_id
    dbx.wait_for_run(run_id)
    with pytest.raises(InvalidParameterValue, match="multiple tasks"):
        client.jobs.get_run_output(run_id)
    task_run_id = dbx.task(run_id)["run_id"]
    output = client.jobs.get_run_output(task_run_id)
    assert output.error == "RuntimeError: boom on the cluster" and "Traceback" in output.error_trace
    with pytest.raises(ResourceDoesNotExist):
        client.jobs.get_run(999999)


# ---- 6. secrets -----------------------------------------------------------------------------------


def test_secret_reference_reaches_the_process_and_never_a_payload(dbx, client, volume):
    """``{{secrets/feedback/openai_api_key}}`` in spark_env_vars (via the client's `env`) reaches the
    task process as the secret's value, while no request or response of the log, and no run record,
    ever contains the value."""
    pipes_client = PipesDatabricksClient(client, env={"OPENAI_API_KEY": SECRET_REF}, poll_interval_seconds=0.2,
                                         **uc_io(client, volume))
    task = jobs.SubmitTask(task_key="pipes_task", new_cluster=new_cluster(FEEDBACK_CLUSTER="classic"),
                           spark_python_task=python_task())

    result, _ = materialize(pipes_client, task)

    metadata = materialized_metadata(result)
    assert metadata["secret_sha256"] == hashlib.sha256(SECRET.encode()).hexdigest()
    assert metadata["cluster_env"] == "classic"
    sent = submitted(dbx)["body"]["tasks"][0]["new_cluster"]["spark_env_vars"]
    assert sent["OPENAI_API_KEY"] == SECRET_REF
    assert dbx.task(only_run(dbx)["run_id"])["secret_refs"] == ["feedback/openai_api_key"]
    for record in dbx.requests:
        for name in ("body", "data", "headers", "query", "response"):
            assert SECRET not in json.dumps(record[name]), (record["method"], record["path"], name)
    assert SECRET not in json.dumps(dbx.runs)


def test_unknown_secret_fails_the_launch_with_a_clear_message(dbx, client):
    """A reference to a secret the scope does not hold fails the run before any process starts:
    INTERNAL_ERROR / FAILED naming scope and key."""
    cluster = new_cluster(OPENAI_API_KEY="{{secrets/feedback/nope}}")
    run_id = client.jobs.submit(tasks=[_cluster_task(new_cluster=cluster)]).run_id
    dbx.wait_for_run(run_id)

    wait_for_state(client, run_id, jobs.RunLifeCycleState.INTERNAL_ERROR)
    state = client.jobs.get_run(run_id).state
    assert state.result_state == jobs.RunResultState.FAILED
    assert "Secret does not exist with scope: feedback and key: nope" in state.state_message
    assert dbx.task(run_id)["pid"] is None
