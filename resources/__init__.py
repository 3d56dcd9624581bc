"""Configurable resources: compute (Spark), the table store, landing, and settings."""
