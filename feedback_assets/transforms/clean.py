"""The text pass of silver: a pure function over a batch of texts, and the vectorized UDF running it.

Kept in a module of its own with light imports: Spark's Python workers import the module a UDF is
defined in, and this one pulls in only pandas, pyspark and the text helpers (no Dagster).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from pyspark.sql import functions as F
from pyspark.sql import types as T

from feedback_assets.transforms.language import detect_languages
from feedback_assets.transforms.pii import PII_KINDS, scrub_pii
from feedback_assets.transforms.text import normalize_text

CLEAN_SCHEMA = T.StructType(
    [
        T.StructField("text_clean", T.StringType()),
        T.StructField("language", T.StringType()),
        T.StructField("language_confidence", T.DoubleType()),
        *[T.StructField(f"pii_{kind}", T.IntegerType()) for kind in PII_KINDS],
    ]
)


def clean_texts(texts: Sequence[str]) -> dict[str, list]:
    """The CLEAN_SCHEMA columns of a batch of texts: normalized and PII-scrubbed, with the language of each."""
    normalized = [normalize_text(text) for text in texts]
    languages = detect_languages(normalized)
    scrubbed = [scrub_pii(text) for text in normalized]
    return {
        "text_clean": [result.text for result in scrubbed],
        "language": [language for language, _ in languages],
        "language_confidence": [confidence for _, confidence in languages],
        **{f"pii_{kind}": [result.redactions[kind] for result in scrubbed] for kind in PII_KINDS},
    }


@F.pandas_udf(CLEAN_SCHEMA)
def clean_text(texts: pd.Series) -> pd.DataFrame:
    """clean_texts over one Arrow batch of texts."""
    return pd.DataFrame(clean_texts(texts.tolist()), columns=CLEAN_SCHEMA.fieldNames())
