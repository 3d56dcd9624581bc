"""The landed (bronze) row shape of each contract: its mapped fields as verbatim strings plus metadata."""

from __future__ import annotations

import pyarrow as pa

from feedback_assets.landing.mapping import CONTRACT_FIELDS, Contract

META_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("event_at", pa.timestamp("us", tz="UTC")),
    ("event_at_raw", pa.string()),
    ("date_origin", pa.string()),
    ("raw_record", pa.string()),
    ("parse_error", pa.string()),
    ("timestamp_error", pa.string()),
    ("encoding_error", pa.bool_()),
    ("rating_scale_low", pa.float64()),
    ("rating_scale_high", pa.float64()),
    ("channel", pa.string()),
    ("source_file", pa.string()),
    ("source_line", pa.int64()),
    ("file_sha256", pa.string()),
    ("mapping", pa.string()),
    ("ingested_at", pa.timestamp("us", tz="UTC")),
    ("ingest_run_id", pa.string()),
]


def contract_columns(contract: Contract) -> list[str]:
    required, optional = CONTRACT_FIELDS[contract]
    return sorted(required) + sorted(optional)


def landed_arrow_schema(contract: Contract) -> pa.Schema:
    return pa.schema([(c, pa.string()) for c in contract_columns(contract)] + META_COLUMNS)
