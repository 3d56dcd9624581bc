"""Bronze → silver throughput on local Spark at 10k, 100k and 1M rows, and how cost grows with size.

Bronze rows are built from the real review exports in ../shared/data (recycled, with PII, HTML,
duplicates and resubmissions mixed in), written straight into bronze tables, then the silver step
runs exactly as the silver_feedback asset runs it. Usage:

    .venv/bin/python bench/silver_throughput.py [--sizes 10000 100000 1000000] [--days 10]
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from feedback_assets.landing.mapping import FEEDBACK_CHANNELS, Contract
from feedback_assets.landing.contract import landed_arrow_schema
from feedback_assets import tables
from feedback_assets.steps import run_silver_feedback
from feedback_assets.window import DayWindow
from resources.settings import read_settings
from resources.spark import local_spark_session
from resources.table_store import LocalParquetTableStore

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PII_SNIPPETS = [" Call me on (415) 555-0132.", " My email is jane.doe@example.com", " Card 4111 1111 1111 1111 charged twice.",
                " Ship to 221 Baker Street, Apt 4B."]


def real_texts() -> list[str]:
    texts = []
    for name, column in [("womens_clothing_ecommerce_reviews.csv", "Review Text"),
                         ("amazon_datafiniti_device_reviews_5k.csv", "reviews.text")]:
        with (SHARED_DATA / name).open(encoding="utf-8-sig", newline="") as handle:
            texts += [row[column] for row in csv.DictReader(handle) if row[column].strip()]
    if not texts:
        sys.exit(f"no review texts found under {SHARED_DATA}")
    return texts


def bronze_rows(texts: list[str], count: int, days: list[date], rng: random.Random) -> dict[date, list[dict]]:
    by_day: dict[date, list[dict]] = {day: [] for day in days}
    template = {name: None for name in landed_arrow_schema(Contract.feedback).names}
    ingested = datetime(2026, 11, 1, tzinfo=UTC)
    for index in range(count):
        day = days[index % len(days)]
        text = texts[index % len(texts)]
        roll = rng.random()
        if roll < 0.04:
            text += rng.choice(PII_SNIPPETS)
        elif roll < 0.06:
            text = f"<p>{text}</p><br>"
        source_id = f"S{index}" if rng.random() > 0.01 else f"S{max(index - 1, 0)}"
        by_day[day].append({
            **template, "source_id": source_id, "text": text, "rating": str(rng.randint(1, 5)),
            "customer_ref": f"C-{rng.randint(1, count // 3 + 1)}", "sku": f"SKU-{index % 500}", "region": "us_west",
            "event_at": datetime.combine(day, datetime.min.time(), UTC) + timedelta(seconds=index % 86_400),
            "date_origin": "event", "raw_record": "{}", "encoding_error": False, "rating_scale_low": 1.0,
            "rating_scale_high": 5.0, "channel": FEEDBACK_CHANNELS[index % len(FEEDBACK_CHANNELS)],
            "source_file": "bench.csv", "source_line": index + 2, "file_sha256": "bench", "mapping": "bench",
            "ingested_at": ingested, "ingest_run_id": "bench",
        })
    return by_day


def write_bronze(store: LocalParquetTableStore, rows_by_day: dict[date, list[dict]]) -> None:
    schema = landed_arrow_schema(Contract.feedback)
    for day, rows in rows_by_day.items():
        for channel in FEEDBACK_CHANNELS:
            channel_rows = [r for r in rows if r["channel"] == channel]
            store.write_part(tables.BRONZE[channel], day, "bench", pa.Table.from_pylist(channel_rows, schema=schema))


def measure(spark, texts: list[str], count: int, day_count: int, workdir: Path) -> float:
    store = LocalParquetTableStore(root=str(workdir / f"warehouse_{count}"))
    days = [date(2026, 10, 1) + timedelta(days=offset) for offset in range(day_count)]
    write_bronze(store, bronze_rows(texts, count, days, random.Random(count)))
    started = time.perf_counter()
    report = run_silver_feedback(spark, store, DayWindow(days[0], days[-1]), "bench-key", 20_000, lookback_days=7)
    elapsed = time.perf_counter() - started
    assert report.silver_rows + report.reject_rows == count and not report.unreconciled_days
    print(f"{count:>10,} rows  {elapsed:8.1f} s  {count / elapsed:>9,.0f} rows/s  "
          f"(silver {report.silver_rows:,}, rejects {report.reject_rows:,}, redactions {sum(report.pii_redactions.values()):,})",
          flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--days", type=int, default=10, help="days the rows are spread over (one ranged run)")
    args = parser.parse_args()
    texts = real_texts()
    with tempfile.TemporaryDirectory() as workdir:
        config = replace(read_settings(), feedback_home=Path(workdir))
        spark = local_spark_session(config)
        print(f"bronze → silver on {config.spark_master}, {args.days} days per run, {len(texts):,} distinct real texts")
        measure(spark, texts, 2_000, args.days, Path(workdir))  # warm-up: JVM, Python workers, code generation
        timings = {size: measure(spark, texts, size, args.days, Path(workdir)) for size in args.sizes}
        sizes = sorted(timings)
        for small, large in zip(sizes, sizes[1:], strict=False):
            print(f"{large:,} vs {small:,} rows: {large / small:.0f}× the rows took {timings[large] / timings[small]:.2f}× the time")
        spark.stop()


if __name__ == "__main__":
    main()
