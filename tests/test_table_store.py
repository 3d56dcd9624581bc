"""Both table stores keep one contract: per-window overwrite that is idempotent, never touches other days,
refuses rows outside the window, and named parts that replace themselves."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
from pyspark.sql import types as T

from feedback_assets.tables import Layer, Table
from resources.table_store import DeltaTableStore, LocalParquetTableStore, TableStore, table_store_for

SCHEMA = T.StructType([T.StructField("id", T.StringType()), T.StructField("feedback_date", T.DateType())])
DAYS = Table("silver.t", Layer.silver, "A test table of ids by day.", "tests.test_table_store:SCHEMA")
PARTS_BY_DAY = Table("ops.example", Layer.ops, "A test table of day parts.")
UNDATED_PARTS = Table("ops.ledger_example", Layer.ops, "A test ledger: one part per key.", partition_column=None)
D1, D2, D3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)


@pytest.fixture(params=["parquet", "delta"])
def any_store(request, tmp_path) -> TableStore:
    return table_store_for(request.param, str(tmp_path / "warehouse"))


def frame(spark, *rows: tuple[str, date]):
    return spark.createDataFrame(list(rows), SCHEMA)


def ids(spark, store, start=None, end=None) -> list[str]:
    return sorted(r["id"] for r in store.read(spark, DAYS, start, end).collect())


def test_both_stores_satisfy_the_protocol(tmp_path):
    assert isinstance(LocalParquetTableStore(root=str(tmp_path)), TableStore)
    assert isinstance(DeltaTableStore(root=str(tmp_path)), TableStore)


def test_an_unknown_format_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="parquet, delta"):
        table_store_for("orc", "/tmp/x")


def test_reading_a_table_that_was_never_written_gives_no_rows(spark, any_store):
    assert ids(spark, any_store) == []
    assert any_store.partition_days(DAYS) == []


def test_overwrite_replaces_exactly_the_window(spark, any_store):
    any_store.overwrite_partitions(frame(spark, ("a", D1), ("b", D2), ("c", D3)), DAYS, D1, D3)
    any_store.overwrite_partitions(frame(spark, ("b2", D2)), DAYS, D2, D2)
    assert ids(spark, any_store) == ["a", "b2", "c"]
    any_store.overwrite_partitions(frame(spark, ("b2", D2)), DAYS, D2, D2)
    assert ids(spark, any_store) == ["a", "b2", "c"]
    assert ids(spark, any_store, D2, D3) == ["b2", "c"]
    assert any_store.row_counts(DAYS, [D1, D2, D3, date(2026, 10, 4)]) == {D1: 1, D2: 1, D3: 1, date(2026, 10, 4): 0}


def test_a_day_without_rows_ends_up_empty(spark, any_store):
    any_store.overwrite_partitions(frame(spark, ("a", D1), ("b", D2)), DAYS, D1, D2)
    any_store.overwrite_partitions(frame(spark, ("a", D1)), DAYS, D1, D2)
    assert ids(spark, any_store) == ["a"] and any_store.partition_days(DAYS) == [D1]


def test_rows_outside_the_window_are_refused_and_nothing_changes(spark, any_store):
    any_store.overwrite_partitions(frame(spark, ("a", D1)), DAYS, D1, D1)
    with pytest.raises(ValueError, match="rows fall outside 2026-10-01..2026-10-01"):
        any_store.overwrite_partitions(frame(spark, ("x", D1), ("y", D2)), DAYS, D1, D1)
    assert ids(spark, any_store) == ["a"]


def test_spark_rows_read_back_without_spark_with_their_day(spark, any_store):
    any_store.overwrite_partitions(frame(spark, ("a", D1), ("b", D2)), DAYS, D1, D2)
    rows = any_store.read_days(DAYS, [D2])
    assert rows.column("id").to_pylist() == ["b"] and rows.column("feedback_date").to_pylist() == [D2]
    assert any_store.read_parts(DAYS, [D1]).column_names == ["id"]  # as on Parquet, the day lives outside the rows


def test_reading_days_without_spark_gives_each_row_its_day_and_counts(any_store):
    any_store.write_part(PARTS_BY_DAY, D1, "a", pa.table({"n": [1, 2]}))
    any_store.write_part(PARTS_BY_DAY, D2, "a", pa.table({"n": [3]}))
    rows = any_store.read_days(PARTS_BY_DAY, [D1, D2, D3])
    assert sorted(zip(rows["feedback_date"].to_pylist(), rows["n"].to_pylist())) == [(D1, 1), (D1, 2), (D2, 3)]
    assert any_store.read_days(PARTS_BY_DAY, [D3]) is None
    assert any_store.row_counts(PARTS_BY_DAY, [D1, D2, D3]) == {D1: 2, D2: 1, D3: 0}
    assert any_store.read_days(PARTS_BY_DAY, [D1], columns=["n"]).column_names == ["n", "feedback_date"]


def test_a_day_written_with_no_rows_holds_no_data(any_store):
    """An in-process asset records an empty day as an empty part: it is not a day with data."""
    any_store.write_part(PARTS_BY_DAY, D1, "a", pa.table({"n": [1]}))
    any_store.write_part(PARTS_BY_DAY, D2, "a", pa.table({"n": pa.array([], pa.int64())}))
    assert any_store.partition_days(PARTS_BY_DAY) == [D1]
    assert any_store.read_days(PARTS_BY_DAY, [D2]) is None


def test_a_named_part_replaces_itself_and_can_be_deleted(any_store):
    any_store.write_part(UNDATED_PARTS, None, "key-1", pa.table({"status": ["pending"]}))
    any_store.write_part(UNDATED_PARTS, None, "key-2", pa.table({"status": ["posted"]}))
    any_store.write_part(UNDATED_PARTS, None, "key-1", pa.table({"status": ["created"]}))
    assert any_store.read_part(UNDATED_PARTS, None, "key-1").to_pylist() == [{"status": "created"}]
    assert sorted(any_store.read_parts(UNDATED_PARTS).column("status").to_pylist()) == ["created", "posted"]
    any_store.delete_part(UNDATED_PARTS, None, "key-2")
    any_store.delete_part(UNDATED_PARTS, None, "never-written")
    assert any_store.read_part(UNDATED_PARTS, None, "key-2") is None
    assert any_store.read_parts(UNDATED_PARTS).column("status").to_pylist() == ["created"]


def test_delta_writes_are_real_delta_commits_with_history(spark, tmp_path):
    from deltalake import DeltaTable

    store = DeltaTableStore(root=str(tmp_path / "warehouse"))
    store.overwrite_partitions(frame(spark, ("a", D1), ("b", D2)), DAYS, D1, D2)
    store.overwrite_partitions(frame(spark, ("b2", D2)), DAYS, D2, D2)
    table = DeltaTable(str(store.location(DAYS)))
    assert table.metadata().partition_columns == ["feedback_date"]
    operations = [entry["operation"] for entry in table.history()]
    assert operations[0] == "WRITE" and len(operations) == 2
    table.load_as_version(0)
    assert sorted(pa.table(table.to_pyarrow_table()).column("id").to_pylist()) == ["a", "b"]  # the replaced day is still in history


CONCURRENT_WRITER = """
import sys
import pyarrow as pa
from feedback_assets.tables import Layer, Table
from resources.table_store import DeltaTableStore
store = DeltaTableStore(root=sys.argv[1])
table = Table("ops.ledger_example", Layer.ops, "concurrency", partition_column=None)
for n in range(15):
    store.write_part(table, None, f"{sys.argv[2]}-{n}", pa.table({"writer": [sys.argv[2]], "n": [n]}))
