"""The store's schema versions: alembic revisions, checked when a Store opens, applied by ``reconcile db upgrade``.

The revisions ship in ``reconciler/store/migrations/versions``: 0001 made
``runs``, ``actions`` and ``alert_states`` (the tables as they were before
versioning); 0002 added ``group_actions`` and the group plan's counts
(``runs.planned_groups``); 0003 added the run's tenant and replica
(``runs.tenant``, ``runs.replica``) and an index on ``runs (config_fingerprint, id)``
for :meth:`reconciler.store.Store.tenant_states`; 0004 added ``rate_windows`` (each Okta
org's shared rate-limit window); 0005 added ``acknowledgements`` (findings a person
reviewed, :mod:`reconciler.store.acknowledgements`); 0006 added ``log_cursors`` (each target's place in
Okta's System Log), ``actions.okta_changed_at`` and an index on ``actions.created_at``
(:mod:`reconciler.store.log_cursors`). Opening a Store:

- on an empty database (a new SQLite file, a new PostgreSQL database), creates
  the schema at the newest revision: zero set-up;
- on a database made before the schema was versioned (its tables, no version
  table), stamps it at the first revision when its tables match it (it is then
  behind, as below, until upgraded);
- on a database at an older revision, refuses with :class:`SchemaError`
  naming the revisions and the command that upgrades it (:func:`db_upgrade`,
  ``reconcile db upgrade``): an upgrade is an operator's decision, taken once,
  not a side effect of whichever process starts first;
- on a database at a revision this version does not know (a newer version
  upgraded it), refuses too.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

from reconciler.store.engine import migration_engine, new_engine, store_errors
from reconciler.store.urls import StoreError, is_in_memory, is_postgresql, masked_url, normalize_url, sqlite_path

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE: Final = "alembic_version"
FIRST_REVISION: Final = "0001"
PREVERSIONED_COLUMNS: Final[dict[str, frozenset[str]]] = {
    "runs": frozenset(
        "id started_at finished_at mode status config_fingerprint planned_create planned_update planned_deactivate"
        " planned_reactivate planned_link planned_conflict planned_unmanaged planned_in_sync source_count"
        " managed_count applied failed error".split()
    ),
    "actions": frozenset(
        "id run_id kind user_name okta_user_id scim_id reason changes status error created_at finished_at".split()
    ),
    "alert_states": frozenset("config_fingerprint key title active_since last_sent_at last_run_id".split()),
}
"""The tables as ``create_all`` made them before the schema was versioned: revision 0001, unstamped."""
MIGRATION_LOCK_KEY: Final = int.from_bytes(hashlib.sha256(b"okta-reconciler schema").digest()[:8], "big", signed=True)
"""The PostgreSQL advisory lock (transaction-level) that serialises schema changes between processes."""


class SchemaError(StoreError):
    """The database's schema is not the one this version needs; ``status`` says where it stands."""

    def __init__(self, message: str, status: SchemaStatus) -> None:
        self.status = status
        super().__init__(message)


SchemaState = Literal["empty", "unversioned", "behind", "current", "ahead"]


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands against this version's migrations (see :func:`schema_status`)."""

    url: str
    """The database, password masked."""
    state: SchemaState
    """``empty``: none of the store's tables; ``unversioned``: its tables without a version (made before
    migrations existed); ``behind``: an older revision; ``current``: the newest; ``ahead``: a revision this
    version does not know."""
    current: str | None
    """The revision the database is at; None when it has none (empty, unversioned)."""
    head: str
    """The newest revision this version knows: the one it needs."""
    pending: tuple[str, ...] = ()
    """The revisions :func:`db_upgrade` would apply, oldest first."""
    detail: str | None = None
    """For ``unversioned``: why its tables cannot be taken as the first revision (None when they can)."""

    def describe(self) -> str:
        """One line for ``reconcile db status``."""
        at = {
            "empty": "has no schema yet (the first start or `reconcile db upgrade` creates it at the newest revision)",
            "unversioned": f"has the store's tables but no schema version (made before {FIRST_REVISION})",
            "behind": f"is at revision {self.current}, behind {self.head} (to apply: {', '.join(self.pending)})",
            "current": f"is at revision {self.current}, the newest",
            "ahead": f"is at revision {self.current}, which this version does not know (its newest is {self.head})",
        }[self.state]
        line = f"the store at {self.url} {at}"
        if self.state == "unversioned":
            line += f": {self.detail}" if self.detail else f"; `reconcile db upgrade` stamps it at {FIRST_REVISION}"
        return line

    def problem(self, config_path: str | Path | None = None) -> str:
        """Why a Store refuses this database, and what to do."""
        upgrade = f"reconcile db upgrade --config {config_path or 'FILE'}"
        if self.state == "behind":
            return (
                f"the store at {self.url} is at schema revision {self.current}, this version of okta-reconciler "
                f"needs {self.head}: run `{upgrade}` (back the database up first)"
            )
        if self.state == "ahead":
            return (
                f"the store at {self.url} is at schema revision {self.current}, which this version of "
                f"okta-reconciler does not know (it knows up to {self.head}): a newer version has upgraded it; "
                "run that version (revisions are not downgraded)"
            )
        return self.describe()


