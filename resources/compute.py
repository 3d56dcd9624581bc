"""Where Spark steps run: in-process on local Spark (the default), or as Databricks runs through Dagster Pipes.

Assets do not know which: they ask the configured `StepRunner` to run their named step for the
run's window, and get materializations and check results back. Chosen by FEEDBACK_COMPUTE
(`local` | `databricks`) in `step_runner_for`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import dagster as dg
from dagster_pyspark import PySparkResource

from feedback_assets.pipes_entrypoint import REFUSED_KEY
from feedback_assets.step_results import StepResult, results_from_pipes, results_of, window_of
from feedback_assets.step_runs import RESOURCES_OF_STEP, StepContext, StepFailed, run_step
from feedback_assets.window import DayWindow
from resources.settings import Settings, settings, ui_base_url
from resources.table_store import TableStore

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service import jobs

COMPUTE_CHOICES = ("local", "databricks")
ENTRYPOINT_MODULE = "feedback_assets.pipes_entrypoint"
WHEEL_PACKAGE = "feedback_to_fix"
WHEEL_ENTRY_POINT = "feedback-pipes-step"
DAGSTER_PIPES_REQUIREMENT = "dagster-pipes==1.13.27"
# Environment variables the cluster needs as secrets, and their keys in the Databricks secret scope.
DEFAULT_SECRET_ENV = {
    "FEEDBACK_PSEUDONYM_KEY": "pseudonym-key",
    "OPENAI_API_KEY": "openai-api-key",
    "AZURE_OPENAI_API_KEY": "azure-openai-api-key",
}


class StepRunner(Protocol):
    def run(self, context: dg.AssetExecutionContext, step: str, store: TableStore,
            **resources: dg.ConfigurableResource | None) -> Iterator[StepResult]: ...


class LocalStepRunner(dg.ConfigurableResource):
    """Runs the named step in this process on the local Spark session."""

    pyspark: PySparkResource

    def run(self, context: dg.AssetExecutionContext, step: str, store: TableStore,
            **resources: dg.ConfigurableResource | None) -> Iterator[StepResult]:
        step_context = StepContext(spark=self.pyspark.spark_session, store=store, window=window_of(context),
                                   run_id=context.run_id, settings=settings(), ui_base_url=ui_base_url(),
                                   log=context.log.info, **resources)
        try:
            outcome = run_step(step, step_context)
        except StepFailed as error:
            raise dg.Failure(description=str(error), allow_retries=False) from None
        yield from results_of(context, outcome)


def _run_page_on_failure(client_class: type) -> type:
    """A Pipes client that logs the Databricks run page, fails the step with the cluster's message and that page,
    and remembers an interruption (the client cancels the Databricks run, then returns as if it had succeeded)."""
    from dagster._core.errors import DagsterExecutionInterruptedError, DagsterPipesExecutionError

    class WithRunPage(client_class):
        interrupted_run: int | None = None

        def _poll_til_success(self, context, run_id: int) -> None:
            run_page = self.client.jobs.get_run(run_id).run_page_url or f"run {run_id}"
            context.log.info(f"Databricks run {run_id}: {run_page}")
            try:
                super()._poll_til_success(context, run_id)
            except DagsterExecutionInterruptedError:
                self.interrupted_run = run_id
                raise
            except DagsterPipesExecutionError as error:
                raise dg.Failure(description=f"{error} (Databricks run {run_id}: {run_page})",
                                 metadata={"Databricks Job Run URL": dg.MetadataValue.url(run_page)}) from None

    WithRunPage.__name__ = f"{client_class.__name__}WithRunPage"
    return WithRunPage


class DatabricksStepRunner(dg.ConfigurableResource):
    """Submits each step as one Databricks run (per step and partition range) through Dagster Pipes.

    The task installs the project's wheel and runs `feedback_assets.pipes_entrypoint`, which calls the
    same step function on the cluster's SparkSession and writes Delta tables. Context and messages
    travel through a Unity Catalog volume. Secrets reach the cluster from a secret scope, never
    through the payload: `{{secrets/<scope>/<key>}}` in a new cluster's `spark_env_vars`, or read by the
    entrypoint with dbutils on an existing cluster or serverless compute.
    """

    host: str
    token: str
    compute: str = "classic"  # classic | serverless
    existing_cluster_id: str | None = None
    spark_version: str = "16.4.x-scala2.13"
    node_type_id: str = "i3.xlarge"
    num_workers: int = 1
    volume_path: str  # /Volumes/<catalog>/<schema>/<volume> for Pipes context and messages
    wheel_path: str  # the project's wheel, e.g. /Volumes/<catalog>/<schema>/artifacts/feedback_to_fix-0.1.0-py3-none-any.whl
    task_kind: str = "python_wheel_task"  # python_wheel_task | spark_python_task
    python_file: str | None = None  # for spark_python_task: the entrypoint script in the workspace or a volume
    warehouse_root: str  # where delta-rs keeps tables when no Unity Catalog is named
    uc_catalog: str | None = None
    uc_schema_prefix: str = ""
    secret_scope: str = "feedback"
    secret_env: dict[str, str] = DEFAULT_SECRET_ENV
    serverless_client: str = "2"
    # The task's stdout/stderr as Pipes messages: the step's logs already arrive through Pipes, and the
    # tee costs seconds per run (and a short task's last chunk lands after Pipes closes).
    forward_stdio: bool = False
    poll_interval_seconds: float = 10.0
    message_interval_seconds: float = 10.0
    timeout_seconds: int = 4 * 3600
    ui_base_url: str = "http://127.0.0.1:3000"

    def workspace(self) -> WorkspaceClient:
        from databricks.sdk import WorkspaceClient

        return WorkspaceClient(host=self.host, token=self.token)

    def pipes_client(self, workspace: WorkspaceClient):
        from dagster_databricks import PipesDatabricksClient
        from dagster_databricks.pipes import (
            PipesDatabricksServerlessClient,
            PipesUnityCatalogVolumesContextInjector,
            PipesUnityCatalogVolumesMessageReader,
        )

        injector = PipesUnityCatalogVolumesContextInjector(client=workspace, volume_path=self.volume_path)
        reader = PipesUnityCatalogVolumesMessageReader(client=workspace, volume_path=self.volume_path,
                                                       interval=self.message_interval_seconds,
                                                       include_stdio_in_messages=self.forward_stdio)
        if self.compute == "serverless":
            return _run_page_on_failure(PipesDatabricksServerlessClient)(
                client=workspace, volume_path=self.volume_path, context_injector=injector, message_reader=reader,
                poll_interval_seconds=self.poll_interval_seconds)
        if self.compute != "classic":
            raise ValueError(f"Databricks compute must be classic or serverless, got {self.compute!r}")
        return _run_page_on_failure(PipesDatabricksClient)(
            client=workspace, context_injector=injector, message_reader=reader, poll_interval_seconds=self.poll_interval_seconds)

    def task(self, step: str) -> jobs.SubmitTask:
        """The task for one step: the entrypoint, its libraries or environment, and where it runs."""
        from databricks.sdk.service import compute, jobs

        parameters = ["--step", step]
        if self.task_kind == "python_wheel_task":
            kind = {"python_wheel_task": jobs.PythonWheelTask(package_name=WHEEL_PACKAGE, entry_point=WHEEL_ENTRY_POINT,
                                                              parameters=parameters)}
        elif self.task_kind == "spark_python_task":
            if not self.python_file:
                raise ValueError("a spark_python_task needs python_file (the entrypoint script on the workspace)")
            kind = {"spark_python_task": jobs.SparkPythonTask(python_file=self.python_file, parameters=parameters)}
        else:
            raise ValueError(f"task_kind must be python_wheel_task or spark_python_task, got {self.task_kind!r}")
        task_key = step.replace("-", "_")[:100]
        if self.compute == "serverless":
            return jobs.SubmitTask(task_key=task_key, environment_key="feedback", **kind)
        libraries = [compute.Library(whl=self.wheel_path),
                     compute.Library(pypi=compute.PythonPyPiLibrary(package=DAGSTER_PIPES_REQUIREMENT))]
        if self.existing_cluster_id:
            return jobs.SubmitTask(task_key=task_key, existing_cluster_id=self.existing_cluster_id, libraries=libraries, **kind)
        cluster = compute.ClusterSpec(
            spark_version=self.spark_version, node_type_id=self.node_type_id, num_workers=self.num_workers,
            data_security_mode=compute.DataSecurityMode.SINGLE_USER,
            spark_env_vars={name: f"{{{{secrets/{self.secret_scope}/{key}}}}}" for name, key in self.secret_env.items()},
        )
        return jobs.SubmitTask(task_key=task_key, new_cluster=cluster, libraries=libraries, **kind)

    def submit_args(self, step: str, window_label: str) -> dict[str, Any]:
        from databricks.sdk.service import compute, jobs

        args: dict[str, Any] = {"run_name": f"feedback-to-fix {step} {window_label}", "timeout_seconds": self.timeout_seconds}
        if self.compute == "serverless":
            args["environments"] = [jobs.JobEnvironment(environment_key="feedback", spec=compute.Environment(
                client=self.serverless_client, dependencies=[self.wheel_path, DAGSTER_PIPES_REQUIREMENT]))]
        return args

    def extras(self, step: str, window: DayWindow, resources: Mapping[str, dg.ConfigurableResource | None]) -> dict[str, Any]:
        """What the entrypoint needs: the step, its window, the store, the factories' configuration (no secrets)."""
        return {
            "step": step,
            "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
            "store": {"root": self.warehouse_root, "uc_catalog": self.uc_catalog, "uc_schema_prefix": self.uc_schema_prefix},
            "resources": {name: resource.model_dump(mode="json") for name, resource in resources.items()
                          if resource is not None and name in RESOURCES_OF_STEP.get(step, ())},
            "ui_base_url": self.ui_base_url,
            "secret_scope": self.secret_scope,
            "secret_env": dict(self.secret_env),
        }

    def run(self, context: dg.AssetExecutionContext, step: str, store: TableStore,
            **resources: dg.ConfigurableResource | None) -> Iterator[StepResult]:
        window = window_of(context)
        label = window.start.isoformat() if window.start == window.end else f"{window.start}..{window.end}"
        client = self.pipes_client(self.workspace())
        invocation = client.run(context=context, task=self.task(step), submit_args=self.submit_args(step, label),
                                extras=self.extras(step, window, resources))
        if client.interrupted_run is not None:
            raise dg.Failure(description=f"the Dagster run was interrupted: Databricks run {client.interrupted_run} was "
                                         "cancelled and wrote nothing this step can report", allow_retries=False)
        yield from results_from_pipes(context, invocation.get_results())
        refused = [m[REFUSED_KEY] for m in invocation.get_custom_messages() if isinstance(m, dict) and REFUSED_KEY in m]
        if refused:
            raise dg.Failure(description=str(refused[0])[:2000], allow_retries=False)


