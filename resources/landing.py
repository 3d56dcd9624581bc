"""Where export files arrive, and the registry that lands each of them once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from feedback_assets.landing.registry import DEFAULT_SETTLE_SECONDS, LandingRegistry
from partitions import PARTITIONS_START
from resources.table_store import TableStore


class LandingResource(dg.ConfigurableResource):
    """The landing folder (`<landing_dir>/<mapping name>/<file>`) and its ledger in the table store."""

    landing_dir: str
    partitions_start: str = PARTITIONS_START
    # A sweep leaves a file alone until it has not changed for this long (it may still be being written).
    settle_seconds: float = DEFAULT_SETTLE_SECONDS

    def registry(self, store: TableStore) -> LandingRegistry:
        return LandingRegistry(Path(self.landing_dir), store, date.fromisoformat(self.partitions_start),
                               self.settle_seconds)
