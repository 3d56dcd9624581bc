"""The Databricks task: opens Dagster Pipes, runs one named step for the run's window, reports what it did.

Run as the task's `python_wheel_task` (entry point `feedback-pipes-step`) or `spark_python_task`
(`python -m feedback_assets.pipes_entrypoint`). The Pipes bootstrap arrives as CLI arguments
(existing cluster, serverless) or environment variables (a new cluster); context and messages go
through a Unity Catalog volume, which the cluster sees as a local path.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from typing import Any

from feedback_assets.outcomes import pipes_metadata
from feedback_assets.window import DayWindow


def window_of_pipes(pipes: Any) -> DayWindow:
    """The days of the Dagster run. The orchestrator sends them in the extras: Dagster 1.13's Pipes context
    leaves `partition_key_range` undefined for a ranged (backfill) run and names only single partitions."""
    window = pipes.extras.get("window")
    if window:
        return DayWindow(date.fromisoformat(window["start"]), date.fromisoformat(window["end"]))
    key_range = pipes.partition_key_range
    return DayWindow(date.fromisoformat(key_range["start"]), date.fromisoformat(key_range["end"]))


def cluster_spark_session():
    """The cluster's SparkSession on Databricks; elsewhere (tests, a laptop) a loopback-bound local session."""
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        from pyspark.sql import SparkSession

        return SparkSession.builder.getOrCreate()
    from resources.settings import read_settings
    from resources.spark import local_spark_session

    return local_spark_session(read_settings())


def load_secrets(spark: Any, scope: str, secret_env: dict[str, str], log) -> None:
    """Fills unset secret environment variables from the Databricks secret scope (existing clusters, serverless).

    A new cluster gets them from `{{secrets/...}}` references in its spark_env_vars instead; outside a
    Databricks runtime (no dbutils) the process environment is all there is.
    """
    wanted = {name: key for name, key in secret_env.items() if not os.environ.get(name)}
    if not wanted:
        return
    try:
        from pyspark.dbutils import DBUtils  # only on Databricks runtimes
    except ImportError:
        log(f"no dbutils here: {', '.join(sorted(wanted))} come from the environment or their defaults")
        return
    secrets = DBUtils(spark).secrets
    available = {s.key for s in secrets.list(scope)}
    for name, key in wanted.items():
        if key in available:
            os.environ[name] = secrets.get(scope, key)
    log(f"secrets from scope {scope}: {', '.join(sorted(n for n, k in wanted.items() if k in available)) or 'none'}")


# The custom Pipes message that says the step refused to write (the orchestrator fails the step with it).
REFUSED_KEY = "feedback/step_refused"


def run(pipes: Any) -> None:
    from feedback_assets.step_runs import StepContext, run_step
    from resources.enrichment import EnrichmentResource
    from resources.landing import LandingResource
    from resources.settings import read_settings
    from resources.table_store import delta_store_from
    from resources.themes import ThemesResource

    extras = pipes.extras
    spark = cluster_spark_session()
    load_secrets(spark, extras.get("secret_scope", ""), extras.get("secret_env", {}), pipes.log.info)
    factories = {"landing": LandingResource, "enrichment": EnrichmentResource, "themes": ThemesResource}
    resources = {name: factories[name](**config) for name, config in extras.get("resources", {}).items()}
    step_context = StepContext(spark=spark, store=delta_store_from(extras["store"]), window=window_of_pipes(pipes),
                               run_id=pipes.run_id, settings=read_settings(), ui_base_url=extras.get("ui_base_url", ""),
                               log=pipes.log.info, **resources)
    outcome = run_step(extras["step"], step_context)
    for level, message in outcome.logs:
        getattr(pipes.log, level)(message)
    for asset in outcome.assets:
        pipes.report_asset_materialization(asset_key=asset.asset_key, metadata=pipes_metadata(asset.metadata, asset.per_day))
    for check in outcome.checks:
        pipes.report_asset_check(check_name=check.check_name, passed=check.passed, severity=check.severity,
                                 metadata=pipes_metadata(check.metadata), asset_key=check.asset_key)
    if outcome.failure:
        # Reported, not raised: a failed cluster run would lose the check results sent above.
        pipes.report_custom_message({REFUSED_KEY: outcome.failure})


def main(argv: list[str] | None = None) -> None:
    from dagster_pipes import (
        PipesCliArgsParamsLoader,
        PipesEnvVarParamsLoader,
        PipesUnityCatalogVolumesContextLoader,
        PipesUnityCatalogVolumesMessageWriter,
        open_dagster_pipes,
    )

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--step", required=True, help="the named step (see feedback_assets.step_runs.STEPS)")
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    cli = PipesCliArgsParamsLoader()
    params_loader = cli if cli.is_dagster_pipes_process() else PipesEnvVarParamsLoader()
    with open_dagster_pipes(params_loader=params_loader, context_loader=PipesUnityCatalogVolumesContextLoader(),
                            message_writer=PipesUnityCatalogVolumesMessageWriter()) as pipes:
        if pipes.extras.get("step") != args.step:
            raise ValueError(f"task parameter --step {args.step!r} does not match the Pipes context's {pipes.extras.get('step')!r}")
        run(pipes)


if __name__ == "__main__":
    main()
