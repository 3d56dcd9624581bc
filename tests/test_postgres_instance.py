"""deploy/dagster.yaml, the production instance, keeps everything in PostgreSQL across restarts.

The tests run the file unchanged against a real PostgreSQL server (tests/postgres_server.py): each
test copies it into a fresh DAGSTER_HOME, points the DAGSTER_PG_* variables at its own new
database, and "restarts" by disposing the instance and opening a new one from the same directory,
as a redeployed webserver or daemon would. Without PostgreSQL binaries the server-backed tests
skip, unless FEEDBACK_REQUIRE_POSTGRES=1 (set by CI) makes that a failure.
"""

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteInstigatorOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.scheduler.instigation import InstigatorState, InstigatorStatus, SensorInstigatorData
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.utils import make_new_backfill_id
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from feedback_assets.gold import VELOCITY_KEY
from resources.table_store import LocalParquetTableStore
from sensors.velocity import velocity_alerts
from tests.postgres_server import PostgresServer, PostgresUnavailable, find_bindir, start_postgres

REPO = Path(__file__).resolve().parents[1]
DEPLOY_CONFIG = REPO / "deploy" / "dagster.yaml"
REQUIRE_ENV = "FEEDBACK_REQUIRE_POSTGRES"

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01")


@dg.asset(key=VELOCITY_KEY, partitions_def=DAYS)
def complaint_velocity(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """A stand-in for gold's complaint_velocity: its key and daily partitions, without Spark."""
    return dg.MaterializeResult(metadata={"series_scored": 3, "day": context.partition_key})


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One private PostgreSQL server for the module's tests; skipped (or failed in CI) without one."""
    try:
        server = start_postgres()
    except PostgresUnavailable as missing:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{missing} ({REQUIRE_ENV}=1 forbids skipping)", pytrace=False)
        pytest.skip(f"no PostgreSQL server: {missing}")
    yield server
    server.stop()


@pytest.fixture
def dagster_home(postgres, tmp_path, monkeypatch) -> Path:
    """deploy/dagster.yaml as-is in a fresh DAGSTER_HOME, with the environment pointing at a new database."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_CONFIG, home / "dagster.yaml")
    database = postgres.create_database(f"dagster_{uuid.uuid4().hex[:12]}")
    for name, value in postgres.dagster_env(database).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@contextmanager
def deployed_instance(home: Path) -> Iterator[dg.DagsterInstance]:
    """The instance a webserver or daemon started with this DAGSTER_HOME gets; disposed on exit."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def _deploy_yaml() -> dict:
    return yaml.safe_load(DEPLOY_CONFIG.read_text())


def test_the_storage_scheme_pins_psycopg2():
    """The connection scheme is postgresql+psycopg2: a bare postgresql:// would let SQLAlchemy pick the driver."""
    scheme = _deploy_yaml()["storage"]["postgres"]["postgres_db"].get("scheme")
    bare_driver = sa.engine.make_url("postgresql://dagster@localhost/dagster").get_dialect().driver
    assert scheme == "postgresql+psycopg2", (
        f"storage.postgres.postgres_db.scheme is {scheme!r}: it must be 'postgresql+psycopg2'. Without it this "
        f"SQLAlchemy {sa.__version__} connects a bare postgresql:// URL with {bare_driver!r}, and under psycopg 3 "
        "the `NOTIFY run_events, <id>` Dagster sends for every stored event fails (psycopg 3 binds parameters "
        "server-side, which NOTIFY does not accept); psycopg2 is what the project installs.")


def test_every_connection_setting_comes_from_the_environment():
    """No address, name or secret is written in the file: each connection field reads a DAGSTER_PG_* variable."""
    postgres_db = _deploy_yaml()["storage"]["postgres"]["postgres_db"]
    assert {field: postgres_db[field] for field in ("username", "password", "hostname", "db_name", "port")} == {
        "username": {"env": "DAGSTER_PG_USERNAME"}, "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": {"env": "DAGSTER_PG_HOST"}, "db_name": {"env": "DAGSTER_PG_DB"},
        "port": {"env": "DAGSTER_PG_PORT"}}


def test_missing_binaries_are_reported_with_where_they_were_looked_for(tmp_path):
    """Without initdb/pg_ctl/postgres the helper says what is missing and where it looked, so the skip is explained."""
    with pytest.raises(PostgresUnavailable, match=r"not found in \$FEEDBACK_POSTGRES_BINDIR=.*install"):
        find_bindir({"FEEDBACK_POSTGRES_BINDIR": str(tmp_path / "no-such-bin")})


def test_every_storage_is_postgres_through_psycopg2_with_the_repo_run_limits(dagster_home):
    """Runs, event log and schedules all live in PostgreSQL, and the queue keeps one dispatch per series."""
    with deployed_instance(dagster_home) as instance:
        storages = (instance.run_storage, instance.event_log_storage, instance.schedule_storage)
        assert [type(storage) for storage in storages] == [
            PostgresRunStorage, PostgresEventLogStorage, PostgresScheduleStorage]
        assert {sa.engine.make_url(storage.postgres_url).drivername for storage in storages} == {
            "postgresql+psycopg2"}
        queue = instance.get_concurrency_config().run_queue_config
        repo_coordinator = yaml.safe_load((REPO / "dagster.yaml").read_text())["run_coordinator"]["config"]
        assert queue.tag_concurrency_limits == repo_coordinator["tag_concurrency_limits"]
        assert queue.tag_concurrency_limits == [
            {"key": "series_key", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
        assert queue.max_concurrent_runs >= 1
        assert instance.run_monitoring_enabled and instance.run_monitoring_max_resume_run_attempts == 0
        assert instance.run_retries_enabled


def test_a_role_that_only_owns_its_database_is_enough(dagster_home, postgres):
    """Dagster creates its tables on first start as a plain login role: no superuser, CREATEDB or CREATEROLE."""
    with deployed_instance(dagster_home):
        pass
    connection = postgres.admin_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = %s",
                           [postgres.username])
            assert cursor.fetchone() == (False, False, False)
    finally:
        connection.close()
    database = os.environ["DAGSTER_PG_DB"]
    dagster = psycopg2.connect(host=postgres.host, port=postgres.port, user=postgres.username,
                               password=postgres.password, dbname=database)
    try:
        with dagster.cursor() as cursor:
            cursor.execute("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'")
            owners = dict(cursor.fetchall())
    finally:
        dagster.close()
    assert {"runs", "event_logs", "instigators", "bulk_actions"} <= owners.keys()
    assert set(owners.values()) == {postgres.username}


def test_a_run_its_event_log_and_its_materialization_survive_a_restart(dagster_home):
    """A partition's run is SUCCESS after a restart, with the same event log and the materialization's metadata."""
    with deployed_instance(dagster_home) as instance:
        result = dg.materialize([complaint_velocity], instance=instance, partition_key="2024-03-02")
        assert result.success
        events_before = [(event.dagster_event_type, event.step_key) for event in instance.all_logs(result.run_id)]

    with deployed_instance(dagster_home) as restarted:
        run = restarted.get_run_by_id(result.run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == "2024-03-02"
        events_after = [(event.dagster_event_type, event.step_key) for event in restarted.all_logs(result.run_id)]
        assert events_after == events_before
        assert dg.DagsterEventType.RUN_SUCCESS in [event_type for event_type, _ in events_after]

        records = restarted.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=VELOCITY_KEY, asset_partitions=["2024-03-02"]), limit=10).records
        assert [record.run_id for record in records] == [result.run_id]
        metadata = records[0].asset_materialization.metadata
        assert metadata["series_scored"] == dg.IntMetadataValue(3)
        assert metadata["day"] == dg.TextMetadataValue("2024-03-02")
        latest = restarted.get_latest_materialization_event(VELOCITY_KEY)
        assert latest is not None and latest.run_id == result.run_id


_SECOND_PROCESS = """
import json, sys
import dagster as dg
instance = dg.DagsterInstance.get()  # from $DAGSTER_HOME, as dagster-webserver and dagster-daemon load it
run = instance.get_run_by_id(sys.argv[1])
instance.add_run_tags(sys.argv[1], {"seen_by": "second_process"})
print(json.dumps({"run_storage": type(instance.run_storage).__name__,
                  "status": run.status.value if run else None}))
instance.dispose()
"""


def test_a_second_process_shares_the_runs_while_the_first_instance_is_open(dagster_home):
    """Webserver and daemon are separate processes: each sees and updates the runs the other wrote."""
    with deployed_instance(dagster_home) as instance:
        result = dg.materialize([complaint_velocity], instance=instance, partition_key="2024-03-03")
        done = subprocess.run([sys.executable, "-c", _SECOND_PROCESS, result.run_id], capture_output=True,
                              text=True, env={**os.environ, "DAGSTER_HOME": str(dagster_home)}, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads(done.stdout.strip().splitlines()[-1]) == {
            "run_storage": "PostgresRunStorage", "status": "SUCCESS"}
        assert instance.get_run_by_id(result.run_id).tags["seen_by"] == "second_process"


def _velocity_sensor_state(cursor: str | None) -> InstigatorState:
    """The state the sensor daemon keeps for velocity_alerts in the workspace.yaml code location."""
    location = ManagedGrpcPythonEnvCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name="feedback_assets.definitions",
                             attribute="defs", working_directory=str(REPO)),
        location_name="feedback-to-fix")
    origin = RemoteInstigatorOrigin(RemoteRepositoryOrigin(location, "__repository__"), velocity_alerts.name)
    return InstigatorState(origin, InstigatorType.SENSOR, InstigatorStatus.DECLARED_IN_CODE, SensorInstigatorData(
        min_interval=velocity_alerts.minimum_interval_seconds, cursor=cursor, sensor_type=velocity_alerts.sensor_type))


