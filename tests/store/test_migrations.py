"""Schema versions: alembic revisions in reconciler/store/migrations, checked when a Store opens.

Each test runs on a SQLite file and on PostgreSQL (tests/support/postgres.py). A database
"behind" is made either by stopping at an older revision that ships (0001, below
0002's group actions; 0002, below 0003's tenants), or by giving the code a revision
0008 it does not ship (a copy of reconciler/store/migrations with one more file): the real
head is then one behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from reconciler.models.groups import GroupAction, GroupActionKind
from reconciler.models.records import Action, ActionKind, Change
from reconciler.models.runs import ActionStatus, RunStatus
from reconciler.store import SchemaError, Store, StoreError, db_upgrade, schema, schema_status
from reconciler.store.engine import migration_engine
from reconciler.store.schema import FIRST_REVISION
from tests.support.postgres import BACKENDS, database_url

REPO = Path(__file__).resolve().parents[2]
HEAD = "0007"
"""The newest revision reconciler/store/migrations ships."""
FINGERPRINT = "a" * 64

REVISION_0008 = '''"""A test revision: an index on runs.finished_at."""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_runs_finished_at", "runs", ["finished_at"])


def downgrade():
    op.drop_index("ix_runs_finished_at", table_name="runs")
'''

FAILING_0008 = '''"""A test revision that fails half-way: the table it made first must not stay."""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("half_done", sa.Column("id", sa.Integer(), primary_key=True))
    op.execute("THIS IS NOT SQL")


def downgrade():
    pass
'''


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from database_url(request, tmp_path)


@pytest.fixture
def newer_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Make the code know one more revision (its file's text), as the next version of the package would."""
    original = schema.MIGRATIONS_DIR

    def install(revision_source: str) -> None:
        copy = tmp_path / "newer-migrations"
        shutil.copytree(original, copy, ignore=shutil.ignore_patterns("__pycache__"))
        (copy / "versions" / "0008_test.py").write_text(revision_source)
        monkeypatch.setattr(schema, "MIGRATIONS_DIR", copy)
        schema.script_directory.cache_clear()

    yield install
    schema.script_directory.cache_clear()


