"""Run locks: one reconcile run per target at a time, whichever process or host starts it.

A target is a config fingerprint (:func:`reconciler.config.fingerprint`: one Okta
app against one SCIM endpoint). Two runs of one target at once would plan from
the same live state and send the same writes twice; the lock keeps the second
out. It is the store's, so it spans every process that shares the store:

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a
  64-bit key derived from the fingerprint, held by a dedicated connection for
  the whole run. The server releases it when that connection ends: at the end
  of the run, or when the process dies (its socket closes). The connection asks
  the server for TCP keepalives so that a holder whose host vanished is noticed
  within about two minutes. ``pg_stat_activity`` names the holder: its
  ``application_name`` is ``reconcile pid N on HOST``.
- SQLite: ``flock`` on a file beside the database (``<db>.<fingerprint[:12]>.lock``),
  released by the kernel when the process dies. The holder writes who it is in
  the file (pid, host, since) for the message of the one that finds it busy.
  flock works between processes of one host, which is where a SQLite file is.
- In-memory SQLite: a lock within the process (no other process can see it).

A busy lock raises :class:`LockBusy` at once, or after up to ``wait_s`` seconds
of polling. Locks of different targets never block each other.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from reconciler.errors import ReconcileError
from reconciler.store import StoreError, is_postgresql, masked_url, normalize_url, sqlite_path

POLL_INTERVAL_S: Final = 0.2
"""How often a waiting process tries the lock again."""
PG_KEEPALIVES: Final = "-c tcp_keepalives_idle=60 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=6"
"""Server-side keepalives of the lock connection: a vanished holder's lock is freed in ~2 minutes, not ~2 hours."""


class LockBusy(ReconcileError):
    """Another run of the same target holds its run lock; this one did nothing."""

    def __init__(self, fingerprint: str, holder: str | None, waited_s: float, store: str) -> None:
        self.fingerprint = fingerprint
        self.holder = holder
        """Who holds it, as far as known (``reconcile pid N on HOST, since ...``); None if unknown."""
        self.waited_s = waited_s
        held_by = f"held by {holder}" if holder else "its holder could not be identified"
        waited = f"after waiting {waited_s:.0f} s" if waited_s >= 0.5 else "without waiting"
        super().__init__(
            f"another reconcile run of this target is in progress (config fingerprint {fingerprint[:12]}, "
            f"store {store}): {held_by}. Gave up {waited}; nothing was done. It runs again once that run ends."
        )


@dataclass
class RunLock:
    """A held run lock (what ``with store.run_lock(...)`` gives)."""

    fingerprint: str
    waited_s: float
    """How long it took to get it."""
    _backend: _Backend = field(repr=False)

    def still_held(self) -> bool:
        """False if the lock was lost under the holder (PostgreSQL: its connection broke); a check, not a guarantee."""
        return self._backend.still_held()


class _Backend(Protocol):
    def try_acquire(self) -> bool: ...
    def holder(self) -> str | None: ...
    def still_held(self) -> bool: ...
    def close(self) -> None:
        """Release the lock if held, and every resource."""


@contextmanager
def run_lock(url: str, fingerprint: str, wait_s: float = 0.0) -> Iterator[RunLock]:
    """Hold the run lock of ``fingerprint`` in the store at ``url`` (see the module's docstring)."""
    url = normalize_url(url)
    backend = _backend(url, fingerprint)
    started = time.monotonic()
    deadline = started + max(0.0, wait_s)
    try:
        while not backend.try_acquire():
            now = time.monotonic()
            if now >= deadline:
                raise LockBusy(fingerprint, backend.holder(), now - started, masked_url(url))
            time.sleep(min(POLL_INTERVAL_S, deadline - now))
        yield RunLock(fingerprint, time.monotonic() - started, backend)
    finally:
        backend.close()


def _backend(url: str, fingerprint: str) -> _Backend:
    if is_postgresql(url):
        return _PostgresLock(url, fingerprint)
    path = sqlite_path(url)
    if path is None:
        return _ProcessLock(fingerprint)
    return _FileLock(lock_path(path, fingerprint))


def lock_path(database: Path, fingerprint: str) -> Path:
    """The lock file of a target beside a SQLite database."""
    token = fingerprint[:12] if re.fullmatch(r"[0-9a-f]{12,}", fingerprint) else _digest(fingerprint)[:12]
    return database.with_name(f"{database.name}.{token}.lock")