def _velocity_tick(instance: dg.DagsterInstance, store: LocalParquetTableStore, cursor: str | None):
    """One evaluation of the real velocity_alerts sensor: its result and the cursor it leaves."""
    context = dg.build_multi_asset_sensor_context(
        monitored_assets=[VELOCITY_KEY], instance=instance, cursor=cursor,
        definitions=dg.Definitions(assets=[complaint_velocity]), resources={"table_store": store})
    return velocity_alerts(context), context.cursor


def test_the_velocity_sensor_cursor_survives_a_restart(dagster_home, store):
    """After a restart the sensor resumes from its stored cursor: it sees only partitions materialized since."""
    with deployed_instance(dagster_home) as instance:
        dg.materialize([complaint_velocity], instance=instance, partition_key="2024-03-04")
        result, cursor = _velocity_tick(instance, store, cursor=None)
        assert isinstance(result, dg.SkipReason) and result.skip_message.startswith("1 new partition(s)")
        assert cursor
        state = instance.add_instigator_state(_velocity_sensor_state(cursor=None))
        instance.update_instigator_state(state.with_data(state.instigator_data._replace(cursor=cursor)))

    with deployed_instance(dagster_home) as restarted:
        expected = _velocity_sensor_state(cursor)
        stored = restarted.get_instigator_state(expected.instigator_origin_id, expected.selector_id)
        assert stored is not None and stored.instigator_data.cursor == cursor
        assert [s.instigator_name for s in restarted.all_instigator_state(instigator_type=InstigatorType.SENSOR)] == [
            "velocity_alerts"]

        again, _ = _velocity_tick(restarted, store, stored.instigator_data.cursor)
        assert isinstance(again, dg.SkipReason) and again.skip_message == "no new complaint_velocity partitions"
        dg.materialize([complaint_velocity], instance=restarted, partition_key="2024-03-05")
        later, _ = _velocity_tick(restarted, store, stored.instigator_data.cursor)
        assert isinstance(later, dg.SkipReason) and later.skip_message.startswith("1 new partition(s)")


