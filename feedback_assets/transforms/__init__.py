"""Pure table logic: PySpark functions (no Dagster imports) and the text helpers they call."""
