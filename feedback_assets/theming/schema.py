"""The Spark schema of gold.feedback_themes: one row per complaint item of a day, with its theme or none."""

from __future__ import annotations

from pyspark.sql import types as T


FEEDBACK_THEMES = T.StructType(
    [
        T.StructField("feedback_id", T.StringType(), False),
        T.StructField("label", T.StringType(), False),
        T.StructField("group_key", T.StringType(), False),
        T.StructField("sku", T.StringType()),
        T.StructField("category", T.StringType()),
        T.StructField("theme_id", T.StringType()),  # null: an outlier, no theme fitted on its day
        T.StructField("theme_name", T.StringType()),
        T.StructField("new_theme", T.BooleanType(), False),  # the theme was founded on this row's day
        T.StructField("similarity", T.DoubleType()),  # cosine to the theme's centroid; outliers: to the nearest one
        T.StructField("theme_text", T.StringType(), False),  # what was embedded (the evidence quote)
        T.StructField("text_hash", T.StringType(), False),
        T.StructField("embedding_model", T.StringType(), False),
        T.StructField("run_id", T.StringType()),
        T.StructField("feedback_date", T.DateType(), False),
    ]
)
