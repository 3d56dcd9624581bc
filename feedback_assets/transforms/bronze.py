"""landed parts → bronze_<channel>: every landed record of the window, verbatim, with its ingestion metadata."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType


def build_bronze(landed: DataFrame, schema: StructType) -> DataFrame:
    """Bronze keeps landed records as they are, in a fixed column order and a stable row order."""
    return landed.select(*[F.col(f.name).cast(f.dataType) for f in schema.fields]).orderBy(
        "feedback_date", "source_file", "source_line"
    )
