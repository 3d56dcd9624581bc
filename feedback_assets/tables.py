"""The table catalog: every table the pipeline reads or writes, defined once.

Steps, assets, alerting, the CLI and tests name tables through these entries, never through string
literals. An entry knows its logical name (`<schema>.<table>`), layer, partition column, schema and
what it holds; where it lives is the store's business (`TableLocations`): a folder under the local
warehouse, or `catalog.schema.table` in Unity Catalog.

Importing this module never imports Spark: schemas are resolved on first use.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from feedback_assets.landing.mapping import FEEDBACK_CHANNELS, Contract

PARTITION_COLUMN = "feedback_date"


class Layer(StrEnum):
    landed = "landed"
    bronze = "bronze"
    silver = "silver"
    enrichment = "enrichment"
    gold = "gold"
    ops = "ops"
    alerting = "alerting"
    roi = "roi"


@dataclass(frozen=True)
class Table:
    """One logical table. `schema_ref` is `module:ATTRIBUTE` of its Spark or Arrow schema."""

    name: str
    layer: Layer
    description: str
    schema_ref: str | None = None
    partition_column: str | None = PARTITION_COLUMN

    @property
    def schema_name(self) -> str:
        return self.name.partition(".")[0]

    @property
    def table_name(self) -> str:
        return self.name.partition(".")[2]

    @property
    def schema(self) -> Any:
        """The table's Spark StructType (or Arrow schema for operational tables), imported on first use."""
        if self.schema_ref is None:
            raise LookupError(f"{self.name} has no declared schema")
        module, _, attribute = self.schema_ref.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def variant(self, suffix: str) -> Table:
        """The same kind of table for one version (a cache per prompt version or embedding model)."""
        slug = re.sub(r"[^a-z0-9]+", "_", suffix.lower()).strip("_")
        if not slug:
            raise ValueError(f"table variant {suffix!r} has no letters or digits")
        return replace(self, name=f"{self.name}_{slug}")

    def __str__(self) -> str:
        return self.name


def _spark(attribute: str) -> str:
    return f"feedback_assets.schemas:{attribute}"


# Landing: each export's rows as verbatim strings, one part per file and day.
LANDED_FEEDBACK = {
    channel: Table(f"landed.{channel}", Layer.landed, f"Rows of landed {channel} exports, verbatim, one part per file.",
                   _spark("BRONZE_FEEDBACK"))
    for channel in FEEDBACK_CHANNELS
}
LANDED_COMMERCE = {
    Contract.orders: Table("landed.orders", Layer.landed, "Rows of landed order exports, verbatim.", _spark("LANDED_ORDERS")),
    Contract.returns: Table("landed.returns", Layer.landed, "Rows of landed return exports, verbatim.", _spark("LANDED_RETURNS")),
    Contract.sku_catalog: Table("landed.sku_catalog", Layer.landed, "Rows of landed SKU catalog snapshots, verbatim.",
                                _spark("LANDED_SKU_CATALOG")),
}
LANDING_LEDGER = Table("ops.landing_ledger", Layer.ops, "One entry per export file: registered, rejected or quarantined, and why.",
                       "feedback_assets.landing.registry:LEDGER_SCHEMA", partition_column=None)

BRONZE = {
    channel: Table(f"bronze.{channel}", Layer.bronze, f"Raw {channel} feedback, append-only, with parse errors kept.",
                   _spark("BRONZE_FEEDBACK"))
    for channel in FEEDBACK_CHANNELS
}

SILVER_FEEDBACK = Table("silver.silver_feedback", Layer.silver,
                        "Accepted feedback: clean PII-scrubbed text, language, pseudonymized customer, deduplicated.",
                        _spark("SILVER_FEEDBACK"))
SILVER_REJECTS = Table("silver.silver_rejects", Layer.silver, "Feedback rows refused by silver, each with its reason.",
                       _spark("SILVER_REJECTS"))
ORDERS = Table("silver.orders", Layer.silver, "Order lines with revenue, region, carrier, platform, customer tier.",
               _spark("ORDERS"))
RETURNS_REFUNDS = Table("silver.returns_refunds", Layer.silver, "Returns and refunds with reason codes and amounts.",
                        _spark("RETURNS_REFUNDS"))
