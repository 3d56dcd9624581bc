"""The code location: every asset, check, job, sensor and resource, assembled explicitly."""

import os

import dagster as dg

from feedback_assets.automation import daily_at, enrichment_kinds, reclassify_recent, when_inputs_change
from feedback_assets.bronze import bronze_assets
from feedback_assets.classification_diff import classification_diff
from feedback_assets.classifications import feedback_classifications
from feedback_assets.enrichment.llm import LLMConnection
from feedback_assets.enrichment.service import resolve_backend
from feedback_assets.commerce import commerce_assets
from feedback_assets.dispatch import dispatch_alerts_job
from feedback_assets.gold import gold_assets
from feedback_assets.labels import CORRECTIONS_KEY, LABELS_KEY, label_assets
from feedback_assets.roi.assets import RESOLUTIONS_KEY, roi_assets
from feedback_assets.silver import silver_feedback
from feedback_assets.themes import feedback_themes
from partitions import daily_partitions
from resources.enrichment import EnrichmentResource
from resources.landing import LandingResource
from resources.settings import Settings, settings
from resources.slack import SlackNotifierResource
from resources.compute import step_runner_for
from resources.table_store import configured_table_store
from resources.themes import ThemesResource, embedding_choice
from resources.tickets import TicketsResource
from sensors.landing import INGEST_JOB_NAME, landing_sensor
from sensors.resolutions import ticket_resolutions_job, ticket_resolutions_sensor
from sensors.triage import apply_label_corrections_job, triage_inbox_sensor
from sensors.velocity import velocity_alerts

ingest_job = dg.define_asset_job(
    INGEST_JOB_NAME,
    selection=dg.AssetSelection.groups("bronze", "silver"),
    partitions_def=daily_partitions,
    description="Lands new exports and rebuilds bronze, silver and commerce tables for the chosen days.",
)


def _secret(name: str) -> dg.EnvVar | None:
    """The variable as a `dg.EnvVar` (never its value) when it is set; otherwise the embedded default applies."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def build_resources(config: Settings) -> dict[str, dg.ConfigurableResource]:
    table_store = configured_table_store(config)
    return {
        "step_runner": step_runner_for(config),
        "table_store": table_store,
        "landing": LandingResource(landing_dir=str(config.landing_dir), settle_seconds=config.landing_settle_seconds),
        "enrichment": EnrichmentResource(),
        "themes": ThemesResource(),
        "tickets": TicketsResource(
            jira_url=_secret("JIRA_URL"), jira_user=_secret("JIRA_USER"), jira_api_token=_secret("JIRA_API_TOKEN"),
            ticket_dir=str(config.feedback_home / "tickets"),
        ),
        "slack": SlackNotifierResource(
            bot_token=_secret("SLACK_BOT_TOKEN"), base_url=os.environ.get("SLACK_API_URL") or None,
            outbox_path=str(config.feedback_home / "slack_outbox.jsonl"),
        ),
    }


def with_shared_policy(assets: list[dg.AssetsDefinition], config: Settings) -> list[dg.AssetsDefinition]:
    """Daily automation for every asset, and kinds that say which classifier and embedder actually run."""
    # Ticket resolutions have no upstream asset: they run daily (an empty day included, so the ROI
    # days after it are never blocked) and again whenever their sensor sees a ticket change.
    # Label corrections likewise: every day, and again for the days an imported corrections file touches.
    roots = {spec.key for asset in [*bronze_assets, *commerce_assets] for spec in asset.specs} | {RESOLUTIONS_KEY,
                                                                                                  CORRECTIONS_KEY}
    in_process = {spec.key for asset in roi_assets for spec in asset.specs} | {CORRECTIONS_KEY}
    classifier = resolve_backend(EnrichmentResource().backend, LLMConnection.from_env())
    embeddings = embedding_choice(os.environ.get("FEEDBACK_EMBEDDINGS") or ThemesResource().backend, dict(os.environ))
    embedder = "local" if embeddings is None else ("azure_openai" if embeddings[0].provider == "azure" else "openai")
    kinds_by_key = {**{spec.key: enrichment_kinds(classifier) for spec in feedback_classifications.specs},
                    feedback_themes.key: enrichment_kinds(embedder)}

    def where_tables_live(kinds: set[str]) -> set[str]:
        """Spark tables say their format; every step says when it runs on Databricks."""
        placed = (kinds - {"parquet"}) | {config.table_format} if "spark" in kinds else kinds
        return placed | {"databricks"} if config.compute == "databricks" else placed

    classified = {spec.key for spec in feedback_classifications.specs}
    classifier_version = EnrichmentResource().identity().code_version

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.key in roots:
            condition = daily_at(config.daily_run_hour_utc)
        elif spec.key == LABELS_KEY:
            condition = when_inputs_change(optional=dg.AssetSelection.assets(CORRECTIONS_KEY))
        else:
            condition = when_inputs_change()
        if spec.key in classified:
            # Taxonomy, prompt and model make the classifier's code version: a change marks classified days stale.
            if config.reclassify_recent_days:
                condition = condition | reclassify_recent(config.reclassify_recent_days)
            spec = spec.replace_attributes(code_version=classifier_version)
        spec = spec.replace_attributes(automation_condition=condition)
        kinds = kinds_by_key.get(spec.key, set(spec.kinds))
        # The ROI assets are small and run in the code location, wherever the steps run.
        return spec.replace_attributes(kinds=kinds if spec.key in in_process else where_tables_live(kinds))

    return list(dg.map_asset_specs(apply, assets))


ASSETS_BEFORE_POLICY = [*bronze_assets, silver_feedback, *commerce_assets, feedback_classifications, classification_diff,
                        *label_assets, feedback_themes,
                     *gold_assets, *roi_assets]
ALL_ASSETS = with_shared_policy(ASSETS_BEFORE_POLICY, settings())

daily_chain = dg.AutomationConditionSensorDefinition(
    "daily_chain",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Runs the daily chain by itself: bronze and commerce for the newest complete day at "
                "FEEDBACK_DAILY_RUN_HOUR_UTC, then each downstream day once its inputs have changed "
                "(late files included).",
)

def executor_for(config: Settings) -> dg.ExecutorDefinition:
    """On local Spark, a run's steps share one process and one Spark session (a session per step would start a JVM
    each, which on a small machine costs more than the steps); on Databricks each step waits on its cluster run, so
    they run side by side."""
    return dg.in_process_executor if config.compute == "local" else dg.multiprocess_executor


defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=[ingest_job, dispatch_alerts_job, ticket_resolutions_job, apply_label_corrections_job],
    sensors=[landing_sensor, velocity_alerts, ticket_resolutions_sensor, triage_inbox_sensor, daily_chain],
    resources=build_resources(settings()),
    executor=executor_for(settings()),
)