def test_an_asset_backfill_survives_a_restart(dagster_home):
    """A requested backfill of a partition range is still requested after a restart, with the same partitions."""
    asset_graph = dg.Definitions(assets=[complaint_velocity]).resolve_asset_graph()
    days = DAYS.get_partition_keys_in_range(dg.PartitionKeyRange("2024-03-01", "2024-03-07"))
    with deployed_instance(dagster_home) as instance:
        backfill = PartitionBackfill.from_asset_partitions(
            backfill_id=make_new_backfill_id(), asset_graph=asset_graph, partition_names=days,
            asset_selection=[VELOCITY_KEY], backfill_timestamp=1767225600.0, tags={"dagster/user": "ops"},
            dynamic_partitions_store=instance, all_partitions=False, title="replay march", description=None,
            run_config=None)
        instance.add_backfill(backfill)

    with deployed_instance(dagster_home) as restarted:
        stored = restarted.get_backfill(backfill.backfill_id)
        assert stored is not None
        assert stored.status == BulkActionStatus.REQUESTED and stored.is_asset_backfill
        assert stored.asset_selection == [VELOCITY_KEY] and stored.title == "replay march"
        target = stored.get_asset_backfill_data(asset_graph).target_subset
        assert target.get_partitions_subset(VELOCITY_KEY).get_partition_keys() == days
        # The backfill daemon looks for work this way.
        requested = restarted.get_backfills(filters=BulkActionsFilter(statuses=[BulkActionStatus.REQUESTED]))
        assert [b.backfill_id for b in requested] == [backfill.backfill_id]
