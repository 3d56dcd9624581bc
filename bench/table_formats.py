"""The demo on Parquet and on Delta (FEEDBACK_TABLE_FORMAT): wall time per phase, warehouse size, same tables.

Each format gets a fresh FEEDBACK_HOME and DAGSTER_HOME and runs what `make demo` runs: seed the
sample, materialize every asset through gold, replay the alerts as dispatch runs. The two
warehouses must hold the same rows per table (`feedback summary`). Usage:

    .venv/bin/python bench/table_formats.py [--days 60] [--formats parquet delta]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FEEDBACK = Path(sys.executable).parent / "feedback"
END_DATE = "2026-11-27"


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def run_demo(table_format: str, days: int, root: Path) -> dict:
    home = root / table_format
    (home / "dagster_home").mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster_home" / "dagster.yaml")
    env = {**os.environ, "FEEDBACK_HOME": str(home / "feedback_home"), "DAGSTER_HOME": str(home / "dagster_home"),
           "FEEDBACK_TABLE_FORMAT": table_format}
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "JIRA_URL", "SLACK_BOT_TOKEN", "FEEDBACK_PARTITIONS_START"):
        env.pop(name, None)
    phases = {}
    for phase, command in (("seed", ["seed", "--days", str(days), "--end-date", END_DATE]), ("materialize", ["materialize"]),
                           ("alerts", ["alerts", "--replay"]), ("summary", ["summary"])):
        started = time.monotonic()
        done = subprocess.run([str(FEEDBACK), *command], env=env, capture_output=True, text=True, cwd=REPO)
        phases[phase] = time.monotonic() - started
        if done.returncode:
            raise SystemExit(f"{table_format} {phase} failed:\n{done.stderr[-3000:]}")
        if phase == "summary":
            summary = [line for line in done.stdout.splitlines() if line.startswith(("bronze.", "silver.", "enrichment."))]
    return {"phases": phases, "bytes": folder_bytes(home / "feedback_home" / "warehouse"), "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--formats", nargs="+", default=["parquet", "delta"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-formats-") as tmp:
        results = {fmt: run_demo(fmt, args.days, Path(tmp)) for fmt in args.formats}
    base = results[args.formats[0]]
    print(f"demo of {args.days} days ({', '.join(args.formats)}), {os.cpu_count()} cores")
    print(f"{'format':<9}{'seed s':>8}{'materialize s':>15}{'alerts s':>10}{'warehouse MB':>14}{'materialize ×':>15}")
    for fmt, result in results.items():
        p = result["phases"]
        print(f"{fmt:<9}{p['seed']:>8.1f}{p['materialize']:>15.1f}{p['alerts']:>10.1f}{result['bytes'] / 1e6:>14.1f}"
              f"{p['materialize'] / base['phases']['materialize']:>15.2f}")
    same = all(result["summary"] == base["summary"] for result in results.values())
    print(f"same rows per table in every format: {same}")
    if not same:
        for fmt, result in results.items():
            print(fmt, *result["summary"], sep="\n  ")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