def tables_of(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def columns_of(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {column["name"] for column in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def migrate(url: str, command_name: str, revision: str, *, unversioned: bool = False) -> None:
    """Run alembic's ``upgrade``/``downgrade`` to ``revision`` as db_upgrade does (one transaction, locked).

    ``unversioned``: drop the version table afterwards, leaving the tables as create_all made them
    before the schema was versioned.
    """
    engine = migration_engine(url)
    try:
        with engine.connect() as connection, connection.begin():
            schema.run_alembic(connection, command_name, revision)
            if unversioned:
                connection.execute(sa.text(f"DROP TABLE {schema.VERSION_TABLE}"))
    finally:
        engine.dispose()


def insert_run_and_action(url: str) -> int:
    """A finished apply with one succeeded action, written in SQL as revision 0001's code wrote them."""
    engine = migration_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO runs (started_at, finished_at, mode, status, config_fingerprint,"
                    " planned_create, planned_update, planned_deactivate, planned_reactivate, planned_link,"
                    " planned_conflict, planned_unmanaged, planned_in_sync, applied, failed)"
                    " VALUES ('2025-01-02 03:04:05+00:00', '2025-01-02 03:04:09+00:00', 'apply', 'succeeded',"
                    " :fp, 1, 0, 0, 0, 0, 0, 0, 4, 1, 0)"
                ),
                {"fp": FINGERPRINT},
            )
            run_id = int(connection.execute(sa.text("SELECT max(id) FROM runs")).scalar_one())
            connection.execute(
                sa.text(
                    "INSERT INTO actions (run_id, kind, user_name, okta_user_id, scim_id, reason, changes, status,"
                    " created_at, finished_at) VALUES (:run_id, 'create', 'ada@example.com', '00u1ada', 'scim-1',"
                    " 'assigned in Okta', :changes, 'succeeded', '2025-01-02 03:04:06+00:00',"
                    " '2025-01-02 03:04:07+00:00')"
                ),
                {"run_id": run_id, "changes": '{"userName": {"before": null, "after": "ada@example.com"}}'},
            )
    finally:
        engine.dispose()
    return run_id


# --- a new database ---------------------------------------------------------------------------


def test_a_fresh_database_is_created_at_head_by_the_store(url: str) -> None:
    assert schema_status(url).state == "empty"

    with Store(url) as store:
        store.start_run("dry-run", FINGERPRINT)

    status = schema_status(url)
    assert (status.state, status.current, status.head, status.pending) == ("current", HEAD, HEAD, ())
    assert {"runs", "actions", "alert_states", "alembic_version"} <= tables_of(url)
    assert db_upgrade(url) == HEAD  # nothing to do, and says so


def test_db_upgrade_creates_a_fresh_database(url: str) -> None:
    assert db_upgrade(url) == HEAD
    assert schema_status(url).state == "current"


def test_the_status_of_a_missing_sqlite_file_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "reconciler.db"
    status = schema_status(f"sqlite:///{path}")
    assert status.state == "empty" and "has no schema yet" in status.describe()
    assert not path.parent.exists()


def test_the_migrations_make_exactly_the_models_schema(url: str) -> None:
    """What alembic made and what the sqlmodel tables declare must not drift apart."""
    db_upgrade(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
            inspector = sa.inspect(connection)
            group_indexes = {index["name"] for index in inspector.get_indexes("group_actions")}
            group_fks = [
                (fk["constrained_columns"], fk["referred_table"]) for fk in inspector.get_foreign_keys("group_actions")
            ]
            runs_columns = {c["name"]: c for c in inspector.get_columns("runs")}
            runs_indexes = {index["name"]: index["column_names"] for index in inspector.get_indexes("runs")}
    finally:
        engine.dispose()
    assert differences == []
    assert set(SQLModel.metadata.tables) == {
        "runs",
        "actions",
        "group_actions",
        "alert_states",
        "rate_windows",
        "acknowledgements",
        "log_cursors",
    }
    # Revision 0002's objects, named: compare_metadata would flag their absence too, this says which.
    assert {"ix_group_actions_run_id", "ix_group_actions_status"} <= group_indexes
    assert group_fks == [(["run_id"], "runs")]
    assert runs_columns["planned_groups"]["nullable"] is True
    # Revision 0003's.
    assert runs_columns["tenant"]["nullable"] is True and runs_columns["replica"]["nullable"] is True
    assert runs_indexes["ix_runs_config_fingerprint_id"] == ["config_fingerprint", "id"]


def test_stores_starting_together_on_an_empty_database_create_it_once(url: str) -> None:
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            with Store(url) as store:
                store.start_run("dry-run", FINGERPRINT)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    with Store(url) as store:
        assert len(store.recent_runs()) == 4
    assert schema_status(url).current == HEAD


# --- a database at 0004, from before acknowledgements -------------------------------------------


def test_a_database_at_0004_upgrades_to_head_with_an_empty_acknowledgements_table(url: str) -> None:
    migrate(url, "upgrade", "0004")
    run_id = insert_run_and_action(url)
    assert "acknowledgements" not in tables_of(url)

    assert db_upgrade(url) == HEAD

    with Store(url) as store:
        assert [run.id for run in store.recent_runs()] == [run_id]
        assert store.acknowledgements(FINGERPRINT) == []
    migrate(url, "downgrade", "0004")
    assert "acknowledgements" not in tables_of(url)


# --- a database behind the code ---------------------------------------------------------------


def test_a_store_behind_is_refused_until_db_upgrade(url: str, newer_code: Callable[[str], None]) -> None:
    with Store(url) as old_version:
        run_id = old_version.start_run("apply", FINGERPRINT)
    newer_code(REVISION_0008)

    with pytest.raises(SchemaError) as refused:
        Store(url, config_path="/etc/okta-reconciler/config.toml")

    assert str(refused.value) == (
        f"the store at {refused.value.status.url} is at schema revision 0007, this version of okta-reconciler "
        "needs 0008: run `reconcile db upgrade --config /etc/okta-reconciler/config.toml` "
        "(back the database up first)"
    )
    status = schema_status(url)
    assert (status.state, status.current, status.head, status.pending) == ("behind", "0007", "0008", ("0008",))

    assert db_upgrade(url) == "0008"

    with Store(url) as upgraded:
        assert [run.id for run in upgraded.recent_runs()] == [run_id]  # the history is kept
    engine = sa.create_engine(url)
    try:
        indexes = {index["name"] for index in sa.inspect(engine).get_indexes("runs")}
    finally:
        engine.dispose()
    assert "ix_runs_finished_at" in indexes


def test_a_store_ahead_of_the_code_is_refused(
    url: str, newer_code: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    newer_code(REVISION_0008)
    db_upgrade(url)
    # back to this version
    monkeypatch.setattr(schema, "MIGRATIONS_DIR", REPO / "reconciler" / "store" / "migrations")
    schema.script_directory.cache_clear()

    with pytest.raises(SchemaError, match="at schema revision 0008, which this version of okta-reconciler does not"):
        Store(url)
    with pytest.raises(SchemaError, match="does not know"):
        db_upgrade(url)
    assert schema_status(url).state == "ahead"


def test_a_failed_upgrade_changes_nothing(url: str, newer_code: Callable[[str], None]) -> None:
    db_upgrade(url)
    newer_code(FAILING_0008)

    with pytest.raises(StoreError, match=r"cannot upgrade \(nothing was changed\) the store at"):
        db_upgrade(url)

    assert schema_status(url).current == HEAD
    assert "half_done" not in tables_of(url)


# --- a database at 0001, from before group actions ----------------------------------------------


def test_a_database_at_0001_upgrades_to_head_and_keeps_its_rows(url: str) -> None:
    migrate(url, "upgrade", FIRST_REVISION)
    run_id = insert_run_and_action(url)

    status = schema_status(url)
    assert (status.state, status.current, status.head) == ("behind", FIRST_REVISION, HEAD)
    assert status.pending == ("0002", "0003", "0004", "0005", "0006", "0007")
    with pytest.raises(SchemaError, match=f"is at schema revision {FIRST_REVISION}, .* needs {HEAD}"):
        Store(url)
    assert "group_actions" not in tables_of(url)  # refusing changed nothing

    assert db_upgrade(url) == HEAD

    assert schema_status(url).state == "current"
    with Store(url) as store:
        [run] = store.recent_runs()
        assert (run.id, run.status, run.config_fingerprint, run.applied) == (
            run_id,
            RunStatus.SUCCEEDED,
            FINGERPRINT,
            1,
        )
        assert run.summary is not None and (run.summary["create"], run.summary["in_sync"]) == (1, 4)
        assert (run.planned_groups, run.group_summary) == (None, None)  # it planned no groups
        [action] = store.actions_of(run_id)
        assert (action.kind, action.user_name, action.scim_id, action.status) == (
            ActionKind.CREATE,
            "ada@example.com",
            "scim-1",
            ActionStatus.SUCCEEDED,
        )
        assert action.changes == {"userName": {"before": None, "after": "ada@example.com"}}
        assert store.group_actions_of(run_id) == []

        # The upgraded store works as a new one: a new run records users and groups.
        new_run = store.start_run("apply", FINGERPRINT)
        assert new_run > run_id
        store.record_intent(new_run, Action(ActionKind.UPDATE, "b@example.com", "00u2", "s2", "r", {"x": Change(1, 2)}))
        group = GroupAction(GroupActionKind.CREATE_GROUP, "Engineering", "00g" + "a" * 17, members=("00u2",))
        store.record_group_outcome(store.record_group_intent(new_run, group), True, scim_id="g-1")
        store.record_group_plan_counts(new_run, {"create_group": 1})
        store.finish_run(new_run, RunStatus.PARTIAL)
        finished = store.get_run(new_run)
        assert finished is not None and (finished.applied, finished.failed) == (1, 0)
        assert finished.group_summary is not None and finished.group_summary["create_group"] == 1
        assert [record.status for record in store.actions_of(new_run)] == [ActionStatus.INTERRUPTED]


def test_head_downgrades_to_0001_keeping_the_runs(url: str) -> None:
    """Not a path the application takes (revisions are not downgraded), but a developer's: it must work."""
    migrate(url, "upgrade", FIRST_REVISION)
    run_id = insert_run_and_action(url)
    migrate(url, "upgrade", HEAD)
    assert "group_actions" in tables_of(url) and "planned_groups" in columns_of(url, "runs")

    migrate(url, "downgrade", FIRST_REVISION)

    assert schema_status(url).current == FIRST_REVISION
    assert "group_actions" not in tables_of(url)
    assert columns_of(url, "runs") == schema.PREVERSIONED_COLUMNS["runs"]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT id, applied FROM runs")).all() == [(run_id, 1)]
            assert connection.execute(sa.text("SELECT count(*) FROM actions")).scalar() == 1
    finally:
        engine.dispose()
    assert db_upgrade(url) == HEAD  # and up again


# --- a database at 0002, from before tenants ---------------------------------------------------


def test_a_database_at_0002_is_refused_then_upgrades_to_head_keeping_its_runs(url: str) -> None:
    migrate(url, "upgrade", "0002")
    run_id = insert_run_and_action(url)

    status = schema_status(url)
    assert (status.state, status.current, status.head, status.pending) == (
        "behind",
        "0002",
        HEAD,
        ("0003", "0004", "0005", "0006", "0007"),
    )
    with pytest.raises(SchemaError, match=f"is at schema revision 0002, .* needs {HEAD}: run `reconcile db upgrade"):
        Store(url)
    assert not {"tenant", "replica"} & columns_of(url, "runs")  # refusing changed nothing

    assert db_upgrade(url) == HEAD

    with Store(url, replica="replica-a") as store:
        [run] = store.recent_runs()
        assert (run.id, run.status, run.applied, run.tenant, run.replica) == (
            run_id,
            RunStatus.SUCCEEDED,
            1,
            None,
            None,
        )
        assert [action.user_name for action in store.actions_of(run_id)] == ["ada@example.com"]
        state = store.tenant_states([FINGERPRINT])[FINGERPRINT]
        assert state.latest is not None and state.latest.id == run_id
        assert state.last_success_at == datetime(2025, 1, 2, 3, 4, 9, tzinfo=UTC)

        new_run = store.start_run("apply", FINGERPRINT, tenant="acme")
        store.finish_run(new_run, RunStatus.FAILED, "boom")
        finished = store.get_run(new_run)
        assert finished is not None and (finished.tenant, finished.replica) == ("acme", "replica-a")
        assert store.consecutive_failures(FINGERPRINT) == 1


def test_0003_downgrades_to_0002_keeping_the_runs(url: str) -> None:
    """Not a path the application takes, but a developer's: it must work on both backends."""
    db_upgrade(url)
    with Store(url) as store:
        run_id = store.start_run("apply", FINGERPRINT, tenant="acme")
        store.finish_run(run_id, RunStatus.SUCCEEDED)

    migrate(url, "downgrade", "0002")

    assert schema_status(url).current == "0002"
    assert not {"tenant", "replica"} & columns_of(url, "runs")
    engine = sa.create_engine(url)
    try:
        assert "ix_runs_config_fingerprint_id" not in {
            index["name"] for index in sa.inspect(engine).get_indexes("runs")
        }
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT id, status FROM runs")).all() == [(run_id, "succeeded")]
    finally:
        engine.dispose()
    assert db_upgrade(url) == HEAD  # and up again


def test_a_database_at_0003_upgrades_to_shared_rate_windows_and_back_keeping_its_runs(url: str) -> None:
    migrate(url, "upgrade", "0003")
    with pytest.raises(SchemaError, match=f"is at schema revision 0003, .* needs {HEAD}: run `reconcile db upgrade"):
        Store(url)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO runs (started_at, mode, status, config_fingerprint, applied, failed)"
                    " VALUES ('2025-01-02 03:04:05', 'apply', 'succeeded', :fp, 0, 0)"
                ),
                {"fp": FINGERPRINT},
            )
    finally:
        engine.dispose()

    assert db_upgrade(url) == HEAD
    with Store(url) as store:
        assert [run.config_fingerprint for run in store.recent_runs()] == [FINGERPRINT]
        ledger = store.rate_ledger("https://acme.okta.com")
        assert ledger.claim("/api/v1/apps", 0.5) == 0.0  # the first request of an org finds out its limit
        window = store.rate_window("https://acme.okta.com", "/api/v1/apps")
        assert window is not None and (window.limit, window.used) == (None, 1)

    migrate(url, "downgrade", "0003")
    assert "rate_windows" not in tables_of(url) and schema_status(url).current == "0003"
    assert db_upgrade(url) == HEAD  # and up again


# --- a database from before migrations --------------------------------------------------------


def test_a_database_from_before_migrations_is_stamped_and_kept(url: str) -> None:
    migrate(url, "upgrade", FIRST_REVISION, unversioned=True)  # the tables Store's create_all made before versions
    engine = migration_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO runs (started_at, mode, status, config_fingerprint, applied, failed)"
                    " VALUES ('2025-01-02 03:04:05+00:00', 'apply', 'succeeded', :fp, 3, 0)"
                ),
                {"fp": FINGERPRINT},
            )
    finally:
        engine.dispose()
    assert schema_status(url).state == "unversioned"

    # Opening it stamps it at 0001: it is then one revision behind, so refused until upgraded.
    with pytest.raises(SchemaError, match=f"is at schema revision {FIRST_REVISION}, .* needs {HEAD}"):
        Store(url)
    assert schema_status(url).current == FIRST_REVISION

    assert db_upgrade(url) == HEAD
    with Store(url) as store:
        [run] = store.recent_runs()
        assert (run.config_fingerprint, run.applied) == (FINGERPRINT, 3)


