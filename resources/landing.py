"""Where export files arrive, and the registry that lands each of them once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from feedback_assets.landing.registry import LandingRegistry
from partitions import PARTITIONS_START
from resources.table_store import LocalParquetTableStore


class LandingResource(dg.ConfigurableResource):
    """The landing folder (`<landing_dir>/<mapping name>/<file>`) and its ledger in the table store."""

    landing_dir: str
    partitions_start: str = PARTITIONS_START

    def registry(self, store: LocalParquetTableStore) -> LandingRegistry:
        return LandingRegistry(Path(self.landing_dir), store, date.fromisoformat(self.partitions_start))
