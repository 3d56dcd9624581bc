"""The per-row text pass of silver as a vectorized UDF.

Kept in a module of its own with light imports: Spark's Python workers import the module a UDF is
defined in, and this one pulls in only pandas, pyspark and the text helpers (no Dagster).
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import functions as F
from pyspark.sql import types as T

from feedback_assets.transforms.language import detect_language
from feedback_assets.transforms.pii import PII_KINDS, scrub_pii
from feedback_assets.transforms.text import normalize_text

_CLEAN_SCHEMA = T.StructType(
    [
        T.StructField("text_clean", T.StringType()),
        T.StructField("language", T.StringType()),
        T.StructField("language_confidence", T.DoubleType()),
        *[T.StructField(f"pii_{kind}", T.IntegerType()) for kind in PII_KINDS],
    ]
)


@F.pandas_udf(_CLEAN_SCHEMA)
def clean_text(texts: pd.Series) -> pd.DataFrame:
    """Normalizes, detects the language of, and PII-scrubs each text (one Arrow batch at a time)."""
    rows = []
    for text in texts:
        normalized = normalize_text(text)
        language, confidence = detect_language(normalized)
        scrubbed = scrub_pii(normalized)
        rows.append((scrubbed.text, language, confidence, *(scrubbed.redactions[k] for k in PII_KINDS)))
    return pd.DataFrame(rows, columns=_CLEAN_SCHEMA.fieldNames())