"""


def test_concurrent_delta_writers_of_one_table_lose_nothing(tmp_path):
    root = str(tmp_path / "warehouse")
    script = tmp_path / "writer.py"
    script.write_text(CONCURRENT_WRITER)
    repo = str(Path(__file__).resolve().parents[1])
    writers = [subprocess.Popen([sys.executable, str(script), root, name], cwd=repo, env={"PYTHONPATH": repo, "PATH": "/usr/bin:/bin"})
               for name in ("left", "right")]
    assert [w.wait(timeout=300) for w in writers] == [0, 0]
    rows = DeltaTableStore(root=root).read_parts(UNDATED_PARTS)
    assert sorted(zip(rows["writer"].to_pylist(), rows["n"].to_pylist())) == sorted(
        (name, n) for name in ("left", "right") for n in range(15))


class RecordingWriter:
    """Spark's DataFrameWriter as far as the Unity Catalog store uses it: records each call."""

    def __init__(self, calls: list):
        self.calls = calls

    def __getattr__(self, name):
        def record(*args):
            self.calls.append((name, *args))
            return self

        return record


def test_on_databricks_a_window_write_is_a_replace_where_into_the_unity_catalog_table(spark, monkeypatch):
    """What the cluster's Spark is asked to do (this Spark has no Delta): replaceWhere on the window, saveAsTable."""
    store = DeltaTableStore(root="/unused", uc_catalog="main", uc_schema_prefix="feedback_")
    frame = spark.createDataFrame([("a", D1), ("b", D2)], SCHEMA)
    calls: list = []
    monkeypatch.setattr(type(frame), "write", property(lambda self: RecordingWriter(calls)))
    store.overwrite_partitions(frame, DAYS, D1, D2)
    assert calls == [("format", "delta"), ("mode", "overwrite"),
                     ("option", "replaceWhere", "feedback_date >= '2026-10-01' AND feedback_date <= '2026-10-02'"),
                     ("partitionBy", "feedback_date"), ("saveAsTable", "main.feedback_silver.t")]
    with pytest.raises(ValueError, match="rows fall outside"):
        store.overwrite_partitions(frame, DAYS, D1, D1)
    assert len(calls) == 5  # the refused write asked Spark for nothing
