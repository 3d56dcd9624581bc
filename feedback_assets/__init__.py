"""Feedback-to-Fix: Dagster assets that turn customer feedback into prioritized, owned fixes."""
