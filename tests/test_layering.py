"""The import graph points down: alerting, metadata and the catalog load without Spark; alerting never
reads the sample's answer key; pure transforms read no settings and know nothing of Dagster."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "feedback_assets"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def modules_in(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).glob("*.py"))


@pytest.mark.parametrize("module", [
    "feedback_assets.alerts.dispatch", "feedback_assets.alerts.evidence", "feedback_assets.alerts.planning",
    "feedback_assets.alerts.replay", "feedback_assets.alerts.render", "feedback_assets.alerts.chart",
    "feedback_assets.metadata", "feedback_assets.tables", "resources.table_store",
    "feedback_assets.roi.measure", "feedback_assets.roi.metrics", "feedback_assets.roi.resolutions",
    "feedback_assets.roi.dashboard_data",
])
def test_alerting_and_metadata_load_without_spark(module):
    probe = f"import sys, {module}; leaked = sorted(m for m in sys.modules if m.split('.')[0] == 'pyspark' " \
            f"or m in ('feedback_assets.steps', 'feedback_assets.gold_steps')); print(leaked); sys.exit(bool(leaked))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{module} pulls in {result.stdout.strip()} {result.stderr[-500:]}"


@pytest.mark.parametrize("path", modules_in("alerts"), ids=lambda p: p.name)
def test_alerting_never_reads_the_sample_answer_key(path):
    assert not {m for m in imported_modules(path) if m.startswith("feedback_assets.sample_data")}


@pytest.mark.parametrize("path", modules_in("transforms"), ids=lambda p: p.name)
def test_transforms_read_no_settings_and_know_no_dagster(path):
    climbing = {m for m in imported_modules(path)
                if m.startswith(("resources", "dagster", "feedback_assets.steps", "feedback_assets.gold_steps"))}
    assert not climbing, f"{path.name} imports {sorted(climbing)}"


def test_what_a_step_reports_travels_without_dagster():
    """A cluster needs only dagster-pipes to send a step's outcome: the outcome module imports no Dagster."""
    probe = "import sys, feedback_assets.outcomes; sys.exit('dagster' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], cwd=REPO, timeout=120).returncode == 0


def test_no_dagster_storage_or_databases_are_committed():
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: nothing is committed here")
    tracked = listed.stdout.split()
    assert not [p for p in tracked if p.startswith("storage/") or p.endswith((".db", ".sqlite"))]


@pytest.mark.parametrize("path", [p for p in modules_in("roi") if p.name not in ("assets.py",)], ids=lambda p: p.name)
def test_roi_logic_knows_no_dagster_and_never_reads_the_sample_answer_key(path):
    climbing = {m for m in imported_modules(path) if m.startswith(("dagster", "feedback_assets.sample_data"))}
    assert not climbing, f"{path.name} imports {sorted(climbing)}"
