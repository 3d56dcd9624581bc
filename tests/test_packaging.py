"""The wheel a Databricks task installs: the entrypoint, configuration and prompts inside, and no Spark of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from feedback_assets.packaging import REPO, build_wheel, inspect_wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


def test_the_wheel_carries_the_entrypoint_configuration_and_prompts(wheel):
    report = inspect_wheel(wheel)
    assert report.missing_data == [] and report.ok
    assert "feedback-pipes-step = feedback_assets.pipes_entrypoint:main" in report.entry_points


def test_the_wheel_never_asks_pip_for_a_spark_the_cluster_already_has(wheel):
    report = inspect_wheel(wheel)
    requirements = {r.split("==")[0].split(";")[0].strip() for r in report.requires}
    assert report.cluster_conflicts == []
    assert not requirements & {"pyspark", "dagster-pyspark", "dagster-spark", "dagster-webserver", "dagster-databricks"}
    assert {"dagster-pipes", "deltalake", "dagster"} <= requirements


def test_the_build_command_refuses_a_wheel_without_its_data(tmp_path, monkeypatch):
    import feedback_assets.packaging as packaging

    monkeypatch.setattr(packaging, "REQUIRED_DATA", (*packaging.REQUIRED_DATA, "config/not-shipped.yaml"))
    from typer.testing import CliRunner

    from feedback_assets.cli import app

    result = CliRunner().invoke(app, ["databricks", "build", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "config/not-shipped.yaml" in result.output


def test_the_bundle_builds_the_same_wheel_into_a_unity_catalog_volume():
    bundle = yaml.safe_load((REPO / "deploy" / "databricks.yml").read_text())
    artifact = bundle["artifacts"]["feedback_wheel"]
    assert artifact["type"] == "whl" and "pip wheel --no-deps" in artifact["build"]
    assert (REPO / "deploy" / artifact["path"]).resolve() == REPO
    assert bundle["targets"]["prod"]["workspace"]["artifact_path"].startswith("/Volumes/")


def test_the_entrypoint_answers_its_help_without_a_pipes_context():
    done = subprocess.run([sys.executable, "-m", "feedback_assets.pipes_entrypoint", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--step" in done.stdout
