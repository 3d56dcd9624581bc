"""The project's wheel, as a Databricks task installs it: built from this checkout, checked before upload."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What the cluster must find inside the wheel besides the code: configuration, taxonomy and prompts.
REQUIRED_DATA = ("config/alerting.yaml", "config/priority.yaml", "config/support_macros.yaml", "config/evaluation.yaml",
                 "prompts/taxonomy.yaml", "prompts/few_shot.yaml", "prompts/golden/golden_v1.jsonl",
                 "prompts/taxonomy_history/changelog.jsonl", "feedback_assets/landing/mappings/product_reviews.yaml",
                 "feedback_assets/pipes_entrypoint.py")
# A Databricks runtime brings its own Spark: the wheel must never ask pip for another one.
CLUSTER_PROVIDED = ("pyspark", "dagster-pyspark", "dagster-spark", "databricks-connect")


@dataclass(frozen=True)
class WheelReport:
    path: Path
    requires: list[str]  # unconditional requirements (what pip installs on the cluster)
    entry_points: str
    missing_data: list[str]
    cluster_conflicts: list[str]

    @property
    def ok(self) -> bool:
        return not self.missing_data and not self.cluster_conflicts and "feedback-pipes-step" in self.entry_points


def build_wheel(out_dir: Path, repo: Path = REPO) -> Path:
    """Builds the wheel with pip (no dependencies bundled) and returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob("*.whl"))
    had_build_dir = (repo / "build").exists()
    try:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out_dir), str(repo)],
                       check=True, capture_output=True, text=True)
    finally:
        if not had_build_dir:  # setuptools builds in the source tree; leave the checkout as it was
            shutil.rmtree(repo / "build", ignore_errors=True)
    built = sorted(set(out_dir.glob("feedback_to_fix-*.whl")) - before) or sorted(out_dir.glob("feedback_to_fix-*.whl"))
    return built[-1]


def inspect_wheel(path: Path) -> WheelReport:
    with zipfile.ZipFile(path) as wheel:
        names = set(wheel.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(wheel.read(info).decode())
        entry = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
        entry_points = wheel.read(entry).decode() if entry else ""
    requires = [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]
    names_only = {r.split(";")[0].split("=")[0].split("<")[0].split(">")[0].strip().lower() for r in requires}
    return WheelReport(path, requires, entry_points, [d for d in REQUIRED_DATA if d not in names],
                       sorted(set(CLUSTER_PROVIDED) & names_only))
