"""Shared fixtures: one local Spark session for the suite, and an isolated FEEDBACK_HOME per test."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from feedback_assets.landing.registry import LandingRegistry
from resources.settings import read_settings
from resources.table_store import LocalParquetTableStore

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
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
