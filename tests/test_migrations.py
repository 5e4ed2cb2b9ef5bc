"""Schema versions: alembic revisions in reconciler/migrations, checked when a Store opens.

Each test runs on a SQLite file and on PostgreSQL (tests/postgres.py). A database
"behind" is made by giving the code a revision 0002 it does not ship (a copy of
reconciler/migrations with one more file): the real head is then one behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from reconciler import store as store_module
from reconciler.store import (
    FIRST_REVISION,
    SchemaError,
    SQLModel,
    Store,
    StoreError,
    db_upgrade,
    migration_engine,
    schema_status,
)
from tests.postgres import BACKENDS, database_url

REPO = Path(__file__).resolve().parent.parent
HEAD = FIRST_REVISION
FINGERPRINT = "a" * 64

REVISION_0002 = '''"""A test revision: an index on runs.config_fingerprint."""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_runs_config_fingerprint", "runs", ["config_fingerprint"])


def downgrade():
    op.drop_index("ix_runs_config_fingerprint", table_name="runs")
'''

FAILING_0002 = '''"""A test revision that fails half-way: the table it made first must not stay."""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
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
    original = store_module.MIGRATIONS_DIR

    def install(revision_source: str) -> None:
        copy = tmp_path / "newer-migrations"
        shutil.copytree(original, copy, ignore=shutil.ignore_patterns("__pycache__"))
        (copy / "versions" / "0002_test.py").write_text(revision_source)
        monkeypatch.setattr(store_module, "MIGRATIONS_DIR", copy)
        store_module._script.cache_clear()

    yield install
    store_module._script.cache_clear()


def tables_of(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


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
    finally:
        engine.dispose()
    assert differences == []


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


# --- a database behind the code ---------------------------------------------------------------


def test_a_store_behind_is_refused_until_db_upgrade(url: str, newer_code: Callable[[str], None]) -> None:
    with Store(url) as old_version:
        run_id = old_version.start_run("apply", FINGERPRINT)
    newer_code(REVISION_0002)

    with pytest.raises(SchemaError) as refused:
        Store(url, config_path="/etc/okta-reconciler/config.toml")

    assert str(refused.value) == (
        f"the store at {refused.value.status.url} is at schema revision 0001, this version of okta-reconciler "
        "needs 0002: run `reconcile db upgrade --config /etc/okta-reconciler/config.toml` "
        "(back the database up first)"
    )
    status = schema_status(url)
    assert (status.state, status.current, status.head, status.pending) == ("behind", "0001", "0002", ("0002",))

    assert db_upgrade(url) == "0002"

    with Store(url) as upgraded:
        assert [run.id for run in upgraded.recent_runs()] == [run_id]  # the history is kept
    engine = sa.create_engine(url)
    try:
        indexes = {index["name"] for index in sa.inspect(engine).get_indexes("runs")}
    finally:
        engine.dispose()
    assert "ix_runs_config_fingerprint" in indexes


def test_a_store_ahead_of_the_code_is_refused(
    url: str, newer_code: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    newer_code(REVISION_0002)
    db_upgrade(url)
    monkeypatch.setattr(store_module, "MIGRATIONS_DIR", REPO / "reconciler" / "migrations")  # back to this version
    store_module._script.cache_clear()

    with pytest.raises(SchemaError, match="at schema revision 0002, which this version of okta-reconciler does not"):
        Store(url)
    with pytest.raises(SchemaError, match="does not know"):
        db_upgrade(url)
    assert schema_status(url).state == "ahead"


def test_a_failed_upgrade_changes_nothing(url: str, newer_code: Callable[[str], None]) -> None:
    db_upgrade(url)
    newer_code(FAILING_0002)

    with pytest.raises(StoreError, match=r"cannot upgrade \(nothing was changed\) the store at"):
        db_upgrade(url)

    assert schema_status(url).current == "0001"
    assert "half_done" not in tables_of(url)


# --- a database from before migrations --------------------------------------------------------


def test_a_database_from_before_migrations_is_stamped_and_kept(url: str) -> None:
    engine = migration_engine(url)
    try:
        SQLModel.metadata.create_all(engine)  # what Store did before schema versions
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

    with Store(url) as store:
        [run] = store.recent_runs()
        assert (run.config_fingerprint, run.applied) == (FINGERPRINT, 3)

    assert schema_status(url).current == FIRST_REVISION


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
    ini = REPO / "reconciler" / "migrations" / "alembic.ini"
    alembic = [sys.executable, "-m", "alembic", "-c", str(ini), "-x", f"url={url}"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    done = subprocess.run([*alembic, "upgrade", "head"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert schema_status(url).current == HEAD
