"""Settings read once from the environment, with defaults that need no account or secret."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# Only for local development: production sets FEEDBACK_PSEUDONYM_KEY from a secret store.
DEV_PSEUDONYM_KEY = "feedback-to-fix-dev-only-key"
REPO_CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


@dataclass(frozen=True)
class Settings:
    feedback_home: Path
    pseudonym_key: str
    max_text_chars: int
    dedup_lookback_days: int
    spark_master: str
    spark_shuffle_partitions: int
    landing_settle_seconds: int = 30
    # The hour (UTC) the daily chain starts for the newest complete day.
    daily_run_hour_utc: int = 5
    # Alerting thresholds and priority weights (alerting.yaml, priority.yaml, support_macros.yaml).
    config_dir: Path = REPO_CONFIG_DIR
    # Storage and compute: Parquet or Delta tables; Spark in-process (local) or on Databricks.
    table_format: str = "parquet"
    uc_catalog: str | None = None
    uc_schema_prefix: str = ""
    compute: str = "local"
    # Opt-in: after a taxonomy, prompt or model change, re-classify only this many recent days by
    # itself (0: none; older days wait for a deliberate backfill, which prints its cost first).
    reclassify_recent_days: int = 0

    @property
    def landing_dir(self) -> Path:
        return self.feedback_home / "landing"

    @property
    def warehouse_dir(self) -> Path:
        return self.feedback_home / "warehouse"

    @property
    def uses_dev_pseudonym_key(self) -> bool:
        return self.pseudonym_key == DEV_PSEUDONYM_KEY


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as error:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from error


def read_settings() -> Settings:
    """Reads the environment; call `settings()` for the process-wide cached copy."""
    return Settings(
        feedback_home=Path(os.environ.get("FEEDBACK_HOME", ".feedback_home")).resolve(),
        pseudonym_key=os.environ.get("FEEDBACK_PSEUDONYM_KEY") or DEV_PSEUDONYM_KEY,
        max_text_chars=_int_env("FEEDBACK_MAX_TEXT_CHARS", 20_000),
        dedup_lookback_days=_int_env("FEEDBACK_DEDUP_LOOKBACK_DAYS", 7),
        spark_master=os.environ.get("FEEDBACK_SPARK_MASTER", "local[*]"),
        spark_shuffle_partitions=_int_env("FEEDBACK_SPARK_SHUFFLE_PARTITIONS", 4),
        landing_settle_seconds=_int_env("FEEDBACK_LANDING_SETTLE_SECONDS", 30),
        daily_run_hour_utc=_int_env("FEEDBACK_DAILY_RUN_HOUR_UTC", 5),
        config_dir=Path(os.environ.get("FEEDBACK_CONFIG_DIR") or REPO_CONFIG_DIR),
        table_format=(os.environ.get("FEEDBACK_TABLE_FORMAT") or "parquet").strip().lower(),
        uc_catalog=os.environ.get("FEEDBACK_UC_CATALOG") or None,
        uc_schema_prefix=os.environ.get("FEEDBACK_UC_SCHEMA_PREFIX", ""),
        compute=(os.environ.get("FEEDBACK_COMPUTE") or "local").strip().lower(),
        reclassify_recent_days=_int_env("FEEDBACK_RECLASSIFY_RECENT_DAYS", 0),
    )


def ui_base_url() -> str:
    """Where tickets and asset metadata link to: the Dagster UI as people open it."""
    return os.environ.get("DAGSTER_UI_URL", "http://127.0.0.1:3000")


@lru_cache(maxsize=1)
def settings() -> Settings:
    return read_settings()
