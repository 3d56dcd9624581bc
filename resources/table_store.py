"""Logical tables mapped to physical storage, with idempotent per-partition writes.

The interface is what assets depend on; `LocalParquetTableStore` keeps Parquet under
`$FEEDBACK_HOME/warehouse/<schema>/<table>/feedback_date=<day>/`. A Delta / Unity Catalog store
implements the same methods with `replaceWhere` on `feedback_date`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

PARTITION_COLUMN = "feedback_date"


def days_in(start: date, end: date) -> list[date]:
    """Every day from start to end, both included."""
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


class TableStore(Protocol):
    def read(
        self,
        spark: SparkSession,
        table: str,
        schema: StructType,
        start: date | None = None,
        end: date | None = None,
    ) -> DataFrame: ...

    def overwrite_partitions(self, df: DataFrame, table: str, start: date, end: date) -> None: ...

    def write_part(self, table: str, day: date | None, part_name: str, rows: pa.Table) -> None: ...

    def read_part(self, table: str, day: date | None, part_name: str) -> pa.Table | None: ...

    def delete_part(self, table: str, day: date | None, part_name: str) -> None: ...

    def read_parts(self, table: str, days: Iterable[date] | None = None) -> pa.Table | None: ...

    def read_days(self, table: str, days: Iterable[date]) -> pa.Table | None: ...

    def partition_days(self, table: str) -> list[date]: ...

    def row_counts(self, table: str, days: Iterable[date]) -> dict[date, int]: ...


class LocalParquetTableStore(dg.ConfigurableResource):
    """Parquet tables on the local file system, one folder per `feedback_date`."""

    root: str

    def location(self, table: str) -> Path:
        schema, _, name = table.rpartition(".")
        return Path(self.root) / (schema or "default") / name

    def _partition_dir(self, table: str, day: date) -> Path:
        return self.location(table) / f"{PARTITION_COLUMN}={day.isoformat()}"

    def partition_days(self, table: str) -> list[date]:
        folder = self.location(table)
        if not folder.exists():
            return []
        prefix = f"{PARTITION_COLUMN}="
        return sorted(
            date.fromisoformat(child.name.removeprefix(prefix))
            for child in folder.iterdir()
            if child.is_dir() and child.name.startswith(prefix) and any(child.glob("*.parquet"))
        )

    def row_counts(self, table: str, days: Iterable[date]) -> dict[date, int]:
        """Rows stored for each day, from the Parquet footers (no data is read); 0 for a day never written."""
        counts = {}
        for day in days:
            folder = self._partition_dir(table, day)
            files = sorted(folder.glob("*.parquet")) if folder.exists() else []
            counts[day] = sum(pq.ParquetFile(path).metadata.num_rows for path in files)
        return counts

    def read(
        self,
        spark: SparkSession,
        table: str,
        schema: StructType,
        start: date | None = None,
        end: date | None = None,
    ) -> DataFrame:
        """Rows of `table` whose feedback_date lies in [start, end]; empty if nothing was written."""
        days = [
            day
            for day in self.partition_days(table)
            if (start is None or day >= start) and (end is None or day <= end)
        ]
        if not days:
            return spark.createDataFrame([], schema)
        paths = [str(self._partition_dir(table, day)) for day in days]
        return (
            spark.read.schema(schema)
            .option("basePath", str(self.location(table)))
            .parquet(*paths)
        )

    def overwrite_partitions(self, df: DataFrame, table: str, start: date, end: date) -> None:
        """Replaces exactly the days in [start, end]; a day with no rows ends up empty."""
        target = self.location(table)
        staging = target.parent / f".{target.name}.staging-{uuid.uuid4().hex}"
        df.write.mode("overwrite").partitionBy(PARTITION_COLUMN).parquet(str(staging))
        try:
            stray = sorted(
                child.name.split("=", 1)[1]
                for child in staging.iterdir()
                if child.is_dir() and child.name.startswith(f"{PARTITION_COLUMN}=")
                and not start.isoformat() <= child.name.split("=", 1)[1] <= end.isoformat()
            )
            if stray:
                raise ValueError(f"refusing to write {table}: rows fall outside {start}..{end} ({', '.join(stray[:3])})")
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

    def write_part(self, table: str, day: date | None, part_name: str, rows: pa.Table) -> None:
        """Writes one named part file (idempotent: the same name replaces itself atomically)."""
        folder = self._partition_dir(table, day) if day else self.location(table)
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{part_name}.{uuid.uuid4().hex}.tmp"
        pq.write_table(rows, temporary)
        os.replace(temporary, folder / f"{part_name}.parquet")

    def read_part(self, table: str, day: date | None, part_name: str) -> pa.Table | None:
        """One named part file, or None when there is none."""
        path = (self._partition_dir(table, day) if day else self.location(table)) / f"{part_name}.parquet"
        return pq.read_table(path) if path.exists() else None

    def delete_part(self, table: str, day: date | None, part_name: str) -> None:
        """Removes one named part file (nothing happens when it is not there)."""
        path = (self._partition_dir(table, day) if day else self.location(table)) / f"{part_name}.parquet"
        path.unlink(missing_ok=True)

    def read_parts(self, table: str, days: Iterable[date] | None = None) -> pa.Table | None:
        """Reads part files without Spark (small operational tables such as ledgers)."""
        folders = [self.location(table)] if days is None else [self._partition_dir(table, d) for d in days]
        files = sorted(f for folder in folders if folder.exists() for f in folder.glob("*.parquet"))
        if not files:
            return None
        return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")

    def read_days(self, table: str, days: Iterable[date]) -> pa.Table | None:
        """The rows of `days` without Spark, with their `feedback_date` (which lives in the folder name, not the files)."""
        tables = []
        for day in days:
            parts = self.read_parts(table, [day])
            if parts is not None and parts.num_rows:
                tables.append(parts.append_column(PARTITION_COLUMN, pa.array([day] * parts.num_rows, pa.date32())))
        return pa.concat_tables(tables, promote_options="default") if tables else None
