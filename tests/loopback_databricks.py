"""A loopback Databricks workspace for the real `databricks-sdk` and dagster-databricks' Pipes clients.

    with LoopbackDatabricks(volume_root=tmp_path, clusters={"0101-loop": {}}) as dbx:
        client = WorkspaceClient(host=dbx.url, token=dbx.token)

It speaks what `PipesDatabricksClient` (classic clusters) and `PipesDatabricksServerlessClient` call
through databricks-sdk 0.60 with the Unity Catalog volumes context injector / message reader
(all behind ``Authorization: Bearer <token>``, 401 JSON otherwise; errors are Databricks' JSON
``{"error_code", "message"}``):

- Jobs API 2.2 (the SDK's paths; 2.1 is served too): ``POST jobs/runs/submit`` validates the payload
  (every task and every known top-level field round-trips through the SDK's own dataclasses,
  ``jobs.SubmitTask``, ``jobs.JobEnvironment``…; task keys, one runnable task type, one compute:
  ``new_cluster`` / a registered ``existing_cluster_id`` / an ``environment_key`` naming an
  environment, ``depends_on``) and answers 400 ``INVALID_PARAMETER_VALUE`` otherwise;
  ``GET jobs/runs/get`` reports PENDING → RUNNING → TERMINATING → TERMINATED (the first
  `pending_polls` polls always answer PENDING; then each poll moves the reported state one step
  toward the real one, or straight to it with ``stepwise_states=False`` — the SDK's own waiter
  backs off 1 s, 2 s, 3 s… between polls) with ``result_state``, ``state_message`` (a failure
  carries the last exception line of the task's stderr), ``run_page_url`` and ``tasks``;
  ``POST jobs/runs/cancel`` kills the task's process group (TERMINATING, then TERMINATED /
  CANCELED); ``GET jobs/runs/get-output`` for a task run (the parent run answers 400, as Databricks
  does for multi-task runs).
- ``GET /api/2.1/clusters/get``: the registered clusters (state RUNNING unless registered otherwise);
  an unknown id answers 400 ``INVALID_PARAMETER_VALUE`` "Cluster … does not exist" (the SDK maps it
  to ``ResourceDoesNotExist``).
- Files API on Unity Catalog volumes, mapped 1:1 onto the local file system below `volume_root`
  (anything else answers 403 ``PERMISSION_DENIED``): ``/api/2.0/fs/files{path}`` PUT (``overwrite``),
  GET (``Range`` honoured), HEAD, DELETE; ``/api/2.0/fs/directories{path}`` PUT (``mkdir -p``), GET
  (``contents`` sorted by name, ``page_size`` / ``page_token`` paging), HEAD, DELETE (empty only). A
  missing file answers 404 ``NOT_FOUND`` (the Pipes message reader's "chunk not written yet").
  Because paths are local paths, a task process opens the context file and writes message chunks
  directly, as a cluster does through the /Volumes FUSE mount.

"The cluster": each task of a submitted run is a local subprocess (own process group) of `python`:
``spark_python_task`` runs ``[python, python_file, *parameters]`` (`path_mapping` maps prefixes such
as ``/Workspace/...`` to local directories), ``python_wheel_task`` runs ``[python, -m, module,
*parameters]`` (or calls ``module:function``) from `wheel_entry_points`
``{(package_name, entry_point): module}``; ``named_parameters`` become ``--name=value``. The
environment is ``os.environ`` + `extra_env` + (classic) the cluster's ``spark_env_vars``, where a
value ``{{secrets/<scope>/<key>}}`` is resolved from `secrets` (an unknown secret fails the launch:
INTERNAL_ERROR with a clear message). ``libraries`` and environment ``dependencies`` are recorded,
not installed. ``timeout_seconds`` (task or run) kills the task (TIMEDOUT).

Test controls: `requests` (every request: method, path, query, headers with the token redacted, JSON
body, raw non-JSON body text as ``data``, status, JSON response), `runs` / `run` / `task` (argv, env
keys, exit code, stdout/stderr tails, pid), `wait_for_run`, `wait_until_started`, `add_cluster`,
`put_secret`, `add_fault` (the next N calls of a route answer 503 / 429 with ``Retry-After``, or
another status). `close` kills every task process.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote

from databricks.sdk.service import compute, jobs

from tests.loopback_http import (
    REDACTED_HEADERS,
    Drop,
    LoopbackServer,
    QuietHTTPServer,
    Reply,
    Request,
    _Handler,
)

DEFAULT_TOKEN = "dapi-test"
DEFAULT_USER = "loopback@example.com"
DEFAULT_SPARK_VERSION = "15.4.x-scala2.12"
ROUTES = frozenset({
    "runs/submit", "runs/get", "runs/get-output", "runs/cancel", "clusters/get", "fs/files", "fs/directories",
})
FAULT_ERROR_CODES = {429: "REQUEST_LIMIT_EXCEEDED", 500: "INTERNAL_ERROR", 502: "BAD_GATEWAY",
                     503: "TEMPORARILY_UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
RUNNABLE_TASK_TYPES = ("spark_python_task", "python_wheel_task")
OTHER_TASK_TYPES = (
    "notebook_task", "spark_jar_task", "spark_submit_task", "pipeline_task", "sql_task", "dbt_task",
    "run_job_task", "condition_task", "for_each_task", "clean_rooms_notebook_task", "dashboard_task",
    "dbt_cloud_task", "dbt_platform_task", "gen_ai_compute_task", "power_bi_task",
)
STAGES = ("PENDING", "RUNNING", "TERMINATING", "TERMINATED")
TAIL_CHARS = 8000
MULTI_TASK_OUTPUT = ("Retrieving the output of runs with multiple tasks is not supported. "
                     "Please retrieve the output of each individual task run instead.")

_JOBS = re.compile(r"^/api/2\.[12]/jobs/(?P<op>runs/submit|runs/get|runs/get-output|runs/cancel)$")
_CLUSTERS = re.compile(r"^/api/2\.[01]/clusters/get$")
_FS = re.compile(r"^/api/2\.0/fs/(?P<kind>files|directories)(?P<path>/.*)$")
_SECRET_REF = re.compile(r"^\{\{secrets/(?P<scope>[^/{}]+)/(?P<key>[^/{}]+)\}\}$")
_TASK_KEY = re.compile(r"^[\w\-.]{1,100}$")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b.*")

# Top-level fields of `JobsAPI.submit` and the SDK dataclass each one round-trips through
# (None: a scalar, type-checked below). Taken from the SDK's own signature so a new SDK field
# shows up as an unknown field here rather than passing silently.
SUBMIT_FIELDS: dict[str, tuple[type | None, bool]] = {
    "access_control_list": (jobs.JobAccessControlRequest, True),
    "budget_policy_id": (None, False),
    "email_notifications": (jobs.JobEmailNotifications, False),
    "environments": (jobs.JobEnvironment, True),
    "git_source": (jobs.GitSource, False),
    "health": (jobs.JobsHealthRules, False),
    "idempotency_token": (None, False),
    "notification_settings": (jobs.JobNotificationSettings, False),
    "queue": (jobs.QueueSettings, False),
    "run_as": (jobs.JobRunAs, False),
    "run_name": (None, False),
    "tasks": (jobs.SubmitTask, True),
    "timeout_seconds": (None, False),
    "webhook_notifications": (jobs.WebhookNotifications, False),
}
_SDK_SUBMIT_FIELDS = set(inspect.signature(jobs.JobsAPI.submit).parameters) - {"self"}
assert _SDK_SUBMIT_FIELDS == set(SUBMIT_FIELDS), sorted(_SDK_SUBMIT_FIELDS ^ set(SUBMIT_FIELDS))
# A task as runs/get echoes it: the submitted spec minus what `jobs.RunTask` has no field for (``health``).
RUN_TASK_FIELDS = frozenset(f.name for f in dataclasses.fields(jobs.RunTask))


# ---- helpers ------------------------------------------------------------------------------------


def _error(code: str, message: str) -> dict[str, str]:
    return {"error_code": code, "message": message}


def _invalid(message: str) -> Reply:
    return Reply(400, _error("INVALID_PARAMETER_VALUE", message))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _pruned(value: Any) -> Any:
    """The value without None members and empty containers (what the SDK's `as_dict` leaves out)."""
    if isinstance(value, dict):
        out = {k: _pruned(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v not in ({}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _diff(original: Any, rebuilt: Any, where: str) -> list[str]:
    if isinstance(original, dict):
        if not isinstance(rebuilt, dict):
            return [where or "."]
        lost: list[str] = []
        for key, value in original.items():
            inner = f"{where}.{key}" if where else key
            lost += [inner] if key not in rebuilt else _diff(value, rebuilt[key], inner)
        return lost
    if isinstance(original, list):
        if not isinstance(rebuilt, list) or len(rebuilt) != len(original):
            return [where]
        return [lost for i, (a, b) in enumerate(zip(original, rebuilt)) for lost in _diff(a, b, f"{where}[{i}]")]
    return [] if original == rebuilt and type(original) is type(rebuilt) else [where]


def sdk_roundtrip_losses(data: Any, cls: type) -> list[str]:
    """The field paths of `data` that do not survive ``cls.from_dict(data).as_dict()``.

    Unknown fields, unknown enum values and wrongly nested shapes get lost in the SDK's round trip,
    so an empty answer means the SDK understands every field of `data`.
    """
    if not isinstance(data, dict):
        return ["."]
    try:
        rebuilt = cls.from_dict(data).as_dict()
    except Exception as exc:  # a wrong shape (a string where an object belongs…)
        return [f". ({type(exc).__name__}: {exc})"]
    return _diff(_pruned(data), _pruned(rebuilt), "")


def _tail(path: Path, limit: int = TAIL_CHARS) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit * 4))
            return handle.read().decode("utf-8", "replace")[-limit:]
    except OSError:
        return ""


def _failure_line(stderr: str, exit_code: int | None) -> str:
    """The task's last exception line (``RuntimeError: boom``), else its last stderr line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line):
            return line
    if lines:
        return lines[-1]
    return f"Process exited with code {exit_code}"


def _group_members(pgid: int) -> list[int]:
    """Live processes of the process group (Linux /proc; empty where there is none)."""
    members = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:  # state, ppid, pgrp
            members.append(int(entry.name))
    return members


def _kill_stragglers(pgid: int) -> None:
    """SIGKILL what is left of a task's process group after its leader exited (children it left behind).

    Only members actually found in the group are signalled: a group id is not reused while it has
    members, so they are the task's own descendants.
    """
    if _group_members(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _runtime_version(spark_version: str | None) -> str:
    match = re.match(r"^(\d+\.\d+)", spark_version or "")
    return match[1] if match else "15.4"


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


# ---- HTTP plumbing: HEAD / DELETE, chunked uploads, raw byte answers --------------------------


class _DatabricksHandler(_Handler):
    def do_HEAD(self) -> None:
        self.server.owner._dispatch(self)

    def do_DELETE(self) -> None:
        self.server.owner._dispatch(self)

    def do_PATCH(self) -> None:
        self.server.owner._dispatch(self)

    def read_body(self) -> bytes:
        if "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
            return super().read_body()
        chunks = []
        while True:
            size = int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(65537)

    def send_payload(self, status: int, body: Any, headers: Mapping[str, str]) -> None:
        """Send JSON, raw bytes (`body` is bytes) or nothing; HEAD answers carry headers only."""
        if isinstance(body, bytes | bytearray):
            payload, content_type = bytes(body), "application/octet-stream"
        elif body is None:
            payload, content_type = b"", None
        else:
            payload, content_type = json.dumps(body).encode(), "application/json"
        names = {name.lower() for name in headers}
        try:
            self.send_response(status)
            if content_type and "content-type" not in names:
                self.send_header("Content-Type", content_type)
            if status not in (204, 304) and "content-length" not in names:
                self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD" and status not in (204, 304):
                self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True


# ---- runs ---------------------------------------------------------------------------------------


@dataclass
class _Fault:
    route: str
    status: int
    remaining: int
    retry_after: int | None
    method: str | None


@dataclass
class _TaskRun:
    task_key: str
    run_id: int
    spec: dict[str, Any]
    kind: str
    compute: str
    cluster_id: str | None
    environment_key: str | None
    environment_spec: dict[str, Any]
    libraries: list[Any]
    dependencies: list[str]
    depends_on: list[str]
    timeout_seconds: int | None
    argv: list[str] | None = None
    env_keys: list[str] = field(default_factory=list)
    secret_refs: list[str] = field(default_factory=list)
    pid: int | None = None
    process: subprocess.Popen | None = None
    exit_code: int | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    result: str | None = None
    state_message: str = ""
    launch_error: bool = False
    start_ms: int | None = None
    end_ms: int | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def actual_stage(self, cancelling: bool) -> str:
        if self.done.is_set():
            return "TERMINATED"
        if self.pid is None:
            return "PENDING"
        return "TERMINATING" if cancelling else "RUNNING"

    def snapshot(self) -> dict[str, Any]:
        alive = self.process is not None and self.process.poll() is None
        return {
            "task_key": self.task_key, "run_id": self.run_id, "kind": self.kind, "compute": self.compute,
            "cluster_id": self.cluster_id, "environment_key": self.environment_key,
            "libraries": copy.deepcopy(self.libraries), "dependencies": list(self.dependencies),
            "argv": list(self.argv) if self.argv is not None else None, "env_keys": list(self.env_keys),
            "secret_refs": list(self.secret_refs), "pid": self.pid, "alive": alive, "exit_code": self.exit_code,
            "stdout_tail": self.stdout_tail, "stderr_tail": self.stderr_tail, "result_state": self.result,
            "state_message": self.state_message, "spec": copy.deepcopy(self.spec),
        }


@dataclass
class _Run:
    run_id: int
    job_id: int
    run_name: str
    body: dict[str, Any]
    tasks: dict[str, _TaskRun]
    timeout_seconds: int | None
    submit_ms: int
    cancel_requested: bool = False
    timed_out: bool = False
    polls: int = 0
    reported: str = "PENDING"
    end_ms: int | None = None
    thread: threading.Thread | None = None

    @property
    def done(self) -> bool:
        return all(task.done.is_set() for task in self.tasks.values())

    def outcome(self) -> tuple[str, str, str]:
        """(life cycle state, result state, state message) of a finished run."""
        tasks = list(self.tasks.values())
        launch = next((t for t in tasks if t.launch_error), None)
        if launch is not None:
            return "INTERNAL_ERROR", "FAILED", launch.state_message
        if self.cancel_requested:
            return "TERMINATED", "CANCELED", "Run cancelled."
        if self.timed_out or any(t.result == "TIMEDOUT" for t in tasks):
            return "TERMINATED", "TIMEDOUT", "Run timed out."
        failed = next((t for t in tasks if t.result == "FAILED"), None)
        if failed is not None:
            return "TERMINATED", "FAILED", f"Task {failed.task_key} failed with message: {failed.state_message}"
        if all(t.result == "SUCCESS" for t in tasks):
            return "TERMINATED", "SUCCESS", ""
        return "TERMINATED", "FAILED", "One or more tasks did not succeed."

    def actual_stage(self) -> str:
        if self.done:
            return self.outcome()[0]
        if self.cancel_requested:
            return "TERMINATING"
        return "RUNNING" if any(t.pid is not None or t.done.is_set() for t in self.tasks.values()) else "PENDING"


_TERMINATION = {
    "SUCCESS": ("SUCCESS", "SUCCESS"),
    "FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "CANCELED": ("CANCELED", "SUCCESS"),
    "TIMEDOUT": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "UPSTREAM_FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "UPSTREAM_CANCELED": ("CANCELED", "SUCCESS"),
}


class LoopbackDatabricks(LoopbackServer):
    """Loopback Databricks workspace: Jobs runs as local processes, clusters, UC volume files, faults, a request log."""

    thread_name = "loopback-databricks"

    def __init__(
        self,
        *,
        volume_root: str | os.PathLike[str],
        token: str = DEFAULT_TOKEN,
        clusters: Mapping[str, Mapping[str, Any]] | Iterable[str] = (),
        secrets: Mapping[str, Mapping[str, str]] | None = None,
        wheel_entry_points: Mapping[tuple[str, str], str] | None = None,
        path_mapping: Mapping[str, str | os.PathLike[str]] | None = None,
        extra_env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        workdir: str | os.PathLike[str] | None = None,
        pending_polls: int = 1,
        stepwise_states: bool = True,
        kill_grace_seconds: float = 3.0,
        user: str = DEFAULT_USER,
    ) -> None:
        super().__init__()
        self.volume_root = Path(os.path.realpath(volume_root))
        if not self.volume_root.is_dir():
            raise ValueError(f"volume_root {self.volume_root} is not a directory")
        self.token, self.user, self.python = token, user, python
        self.secrets: dict[str, dict[str, str]] = {s: dict(keys) for s, keys in (secrets or {}).items()}
        self.wheel_entry_points = dict(wheel_entry_points or {})
        self.path_mapping = {prefix: Path(local) for prefix, local in (path_mapping or {}).items()}
        self.extra_env = dict(extra_env or {})
        self.workdir = None if workdir is None else Path(workdir)
        self.pending_polls = pending_polls
        self.stepwise_states = stepwise_states
        self.kill_grace_seconds = kill_grace_seconds
        self._clusters: dict[str, dict[str, Any]] = {}
        for cluster_id in clusters:
            self.add_cluster(cluster_id, **(dict(clusters[cluster_id]) if isinstance(clusters, Mapping) else {}))
        self._runs: dict[int, _Run] = {}
        self._task_runs: dict[int, tuple[_Run, _TaskRun]] = {}
        self._idempotency: dict[str, int] = {}
        self._faults: deque[_Fault] = deque()
        self._next_id = 1000
        self._next_job = 700000
        self._closing = False
        self._scratch: Path | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Serve on a free 127.0.0.1 port (HEAD and DELETE included) in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        self._scratch = Path(tempfile.mkdtemp(prefix="loopback-databricks-"))
        self._closing = False
        self._httpd = QuietHTTPServer(self, _DatabricksHandler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Kill every task process (its whole process group), stop serving, drop the scratch logs."""
        with self._lock:
            self._closing = True
            tasks = [task for _, task in self._task_runs.values()]
        for task in tasks:
            self._kill(task, grace=0.5)
        for run in list(self._runs.values()):
            if run.thread is not None:
                run.thread.join(timeout=10)
        super().close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    # ---- test controls ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The workspace URL to give `WorkspaceClient(host=...)`."""
        return self.origin

    def add_cluster(self, cluster_id: str, **spec: Any) -> dict[str, Any]:
        """Register an existing (RUNNING unless `state` says otherwise) cluster; `spec` holds
        ``compute.ClusterDetails`` fields (``spark_env_vars`` are applied to its tasks)."""
        details = {
            "cluster_id": cluster_id, "cluster_name": f"loopback-{cluster_id}", "spark_version": DEFAULT_SPARK_VERSION,
            "node_type_id": "i3.xlarge", "driver_node_type_id": "i3.xlarge", "num_workers": 0, "state": "RUNNING",
            "state_message": "", "creator_user_name": self.user, "cluster_source": "UI", "start_time": _now_ms(),
        } | spec
        losses = sdk_roundtrip_losses(details, compute.ClusterDetails)
        if losses:
            raise ValueError(f"cluster fields the SDK does not know: {losses}")
        with self._lock:
            self._clusters[cluster_id] = details
        return copy.deepcopy(details)

    def put_secret(self, scope: str, key: str, value: str) -> None:
        """Store a secret that ``{{secrets/<scope>/<key>}}`` in ``spark_env_vars`` resolves to."""
        with self._lock:
            self.secrets.setdefault(scope, {})[key] = value

    def add_fault(
        self, route: str, status: int = 503, *, times: int = 1, retry_after: int | None = 0, method: str | None = None
    ) -> None:
        """Make the next `times` calls of `route` (``runs/get``, ``fs/files``… see ROUTES; `method`
        narrows it to one HTTP method) answer `status` with a Databricks error body; 429 and 503
        carry ``Retry-After: retry_after`` unless it is None."""
        if route not in ROUTES or times < 1:
            raise ValueError(f"unknown route {route!r} (one of {sorted(ROUTES)}) or times < 1")
        with self._lock:
            self._faults.append(_Fault(route, status, times, retry_after, method.upper() if method else None))

    @property
    def runs(self) -> dict[int, dict[str, Any]]:
        """Every submitted run by run id, in submit order: payload, tasks (argv, env keys, exit code, tails…)."""
        with self._lock:
            return {run_id: self._snapshot(run) for run_id, run in self._runs.items()}

    def run(self, run_id: int) -> dict[str, Any]:
        with self._lock:
            return self._snapshot(self._runs[run_id])

    def task(self, run_id: int, task_key: str | None = None) -> dict[str, Any]:
        """One task record of a run (the only one when `task_key` is None)."""
        tasks = self.run(run_id)["tasks"]
        if task_key is None:
            if len(tasks) != 1:
                raise ValueError(f"run {run_id} has {len(tasks)} tasks; name one")
            return next(iter(tasks.values()))
        return tasks[task_key]

    def wait_for_run(self, run_id: int, timeout: float = 60.0) -> dict[str, Any]:
        """Block until every task of the run has really finished (not what runs/get reports)."""
        with self._lock:
            run = self._runs[run_id]
        deadline = time.monotonic() + timeout
        for task in run.tasks.values():
            if not task.done.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"run {run_id} task {task.task_key} still running after {timeout}s")
        return self.run(run_id)

    def wait_until_started(self, run_id: int, task_key: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """Block until the task's process has been spawned (or the task ended without one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.task(run_id, task_key)
            if record["pid"] is not None or record["result_state"] is not None:
                return record
            time.sleep(0.02)
        raise TimeoutError(f"run {run_id} did not start within {timeout}s")

    def calls(self) -> list[str]:
        """The request log as ``"METHOD /path"`` strings (no query), oldest first."""
        return [f"{entry['method']} {entry['path']}" for entry in self.requests]

    # ---- dispatch -----------------------------------------------------------------------------

    def _log_entry(self, handler, request: Request, headers: dict[str, str], raw_body: bytes) -> dict[str, Any]:
        return {
            "method": handler.command,
            "path": request.path,
            "query": {k: v[0] if len(v) == 1 else list(v) for k, v in request.query.items()},
            "headers": {k: "***" if k in REDACTED_HEADERS else v for k, v in headers.items()},
            "body": request.json,
            "data": raw_body.decode("utf-8", "replace") if raw_body and request.json is None else None,
            "status": None,
            "response": None,
        }

    def _answered(self, entry: dict[str, Any], status: int, body: Any) -> None:
        entry["status"] = status
        entry["response"] = None if isinstance(body, bytes | bytearray) else copy.deepcopy(body)

    def _send(self, handler, status: int, body: Any, headers: Mapping[str, str]) -> None:
        handler.send_payload(status, body, headers)

    def respond(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        try:
            return self._respond(request)
        except (Reply, Drop):
            raise
        except Exception as exc:  # a loopback bug: answer it visibly rather than hang the client
            return 500, _error("INTERNAL_ERROR", f"loopback failure: {exc!r}"), {}

    def _respond(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        self._check_auth(request)
        route, fs_kind, fs_path = self._route(request)
        self._take_fault(route, request.method)
        if route == "runs/submit":
            return 200, self._submit(request), {}
        if route == "runs/get":
            return 200, self._get_run(request), {}
        if route == "runs/get-output":
            return 200, self._get_output(request), {}
        if route == "runs/cancel":
            return 200, self._cancel(request), {}
        if route == "clusters/get":
            return 200, self._get_cluster(request), {}
        path = self._local_path(fs_path)
        if fs_kind == "files":
            return self._file(request, fs_path, path)
        return self._directory(request, fs_path, path)

    def _check_auth(self, request: Request) -> None:
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            raise Reply(401, _error("UNAUTHENTICATED",
                                    "Credential was not sent or was of an unsupported type for this API."))
        if authorization.removeprefix("Bearer ") != self.token:
            raise Reply(401, _error("UNAUTHENTICATED", "Invalid access token."))

    def _route(self, request: Request) -> tuple[str, str | None, str | None]:
        method, path = request.method, request.path
        if match := _JOBS.match(path):
            if method == ("POST" if match["op"] in ("runs/submit", "runs/cancel") else "GET"):
                return match["op"], None, None
        if _CLUSTERS.match(path) and method == "GET":
            return "clusters/get", None, None
        if (match := _FS.match(path)) and method in ("GET", "HEAD", "PUT", "DELETE"):
            return f"fs/{match['kind']}", match["kind"], unquote(match["path"])
        raise Reply(404, _error("ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}'"))

    def _take_fault(self, route: str, method: str) -> None:
        with self._lock:
            fault = next((f for f in self._faults if f.route == route and f.method in (None, method)), None)
            if fault is None:
                return
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
        headers = {}
        if fault.status in (429, 503) and fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        code = FAULT_ERROR_CODES.get(fault.status, "INTERNAL_ERROR")
        raise Reply(fault.status, _error(code, f"Injected {fault.status} on {route}"), headers)

    # ---- jobs: submit -------------------------------------------------------------------------

    def _submit(self, request: Request) -> dict[str, Any]:
        body = request.json
        if not isinstance(body, dict):
            raise Reply(400, _error("MALFORMED_REQUEST",
                                    "Invalid JSON given in the body of the request - expected a map"))
        environments, tasks = self._validate_submit(body)
        with self._lock:
            token = body.get("idempotency_token")
            if token is not None and token in self._idempotency:
                return {"run_id": self._idempotency[token]}
            run_id, job_id = self._new_id(), self._next_job
            self._next_job += 1
            run = _Run(
                run_id=run_id, job_id=job_id, run_name=body.get("run_name") or "Untitled", body=copy.deepcopy(body),
                tasks={}, timeout_seconds=body.get("timeout_seconds") or None, submit_ms=_now_ms(),
            )
            for spec in tasks:
                task = self._task_run(spec, environments)
                run.tasks[task.task_key] = task
                self._task_runs[task.run_id] = (run, task)
            self._runs[run_id] = run
            if token is not None:
                self._idempotency[token] = run_id
            run.thread = threading.Thread(target=self._execute, args=(run,), name=f"{self.thread_name}-run-{run_id}",
                                          daemon=True)
        run.thread.start()
        return {"run_id": run_id}

    def _validate_submit(self, body: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        unknown = sorted(set(body) - set(SUBMIT_FIELDS))
        if unknown:
            raise _invalid(f"Unknown field(s) in the submit request: {', '.join(unknown)}")
        for name, (cls, repeated) in SUBMIT_FIELDS.items():
            value = body.get(name)
            if value is None:
                continue
            if cls is None:
                wanted = int if name == "timeout_seconds" else str
                if not isinstance(value, wanted) or isinstance(value, bool):
                    raise _invalid(f"Field {name} must be a{'n integer' if wanted is int else ' string'}")
                continue
            items = value if repeated else [value]
            if repeated and not isinstance(value, list):
                raise _invalid(f"Field {name} must be an array")
            for index, item in enumerate(items):
                where = f"{name}[{index}]" if repeated else name
                losses = sdk_roundtrip_losses(item, cls)
                if losses:
                    raise _invalid(f"Invalid {where}: unknown or malformed field(s) {', '.join(losses)} "
                                   f"(for {cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__})")
        if len(body.get("idempotency_token") or "") > 64:
            raise _invalid("idempotency_token must have at most 64 characters")
        if (body.get("timeout_seconds") or 0) < 0:
            raise _invalid("timeout_seconds must be non-negative")
        environments: dict[str, dict[str, Any]] = {}
        for env in body.get("environments") or []:
            key = env.get("environment_key")
            if not isinstance(key, str) or not key:
                raise _invalid("Every environment needs an environment_key")
            if key in environments:
                raise _invalid(f"Duplicate environment_key {key!r}")
            spec = env.get("spec") or {}
            if not (spec.get("client") or spec.get("environment_version")):
                raise _invalid(f"Environment {key!r}: spec.client or spec.environment_version is required")
            environments[key] = env
        tasks = body.get("tasks")
        if not tasks:
            raise _invalid("At least one task is required.")
        if len(tasks) > 100:
            raise _invalid("A run can have at most 100 tasks.")
        keys: set[str] = set()
        for task in tasks:
            self._validate_task(task, environments, keys)
        for task in tasks:
            for dependency in task.get("depends_on") or []:
                if dependency.get("task_key") not in keys:
                    raise _invalid(f"Task {task['task_key']} depends on {dependency.get('task_key')!r}, "
                                   "which is not a task of this run")
        self._check_acyclic(tasks)
        return environments, tasks

    def _validate_task(self, task: dict[str, Any], environments: Mapping[str, Any], keys: set[str]) -> None:
        key = task.get("task_key")
        if not isinstance(key, str) or not key:
            raise _invalid("Missing required field: task_key")
        if not _TASK_KEY.match(key):
            raise _invalid(f"Invalid task_key {key!r}: use at most 100 letters, digits, '_', '-' and '.'")
        if key in keys:
            raise _invalid(f"Duplicate task_key {key!r}")
        keys.add(key)
        types = [name for name in RUNNABLE_TASK_TYPES + OTHER_TASK_TYPES if task.get(name) is not None]
        if not types:
            raise _invalid(f"Task {key}: one of spark_python_task or python_wheel_task is required")
        if len(types) > 1:
            raise _invalid(f"Task {key}: exactly one task type may be set, got {', '.join(types)}")
        if types[0] not in RUNNABLE_TASK_TYPES:
            raise _invalid(f"Task {key}: the loopback runs only spark_python_task and python_wheel_task, "
                           f"got {types[0]}")
        computes = [name for name in ("new_cluster", "existing_cluster_id", "environment_key") if task.get(name)]
        if not computes:
            raise _invalid(f"Task {key}: one of new_cluster, existing_cluster_id or environment_key is required")
        if len(computes) > 1:
            raise _invalid(f"Task {key}: only one of {', '.join(computes)} may be set")
        compute_kind = computes[0]
        if compute_kind == "environment_key":
            if task["environment_key"] not in environments:
                raise _invalid(f"Task {key}: environment_key {task['environment_key']!r} "
                               "names no environment of this run")
            if task.get("libraries"):
                raise _invalid(f"Task {key}: libraries field is not supported for serverless task, "
                               "please specify libraries in environment")
        elif compute_kind == "existing_cluster_id":
            cluster_id = task["existing_cluster_id"]
            with self._lock:
                known = isinstance(cluster_id, str) and cluster_id in self._clusters
            if not known:
                raise _invalid(f"Cluster {cluster_id} does not exist")
        else:
            cluster = task["new_cluster"]
            if not isinstance(cluster, dict) or not cluster.get("spark_version"):
                raise _invalid(f"Task {key}: Missing required field: new_cluster.spark_version")
            if cluster.get("spark_env_vars") is not None and not _is_str_map(cluster["spark_env_vars"]):
                raise _invalid(f"Task {key}: new_cluster.spark_env_vars must map strings to strings")
        if types[0] == "spark_python_task":
            python = task["spark_python_task"]
            python_file = python.get("python_file") if isinstance(python, dict) else None
            if not isinstance(python_file, str) or not python_file:
                raise _invalid(f"Task {key}: Missing required field: spark_python_task.python_file")
            if python.get("parameters") is not None and not _is_str_list(python["parameters"]):
                raise _invalid(f"Task {key}: spark_python_task.parameters must be an array of strings")
        else:
            wheel = task["python_wheel_task"]
            if not isinstance(wheel, dict) or not wheel.get("package_name") or not wheel.get("entry_point"):
                raise _invalid(f"Task {key}: python_wheel_task needs package_name and entry_point")
            if wheel.get("parameters") is not None and not _is_str_list(wheel["parameters"]):
                raise _invalid(f"Task {key}: python_wheel_task.parameters must be an array of strings")
            if wheel.get("named_parameters") is not None and not _is_str_map(wheel["named_parameters"]):
                raise _invalid(f"Task {key}: python_wheel_task.named_parameters must map strings to strings")
            if wheel.get("parameters") and wheel.get("named_parameters"):
                raise _invalid(f"Task {key}: parameters and named_parameters cannot both be set")
        timeout = task.get("timeout_seconds")
        if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0):
            raise _invalid(f"Task {key}: timeout_seconds must be a non-negative integer")
        losses = sdk_roundtrip_losses(task, jobs.SubmitTask)
        if losses:
            raise _invalid(f"Task {key}: unknown or malformed field(s) {', '.join(losses)} (for jobs.SubmitTask)")

    @staticmethod
    def _check_acyclic(tasks: list[dict[str, Any]]) -> None:
        edges = {t["task_key"]: [d["task_key"] for d in t.get("depends_on") or []] for t in tasks}
        state: dict[str, int] = {}

        def visit(key: str) -> None:
            if state.get(key) == 2:
                return
            if state.get(key) == 1:
                raise _invalid(f"The task dependencies form a cycle through {key}")
            state[key] = 1
            for dependency in edges[key]:
                visit(dependency)
            state[key] = 2

        for key in edges:
            visit(key)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _task_run(self, spec: dict[str, Any], environments: Mapping[str, dict[str, Any]]) -> _TaskRun:
        kind = next(name for name in RUNNABLE_TASK_TYPES if spec.get(name) is not None)
        env_key = spec.get("environment_key")
        if env_key:
            compute_kind, cluster_id = "serverless", None
        elif spec.get("existing_cluster_id"):
            compute_kind, cluster_id = "existing_cluster", spec["existing_cluster_id"]
        else:
            compute_kind, cluster_id = "new_cluster", None
        environment_spec = copy.deepcopy((environments.get(env_key) or {}).get("spec") or {}) if env_key else {}
        return _TaskRun(
            task_key=spec["task_key"], run_id=self._new_id(), spec=copy.deepcopy(spec), kind=kind, compute=compute_kind,
            cluster_id=cluster_id, environment_key=env_key, environment_spec=environment_spec,
            libraries=copy.deepcopy(spec.get("libraries") or []),
            dependencies=list(environment_spec.get("dependencies") or []),
            depends_on=[d["task_key"] for d in spec.get("depends_on") or []],
            timeout_seconds=spec.get("timeout_seconds") or None,
        )

    # ---- jobs: running a task ("the cluster") -------------------------------------------------

    def _execute(self, run: _Run) -> None:
        threads = [
            threading.Thread(target=self._execute_task, args=(run, task), daemon=True,
                             name=f"{self.thread_name}-task-{task.run_id}")
            for task in run.tasks.values()
        ]
        for thread in threads:
            thread.start()
        deadline = None if run.timeout_seconds is None else time.monotonic() + run.timeout_seconds
        while not run.done:
            if deadline is not None and time.monotonic() > deadline and not run.timed_out:
                with self._lock:
                    run.timed_out = True
                for task in run.tasks.values():
                    self._kill(task)
            time.sleep(0.05)
        for thread in threads:
            thread.join()
        with self._lock:
            run.end_ms = _now_ms()

    def _execute_task(self, run: _Run, task: _TaskRun) -> None:
        try:
            for dependency in task.depends_on:
                run.tasks[dependency].done.wait()
            upstream = [run.tasks[d].result for d in task.depends_on]
            with self._lock:
                if run.cancel_requested or self._closing or run.timed_out:
                    result = "TIMEDOUT" if run.timed_out else "CANCELED"
                    self._finish(task, result, "Run cancelled before the task started.")
                    return
                if any(outcome in ("CANCELED", "UPSTREAM_CANCELED") for outcome in upstream):
                    self._finish(task, "UPSTREAM_CANCELED", "An upstream task was cancelled.")
                    return
                if any(outcome != "SUCCESS" for outcome in upstream):
                    self._finish(task, "UPSTREAM_FAILED", "An upstream task failed.")
                    return
                try:
                    argv, env, env_keys, secret_refs = self._command(task)
                except _LaunchError as failure:
                    task.launch_error = failure.launch
                    self._finish(task, "FAILED", str(failure))
                    return
                task.argv, task.env_keys, task.secret_refs = argv, env_keys, secret_refs
                assert self._scratch is not None
                out_path = self._scratch / f"{task.run_id}.stdout"
                err_path = self._scratch / f"{task.run_id}.stderr"
                with open(out_path, "wb") as out, open(err_path, "wb") as err:
                    task.process = subprocess.Popen(
                        argv, env=env, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                        start_new_session=True,
                    )
                task.pid, task.start_ms = task.process.pid, _now_ms()
            timeout = task.timeout_seconds
            try:
                exit_code = task.process.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                self._kill(task)
                exit_code, timed_out = task.process.wait(), True
            _kill_stragglers(task.process.pid)  # the cluster's processes end with the task
            stdout, stderr = _tail(out_path), _tail(err_path)
            with self._lock:
                task.exit_code, task.stdout_tail, task.stderr_tail = exit_code, stdout, stderr
                if timed_out or (run.timed_out and exit_code != 0):
                    self._finish(task, "TIMEDOUT", f"Task timed out after {timeout or run.timeout_seconds} seconds.")
                elif run.cancel_requested or (self._closing and exit_code != 0):
                    self._finish(task, "CANCELED", "Run cancelled.")
                elif exit_code == 0:
                    self._finish(task, "SUCCESS", "")
                else:
                    self._finish(task, "FAILED", _failure_line(stderr, exit_code))
        except BaseException as exc:  # never leave a run hanging in RUNNING
            with self._lock:
                if not task.done.is_set():
                    task.launch_error = True
                    self._finish(task, "FAILED", f"Loopback could not run the task: {exc!r}")

    def _finish(self, task: _TaskRun, result: str, message: str) -> None:
        task.result, task.state_message, task.end_ms = result, message, _now_ms()
        task.done.set()

    def _command(self, task: _TaskRun) -> tuple[list[str], dict[str, str], list[str], list[str]]:
        spec = task.spec
        if task.kind == "spark_python_task":
            python_task = spec["spark_python_task"]
            local = self._resolve_python_file(python_task["python_file"])
            argv = [self.python, str(local), *(python_task.get("parameters") or [])]
        else:
            wheel = spec["python_wheel_task"]
            target = self.wheel_entry_points.get((wheel["package_name"], wheel["entry_point"]))
            if target is None:
                raise _LaunchError(
                    f"Python wheel with name {wheel['package_name']} and entry point {wheel['entry_point']} "
                    "is not installed on this cluster (no wheel_entry_points mapping in the loopback)."
                )
            named = [f"--{name}={value}" for name, value in (wheel.get("named_parameters") or {}).items()]
            arguments = [*(wheel.get("parameters") or []), *named]
            if ":" in target:
                module, function = target.split(":", 1)
                code = (f"import sys, {module} as _m; sys.argv[0] = {wheel['entry_point']!r}; "
                        f"sys.exit(_m.{function}())")
                argv = [self.python, "-c", code, *arguments]
            else:
                argv = [self.python, "-m", target, *arguments]
        env = dict(os.environ)
        env.update(self.extra_env)
        own: dict[str, str] = dict(self.extra_env)
        secret_refs: list[str] = []
        if task.compute == "serverless":
            version = task.environment_spec.get("environment_version") or task.environment_spec.get("client") or "1"
            own["DATABRICKS_RUNTIME_VERSION"] = f"client.{version}"
        else:
            if task.compute == "new_cluster":
                cluster = spec["new_cluster"]
            else:
                with self._lock:
                    cluster = copy.deepcopy(self._clusters[task.cluster_id])
            own["DATABRICKS_RUNTIME_VERSION"] = _runtime_version(cluster.get("spark_version"))
            for name, value in (cluster.get("spark_env_vars") or {}).items():
                match = _SECRET_REF.match(value)
                if match:
                    scope, key = match["scope"], match["key"]
                    with self._lock:
                        secret = self.secrets.get(scope, {}).get(key)
                    if secret is None:
                        raise _LaunchError(
                            f"Cluster failed to launch: Secret does not exist with scope: {scope} and key: {key} "
                            f"(referenced by spark_env_vars.{name})",
                            launch=True,
                        )
                    secret_refs.append(f"{scope}/{key}")
                    value = secret
                own[name] = value
        env.update(own)
        return argv, env, sorted(own), secret_refs

    def _resolve_python_file(self, python_file: str) -> Path:
        for prefix in sorted(self.path_mapping, key=len, reverse=True):
            if python_file == prefix or python_file.startswith(prefix.rstrip("/") + "/"):
                local = self.path_mapping[prefix] / python_file[len(prefix):].lstrip("/")
                break
        else:
            local = Path(python_file.removeprefix("file:"))
        if not local.is_absolute() or not local.is_file():
            raise _LaunchError(f"Cannot read the python file {python_file}: no such file (looked at {local}).")
        return local

    def _kill(self, task: _TaskRun, grace: float | None = None) -> None:
        """SIGTERM the task's process group, SIGKILL it after the grace period, then any straggler."""
        process = task.process
        if process is None:
            return
        if process.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(process.pid, sig)
                except (ProcessLookupError, PermissionError):
                    break
                try:
                    process.wait(timeout=self.kill_grace_seconds if grace is None else grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        _kill_stragglers(process.pid)

    # ---- jobs: runs/get, runs/get-output, runs/cancel -----------------------------------------

    def _run_id(self, value: Any) -> int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _invalid(f"Invalid run_id {value!r}: expected an integer") from None

    def _known_run(self, run_id: int) -> _Run:
        run = self._runs.get(run_id)
        if run is None:
            raise _invalid(f"Run {run_id} does not exist.")
        return run

    def _get_run(self, request: Request) -> dict[str, Any]:
        run_id = self._run_id(request.param("run_id"))
        with self._lock:
            run = self._known_run(run_id)
            self._observe(run)
            return self._run_json(run)

    def _observe(self, run: _Run) -> None:
        """One poll: the reported life cycle moves at most one step toward the real one."""
        run.polls += 1
        if run.polls <= self.pending_polls or run.reported == "INTERNAL_ERROR":
            return
        target = run.actual_stage()
        if target == "INTERNAL_ERROR":
            run.reported = "INTERNAL_ERROR"
            return
        current, wanted = STAGES.index(run.reported), STAGES.index(target)
        if wanted > current and not self.stepwise_states:
            run.reported = target
        elif wanted > current:
            step = current + 1
            never_ran = not any(t.pid is not None for t in run.tasks.values())
            if STAGES[step] == "RUNNING" and run.cancel_requested and never_ran:
                step += 1
            run.reported = STAGES[step]

    def _reported_task_stage(self, run: _Run, task: _TaskRun) -> str:
        if run.reported == "INTERNAL_ERROR":
            return "INTERNAL_ERROR" if task.launch_error else "TERMINATED"
        stage = task.actual_stage(run.cancel_requested)
        return STAGES[min(STAGES.index(stage), STAGES.index(run.reported))]

    def _run_page_url(self, run: _Run, run_id: int) -> str:
        return f"{self.origin}/?o=0#job/{run.job_id}/run/{run_id}"

    def _run_json(self, run: _Run) -> dict[str, Any]:
        reported = run.reported
        state: dict[str, Any] = {"life_cycle_state": reported, "state_message": "", "user_cancelled_or_timedout": False}
        status: dict[str, Any] = {"state": "TERMINATED" if reported == "INTERNAL_ERROR" else reported}
        if reported == "PENDING":
            state["state_message"] = "Waiting for cluster" if any(
                t.compute != "serverless" for t in run.tasks.values()) else "Waiting for serverless compute"
        elif reported == "TERMINATING" and run.cancel_requested:
            state["state_message"] = "Run cancellation requested."
        finished = reported in ("TERMINATED", "INTERNAL_ERROR")
        if finished:
            _, result, message = run.outcome()
            state.update(result_state=result, state_message=message,
                         user_cancelled_or_timedout=result in ("CANCELED", "TIMEDOUT"))
            code, kind = _TERMINATION.get(result, ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"))
            if reported == "INTERNAL_ERROR":
                code, kind = "INVALID_CLUSTER_REQUEST", "CLIENT_ERROR"
            status["termination_details"] = {"code": code, "type": kind, "message": message}
        started = [t.start_ms for t in run.tasks.values() if t.start_ms is not None]
        body: dict[str, Any] = {
            "job_id": run.job_id, "run_id": run.run_id, "number_in_job": run.run_id,
            "original_attempt_run_id": run.run_id, "attempt_number": 0, "creator_user_name": self.user,
            "run_name": run.run_name, "run_type": "SUBMIT_RUN", "trigger": "ONE_TIME",
            "run_page_url": self._run_page_url(run, run.run_id), "start_time": run.submit_ms,
            "state": state, "status": status,
            "tasks": [self._task_json(run, task) for task in run.tasks.values()],
        }
        ended = [t.end_ms for t in run.tasks.values() if t.end_ms is not None]
        if finished and ended:
            end = run.end_ms or max(ended)
            first = min(started) if started else end
            body.update(end_time=end, setup_duration=first - run.submit_ms, execution_duration=end - first,
                        cleanup_duration=0, run_duration=end - run.submit_ms)
        return body

    def _task_json(self, run: _Run, task: _TaskRun) -> dict[str, Any]:
        stage = self._reported_task_stage(run, task)
        body = {key: copy.deepcopy(value) for key, value in task.spec.items() if key in RUN_TASK_FIELDS}
        state: dict[str, Any] = {"life_cycle_state": stage, "state_message": "", "user_cancelled_or_timedout": False}
        status: dict[str, Any] = {"state": "TERMINATED" if stage == "INTERNAL_ERROR" else stage}
        if stage in ("TERMINATED", "INTERNAL_ERROR"):
            state.update(result_state=task.result, state_message=task.state_message,
                         user_cancelled_or_timedout=task.result in ("CANCELED", "TIMEDOUT"))
            code, kind = _TERMINATION.get(task.result or "", ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"))
            if task.launch_error:
                code, kind = "INVALID_CLUSTER_REQUEST", "CLIENT_ERROR"
            status["termination_details"] = {"code": code, "type": kind, "message": task.state_message}
        body.update(run_id=task.run_id, attempt_number=0, state=state, status=status,
                    run_page_url=self._run_page_url(run, task.run_id))
        if task.compute != "serverless":
            cluster_id = task.cluster_id or f"{time.strftime('%m%d')}-000000-loop{task.run_id}"
            body["cluster_instance"] = {"cluster_id": cluster_id, "spark_context_id": str(task.run_id * 7919)}
        if task.start_ms is not None and stage != "PENDING":
            body["start_time"] = task.start_ms
            body["setup_duration"] = task.start_ms - run.submit_ms
        if task.end_ms is not None and stage in ("TERMINATED", "INTERNAL_ERROR"):
            body["end_time"] = task.end_ms
            body["execution_duration"] = task.end_ms - (task.start_ms or task.end_ms)
            body["cleanup_duration"] = 0
        return body

    def _get_output(self, request: Request) -> dict[str, Any]:
        run_id = self._run_id(request.param("run_id"))
        with self._lock:
            if run_id in self._runs:
                raise _invalid(MULTI_TASK_OUTPUT)
            if run_id not in self._task_runs:
                raise _invalid(f"Run {run_id} does not exist.")
            run, task = self._task_runs[run_id]
            # The task's own state, not capped by what runs/get has reported of the parent so far.
            stage = "INTERNAL_ERROR" if task.launch_error else task.actual_stage(run.cancel_requested)
            state: dict[str, Any] = {"life_cycle_state": stage, "state_message": ""}
            if stage in ("TERMINATED", "INTERNAL_ERROR"):
                state.update(result_state=task.result, state_message=task.state_message)
            answer: dict[str, Any] = {
                "metadata": {"job_id": run.job_id, "run_id": task.run_id, "run_name": run.run_name, "state": state,
                             "run_page_url": self._run_page_url(run, task.run_id), "start_time": run.submit_ms},
            }
            if stage in ("TERMINATED", "INTERNAL_ERROR"):
                answer["logs"] = task.stdout_tail
                answer["logs_truncated"] = len(task.stdout_tail) >= TAIL_CHARS
                if task.result != "SUCCESS":
                    answer["error"] = task.state_message
                    answer["error_trace"] = task.stderr_tail
            return answer

    def _cancel(self, request: Request) -> dict[str, Any]:
        body = request.json if isinstance(request.json, dict) else {}
        run_id = self._run_id(body.get("run_id"))
        with self._lock:
            if run_id in self._task_runs and run_id not in self._runs:
                run = self._task_runs[run_id][0]
            else:
                run = self._known_run(run_id)
            if run.done or run.cancel_requested:
                return {}
            run.cancel_requested = True
            tasks = list(run.tasks.values())
        threading.Thread(target=lambda: [self._kill(task) for task in tasks], daemon=True,
                         name=f"{self.thread_name}-cancel-{run.run_id}").start()
        return {}

    # ---- clusters -----------------------------------------------------------------------------

    def _get_cluster(self, request: Request) -> dict[str, Any]:
        cluster_id = request.param("cluster_id")
        with self._lock:
            if cluster_id not in self._clusters:
                raise _invalid(f"Cluster {cluster_id} does not exist")
            return copy.deepcopy(self._clusters[cluster_id])

    # ---- files API on Unity Catalog volumes ---------------------------------------------------

    def _local_path(self, remote: str | None) -> Path:
        if not remote or not remote.startswith("/") or "\x00" in remote:
            raise Reply(400, _error("INVALID_PARAMETER_VALUE", f"Invalid path {remote!r}: paths are absolute"))
        local = Path(os.path.normpath(remote))
        real = Path(os.path.realpath(local))
        if real != self.volume_root and self.volume_root not in real.parents:
            raise Reply(403, _error("PERMISSION_DENIED",
                                    f"Access to {remote} is outside the volume root of this workspace."))
        return local

    @staticmethod
    def _not_found(kind: str) -> Reply:
        noun = "file" if kind == "file" else "directory"
        return Reply(404, _error("NOT_FOUND", f"The {noun} being accessed is not found."))

    def _file(self, request: Request, remote: str, path: Path) -> tuple[int, Any, dict[str, str]]:
        method = request.method
        if method == "PUT":
            overwrite = (request.param("overwrite") or "true").lower() != "false"
            if path.is_dir():
                raise Reply(409, _error("ALREADY_EXISTS", f"A directory exists at {remote}."))
            if path.exists() and not overwrite:
                raise Reply(409, _error("ALREADY_EXISTS", "The file being created already exists."))
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                problem = f"A file exists where a parent directory of {remote} belongs."
                raise Reply(409, _error("ALREADY_EXISTS", problem)) from None
            partial = path.with_name(f".{path.name}.{threading.get_ident()}.upload")
            partial.write_bytes(request.raw_body)
            os.replace(partial, path)  # readers (the task) never see a half-written file
            return 204, None, {}
        if not path.is_file():
            if method == "HEAD":
                return 404, None, {}
            raise self._not_found("file")
        if method == "DELETE":
            path.unlink()
            return 204, None, {}
        stat = path.stat()
        headers = {"Content-Type": "application/octet-stream", "Last-Modified": formatdate(stat.st_mtime, usegmt=True)}
        if method == "HEAD":
            return 200, None, headers | {"Content-Length": str(stat.st_size)}
        data = path.read_bytes()
        ranged = re.match(r"^bytes=(\d*)-(\d*)$", request.headers.get("range", "").strip())
        if ranged and (ranged[1] or ranged[2]):
            size = len(data)
            if ranged[1]:
                start, end = int(ranged[1]), min(int(ranged[2]) if ranged[2] else size - 1, size - 1)
            else:
                start, end = max(0, size - int(ranged[2])), size - 1
            if start >= size or start > end:
                raise Reply(416, _error("INVALID_PARAMETER_VALUE", "Requested range not satisfiable"),
                            {"Content-Range": f"bytes */{size}"})
            return 206, data[start:end + 1], headers | {"Content-Range": f"bytes {start}-{end}/{size}"}
        return 200, data, headers

    def _directory(self, request: Request, remote: str, path: Path) -> tuple[int, Any, dict[str, str]]:
        method = request.method
        if method == "PUT":
            try:
                path.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                problem = f"A file exists at {remote} or one of its parents."
                raise Reply(409, _error("ALREADY_EXISTS", problem)) from None
            return 204, None, {}
        if not path.is_dir():
            if method == "HEAD":
                return 404, None, {}
            raise self._not_found("directory")
        if method == "HEAD":
            return 200, None, {}
        if method == "DELETE":
            if Path(os.path.realpath(path)) == self.volume_root:
                raise Reply(403, _error("PERMISSION_DENIED", "The volume root cannot be deleted."))
            if any(path.iterdir()):
                raise Reply(409, _error("DIRECTORY_NOT_EMPTY", f"The directory {remote} is not empty."))
            path.rmdir()
            return 204, None, {}
        return 200, self._listing(request, remote, path), {}

    def _listing(self, request: Request, remote: str, path: Path) -> dict[str, Any]:
        raw_size = request.param("page_size")
        try:
            page_size = 1000 if raw_size in (None, "") else int(raw_size)
        except ValueError:
            raise _invalid(f"Invalid page_size {raw_size!r}") from None
        if page_size <= 0:
            raise _invalid("page_size must be positive")
        page_size = min(page_size, 1000)
        after = None
        if token := request.param("page_token"):
            try:
                after = base64.urlsafe_b64decode(token.encode()).decode()
            except (ValueError, UnicodeDecodeError):
                raise _invalid("Invalid page_token") from None
        names = sorted(entry.name for entry in path.iterdir() if not entry.name.endswith(".upload"))
        if after is not None:
            names = [name for name in names if name > after]
        page, more = names[:page_size], len(names) > page_size
        contents = []
        base = remote.rstrip("/")
        for name in page:
            child = path / name
            entry: dict[str, Any] = {"path": f"{base}/{name}", "name": name, "is_directory": child.is_dir()}
            if not entry["is_directory"]:
                stat = child.stat()
                entry.update(file_size=stat.st_size, last_modified=int(stat.st_mtime * 1000))
            contents.append(entry)
        answer: dict[str, Any] = {"contents": contents}
        if more:
            answer["next_page_token"] = base64.urlsafe_b64encode(page[-1].encode()).decode()
        return answer

    # ---- snapshots ----------------------------------------------------------------------------

    def _snapshot(self, run: _Run) -> dict[str, Any]:
        done = run.done
        life, result, message = run.outcome() if done else (run.actual_stage(), None, "")
        return {
            "run_id": run.run_id, "job_id": run.job_id, "run_name": run.run_name, "request": copy.deepcopy(run.body),
            "tasks": {key: task.snapshot() for key, task in run.tasks.items()},
            "life_cycle_state": life, "result_state": result, "state_message": message,
            "reported_state": run.reported, "polls": run.polls, "cancel_requested": run.cancel_requested,
            "environments": copy.deepcopy(run.body.get("environments") or []),
        }


class _LaunchError(Exception):
    """The task could not be started (`launch`: the cluster itself failed, e.g. a missing secret)."""

    def __init__(self, message: str, *, launch: bool = False) -> None:
        super().__init__(message)
        self.launch = launch


__all__ = ["DEFAULT_TOKEN", "LoopbackDatabricks", "ROUTES", "sdk_roundtrip_losses"]
