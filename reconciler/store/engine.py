"""Engines: the store's pooled one, the migrations' serialising one, SQLite's tuning, and errors made StoreErrors."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from reconciler.store.urls import StoreError, masked_url, normalize_url, sqlite_path

SQLITE_BUSY_TIMEOUT_MS: Final = 5000


def store_engine(url: str) -> Engine:
    """The Store's engine: a pool; on SQLite, each connection tuned (WAL, busy timeout, foreign keys)."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if make_url(url).get_backend_name() != "sqlite":
        # pre_ping: a service holds its pool for months; a connection the server closed is replaced, not used.
        return new_engine(url, pool_pre_ping=True)
    engine = new_engine(url)
    sa.event.listen(engine, "connect", _tune_sqlite)
    return engine


def migration_engine(url: str) -> Engine:
    """An engine whose transactions serialise schema changes and hold DDL too (one connection, no pool).

    SQLite: pysqlite's own transaction handling is turned off so that DDL stays
    inside the transaction, and the transaction starts with BEGIN IMMEDIATE,
    which takes the database's write lock at once (another process waits for it,
    up to the busy timeout). PostgreSQL runs DDL in transactions already; the
    caller takes an advisory lock in it (:data:`reconciler.store.schema.MIGRATION_LOCK_KEY`).
    """
    url = normalize_url(url)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = new_engine(url, poolclass=NullPool)
    if make_url(url).get_backend_name() == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None
            # Foreign keys off while the schema changes, as SQLite's ALTER TABLE procedure asks.
            _tune_sqlite(dbapi_connection, record, foreign_keys=False)

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def new_engine(url: str, **options: Any) -> Engine:
    """``sqlalchemy.create_engine``, with a StoreError naming the supported URLs when the driver is missing."""
    try:
        return sa.create_engine(url, **options)
    except (NoSuchModuleError, ModuleNotFoundError) as error:
        raise StoreError(
            f"cannot open the store at {masked_url(url)}: {error} (supported: sqlite:/// and postgresql+psycopg://)"
        ) from None


def _tune_sqlite(connection: Any, _record: Any, foreign_keys: bool = True) -> None:
    """WAL lets readers work during a write; busy_timeout makes a writer wait instead of failing.

    ``synchronous=NORMAL`` (SQLite's recommendation with WAL) syncs at checkpoints
    rather than at every commit: a commit survives a crash or kill of the
    process, and only the last few may be lost if the whole machine loses power.
    With FULL, every intent and outcome of an apply cost an fsync (~4 ms here),
    which made 1,000 writes wait 8 s on the disk.
    """
    cursor = connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, retried while the database is locked, up to the busy timeout.

    On a new file still in rollback mode, the switch needs an exclusive lock,
    and when another connection holds one (several stores starting together,
    one creating the schema) SQLite answers "database is locked" at once: its
    busy handler is not called for this lock, so busy_timeout does not help.
    Once the file is in WAL mode the pragma changes nothing and never waits.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause_s = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
        time.sleep(pause_s)
        pause_s = min(pause_s * 2, 0.1)


@contextmanager
def store_errors(url: str, doing: str = "use") -> Iterator[None]:
    """A database that cannot be reached or read becomes a StoreError that says which, password masked."""
    try:
        yield
    except SQLAlchemyError as error:
        reason = getattr(error, "orig", None) or error
        raise StoreError(f"cannot {doing} the store at {masked_url(url)}: {str(reason).strip()}") from error
