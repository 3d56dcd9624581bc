"""Hostile files at the front door: every record of every file ends in bronze or in a reject with a reason.

The corpus (`tests/corpus/bad_inputs.py`, generated, 50+ files over CSV and JSON Lines) lands in one
sweep next to good files, then bronze and silver run over it as they would in production. Each file
must have its expected outcome: the ledger status, the records landed, and what silver accepted,
rejected (by reason) or dropped (field values). The scenarios below the corpus cover what a single
file cannot show: an unforeseen failure, a file still being written, concurrent ingests, re-landing
with a corrected mapping.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from feedback_assets import tables
from feedback_assets.landing.mapping import FEEDBACK_CHANNELS, MappingError, load_mapping, load_preset
from feedback_assets.landing.registry import LandingRegistry, display_name
from feedback_assets.schemas import BRONZE_FEEDBACK, SILVER_FEEDBACK, SILVER_REJECTS
from feedback_assets.steps import run_bronze, run_silver_feedback
from feedback_assets.window import DayWindow
from resources.table_store import LocalParquetTableStore
from tests.conftest import TEST_PARTITIONS_START
from tests.corpus.bad_inputs import CASES, REVIEWS_HEADER, Case, review, reviews, ticket, write_corpus

WINDOW = DayWindow(date(2026, 9, 28), date(2026, 10, 12))
FEEDBACK = Path(sys.executable).parent / "feedback"


def _ledger_name(case: Case) -> str:
    return display_name(f"{case.mapping}/{case.file_name}")


@pytest.fixture(scope="module")
def outcome(spark, tmp_path_factory):
    """The corpus landed in one sweep, then bronze and silver over its days; counts per source file."""
    home = tmp_path_factory.mktemp("bad_inputs")
    store = LocalParquetTableStore(root=str(home / "warehouse"))
    registry = LandingRegistry(home / "landing", store, TEST_PARTITIONS_START, settle_seconds=0)
    write_corpus(home / "landing")
    registrations = {r.file: r for r in registry.register_pending("corpus")}
    for channel in FEEDBACK_CHANNELS:
        run_bronze(spark, store, registry, channel, WINDOW, "corpus")
    silver_report = run_silver_feedback(spark, store, WINDOW, "test-key", 20_000, 7)

    def by_file(table: str, schema, *columns: str) -> dict:
        frame = store.read(spark, table, WINDOW.start, WINDOW.end)
        return {tuple(r[c] for c in ("source_file", *columns)): r["count"]
                for r in frame.groupBy("source_file", *columns).count().collect()}

    bronze = {}
    for channel in FEEDBACK_CHANNELS:
        bronze.update(by_file(tables.BRONZE[channel], BRONZE_FEEDBACK))
    silver = store.read(spark, tables.SILVER_FEEDBACK, WINDOW.start, WINDOW.end)
    dropped = {(r["source_file"], r["field"]): r["count"] for r in silver.select(
        "source_file", F.explode(F.map_keys("field_issues")).alias("field")).groupBy("source_file", "field").count().collect()}
    return {
        "registrations": registrations, "bronze": bronze, "silver": by_file(tables.SILVER_FEEDBACK, SILVER_FEEDBACK),
        "rejects": by_file(tables.SILVER_REJECTS, SILVER_REJECTS, "reason"), "dropped": dropped,
        "silver_report": silver_report, "ledger": {row["file"]: row for row in registry.ledger()},
    }


def test_the_corpus_is_large_varied_and_every_file_is_distinct():
    contents = [case.build("x") for case in CASES]
    assert len(CASES) >= 40
    assert {case.file_name.rsplit(".", 1)[1] for case in CASES} == {"csv", "jsonl"}
    assert len({hashlib.sha256(c).hexdigest() for c in contents}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name.rsplit("_2026", 1)[0] for c in CASES])
def test_each_file_has_its_outcome_and_every_record_is_accounted_for(outcome, case: Case):
    name, expected = _ledger_name(case), case.expected
    registration = outcome["registrations"][name]
    assert registration.status == expected.status, registration.error
    assert outcome["ledger"][name]["status"] == expected.status
    if expected.error:
        assert expected.error in (registration.error or "")
    assert registration.rows == expected.records
    landed = outcome["bronze"].get((name,), 0)
    silver = outcome["silver"].get((name,), 0)
    rejects = {reason: n for (file, reason), n in outcome["rejects"].items() if file == name}
    dropped = {column: n for (file, column), n in outcome["dropped"].items() if file == name}
    assert (landed, silver, rejects, dropped) == (expected.records, expected.silver, expected.rejects, expected.dropped)
    assert landed == silver + sum(rejects.values())


def test_silver_reconciles_and_reports_the_dropped_values(outcome):
    report = outcome["silver_report"]
    assert report.unreconciled_days == []
    expected = Counter()
    for case in CASES:
        expected.update(case.expected.dropped)
    assert report.field_issues == dict(expected)


def test_the_counts_ingest_prints_are_the_records_that_landed(outcome):
    for case in CASES:
        registration = outcome["registrations"][_ledger_name(case)]
        assert registration.rows == outcome["bronze"].get((_ledger_name(case),), 0)


# ---- scenarios ------------------------------------------------------------------------------


def _landed_ids(store: LocalParquetTableStore, table: str) -> list[str]:
    parts = store.read_parts(table, store.partition_days(table))
    return [] if parts is None else parts.column("source_id").to_pylist()


def test_an_unforeseen_failure_quarantines_that_file_only_and_is_not_retried_every_sweep(registry, store, monkeypatch):
    folder = registry.landing_dir / "product_reviews"
    folder.mkdir(parents=True)
    (folder / "good_2026-10-05.csv").write_bytes(reviews("ok", *[review("ok", n) for n in (1, 2)]))
    (folder / "cursed_2026-10-05.csv").write_bytes(reviews("cursed", review("cursed", 1)))
    import feedback_assets.landing.registry as registry_module

    real = registry_module.read_records

    def cursed(path, mapping):
        if "cursed" in path.name:
            raise RuntimeError("something nobody foresaw")
        return real(path, mapping)

    monkeypatch.setattr(registry_module, "read_records", cursed)
    registry.settle_seconds = 0
    outcomes = {r.file: r for r in registry.register_pending("sweep-1")}
    assert outcomes["product_reviews/good_2026-10-05.csv"].status == "registered"
    quarantined = outcomes["product_reviews/cursed_2026-10-05.csv"]
    assert quarantined.status == "quarantined" and "RuntimeError: something nobody foresaw" in quarantined.error
    assert sorted(_landed_ids(store, tables.LANDED_FEEDBACK["product_reviews"])) == ["ok-R1", "ok-R2"]
    assert registry.register_pending("sweep-2") == []

    monkeypatch.setattr(registry_module, "read_records", real)
    path = folder / "cursed_2026-10-05.csv"
    assert registry.register(path, load_preset("product_reviews"), "retry").status == "quarantined"  # same mapping: kept
    assert registry.register(path, load_preset("product_reviews"), "retry", replace=True).status == "registered"
    assert sorted(_landed_ids(store, tables.LANDED_FEEDBACK["product_reviews"])) == ["cursed-R1", "ok-R1", "ok-R2"]


def test_a_file_still_being_written_waits_and_a_file_that_grew_lands_whole_once(registry, store):
    folder = registry.landing_dir / "support_tickets"
    folder.mkdir(parents=True)
    path = folder / "tickets_2026-10-05.jsonl"
    records = [json.dumps(ticket("grow", n)) for n in range(1, 7)]
    path.write_text("\n".join(records[:3]) + "\n" + records[3][:40])  # cut off mid-record by the writer

    registry.settle_seconds = 30
    waiting = registry.sweep()
    assert not waiting.pending and "still being written" in waiting.skipped[0].reason

    # The writer paused for longer than the settle time: the sweep lands what is there.
    later = registry.sweep(now=datetime.now(UTC) + timedelta(minutes=5))
    assert [p.path for p in later.pending] == [path]
    registry.settle_seconds = 0
    (half,) = registry.register_pending("sweep-1")
    assert (half.status, half.rows, half.rows_with_errors) == ("registered", 4, 1)

    with path.open("a") as handle:
        handle.write(records[3][40:] + "\n" + "\n".join(records[4:]) + "\n")
    (whole,) = registry.register_pending("sweep-2")
    assert (whole.status, whole.rows, whole.rows_with_errors) == ("registered", 6, 0)
    assert whole.replaced_days == [date(2026, 10, 5)]
    assert sorted(_landed_ids(store, tables.LANDED_FEEDBACK["support_tickets"])) == [f"grow-T{n}" for n in range(1, 7)]
    statuses = sorted(row["status"] for row in registry.ledger())
    assert statuses == ["registered", "superseded"]


def test_concurrent_ingests_of_one_file_land_it_once(tmp_path):
    env = {**os.environ, "FEEDBACK_HOME": str(tmp_path / "home"), "FEEDBACK_PARTITIONS_START": "2024-01-01"}
    export = tmp_path / "reviews_2026-10-05.csv"
    export.write_bytes(reviews("conc", *[review("conc", n) for n in range(1, 51)]))
    command = [str(FEEDBACK), "ingest", "--source", "product_reviews", "--file", str(export)]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    said = [out for out, _ in outputs]
    assert sum(out.startswith("Landed") for out in said) == 1
    assert sum("was landed before" in out for out in said) == 2
    store = LocalParquetTableStore(root=str(tmp_path / "home" / "warehouse"))
    assert sorted(_landed_ids(store, tables.LANDED_FEEDBACK["product_reviews"])) == sorted(f"conc-R{n}" for n in range(1, 51))


def _custom_mapping(tmp_path: Path, channel: str, text: str) -> Path:
    path = tmp_path / f"acme_{channel}.yaml"
    path.write_text(
        "name: acme_reviews\ncontract: feedback\nchannel: " + channel + "\nformat: csv\n"
        "timestamp: {field: submitted_at, format: iso8601}\nrating_scale: [1, 5]\n"
        "fields:\n  source_id: review_id\n  text: " + text + "\n  rating: stars\n  sku: product_sku\n"
    )
    return path


def test_a_file_landed_with_the_wrong_mapping_can_be_landed_again_with_the_corrected_one(registry, store, tmp_path):
    export = tmp_path / "acme_2026-10-05.csv"
    export.write_bytes(reviews("acme", *[review("acme", n) for n in (1, 2, 3)]))
    wrong = load_mapping(_custom_mapping(tmp_path, "surveys", "headline"))
    landed = registry.register(registry.stage(export, wrong, tmp_path / "acme_surveys.yaml"), wrong, "first")
    assert landed.status == "registered" and len(_landed_ids(store, tables.LANDED_FEEDBACK["surveys"])) == 3

    right = load_mapping(_custom_mapping(tmp_path, "product_reviews", "[headline, body]"))
    staged = registry.stage(export, right, tmp_path / "acme_product_reviews.yaml")
    assert registry.register(staged, right, "again").status == "already_registered"
    relanded = registry.register(staged, right, "again", replace=True)
    assert (relanded.status, relanded.rows, relanded.replaced_days) == ("registered", 3, [date(2026, 10, 5)])
    assert _landed_ids(store, tables.LANDED_FEEDBACK["surveys"]) == []
    texts = store.read_parts(tables.LANDED_FEEDBACK["product_reviews"], [date(2026, 10, 5)]).column("text").to_pylist()
    assert len(texts) == 3 and all("runs small in the shoulders" in t for t in texts)
    # Later drops into the folder use the corrected mapping.
    assert registry.mapping_for_folder(registry.landing_dir / "acme_reviews").channel == "product_reviews"


def test_a_custom_mapping_cannot_take_a_presets_name(registry, tmp_path):
    custom = tmp_path / "mine.yaml"
    custom.write_text((Path(__file__).parents[1] / "feedback_assets/landing/mappings/product_reviews.yaml").read_text()
                      .replace("text: [headline, body]", "text: headline"))
    export = tmp_path / "r.csv"
    export.write_bytes(reviews("preset", review("preset", 1)))
    with pytest.raises(MappingError, match="the name of a preset"):
        registry.stage(export, load_mapping(custom), custom)
    assert not (registry.landing_dir / "product_reviews" / "_mapping.yaml").exists()


def test_a_refused_file_is_tried_again_when_its_mapping_changes(registry, tmp_path):
    export = tmp_path / "x_2026-10-05.csv"
    export.write_bytes(f"{REVIEWS_HEADER}\n{review('retry', 1)}\n".replace("submitted_at", "created").encode())
    strict = load_preset("product_reviews")
    staged = registry.stage(export, strict)
    assert registry.register(staged, strict, "a").status == "rejected"
    again = registry.register(staged, strict, "b")
    assert again.status == "rejected" and again.repeat
    fixed = strict.model_copy(update={"timestamp": strict.timestamp.model_copy(update={"field": "created"})})
    assert registry.register(staged, fixed, "c").status == "registered"


def test_a_folder_without_a_usable_mapping_is_reported_not_silently_ignored(registry):
    folder = registry.landing_dir / "no_such_preset"
    folder.mkdir(parents=True)
    (folder / "lost.csv").write_text("a,b\n1,2\n")
    sweep = registry.sweep()
    assert sweep.pending == [] and "no usable mapping" in sweep.skipped[0].reason


@pytest.mark.parametrize(("content", "exit_code", "message"), [
    (b"", 1, "the file is empty"),
    (REVIEWS_HEADER.encode() + b"\n", 0, "it holds no records (a header only)"),
    (REVIEWS_HEADER.encode() + b",body\n", 1, "appear more than once"),
])
def test_the_cli_answers_every_bad_file_with_one_line_and_no_traceback(feedback_home, tmp_path, content, exit_code, message):
    from tests.test_cli import invoke

    export = tmp_path / "reviews_2026-10-05.csv"
    export.write_bytes(content)
    result = invoke("ingest", "--source", "product_reviews", "--file", str(export))
    assert result.exit_code == exit_code and message in result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    again = invoke("ingest", "--source", "product_reviews", "--file", str(export))
    assert again.exit_code == exit_code and "Traceback" not in again.output