def advisory_key(fingerprint: str) -> int:
    """The signed 64-bit PostgreSQL advisory lock key of a target."""
    return int.from_bytes(
        hashlib.sha256(b"okta-reconciler run lock\0" + fingerprint.encode()).digest()[:8], "big", signed=True
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _me() -> str:
    return f"reconcile pid {os.getpid()} on {socket.gethostname()}"


def _since(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- PostgreSQL ---------------------------------------------------------------------------------


class _PostgresLock:
    def __init__(self, url: str, fingerprint: str) -> None:
        self.url = url
        self.key = advisory_key(fingerprint)
        self.held = False
        self.engine = sa.create_engine(
            url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",  # no transaction stays open for the run's duration
            connect_args={"application_name": _me()[:63], "options": PG_KEEPALIVES},
        )
        try:
            self.connection = self.engine.connect()
        except SQLAlchemyError as error:
            self.engine.dispose()
            reason = getattr(error, "orig", None) or error
            raise StoreError(f"cannot take the run lock in the store at {masked_url(url)}: {reason}") from error
        try:  # PostgreSQL 14+: a server-wide idle_session_timeout must not end the connection that holds the lock
            self.connection.exec_driver_sql("SET idle_session_timeout = 0")
        except SQLAlchemyError:
            pass

    def try_acquire(self) -> bool:
        query = sa.text("SELECT pg_try_advisory_lock(:key)")
        self.held = bool(self.connection.execute(query, {"key": self.key}).scalar())
        return self.held

    def holder(self) -> str | None:
        query = sa.text(
            "SELECT a.pid, a.application_name, a.client_addr, a.backend_start"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.classid::bigint = :high AND l.objid::bigint = :low"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        unsigned = self.key & 0xFFFF_FFFF_FFFF_FFFF
        try:
            row = self.connection.execute(query, {"high": unsigned >> 32, "low": unsigned & 0xFFFF_FFFF}).first()
        except SQLAlchemyError:
            return None
        if row is None:
            return None
        pid, application, address, started = row
        who = application or f"a PostgreSQL session (server pid {pid}{f', from {address}' if address else ''})"
        return f"{who}, since {_since(started)}" if started else who

    def still_held(self) -> bool:
        query = sa.text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()"
        )
        try:
            return bool(self.held and self.connection.execute(query).scalar())
        except SQLAlchemyError:
            return False

    def close(self) -> None:
        try:
            if self.held:
                self.connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        except SQLAlchemyError:
            pass  # closing the connection releases it all the same
        finally:
            self.held = False
            self.connection.close()
            self.engine.dispose()


# --- SQLite file ------------------------------------------------------------------------------------


class _FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.held = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Not inherited by child processes (O_CLOEXEC): a child outliving us must not keep the lock.
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise StoreError(f"cannot open the run lock file {path}: {error.strerror or error}") from error

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self.held = True
        who = {"pid": os.getpid(), "host": socket.gethostname(), "since": datetime.now(UTC).isoformat()}
        who["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200] if sys.argv else ""
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(who).encode() + b"\n", 0)
        return True

    def holder(self) -> str | None:
        try:
            who = json.loads(os.pread(self.fd, 4096, 0) or b"null")
            since = datetime.fromisoformat(who["since"])
            described = f"reconcile pid {who['pid']} on {who['host']}, since {_since(since)}"
        except (OSError, ValueError, TypeError, KeyError):
            return None  # just taken, not yet written: it will be
        return f"{described} ({who['command']})" if who.get("command") else described

    def still_held(self) -> bool:
        return self.held

    def close(self) -> None:
        try:
            if self.held:
                os.ftruncate(self.fd, 0)
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.held = False
            os.close(self.fd)


# --- in-memory SQLite ---------------------------------------------------------------------------------

_process_locks: set[str] = set()
_process_locks_guard = threading.Lock()


class _ProcessLock:
    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        self.held = False

    def try_acquire(self) -> bool:
        with _process_locks_guard:
            if self.fingerprint in _process_locks:
                return False
            _process_locks.add(self.fingerprint)
        self.held = True
        return True

    def holder(self) -> str | None:
        return f"{_me()} (this process)"

    def still_held(self) -> bool:
        return self.held

    def close(self) -> None:
        if self.held:
            with _process_locks_guard:
                _process_locks.discard(self.fingerprint)
        self.held = False