def step_runner_for(config: Settings, environ: Mapping[str, str] | None = None) -> LocalStepRunner | DatabricksStepRunner:
    """The configured runner: local Spark unless FEEDBACK_COMPUTE=databricks (then DATABRICKS_* configure it)."""
    from resources.spark import local_spark_resource

    env = os.environ if environ is None else environ
    if config.compute == "local":
        return LocalStepRunner(pyspark=local_spark_resource(config))
    if config.compute != "databricks":
        raise ValueError(f"FEEDBACK_COMPUTE must be one of {', '.join(COMPUTE_CHOICES)}, got {config.compute!r}")
    if config.table_format != "delta":
        raise ValueError("FEEDBACK_COMPUTE=databricks writes Delta tables: set FEEDBACK_TABLE_FORMAT=delta")
    missing = [name for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_VOLUME_PATH", "DATABRICKS_WHEEL_PATH")
               if not env.get(name)]
    if missing:
        raise ValueError(f"FEEDBACK_COMPUTE=databricks needs {', '.join(missing)}")
    optional = {
        "compute": env.get("DATABRICKS_COMPUTE"), "existing_cluster_id": env.get("DATABRICKS_CLUSTER_ID"),
        "spark_version": env.get("DATABRICKS_SPARK_VERSION"), "node_type_id": env.get("DATABRICKS_NODE_TYPE_ID"),
        "num_workers": int(env["DATABRICKS_NUM_WORKERS"]) if env.get("DATABRICKS_NUM_WORKERS") else None,
        "secret_scope": env.get("DATABRICKS_SECRET_SCOPE"), "task_kind": env.get("DATABRICKS_TASK_KIND"),
        "python_file": env.get("DATABRICKS_PYTHON_FILE"),
    }
    return DatabricksStepRunner(
        host=dg.EnvVar("DATABRICKS_HOST"), token=dg.EnvVar("DATABRICKS_TOKEN"),
        volume_path=env["DATABRICKS_VOLUME_PATH"], wheel_path=env["DATABRICKS_WHEEL_PATH"],
        warehouse_root=env.get("FEEDBACK_DATABRICKS_WAREHOUSE") or f"{env['DATABRICKS_VOLUME_PATH']}/warehouse",
        uc_catalog=config.uc_catalog, uc_schema_prefix=config.uc_schema_prefix, ui_base_url=ui_base_url(),
        **{key: value for key, value in optional.items() if value is not None},
    )

