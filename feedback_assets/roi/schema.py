"""Arrow schemas of the ROI tables (written without Spark: they are small and read by the dashboard)."""

import pyarrow as pa

_UTC = pa.timestamp("us", tz="UTC")

RESOLUTION_EVENTS = pa.schema([
    ("issue_id", pa.string()), ("ticket_key", pa.string()), ("system", pa.string()),
    ("updated_at", _UTC), ("status", pa.string()), ("status_category", pa.string()),
    ("resolution", pa.string()), ("code", pa.string()), ("note", pa.string()),
    ("labels", pa.list_(pa.string())), ("observed_at", _UTC),
])

TICKET_RESOLUTIONS = pa.schema([
    ("issue_id", pa.string()), ("ticket_key", pa.string()), ("system", pa.string()),
    ("series_key", pa.string()), ("breach_key", pa.string()), ("alert_day", pa.date32()),
    ("code", pa.string()), ("resolution", pa.string()), ("status", pa.string()), ("note", pa.string()),
    ("resolved_at", _UTC), ("days_to_fix", pa.int64()),
])

REMEDIATION_IMPACT = pa.schema([
    ("ticket_key", pa.string()), ("issue_id", pa.string()), ("series_key", pa.string()), ("code", pa.string()),
    ("alert_day", pa.date32()), ("fix_day", pa.date32()), ("window_days", pa.int64()),
    ("status", pa.string()), ("complete_on", pa.date32()), ("reason", pa.string()),
    ("baseline_start", pa.date32()), ("baseline_end", pa.date32()),
    ("after_start", pa.date32()), ("after_end", pa.date32()),
    ("baseline_complaints", pa.int64()), ("baseline_orders", pa.int64()),
    ("after_complaints", pa.int64()), ("after_orders", pa.int64()),
    ("baseline_per_1k", pa.float64()), ("after_per_1k", pa.float64()),
    ("rate_ratio", pa.float64()), ("ci_low", pa.float64()), ("ci_high", pa.float64()),
    ("method", pa.string()), ("verdict", pa.string()), ("naive_ratio", pa.float64()), ("controls", pa.int64()),
    ("expected_complaints", pa.float64()), ("complaints_avoided", pa.float64()),
    ("avoided_low", pa.float64()), ("avoided_high", pa.float64()),
    ("baseline_returns", pa.int64()), ("after_returns", pa.int64()),
    ("returns_avoided", pa.float64()), ("refunds_avoided", pa.float64()),
    ("average_order_value", pa.float64()),
])

ROI_METRICS = pa.schema([
    ("metric", pa.string()), ("value", pa.float64()), ("low", pa.float64()), ("high", pa.float64()),
    ("unit", pa.string()), ("basis", pa.string()), ("assumptions", pa.list_(pa.string())),
    ("window_start", pa.date32()), ("window_end", pa.date32()),
])

AFFECTED_CUSTOMERS = pa.schema([
    ("ticket_key", pa.string()), ("series_key", pa.string()), ("code", pa.string()),
    ("customer_key", pa.string()), ("complaints", pa.int64()), ("first_complaint", pa.date32()),
    ("last_complaint", pa.date32()), ("channels", pa.list_(pa.string())), ("domain", pa.string()),
    ("message", pa.string()),
])
