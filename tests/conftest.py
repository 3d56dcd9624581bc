"""Shared fixtures: one local Spark session for the suite, and an isolated FEEDBACK_HOME per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from feedback_assets.landing.registry import LandingRegistry
from resources.settings import read_settings
from resources.table_store import LocalParquetTableStore

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FEEDBACK = Path(sys.executable).parent / "feedback"
DEMO_END = "2026-11-27"
TEST_PARTITIONS_START = date(2024, 1, 1)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from resources.spark import local_spark_session

    home = tmp_path_factory.mktemp("spark_home")
    config = replace(read_settings(), feedback_home=home, spark_shuffle_partitions=2)
    session = local_spark_session(config)
    yield session
    session.stop()


def settings_for(home: Path):
    """Settings for a FEEDBACK_HOME a test fills itself: its files are complete, so they need not settle."""
    return replace(read_settings(), feedback_home=home, landing_settle_seconds=0)


@pytest.fixture
def feedback_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "feedback_home"
    monkeypatch.setenv("FEEDBACK_HOME", str(home))
    return home


@pytest.fixture
def store(feedback_home) -> LocalParquetTableStore:
    return LocalParquetTableStore(root=str(feedback_home / "warehouse"))


@pytest.fixture
def registry(feedback_home, store) -> LandingRegistry:
    return LandingRegistry(feedback_home / "landing", store, TEST_PARTITIONS_START)


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    """The FEEDBACK_HOME of one demo, prepared once for the slow end-to-end tests, as `make demo` prepares it.

    `feedback demo` over 90 days of the seeded sample: gold with the local classifier, the alerts
    replayed as dispatch_alerts runs, the planted tickets resolved on the manifest's days and the
    roi group materialized; its DAGSTER_HOME (beside it, `dagster_home`) holds those runs, and the
    demo's printout is kept as `demo_output.txt`. Tests read it; a test that changes tables or runs
    works on a copy.
    """
    home = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "FEEDBACK_HOME": str(home / "feedback_home"), "DAGSTER_HOME": str(home / "dagster_home")}
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY",
                 "JIRA_URL", "SLACK_BOT_TOKEN", "FEEDBACK_PARTITIONS_START"):
        env.pop(name, None)
    (home / "dagster_home").mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster_home" / "dagster.yaml")
    done = subprocess.run([str(FEEDBACK), "demo", "--days", "90", "--end-date", DEMO_END], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    (home / "feedback_home" / "demo_output.txt").write_text(done.stdout, encoding="utf-8")
    return home / "feedback_home"
