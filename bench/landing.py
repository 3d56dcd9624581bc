"""Landing throughput: records per second from export file to landed parts, for CSV and JSON Lines.

Builds one CSV of product reviews and one JSON Lines file of support tickets from the real review
texts in ../shared/data (recycled), then lands each with the registry exactly as `feedback ingest`
does (parse, map, route by day, write parts, ledger row). Each file is landed three times into a
fresh warehouse; the best time counts.

    .venv/bin/python bench/landing.py [--records 100000]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.local_classifier import real_reviews  # noqa: E402
from feedback_assets.landing.mapping import load_preset  # noqa: E402
from feedback_assets.landing.registry import LandingRegistry  # noqa: E402
from resources.table_store import LocalParquetTableStore  # noqa: E402

START = datetime(2026, 10, 1, tzinfo=UTC)


def reviews_csv(texts: list[str], count: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["review_id", "submitted_at", "product_sku", "variant", "stars", "headline", "body",
                     "reviewer_email", "customer_id", "order_ref", "ship_region"])
    for n in range(count):
        when = (START + timedelta(minutes=n % 43_200)).isoformat()
        writer.writerow([f"R{n}", when, "JKT-1042", "M", str(1 + n % 5), "Review", texts[n % len(texts)],
                         f"c{n}@example.com", f"C{n % 5000}", f"ORD-{n:06d}", "us_west"])
    return out.getvalue().encode()


def tickets_jsonl(texts: list[str], count: int) -> bytes:
    lines = []
    for n in range(count):
        record = {"ticket_id": f"T{n}", "created_at": int(START.timestamp()) + 60 * (n % 43_200),
                  "subject": "Order question", "region": "us_east", "requester": {"id": f"U{n % 5000}"},
                  "order": {"id": f"ORD-{n:06d}", "sku": "ELC-2207"},
                  "transcript": [{"role": "customer", "text": texts[n % len(texts)]}, {"role": "agent", "text": "Thanks"}]}
        lines.append(json.dumps(record, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode()


def land_seconds(content: bytes, mapping_name: str, suffix: str, repeats: int = 3) -> float:
    best = float("inf")
    mapping = load_preset(mapping_name)
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as root:
            source = Path(root, f"export.{suffix}")
            source.write_bytes(content)
            registry = LandingRegistry(Path(root, "landing"), LocalParquetTableStore(root=str(Path(root, "wh"))),
                                       date(2024, 1, 1))
            staged = registry.stage(source, mapping)
            started = time.perf_counter()
            registry.register(staged, mapping, "bench", now=datetime(2026, 11, 30, tzinfo=UTC))
            best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    texts = [item.text for item in real_reviews(5_000)]
    for name, mapping, suffix, content in (
        ("CSV (product_reviews)", "product_reviews", "csv", reviews_csv(texts, args.records)),
        ("JSON Lines (support_tickets)", "support_tickets", "jsonl", tickets_jsonl(texts, args.records)),
    ):
        seconds = land_seconds(content, mapping, suffix)
        print(f"{name:<30} {args.records:,} records, {len(content) / 1e6:.1f} MB: {seconds:.2f} s, "
              f"{args.records / seconds:,.0f} records/s")


if __name__ == "__main__":
    main()
