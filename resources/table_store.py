"""Logical tables mapped to physical storage, with idempotent per-window writes.

Everything that reads or writes a table types against `TableStore`. Two implementations:

- `LocalParquetTableStore` (the default): Parquet under `<root>/<schema>/<table>/feedback_date=<day>/`.
- `DeltaTableStore`: Delta tables. Locally (and on any path a cluster can reach) through delta-rs
  from Arrow, with a predicate overwrite of the window; on Databricks with `uc_catalog` set, through
  the cluster's Spark with `replaceWhere` and `saveAsTable` into Unity Catalog.

Either way a window write replaces exactly the window's days and refuses rows outside it. Small
operational tables (ledgers, caches, landed exports) are written as named parts: one part file per
name on Parquet, one `_part` partition on Delta.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from feedback_assets.tables import PARTITION_COLUMN, Table, TableLocations
from feedback_assets.window import days_in

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from resources.settings import Settings

PART_COLUMN = "_part"


@runtime_checkable
class TableStore(Protocol):
    """What steps, assets and alerting need from storage, whatever the format."""

    def describe(self, table: Table) -> str:
        """Where the table lives, for logs and metadata (a folder or `catalog.schema.table`)."""

    def read(self, spark: SparkSession, table: Table, start: date | None = None,
             end: date | None = None) -> DataFrame:
        """Rows whose feedback_date lies in [start, end] (all rows without bounds); empty when never written."""

    def overwrite_partitions(self, df: DataFrame, table: Table, start: date, end: date) -> None:
        """Replaces exactly the days in [start, end]; a day with no rows ends up empty; rows outside are refused."""

    def write_part(self, table: Table, day: date | None, part_name: str, rows: pa.Table) -> None:
        """Writes one named part (idempotent: the same name replaces itself atomically)."""

    def read_part(self, table: Table, day: date | None, part_name: str) -> pa.Table | None:
        """One named part, or None."""

    def delete_part(self, table: Table, day: date | None, part_name: str) -> None:
        """Removes one named part (nothing happens when it is not there)."""

    def read_parts(self, table: Table, days: Iterable[date] | None = None) -> pa.Table | None:
        """Rows without Spark, without their feedback_date: the undated parts, or the rows of `days`."""

    def read_days(self, table: Table, days: Iterable[date], columns: list[str] | None = None) -> pa.Table | None:
        """Rows of `days` without Spark, with their feedback_date."""

    def partition_days(self, table: Table) -> list[date]:
        """The days that hold at least one row, ascending."""

    def row_counts(self, table: Table, days: Iterable[date]) -> dict[date, int]:
        """Rows stored for each day (0 for a day never written), from file metadata where the format has it."""


@dataclass(frozen=True)
class _Rows:
    """Which rows of a Delta table: some days (or the undated ones) and optionally one named part.

    Rendered as SQL for Delta's predicates (`replaceWhere`, delete), and matched against files' partition values for reads.
    """

    days: tuple[date, ...] | None = None  # None: no condition on the day
    undated: bool = False
    part: str | None = None

    def sql(self) -> str:
        clauses = []
        if self.undated:
            clauses.append(f"{PARTITION_COLUMN} IS NULL")
        elif self.days is not None:
            clauses.append(f"{PARTITION_COLUMN} IN ({', '.join(repr(d.isoformat()) for d in self.days)})")
        if self.part is not None:
            clauses.append(f"{PART_COLUMN} = '{self.part}'")
        return " AND ".join(clauses) or "TRUE"

    def holds(self, live: _LiveFile) -> bool:
        """Whether a file's rows are selected (the store partitions by every column it selects on)."""
        if self.undated and live.day is not None:
            return False
        if self.days is not None and live.day not in self.days:
            return False
        return self.part is None or live.part == self.part


@dataclass(frozen=True)
class _LiveFile:
    path: str
    day: date | None
    part: str | None
    rows: int


