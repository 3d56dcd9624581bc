"""The code location as operators see it: groups, kinds, owners, descriptions, partitions, checks, sensors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from feedback_assets.definitions import defs
from sensors.landing import stale_days

EXPECTED_ASSETS = {
    "bronze": {f"bronze_{c}" for c in ["product_reviews", "support_tickets", "surveys", "app_store_reviews",
                                       "return_reasons", "marketplace_messages"]},
    "silver": {"silver_feedback", "silver_rejects", "orders", "returns_refunds", "sku_catalog"},
    "enrichment": {"feedback_classifications", "triage_queue", "classification_dead_letters", "classification_diff",
                   "label_corrections", "feedback_labels", "feedback_themes"},
    "gold": {"issue_daily_metrics", "series_commerce", "complaint_velocity", "issue_priorities"},
    "roi": {"ticket_resolutions", "remediation_impact", "roi_metrics", "affected_customers", "executive_dashboard"},
}


def test_every_asset_is_grouped_owned_described_and_daily_partitioned():
    graph = defs.resolve_asset_graph()
    by_group: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        by_group.setdefault(node.group_name, set()).add(key.to_user_string())
        assert node.owners and node.owners[0].startswith("team:")
        assert node.description and node.description.endswith(".") and "\n" not in node.description
        assert node.kinds
        assert isinstance(node.partitions_def, dg.DailyPartitionsDefinition)
        assert node.partitions_def.timezone == "UTC"
    assert by_group == EXPECTED_ASSETS


def test_silver_reads_a_trailing_window_of_bronze_for_duplicates():
    graph = defs.resolve_asset_graph()
    silver = dg.AssetKey("silver_feedback")
    assert {k.to_user_string() for k in graph.get(silver).parent_keys} == EXPECTED_ASSETS["bronze"]
    mapping = graph.get_partition_mapping(silver, dg.AssetKey("bronze_surveys"))
    assert isinstance(mapping, dg.TimeWindowPartitionMapping) and mapping.start_offset == -7


def test_silver_has_blocking_quality_checks():
    specs = defs.get_assets_def("silver_feedback").check_specs
    assert {spec.name: spec.blocking for spec in specs} == {
        "reconciles_with_bronze": True, "key_columns_not_null": True, "no_pii_residue": True,
    }


def test_landing_sensor_and_ingest_job_are_defined():
    assert defs.resolve_sensor_def("landing_sensor").job_name == "ingest_feedback"
    job = defs.resolve_job_def("ingest_feedback")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == EXPECTED_ASSETS["bronze"] | EXPECTED_ASSETS["silver"]


def test_classification_checks_guard_accounting_usable_answers_quality_drift_and_review_load():
    specs = defs.get_assets_def("feedback_classifications").check_specs
    assert {spec.name: spec.blocking for spec in specs} == {
        "every_item_accounted_for": True, "classifier_answers_usable": True, "golden_set_quality": True,
        "label_mix_stable": False, "review_share": False,
    }


def test_velocity_reads_its_baselines_through_a_trailing_partition_mapping():
    graph = defs.resolve_asset_graph()
    mapping = graph.get_partition_mapping(dg.AssetKey("complaint_velocity"), dg.AssetKey("issue_daily_metrics"))
    assert isinstance(mapping, dg.TimeWindowPartitionMapping) and mapping.start_offset <= -28 and mapping.end_offset == 0
    specs = defs.get_assets_def("complaint_velocity").check_specs
    assert {spec.name: spec.blocking for spec in specs} == {"every_series_day_assessed": True}


def test_the_velocity_sensor_runs_by_default_and_targets_the_dispatch_job():
    sensor = defs.resolve_sensor_def("velocity_alerts")
    assert isinstance(sensor, dg.MultiAssetSensorDefinition)
    assert sensor.job_name == "dispatch_alerts" and sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.resolve_sensor_def("landing_sensor").default_status == dg.DefaultSensorStatus.STOPPED


def test_real_sinks_are_switched_on_by_environment_and_only_as_env_vars(monkeypatch):
    from feedback_assets.definitions import build_resources
    from resources.settings import read_settings

    for name in ("JIRA_URL", "JIRA_USER", "JIRA_API_TOKEN", "SLACK_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    local = build_resources(read_settings())
    assert local["tickets"].sink().name == "local" and local["slack"].sink().name == "outbox"
    monkeypatch.setenv("JIRA_URL", "https://example.atlassian.net")
    monkeypatch.setenv("JIRA_USER", "bot@example.com")
    monkeypatch.setenv("JIRA_API_TOKEN", "test-jira-token")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "test-slack-token")
    configured = build_resources(read_settings())
    assert isinstance(configured["tickets"].jira_api_token, dg.EnvVar)
    assert isinstance(configured["slack"].bot_token, dg.EnvVar)
    assert configured["slack"].process_config_and_initialize().sink().name == "slack"
    assert "test-jira-token" not in repr(configured["tickets"])


def ledger_entry(sha: str, channel: str, days: list[str], registered: float, status: str = "registered") -> dict:
    return {"sha256": sha, "channel": channel, "contract": "feedback", "status": status, "days": json.dumps(days),
            "registered_at": datetime.fromtimestamp(registered, UTC)}


def test_a_late_file_makes_its_old_day_stale_until_bronze_is_rebuilt():
    ledger = [ledger_entry("a", "surveys", ["2026-10-01"], 100.0), ledger_entry("late", "surveys", ["2026-09-01"], 300.0),
              ledger_entry("bad", "surveys", [], 300.0, status="rejected")]
    materialized = {("surveys", "2026-10-01"): 200.0, ("surveys", "2026-09-01"): 250.0}
    assert stale_days(ledger, after=0.0, materialized_at=materialized) == {"2026-09-01": ["late"]}
    assert stale_days(ledger, after=300.0, materialized_at={}) == {}
    materialized[("surveys", "2026-09-01")] = 301.0
    assert stale_days(ledger, after=0.0, materialized_at=materialized) == {}


def test_transforms_run_without_dagster():
    import subprocess
    import sys

    probe = ("import sys, feedback_assets.transforms.silver, feedback_assets.transforms.commerce, "
             "feedback_assets.transforms.bronze, feedback_assets.transforms.quality; print('dagster' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_every_sensor_and_job_says_what_it_does():
    for sensor in defs.sensors:
        assert sensor.description and sensor.description.endswith("."), sensor.name
    for job in defs.jobs:
        assert job.description, job.name


def test_the_location_is_named_for_the_project():
    workspace = (Path(__file__).resolve().parents[1] / "workspace.yaml").read_text()
    assert "location_name: feedback-to-fix" in workspace


def test_the_newest_partition_is_the_newest_complete_day():
    from partitions import daily_partitions

    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert daily_partitions.get_last_partition_key() == yesterday


def test_roots_run_daily_and_everything_else_when_its_inputs_change():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        # ticket_resolutions reads the ticket system, not an asset: a root like bronze.
        expected = "on_cron(0 5 * * *, UTC)" if not node.parent_keys else "when_inputs_change"
        assert node.automation_condition.get_label() == expected, key
    assert defs.resolve_sensor_def("daily_chain").default_status == dg.DefaultSensorStatus.RUNNING


def test_enrichment_kinds_name_the_backend_that_runs(monkeypatch):
    from feedback_assets.definitions import ASSETS_BEFORE_POLICY, with_shared_policy
    from resources.settings import read_settings

    def kinds(key: str) -> set[str]:
        assets = with_shared_policy(ASSETS_BEFORE_POLICY, read_settings())
        return next(spec.kinds for asset in assets for spec in asset.specs if spec.key.to_user_string() == key)

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "FEEDBACK_EMBEDDINGS"):
        monkeypatch.delenv(name, raising=False)
    assert "huggingface" in kinds("feedback_classifications") and "openai" not in kinds("feedback_classifications")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    assert "openai" in kinds("feedback_classifications") and "openai" in kinds("feedback_themes")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # a chat-only server: themes embed locally
    assert "openai" in kinds("feedback_classifications") and "huggingface" in kinds("feedback_themes")


def test_kinds_say_the_table_format_and_when_steps_run_on_databricks(monkeypatch):
    from dataclasses import replace

    from feedback_assets.definitions import ASSETS_BEFORE_POLICY, with_shared_policy
    from resources.settings import read_settings

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "FEEDBACK_EMBEDDINGS"):
        monkeypatch.delenv(name, raising=False)

    def kinds(config, key: str) -> set[str]:
        assets = with_shared_policy(ASSETS_BEFORE_POLICY, config)
        return next(spec.kinds for asset in assets for spec in asset.specs if spec.key.to_user_string() == key)

    local = read_settings()
    assert kinds(local, "silver_feedback") == {"spark", "parquet"}
    assert kinds(replace(local, table_format="delta"), "complaint_velocity") == {"spark", "delta"}
    databricks = replace(local, table_format="delta", compute="databricks")
    assert kinds(databricks, "silver_feedback") == {"spark", "delta", "databricks"}
    assert kinds(databricks, "feedback_classifications") == {"python", "huggingface", "databricks"}
    assert kinds(databricks, "remediation_impact") == {"python", "statsmodels"}, "ROI assets run in the code location"


def test_the_roi_loop_is_fed_by_a_resolution_sensor_and_guarded_by_its_checks():
    sensor = defs.resolve_sensor_def("ticket_resolutions_sensor")
    assert sensor.job_name == "ticket_resolutions_job" and sensor.default_status == dg.DefaultSensorStatus.RUNNING
    job = defs.resolve_job_def("ticket_resolutions_job")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {"ticket_resolutions"}
    checks = {spec.name: spec.blocking for name in ("remediation_impact", "roi_metrics")
              for spec in defs.get_assets_def(name).check_specs}
    assert checks == {"every_resolution_measured_per_window": True, "roi_assumptions_valid": True}
    graph = defs.resolve_asset_graph()
    impact = dg.AssetKey("remediation_impact")
    mapping = graph.get_partition_mapping(impact, dg.AssetKey("issue_daily_metrics"))
    assert isinstance(mapping, dg.TimeWindowPartitionMapping) and mapping.start_offset <= -(56 + 7 + 28 + 3)
    assert {k.to_user_string() for k in graph.get(dg.AssetKey("executive_dashboard")).parent_keys} >= {"roi_metrics"}


def test_a_malformed_partition_start_is_refused_with_its_source(monkeypatch, tmp_path):
    import pytest

    from partitions import START_FILE_NAME, configured_start

    monkeypatch.delenv("FEEDBACK_PARTITIONS_START", raising=False)
    monkeypatch.setenv("FEEDBACK_HOME", str(tmp_path))
    (tmp_path / START_FILE_NAME).write_text("2026-13-45\n")
    with pytest.raises(ValueError, match="partitions_start must hold a day"):
        configured_start()
    (tmp_path / START_FILE_NAME).write_text("2026-10-03\n")
    assert configured_start() == "2026-10-03"
