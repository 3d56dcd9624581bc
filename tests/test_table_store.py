"""The local table store: per-day overwrite that is idempotent and never touches other days."""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import types as T

SCHEMA = T.StructType([T.StructField("id", T.StringType()), T.StructField("feedback_date", T.DateType())])


def frame(spark, *rows: tuple[str, date]):
    return spark.createDataFrame(list(rows), SCHEMA)


def ids(spark, store, start=None, end=None) -> list[str]:
    return sorted(r["id"] for r in store.read(spark, "silver.t", SCHEMA, start, end).collect())


def test_reading_a_table_that_was_never_written_gives_no_rows(spark, store):
    assert ids(spark, store) == []


def test_overwrite_replaces_exactly_the_window(spark, store):
    d1, d2, d3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
    store.overwrite_partitions(frame(spark, ("a", d1), ("b", d2), ("c", d3)), "silver.t", d1, d3)
    store.overwrite_partitions(frame(spark, ("b2", d2)), "silver.t", d2, d2)
    assert ids(spark, store) == ["a", "b2", "c"]
    store.overwrite_partitions(frame(spark, ("b2", d2)), "silver.t", d2, d2)
    assert ids(spark, store) == ["a", "b2", "c"]
    assert ids(spark, store, d2, d3) == ["b2", "c"]


def test_a_day_without_rows_ends_up_empty(spark, store):
    d1, d2 = date(2026, 10, 1), date(2026, 10, 2)
    store.overwrite_partitions(frame(spark, ("a", d1), ("b", d2)), "silver.t", d1, d2)
    store.overwrite_partitions(frame(spark, ("a", d1)), "silver.t", d1, d2)
    assert ids(spark, store) == ["a"] and store.partition_days("silver.t") == [d1]


def test_rows_outside_the_window_are_refused_and_nothing_changes(spark, store):
    d1, d2 = date(2026, 10, 1), date(2026, 10, 2)
    store.overwrite_partitions(frame(spark, ("a", d1)), "silver.t", d1, d1)
    with pytest.raises(ValueError, match="rows fall outside 2026-10-01..2026-10-01"):
        store.overwrite_partitions(frame(spark, ("x", d1), ("y", d2)), "silver.t", d1, d1)
    assert ids(spark, store) == ["a"]


def test_reading_days_without_spark_gives_each_row_its_day_and_counts_come_from_the_footers(store):
    import pyarrow as pa

    first, second = date(2026, 10, 1), date(2026, 10, 2)
    store.write_part("ops.example", first, "a", pa.table({"n": [1, 2]}))
    store.write_part("ops.example", second, "a", pa.table({"n": [3]}))
    rows = store.read_days("ops.example", [first, second, date(2026, 10, 3)])
    assert sorted(zip(rows["feedback_date"].to_pylist(), rows["n"].to_pylist())) == [(first, 1), (first, 2), (second, 3)]
    assert store.read_days("ops.example", [date(2026, 10, 3)]) is None
    assert store.row_counts("ops.example", [first, second, date(2026, 10, 3)]) == {first: 2, second: 1, date(2026, 10, 3): 0}