def _read_files(files: list[_LiveFile], columns: list[str] | None) -> pa.Table | None:
    """The rows of Delta data files, with the partition columns (which live in the log, not the files) added back."""
    tables = []
    for live in files:
        wanted = None if columns is None else [c for c in columns if c not in (PARTITION_COLUMN, PART_COLUMN)]
        rows = pq.read_table(live.path, columns=wanted)
        if live.part is not None and (columns is None or PART_COLUMN in columns):
            rows = rows.append_column(PART_COLUMN, pa.array([live.part] * rows.num_rows, pa.string()))
        if columns is None or PARTITION_COLUMN in columns:
            rows = rows.append_column(PARTITION_COLUMN, pa.array([live.day] * rows.num_rows, pa.date32()))
        tables.append(rows)
    return pa.concat_tables(tables, promote_options="default") if tables else None


def _refuse_rows_outside(table: Table, start: date, end: date, days_present: Iterable[date | None]) -> None:
    stray = sorted({str(day) for day in days_present if day is None or not start <= day <= end})
    if stray:
        raise ValueError(f"refusing to write {table}: rows fall outside {start}..{end} ({', '.join(stray[:3])})")


def _with_day(rows: pa.Table, day: date) -> pa.Table:
    return rows.append_column(PARTITION_COLUMN, pa.array([day] * rows.num_rows, pa.date32()))