def test_db_upgrade_stamps_and_upgrades_a_database_from_before_migrations(url: str) -> None:
    migrate(url, "upgrade", FIRST_REVISION, unversioned=True)
    run_id = insert_run_and_action(url)

    assert db_upgrade(url) == HEAD

    with Store(url) as store:
        assert [run.id for run in store.recent_runs()] == [run_id]
        assert [action.user_name for action in store.actions_of(run_id)] == ["ada@example.com"]


def test_a_database_from_an_early_build_is_explained(url: str) -> None:
    engine = migration_engine(url)
    try:
        SQLModel.metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(sa.text("ALTER TABLE runs DROP COLUMN source_count"))
            connection.execute(sa.text("DROP TABLE alert_states"))
    finally:
        engine.dispose()

    with pytest.raises(SchemaError) as refused:
        Store(url)
    message = str(refused.value)
    assert "has the store's tables but no schema version" in message
    assert "runs lacks source_count; no table alert_states" in message
    assert "Move it aside" in message


# --- the developers' alembic command line -----------------------------------------------------


def test_the_alembic_command_line_uses_the_shipped_ini(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    ini = REPO / "reconciler" / "store" / "migrations" / "alembic.ini"
    alembic = [sys.executable, "-m", "alembic", "-c", str(ini), "-x", f"url={url}"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    done = subprocess.run([*alembic, "upgrade", "head"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert schema_status(url).current == HEAD


def test_the_newest_revision_file_names_alembics_head() -> None:
    """A store at head opens without alembic, by the file names (schema.newest_revision_file): they must agree."""
    scripts = schema.script_directory()
    assert schema.newest_revision_file() == scripts.get_current_head() == HEAD
    for script in scripts.walk_revisions():
        assert Path(script.path).name.startswith(f"{script.revision}_"), "name each revision file after its revision"