def schema_status(url: str) -> SchemaStatus:
    """Where the database's schema stands; changes nothing (a SQLite file that is not there stays so)."""
    url = normalize_url(url)
    path = sqlite_path(url)
    if (path is not None and not path.exists()) or is_in_memory(url):
        return SchemaStatus(masked_url(url), "empty", None, head_revision())
    engine = new_engine(url, poolclass=NullPool)
    try:
        with store_errors(url), engine.connect() as connection:
            return inspect_schema(connection, url)
    finally:
        engine.dispose()


def db_upgrade(url: str) -> str:
    """Bring the database's schema to the newest revision; returns it.

    An empty database gets the whole schema; one made before migrations is
    stamped at the first revision, then upgraded. Every revision runs in one
    transaction, under a lock that makes a concurrent upgrade (or a Store start
    creating the schema) wait. Raises SchemaError for a revision this version
    does not know, or tables that do not match the first revision.
    """
    url = normalize_url(url)
    with store_errors(url, "upgrade (nothing was changed)"):
        status = prepare_schema(url, upgrade=True)
    if status.state != "current":
        raise SchemaError(status.problem(), status)
    assert status.current is not None
    return status.current


def prepare_schema(url: str, *, upgrade: bool, engine: Engine | None = None) -> SchemaStatus:
    """Under the migration lock: create an empty schema, stamp a pre-versioned one, upgrade if asked."""
    own_engine = engine is None
    engine = engine or migration_engine(url)
    try:
        with engine.connect() as connection, connection.begin():
            if is_postgresql(url):
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            status = inspect_schema(connection, url)
            if status.state == "unversioned" and status.detail is None:
                run_alembic(connection, "stamp", FIRST_REVISION)
                status = inspect_schema(connection, url)
            if status.state == "empty" or (status.state == "behind" and upgrade):
                run_alembic(connection, "upgrade", "head")
                status = inspect_schema(connection, url)
        return status
    finally:
        if own_engine:
            engine.dispose()


def run_alembic(connection: Connection, command_name: str, revision: str) -> None:
    """Alembic's ``command_name`` (upgrade, downgrade, stamp) to ``revision``, in ``connection``'s transaction."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    getattr(command, command_name)(config, revision)


@functools.cache
def script_directory() -> ScriptDirectory:
    """The revisions in :data:`MIGRATIONS_DIR`, read once (``cache_clear()`` after pointing it elsewhere)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR))


def head_revision() -> str:
    """The newest revision this version knows: the one a Store needs."""
    head = script_directory().get_current_head()
    assert head is not None, "reconciler/store/migrations has no revision"
    return head


def inspect_schema(connection: Connection, url: str) -> SchemaStatus:
    """Where the schema of the database behind ``connection`` stands; reads only."""
    inspector = sa.inspect(connection)
    tables = set(inspector.get_table_names())
    if VERSION_TABLE in tables and (newest := newest_revision_file()) and _stored_revisions(connection) == [newest]:
        # Every start but the first: the store is at the newest revision, known without importing alembic
        # and reading its revisions (a tenth of a second before a run's first request).
        return SchemaStatus(masked_url(url), "current", newest, newest)
    from alembic.runtime.migration import MigrationContext
    from alembic.util import CommandError

    masked, head = masked_url(url), head_revision()
    versions: tuple[str, ...] = ()
    if VERSION_TABLE in tables:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        versions = context.get_current_heads()
    if not versions:
        if not tables & PREVERSIONED_COLUMNS.keys():
            return SchemaStatus(masked, "empty", None, head, _pending(None))
        return SchemaStatus(masked, "unversioned", None, head, _pending(None), _preversioned_mismatch(inspector))
    if len(versions) > 1:
        raise StoreError(f"the store at {masked} has several schema revisions at once ({', '.join(versions)})")
    [current] = versions
    if current == head:
        return SchemaStatus(masked, "current", current, head)
    try:
        script_directory().get_revision(current)
    except CommandError:
        return SchemaStatus(masked, "ahead", current, head)
    return SchemaStatus(masked, "behind", current, head, _pending(current))


def newest_revision_file() -> str | None:
    """The revision the last file of the migrations names (``0005_acknowledgements.py``: ``0005``).

    The revisions are numbered in order, one after another, so this is alembic's head, read from the
    file names alone (``tests/store/test_migrations.py`` holds the two together).
    """
    names = sorted(path.name for path in (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py"))
    return names[-1].partition("_")[0] if names else None


def _stored_revisions(connection: Connection) -> list[str]:
    """The revisions in the version table, read as alembic reads them (one row per head)."""
    table = sa.table(VERSION_TABLE, sa.column("version_num"))
    return [str(row[0]) for row in connection.execute(sa.select(table.c.version_num))]


def _pending(current: str | None) -> tuple[str, ...]:
    return tuple(script.revision for script in reversed(list(script_directory().iterate_revisions("head", current))))


def _preversioned_mismatch(inspector: sa.Inspector) -> str | None:
    """None if the tables are revision 0001's as create_all made them, else what differs."""
    problems = []
    tables = set(inspector.get_table_names())
    for table, expected in PREVERSIONED_COLUMNS.items():
        if table not in tables:
            problems.append(f"no table {table}")
            continue
        missing = expected - {column["name"] for column in inspector.get_columns(table)}
        if missing:
            problems.append(f"{table} lacks {', '.join(sorted(missing))}")
    if not problems:
        return None
    return (
        f"its tables do not match revision {FIRST_REVISION} ({'; '.join(problems)}): it was made by an early "
        "development build. Move it aside (its history stays readable with sqlite3) and start afresh"
    )
