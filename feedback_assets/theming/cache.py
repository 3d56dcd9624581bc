"""The embedding cache: one vector per (text hash, embedding model), kept in the table store.

Re-runs and backfills never embed the same text twice; a new model embeds each distinct text once.
Each model has its own folder, so a run reads only the vectors it can use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from feedback_assets import tables
from feedback_assets.theming.embeddings import Embedder
from feedback_assets.theming.store import model_slug
from resources.table_store import TableStore

CHECKPOINT_EVERY = 2000
CACHE_SCHEMA = pa.schema([("text_hash", pa.string()), ("model", pa.string()), ("vector", pa.list_(pa.float32())),
                          ("cached_at", pa.timestamp("us", tz="UTC"))])


@dataclass
class Embedded:
    vectors: dict[str, np.ndarray]  # text hash -> unit vector
    cache_hits: int
    embedded_now: int


class EmbeddingCache:
    def __init__(self, store: TableStore, model: str):
        self.store, self.model = store, model
        self.table = tables.EMBEDDING_CACHE.variant(model_slug(model))

    def lookup(self, hashes: set[str]) -> dict[str, np.ndarray]:
        """Cached vectors of the given text hashes."""
        table = self.store.read_parts(self.table)
        if table is None or not hashes:
            return {}
        table = table.filter(pc.and_(pc.equal(table["model"], self.model),
                                     pc.is_in(table["text_hash"], pa.array(sorted(hashes)))))
        if not table.num_rows:
            return {}
        flat = table["vector"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
        matrix = flat.reshape(table.num_rows, -1)
        return dict(zip(table["text_hash"].to_pylist(), matrix, strict=True))

    def store_vectors(self, vectors: Mapping[str, np.ndarray]) -> None:
        """Adds the vectors as one part named after their hashes."""
        hashes = sorted(vectors)
        now = datetime.now(UTC)
        rows = pa.table({"text_hash": hashes, "model": [self.model] * len(hashes),
                         "vector": [vectors[h].astype(np.float32).tolist() for h in hashes],
                         "cached_at": [now] * len(hashes)}, schema=CACHE_SCHEMA)
        part = hashlib.sha256("".join(hashes).encode()).hexdigest()[:24]
        self.store.write_part(self.table, None, part, rows)


def embed_with_cache(texts: Mapping[str, str], embedder: Embedder, cache: EmbeddingCache,
                     log: Callable[[str], None] = lambda _: None) -> Embedded:
    """Vectors for texts keyed by their hash: cached ones read, the rest embedded and cached chunk by chunk."""
    vectors = cache.lookup(set(texts))
    hits = len(vectors)
    # Sorted by length, so each model batch holds texts of similar length and pads little.
    missing = sorted((h for h in texts if h not in vectors), key=lambda h: (len(texts[h]), h))
    log(f"{len(texts)} distinct texts, {hits} embeddings cached, {len(missing)} to embed with {embedder.name}")
    for offset in range(0, len(missing), CHECKPOINT_EVERY):
        chunk = missing[offset: offset + CHECKPOINT_EVERY]
        fresh = dict(zip(chunk, embedder.embed([texts[h] for h in chunk]), strict=True))
        cache.store_vectors(fresh)
        vectors.update(fresh)
        log(f"embedded {min(offset + CHECKPOINT_EVERY, len(missing))}/{len(missing)} texts")
    return Embedded(vectors, hits, len(missing))
