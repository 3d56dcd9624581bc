"""The Spark session every transform runs on: local by default, sized for a laptop or CI box."""

from __future__ import annotations

import os
import sys
from typing import Any

from dagster_pyspark import PySparkResource

from resources.settings import Settings


def spark_config(settings: Settings) -> dict[str, Any]:
    """Local Spark: loopback only, no UI, few shuffle partitions, warehouse under FEEDBACK_HOME, UTC clock."""
    return {
        "spark.master": settings.spark_master,
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.app.name": "feedback-to-fix",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.default.parallelism": str(settings.spark_shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.warehouse.dir": str(settings.feedback_home / "spark-warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={settings.feedback_home / 'derby'}",
        "spark.driver.memory": "4g",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
    }


def use_this_interpreter_for_workers() -> None:
    """Python UDF workers must import this environment; local Spark reads PYSPARK_PYTHON for that."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


class LocalPySparkResource(PySparkResource):
    """dagster-pyspark's resource, with UDF workers running this interpreter."""

    def setup_for_execution(self, context) -> None:
        use_this_interpreter_for_workers()
        super().setup_for_execution(context)


def local_spark_resource(settings: Settings) -> PySparkResource:
    return LocalPySparkResource(spark_config=spark_config(settings))


def local_spark_session(settings: Settings):
    """A SparkSession with the resource's configuration, for the CLI, benchmarks and tests."""
    from pyspark.sql import SparkSession

    use_this_interpreter_for_workers()
    builder = SparkSession.builder
    for key, value in spark_config(settings).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