SKU_CATALOG = Table("silver.sku_catalog", Layer.silver, "The SKU catalog as known on each day.", _spark("SKU_CATALOG"))

FEEDBACK_CLASSIFICATIONS = Table("enrichment.feedback_classifications", Layer.enrichment,
                                 "Each item's labels, severity, sentiment, entities and owner, with versions.",
                                 _spark("FEEDBACK_CLASSIFICATIONS"))
TRIAGE_QUEUE = Table("enrichment.triage_queue", Layer.enrichment, "Classified items an analyst should review.",
                     _spark("FEEDBACK_CLASSIFICATIONS"))
CLASSIFICATION_DEAD_LETTERS = Table("enrichment.classification_dead_letters", Layer.enrichment,
                                    "Items that could not be classified, with the error.", _spark("FEEDBACK_CLASSIFICATIONS"))
CLASSIFICATION_HISTORY = Table("enrichment.classification_history", Layer.enrichment,
                               "Every classifier version's classifications of the days it ran on; one table per version.",
                               _spark("FEEDBACK_CLASSIFICATIONS"))
CLASSIFIER_VERSIONS = Table("ops.classifier_versions", Layer.ops,
                            "Every classifier version that classified feedback: backend, model, taxonomy, when it last ran.",
                            "feedback_assets.enrichment.history:VERSIONS_SCHEMA", partition_column=None)
LABEL_CORRECTIONS_LEDGER = Table("ops.label_corrections", Layer.ops,
                                  "Every accepted triage correction: item, label, analyst, when, file and line.",
                                  "feedback_assets.enrichment.corrections:LEDGER_SCHEMA", partition_column=None)
LABEL_CORRECTIONS = Table("enrichment.label_corrections", Layer.enrichment,
                          "Analysts' corrections by the day of the item they correct.",
                          "feedback_assets.enrichment.corrections_store:DAY_PART_SCHEMA")
FEEDBACK_LABELS = Table("enrichment.feedback_labels", Layer.enrichment,
                        "Each item's labels as gold counts them: the analyst's correction where there is one, else the model's.",
                        _spark("FEEDBACK_LABELS"))
GOLDEN_EVALUATIONS = Table("ops.golden_evaluations", Layer.ops,
                            "Each classifier version's golden-set score: macro-F1, accuracy, calibration, F1 per label.",
                            "feedback_assets.enrichment.gate:EVALUATIONS_SCHEMA", partition_column=None)
CLASSIFICATION_DIFF = Table("enrichment.classification_diff", Layer.enrichment,
                            "Per day, how many items moved from which label (earlier version) to which (current version).",
                            _spark("CLASSIFICATION_DIFF"))
CLASSIFICATION_CACHE = Table("enrichment.classification_cache", Layer.enrichment,
                             "One classification per (content hash, model); one table per prompt version.",
                             "feedback_assets.enrichment.cache:CACHE_SCHEMA", partition_column=None)
EMBEDDING_CACHE = Table("enrichment.embedding_cache", Layer.enrichment,
                        "One vector per theme text; one table per embedding model.",
                        "feedback_assets.theming.cache:CACHE_SCHEMA", partition_column=None)

FEEDBACK_THEMES = Table("gold.feedback_themes", Layer.gold, "Each complaint's recurring theme, or none (an outlier).",
                        "feedback_assets.theming.schema:FEEDBACK_THEMES")
THEME_REGISTRY = Table("gold.theme_registry", Layer.gold, "Themes with their founding day, name and centroid.",
                       "feedback_assets.theming.registry:REGISTRY_SCHEMA", partition_column=None)
ISSUE_DAILY_METRICS = Table("gold.issue_daily_metrics", Layer.gold,
                            "Complaints per day for every label and watched dimension value, per 1k orders.",
                            _spark("ISSUE_DAILY_METRICS"))
COMPLAINT_VELOCITY = Table("gold.complaint_velocity", Layer.gold,
                           "Each series-day against its 7- and 28-day averages, with breach and alert flags.",
                           _spark("COMPLAINT_VELOCITY"))
SERIES_COMMERCE = Table("gold.series_commerce", Layer.gold,
                         "Orders, units, revenue, margin, returns and refunds per day for every value orders carry.",
                         _spark("SERIES_COMMERCE"))
