"""The classification cache: one result per (content_hash, prompt_version, model), kept in the table store.

Re-materializing an unchanged partition costs no classification at all; a prompt or model change
costs one classification per distinct text. Failed items are never cached, so a re-run retries them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pyarrow as pa

from feedback_assets import tables
from resources.table_store import TableStore

CACHE_SCHEMA = pa.schema([("content_hash", pa.string()), ("prompt_version", pa.string()), ("model", pa.string()),
                          ("result", pa.string()), ("cached_at", pa.timestamp("us", tz="UTC"))])


class ClassificationCache:
    def __init__(self, store: TableStore, prompt_version: str, model: str):
        self.store, self.prompt_version, self.model = store, prompt_version, model

    def _folder(self) -> tables.Table:
        return tables.CLASSIFICATION_CACHE.variant(self.prompt_version)

    def lookup(self, content_hashes: set[str]) -> dict[str, dict]:
        table = self.store.read_parts(self._folder())
        if table is None:
            return {}
        found = {}
        for row in table.to_pylist():
            if row["model"] == self.model and row["content_hash"] in content_hashes:
                found[row["content_hash"]] = json.loads(row["result"])
        return found

    def store_results(self, results: dict[str, dict]) -> None:
        """Adds successful results (those without `error`) as one part named after its keys."""
        rows = [{"content_hash": h, "prompt_version": self.prompt_version, "model": self.model,
                 "result": json.dumps(r, ensure_ascii=False), "cached_at": datetime.now(UTC)}
                for h, r in sorted(results.items()) if not r.get("error")]
        if rows:
            part = hashlib.sha256("".join(r["content_hash"] for r in rows).encode()).hexdigest()[:24]
            self.store.write_part(self._folder(), None, part, pa.Table.from_pylist(rows, schema=CACHE_SCHEMA))
