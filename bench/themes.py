"""feedback_themes on the demo warehouse: time, items/s, themes, outlier share, example names.

Copies $FEEDBACK_HOME/warehouse (read-only source; default .feedback_home) to a temporary folder,
then materializes feedback_themes over every classified day twice: cold (nothing embedded yet) and
re-run (served from the embedding cache). The local model is loaded before timing, as it is in the
demo process, where the classifier has already loaded it.

    .venv/bin/python bench/themes.py [--warehouse .feedback_home/warehouse]
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from feedback_assets import tables
from feedback_assets.themes import feedback_themes
from feedback_assets.theming.embeddings import LocalEmbedder

from resources.settings import read_settings
from resources.compute import LocalStepRunner
from resources.spark import local_spark_resource
from resources.table_store import LocalParquetTableStore
from resources.themes import ThemesResource


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warehouse", default=".feedback_home/warehouse")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        shutil.copytree(Path(args.warehouse) / "enrichment" / "feedback_classifications",
                        Path(home) / "warehouse" / "enrichment" / "feedback_classifications")
        shutil.copytree(Path(args.warehouse) / "silver" / "sku_catalog",
                        Path(home) / "warehouse" / "silver" / "sku_catalog")
        config = replace(read_settings(), feedback_home=Path(home))
        store = LocalParquetTableStore(root=str(config.warehouse_dir))
        days = store.partition_days(tables.FEEDBACK_CLASSIFICATIONS)
        resources = {"step_runner": LocalStepRunner(pyspark=local_spark_resource(config)), "table_store": store,
                     "themes": ThemesResource(backend="local")}
        LocalEmbedder().embed(["load the model before timing"])
        for attempt in ("cold", "re-run"):
            started = time.perf_counter()
            with dg.instance_for_test() as instance:
                result = dg.materialize([feedback_themes], resources=resources, instance=instance,
                                        tags={ASSET_PARTITION_RANGE_START_TAG: days[0].isoformat(),
                                              ASSET_PARTITION_RANGE_END_TAG: days[-1].isoformat()})
            seconds = time.perf_counter() - started
            materialization = result.asset_materializations_for_node("feedback_themes")[0]
            meta = {k: v.value for k, v in materialization.metadata.items()}
            items = meta["rows_in_window"]
            print(f"{attempt}: {len(days)} days, {items} complaint items in {seconds:.1f} s "
                  f"({items / seconds:.0f} items/s);"
                  f" embedded {meta['embedded_now']} texts, {meta['embedding_cache_hits']} from the cache;"
                  f" {meta['new_themes']} themes; outlier share {meta['outlier_share']:.3f}")
        registry = store.read_parts(tables.THEME_REGISTRY).to_pylist()
        print("example themes:")
        for theme in random.Random(1).sample(registry, 12):
            print(f"  {theme['label']:<28} {theme['group_key']:<20} {theme['name']!r:<32} "
                  f"e.g. {theme['examples'][0]!r}")


if __name__ == "__main__":
    main()