ISSUE_PRIORITIES = Table("gold.issue_priorities", Layer.gold, "A 0-100 priority per (label, SKU, region) and day.",
                         _spark("ISSUE_PRIORITIES"))

DISPATCH_LEDGER = Table("alerting.dispatch_ledger", Layer.alerting,
                        "One entry per alert: ticket and Slack post, each recorded exactly once.",
                        "feedback_assets.alerts.ledger:LEDGER_SCHEMA", partition_column=None)
RESOLUTION_EVENTS = Table("alerting.resolution_events", Layer.alerting,
                          "Every observed state of an alert ticket (id, updated, status, resolution), once each.",
                          "feedback_assets.roi.schema:RESOLUTION_EVENTS", partition_column=None)

_ROI = "feedback_assets.roi.schema"
TICKET_RESOLUTIONS = Table("roi.ticket_resolutions", Layer.roi,
                           "Alert tickets by the day they were resolved, mitigated, deferred or closed as invalid.",
                           f"{_ROI}:TICKET_RESOLUTIONS")
REMEDIATION_IMPACT = Table("roi.remediation_impact", Layer.roi,
                           "Each resolved ticket's measured effect per window, as known on the day.",
                           f"{_ROI}:REMEDIATION_IMPACT")
ROI_METRICS = Table("roi.roi_metrics", Layer.roi, "The programme's rolling ROI figures with ranges, as of the day.",
                    f"{_ROI}:ROI_METRICS")
AFFECTED_CUSTOMERS = Table("roi.affected_customers", Layer.roi,
                           "Pseudonymized customers who complained about a fixed issue, with a follow-up message.",
                           f"{_ROI}:AFFECTED_CUSTOMERS")
ROI_TABLES = (TICKET_RESOLUTIONS, REMEDIATION_IMPACT, ROI_METRICS, AFFECTED_CUSTOMERS)


def landed(contract: Contract, channel: str | None = None) -> Table:
    """Where a contract's exports land: one table per feedback channel, one per commerce contract."""
    if contract == Contract.feedback:
        if channel not in LANDED_FEEDBACK:
            raise KeyError(f"unknown feedback channel {channel!r}")
        return LANDED_FEEDBACK[channel]
    return LANDED_COMMERCE[contract]


# What the pipeline's day produces, in order: the CLI summary and the Delta cost benchmark walk these.
PIPELINE_TABLES: tuple[Table, ...] = (
    *BRONZE.values(), SILVER_FEEDBACK, SILVER_REJECTS, ORDERS, RETURNS_REFUNDS, SKU_CATALOG,
    FEEDBACK_CLASSIFICATIONS, TRIAGE_QUEUE, CLASSIFICATION_DEAD_LETTERS, CLASSIFICATION_DIFF, LABEL_CORRECTIONS,
    FEEDBACK_LABELS, FEEDBACK_THEMES,
    SERIES_COMMERCE, ISSUE_DAILY_METRICS, COMPLAINT_VELOCITY, ISSUE_PRIORITIES,
)
CATALOG: dict[str, Table] = {
    table.name: table
    for table in (*LANDED_FEEDBACK.values(), *LANDED_COMMERCE.values(), LANDING_LEDGER, *PIPELINE_TABLES,
                  CLASSIFICATION_HISTORY, CLASSIFIER_VERSIONS, GOLDEN_EVALUATIONS, LABEL_CORRECTIONS_LEDGER, CLASSIFICATION_CACHE, EMBEDDING_CACHE, THEME_REGISTRY, DISPATCH_LEDGER, RESOLUTION_EVENTS,
                  *ROI_TABLES)
}


@dataclass(frozen=True)
class TableLocations:
    """Maps logical tables to physical places: folders under `root`, or Unity Catalog names.

    With `uc_catalog` set, `gold.complaint_velocity` becomes `<uc_catalog>.<uc_schema_prefix>gold.complaint_velocity`.
    """

    root: str
    uc_catalog: str | None = None
    uc_schema_prefix: str = ""

    def path(self, table: Table) -> Path:
        return Path(self.root) / table.schema_name / table.table_name

    def qualified_name(self, table: Table) -> str:
        if not self.uc_catalog:
            raise LookupError("no Unity Catalog configured (FEEDBACK_UC_CATALOG)")
        return f"{self.uc_catalog}.{self.uc_schema_prefix}{table.schema_name}.{table.table_name}"