class LocalParquetTableStore(dg.ConfigurableResource):
    """Parquet tables on the local file system, one folder per `feedback_date`."""

    root: str

    def location(self, table: Table) -> Path:
        return TableLocations(self.root).path(table)

    def describe(self, table: Table) -> str:
        return str(self.location(table))

    def _partition_dir(self, table: Table, day: date) -> Path:
        return self.location(table) / f"{PARTITION_COLUMN}={day.isoformat()}"

    def partition_days(self, table: Table) -> list[date]:
        folder = self.location(table)
        if not folder.exists():
            return []
        prefix = f"{PARTITION_COLUMN}="
        return sorted(
            date.fromisoformat(child.name.removeprefix(prefix))
            for child in folder.iterdir()
            if child.is_dir() and child.name.startswith(prefix)
            and any(pq.ParquetFile(path).metadata.num_rows for path in child.glob("*.parquet"))
        )

    def row_counts(self, table: Table, days: Iterable[date]) -> dict[date, int]:
        counts = {}
        for day in days:
            folder = self._partition_dir(table, day)
            files = sorted(folder.glob("*.parquet")) if folder.exists() else []
            counts[day] = sum(pq.ParquetFile(path).metadata.num_rows for path in files)
        return counts

    def read(self, spark: SparkSession, table: Table, start: date | None = None, end: date | None = None) -> DataFrame:
        days = [
            day
            for day in self.partition_days(table)
            if (start is None or day >= start) and (end is None or day <= end)
        ]
        if not days:
            return spark.createDataFrame([], table.schema)
        paths = [str(self._partition_dir(table, day)) for day in days]
        return (
            spark.read.schema(table.schema)
            .option("basePath", str(self.location(table)))
            .parquet(*paths)
        )

    def overwrite_partitions(self, df: DataFrame, table: Table, start: date, end: date) -> None:
        target = self.location(table)
        staging = target.parent / f".{target.name}.staging-{uuid.uuid4().hex}"
        df.write.mode("overwrite").partitionBy(PARTITION_COLUMN).parquet(str(staging))
        try:
            written = [
                None if child.name.endswith("__HIVE_DEFAULT_PARTITION__") else date.fromisoformat(child.name.split("=", 1)[1])
                for child in staging.iterdir()
                if child.is_dir() and child.name.startswith(f"{PARTITION_COLUMN}=")
            ]
            _refuse_rows_outside(table, start, end, written)
            for day in days_in(start, end):
                self._replace_dir(staging / f"{PARTITION_COLUMN}={day.isoformat()}", self._partition_dir(table, day))
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _replace_dir(source: Path, destination: Path) -> None:
        retired = destination.with_name(f".{destination.name}.old-{uuid.uuid4().hex}")
        if destination.exists():
            destination.rename(retired)
        if source.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            source.rename(destination)
        shutil.rmtree(retired, ignore_errors=True)

    def _part_path(self, table: Table, day: date | None, part_name: str) -> Path:
        return (self._partition_dir(table, day) if day else self.location(table)) / f"{part_name}.parquet"

    def write_part(self, table: Table, day: date | None, part_name: str, rows: pa.Table) -> None:
        path = self._part_path(table, day, part_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.parent / f".{part_name}.{uuid.uuid4().hex}.tmp"
        pq.write_table(rows, temporary)
        os.replace(temporary, path)

    def read_part(self, table: Table, day: date | None, part_name: str) -> pa.Table | None:
        path = self._part_path(table, day, part_name)
        return pq.read_table(path) if path.exists() else None

    def delete_part(self, table: Table, day: date | None, part_name: str) -> None:
        self._part_path(table, day, part_name).unlink(missing_ok=True)

    def read_parts(self, table: Table, days: Iterable[date] | None = None) -> pa.Table | None:
        folders = [self.location(table)] if days is None else [self._partition_dir(table, d) for d in days]
        files = sorted(f for folder in folders if folder.exists() for f in folder.glob("*.parquet"))
        if not files:
            return None
        return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")

    def read_days(self, table: Table, days: Iterable[date], columns: list[str] | None = None) -> pa.Table | None:
        tables = []
        for day in days:
            parts = self.read_parts(table, [day])
            if parts is not None and parts.num_rows:
                if columns is not None:
                    parts = parts.select([c for c in columns if c != PARTITION_COLUMN])
                tables.append(_with_day(parts, day))
        return pa.concat_tables(tables, promote_options="default") if tables else None


class DeltaTableStore(dg.ConfigurableResource):
    """Delta tables: delta-rs from Arrow on paths under `root`, or Spark into Unity Catalog when `uc_catalog` is set.

    Window writes are predicate overwrites on `feedback_date` (`replaceWhere` on Databricks), so
    re-running or backfilling a day replaces exactly that day. Concurrent writers of one table retry
    a conflicting commit.
    """

    root: str
    uc_catalog: str | None = None
    uc_schema_prefix: str = ""
    commit_attempts: int = 5

    # ---- where tables live
    def _locations(self) -> TableLocations:
        return TableLocations(self.root, self.uc_catalog, self.uc_schema_prefix)

    def location(self, table: Table) -> Path:
        return self._locations().path(table)

    def describe(self, table: Table) -> str:
        return self._locations().qualified_name(table) if self.uc_catalog else str(self.location(table))

    @property
    def _on_spark(self) -> bool:
        return bool(self.uc_catalog)

    # ---- delta-rs helpers
    def _delta(self, table: Table):
        from deltalake import DeltaTable

        path = self.location(table)
        return DeltaTable(str(path)) if DeltaTable.is_deltatable(str(path)) else None

    def _live_files(self, table: Table) -> list[_LiveFile]:
        """Every file of the table's current version with its partition values, from the Delta log (no data read).

        Reads go through these files with pyarrow rather than through delta-rs's Arrow dataset, whose
        scanner threads intermittently abort the interpreter at exit. The files are complete: the
        store never writes deletion vectors, so a live file holds exactly its live rows.
        """
        delta = self._delta(table)
        if delta is None:
            return []
        actions = pa.table(delta.get_add_actions(flatten=True))

        def column(name: str) -> list:
            key = f"partition.{name}"
            return actions.column(key).to_pylist() if key in actions.column_names else [None] * actions.num_rows

        root = self.location(table)
        return [_LiveFile(str(root / path), day, part, rows) for path, day, part, rows in zip(
            actions.column("path").to_pylist(), column(PARTITION_COLUMN), column(PART_COLUMN),
            actions.column("num_records").to_pylist(), strict=True)]

    def _commit(self, table: Table, rows: pa.Table, predicate: str | None, partition_by: list[str]) -> None:
        from deltalake import write_deltalake
        from deltalake.exceptions import CommitFailedError

        path = self.location(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, self.commit_attempts + 1):
            try:
                write_deltalake(str(path), rows, mode="overwrite", predicate=predicate, partition_by=partition_by or None)
                return
            except CommitFailedError:
                if attempt == self.commit_attempts:
                    raise
                time.sleep(0.05 * attempt)  # another writer committed first: re-read the log and retry

    @staticmethod
    def _window_predicate(start: date, end: date) -> str:
        return f"{PARTITION_COLUMN} >= '{start.isoformat()}' AND {PARTITION_COLUMN} <= '{end.isoformat()}'"

    @staticmethod
    def _part_rows(table: Table, day: date | None, part_name: str) -> _Rows:
        if "'" in part_name:
            raise ValueError(f"part name {part_name!r} may not contain quotes")
        if not table.partition_column:
            return _Rows(part=part_name)
        return _Rows(days=(day,), part=part_name) if day else _Rows(undated=True, part=part_name)

    # ---- spark tables
    def read(self, spark: SparkSession, table: Table, start: date | None = None, end: date | None = None) -> DataFrame:
        from pyspark.sql import functions as F

        schema = table.schema
        if self._on_spark:
            name = self.describe(table)
            if not spark.catalog.tableExists(name):
                return spark.createDataFrame([], schema)
            frame = spark.read.table(name)
        else:
            files = [f.path for f in self._live_files(table)
                     if f.day is not None and (start is None or f.day >= start) and (end is None or f.day <= end)]
            if not files:
                return spark.createDataFrame([], schema)
            frame = spark.read.schema(schema).option("basePath", str(self.location(table))).parquet(*files)
        if start is not None:
            frame = frame.where(F.col(PARTITION_COLUMN) >= F.lit(start))
        if end is not None:
            frame = frame.where(F.col(PARTITION_COLUMN) <= F.lit(end))
        return frame.select(*schema.fieldNames())

    def overwrite_partitions(self, df: DataFrame, table: Table, start: date, end: date) -> None:
        from pyspark.sql import functions as F

        if self._on_spark:
            outside = df.where(~F.col(PARTITION_COLUMN).between(F.lit(start), F.lit(end)) | F.col(PARTITION_COLUMN).isNull())
            _refuse_rows_outside(table, start, end, [r[PARTITION_COLUMN] for r in outside.select(PARTITION_COLUMN).distinct().limit(3).collect()])
            (df.write.format("delta").mode("overwrite").option("replaceWhere", self._window_predicate(start, end))
             .partitionBy(PARTITION_COLUMN).saveAsTable(self.describe(table)))
            return
        rows = df.toArrow()
        _refuse_rows_outside(table, start, end, pc.unique(rows.column(PARTITION_COLUMN)).to_pylist())
        self._commit(table, rows, self._window_predicate(start, end), [PARTITION_COLUMN])

    # ---- named parts
    def _stamped(self, table: Table, day: date | None, part_name: str, rows: pa.Table) -> pa.Table:
        rows = rows.append_column(PART_COLUMN, pa.array([part_name] * rows.num_rows, pa.string()))
        if table.partition_column:
            rows = rows.append_column(PARTITION_COLUMN, pa.array([day] * rows.num_rows, pa.date32()))
        return rows

    def _partitioning(self, table: Table) -> list[str]:
        return [PARTITION_COLUMN, PART_COLUMN] if table.partition_column else [PART_COLUMN]

    def write_part(self, table: Table, day: date | None, part_name: str, rows: pa.Table) -> None:
        stamped = self._stamped(table, day, part_name, rows)
        if self._on_spark:
            from pyspark.sql.pandas.types import from_arrow_schema

            spark = _active_spark()
            frame = spark.createDataFrame(stamped.to_pandas(), schema=from_arrow_schema(stamped.schema))
            (frame.write.format("delta").mode("overwrite")
             .option("replaceWhere", self._part_rows(table, day, part_name).sql())
             .partitionBy(*self._partitioning(table)).saveAsTable(self.describe(table)))
            return
        self._commit(table, stamped, self._part_rows(table, day, part_name).sql(), self._partitioning(table))

    def _select(self, table: Table, rows: _Rows, columns: list[str] | None = None) -> pa.Table | None:
        if self._on_spark:
            spark = _active_spark()
            name = self.describe(table)
            if not spark.catalog.tableExists(name):
                return None
            frame = spark.read.table(name).where(rows.sql())
            found = (frame.select(*columns) if columns is not None else frame).toArrow()
        else:
            found = _read_files([f for f in self._live_files(table) if rows.holds(f)], columns)
            if found is None:
                return None
        return found if found.num_rows else None

    def read_part(self, table: Table, day: date | None, part_name: str) -> pa.Table | None:
        found = self._select(table, self._part_rows(table, day, part_name))
        return None if found is None else _drop(found, PART_COLUMN, PARTITION_COLUMN)

    def delete_part(self, table: Table, day: date | None, part_name: str) -> None:
        predicate = self._part_rows(table, day, part_name).sql()
        if self._on_spark:
            spark = _active_spark()
            if spark.catalog.tableExists(self.describe(table)):
                spark.sql(f"DELETE FROM {self.describe(table)} WHERE {predicate}")
            return
        delta = self._delta(table)
        if delta is not None:
            delta.delete(predicate)

    def read_parts(self, table: Table, days: Iterable[date] | None = None) -> pa.Table | None:
        if days is None:
            rows = _Rows(undated=True) if table.partition_column else _Rows()
        else:
            wanted = tuple(sorted(set(days)))
            if not wanted:
                return None
            rows = _Rows(days=wanted)
        found = self._select(table, rows)
        return None if found is None else _drop(found, PART_COLUMN, PARTITION_COLUMN)

    def read_days(self, table: Table, days: Iterable[date], columns: list[str] | None = None) -> pa.Table | None:
        wanted = tuple(sorted(set(days)))
        if not wanted:
            return None
        selected = None if columns is None else [*[c for c in columns if c != PARTITION_COLUMN], PARTITION_COLUMN]
        found = self._select(table, _Rows(days=wanted), selected)
        return None if found is None else _drop(found, PART_COLUMN)

    # ---- days and counts
    def partition_days(self, table: Table) -> list[date]:
        if self._on_spark:
            spark = _active_spark()
            name = self.describe(table)
            if not spark.catalog.tableExists(name):
                return []
            return sorted(r[0] for r in spark.read.table(name).select(PARTITION_COLUMN).distinct().collect() if r[0])
        return sorted({f.day for f in self._live_files(table) if f.day is not None and f.rows})

    def row_counts(self, table: Table, days: Iterable[date]) -> dict[date, int]:
        wanted = list(days)
        counts = dict.fromkeys(wanted, 0)
        if self._on_spark:
            spark = _active_spark()
            name = self.describe(table)
            if spark.catalog.tableExists(name) and wanted:
                from pyspark.sql import functions as F

                for row in (spark.read.table(name).where(F.col(PARTITION_COLUMN).isin(wanted))
                            .groupBy(PARTITION_COLUMN).count().collect()):
                    counts[row[0]] = row[1]
            return counts
        for live in self._live_files(table):
            if live.day in counts:
                counts[live.day] += live.rows
        return counts


def _drop(rows: pa.Table, *columns: str) -> pa.Table:
    return rows.drop_columns([c for c in columns if c in rows.column_names])


def _active_spark() -> SparkSession:
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        raise RuntimeError("the Unity Catalog table store needs the cluster's active SparkSession")
    return spark


TABLE_FORMATS = ("parquet", "delta")


def table_store_for(table_format: str, root: str, uc_catalog: str | None = None,
                    uc_schema_prefix: str = "") -> LocalParquetTableStore | DeltaTableStore:
    """The store for a configured format (FEEDBACK_TABLE_FORMAT): Parquet by default, or Delta."""
    if table_format == "parquet":
        if uc_catalog:
            raise ValueError("Unity Catalog tables are Delta tables: set FEEDBACK_TABLE_FORMAT=delta")
        return LocalParquetTableStore(root=root)
    if table_format == "delta":
        return DeltaTableStore(root=root, uc_catalog=uc_catalog or None, uc_schema_prefix=uc_schema_prefix)
    raise ValueError(f"FEEDBACK_TABLE_FORMAT must be one of {', '.join(TABLE_FORMATS)}, got {table_format!r}")


def configured_table_store(config: Settings) -> LocalParquetTableStore | DeltaTableStore:
    """The warehouse the settings describe: `$FEEDBACK_HOME/warehouse` in FEEDBACK_TABLE_FORMAT (Parquet by default)."""
    return table_store_for(config.table_format, str(config.warehouse_dir), config.uc_catalog, config.uc_schema_prefix)


def delta_store_from(store_config: Mapping[str, Any]) -> DeltaTableStore:
    """The Delta store a Pipes entrypoint writes through, as the orchestrator configured it."""
    return DeltaTableStore(root=store_config["root"], uc_catalog=store_config.get("uc_catalog") or None,
                           uc_schema_prefix=store_config.get("uc_schema_prefix") or "")
