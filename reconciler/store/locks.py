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
  ``application_name`` is the holder text (default ``reconcile pid N on HOST``,
  at most 63 characters).
- SQLite: ``flock`` on a file beside the database (``<db>.<fingerprint[:12]>.lock``),
  released by the kernel when the process dies. The holder writes who it is in
  the file (holder text, pid, host, since) for the message of the one that finds
  it busy, and removes the file when it lets go (see :class:`_FileLock`). flock
  works between processes of one host, which is where a SQLite file is. The
  file stays when its holder is killed (with its text): only the flock says
  whether it is held, and the next holder reuses it. It is created with the
  database's owner and mode (:mod:`reconciler.store.files`).
- In-memory SQLite: a lock within the process (no other process can see it).

A busy lock raises :class:`LockBusy` at once, or after up to ``wait_s`` seconds
of polling. Locks of different targets never block each other.
:func:`lock_holders` says which targets' locks are held, and by whom, without
waiting for any.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from reconciler.errors import ReconcileError
from reconciler.store.files import lock_file_problem, open_shared_file
from reconciler.store.urls import StoreError, is_postgresql, masked_url, normalize_url, sqlite_path

POLL_INTERVAL_S: Final = 0.2
"""How often a waiting process tries the lock again."""
PG_APPLICATION_NAME_LENGTH: Final = 63
"""PostgreSQL truncates ``application_name`` to this many characters (NAMEDATALEN - 1)."""
UNKNOWN_HOLDER: Final = "a process that has not said who it is"
"""What :func:`lock_holders` reports for a lock held by a process it cannot name (a lock file not yet written)."""
SHARED_PROBE_RETRY_S: Final = 0.005
"""A SQLite lock found busy is tried once more after this pause: :func:`lock_holders` may have probed it then."""
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
def run_lock(url: str, fingerprint: str, wait_s: float = 0.0, holder: str | None = None) -> Iterator[RunLock]:
    """Hold the run lock of ``fingerprint`` in the store at ``url`` (see the module's docstring).

    ``holder`` is who others see holding it (:attr:`LockBusy.holder`, :func:`lock_holders`); default
    ``reconcile pid N on HOST``.
    """
    url = normalize_url(url)
    backend = _backend(url, fingerprint, holder or _me())
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


def _backend(url: str, fingerprint: str, holder: str) -> _Backend:
    if is_postgresql(url):
        return _PostgresLock(url, fingerprint, holder)
    path = sqlite_path(url)
    if path is None:
        return _ProcessLock(fingerprint, holder)
    return _FileLock(lock_path(path, fingerprint), holder, path)


def lock_holders(url: str, fingerprints: Iterable[str], *, engine: Engine | None = None) -> dict[str, str]:
    """The targets among ``fingerprints`` whose run lock is held right now, each with who holds it.

    The text is :attr:`LockBusy.holder`'s (:data:`UNKNOWN_HOLDER` when the holder
    cannot be named). Nothing waits and no lock is taken, but for an instant:

    - PostgreSQL: one query over ``pg_locks`` and ``pg_stat_activity`` (on a
      connection of ``engine`` when given, a Store's pool, else a new one);
    - SQLite file: for each target whose lock file exists, a shared flock tried
      without waiting and released at once; refused, the file is held and names
      its holder; granted, it is not (a file left by a holder that died still
      names it: that text is not taken for a lock);
    - in-memory SQLite: this process's locks.
    """
    url = normalize_url(url)
    wanted = list(dict.fromkeys(fingerprints))
    if not wanted:
        return {}
    if is_postgresql(url):
        return _postgres_holders(url, wanted, engine)
    path = sqlite_path(url)
    if path is None:
        with _process_locks_guard:
            held = dict(_process_locks)
        return {fp: f"{held[fp]} (this process)" for fp in wanted if fp in held}
    holders = {}
    for fp in wanted:
        holder = _file_lock_holder(lock_path(path, fp))
        if holder is not None:
            holders[fp] = holder
    return holders


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


_PG_ADVISORY_HOLDERS: Final = (
    "SELECT l.classid::bigint, l.objid::bigint, a.pid, a.application_name, a.client_addr, a.backend_start"
    " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
"""Who holds each session advisory lock with a 64-bit key (``objsubid`` 1) in this database.

A bigint key shows in ``pg_locks`` as its high 32 bits (``classid``) and low 32 bits (``objid``), unsigned."""


def _split_key(key: int) -> tuple[int, int]:
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


def _postgres_holder_text(pid: int, application: str | None, address: object, started: datetime | None) -> str:
    who = application or f"a PostgreSQL session (server pid {pid}{f', from {address}' if address else ''})"
    return f"{who}, since {_since(started)}" if started else who


def _postgres_holders(url: str, fingerprints: list[str], engine: Engine | None) -> dict[str, str]:
    by_key = {_split_key(advisory_key(fp)): fp for fp in fingerprints}
    own_engine = engine is None
    engine = engine or sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text(_PG_ADVISORY_HOLDERS)).all()
    except SQLAlchemyError as error:
        reason = getattr(error, "orig", None) or error
        raise StoreError(f"cannot read the run locks in the store at {masked_url(url)}: {reason}") from error
    finally:
        if own_engine:
            engine.dispose()
    holders = {}
    for high, low, pid, application, address, started in rows:
        fp = by_key.get((high, low))
        if fp is not None:
            holders[fp] = _postgres_holder_text(pid, application, address, started)
    return holders


class _PostgresLock:
    def __init__(self, url: str, fingerprint: str, holder: str) -> None:
        self.url = url
        self.key = advisory_key(fingerprint)
        self.held = False
        self.engine = sa.create_engine(
            url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",  # no transaction stays open for the run's duration
            connect_args={"application_name": holder[:PG_APPLICATION_NAME_LENGTH], "options": PG_KEEPALIVES},
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
        query = sa.text(_PG_ADVISORY_HOLDERS + " AND l.classid::bigint = :high AND l.objid::bigint = :low")
        high, low = _split_key(self.key)
        try:
            row = self.connection.execute(query, {"high": high, "low": low}).first()
        except SQLAlchemyError:
            return None
        if row is None:
            return None
        _high, _low, pid, application, address, started = row
        return _postgres_holder_text(pid, application, address, started)

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
    """``flock`` on a file that its holder removes when it lets go, so lock files never pile up.

    Removing a lock file is safe only with a check on the other side: a process
    that opened the file before its holder removed it would lock a file nobody
    else can see. So whoever gets the lock checks that the file it locked is
    still the one at the path (same device and inode); if not, it opens the path
    again and retries. A file left by a holder that was killed is reused, then
    removed by its next holder.
    """

    def __init__(self, path: Path, holder: str, database: Path) -> None:
        self.path = path
        self.database = database
        self.holder_text = holder
        self.held = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = self._open()

    def _open(self) -> int:
        try:
            # Not inherited by child processes (O_CLOEXEC): a child outliving us must not keep the lock.
            return open_shared_file(self.path, os.O_RDWR | os.O_CLOEXEC, self.database)
        except OSError as error:
            raise StoreError(lock_file_problem(self.path, error)) from error

    def try_acquire(self) -> bool:
        while True:
            if not self._flock():
                return False
            if self._is_current():
                break
            fcntl.flock(self.fd, fcntl.LOCK_UN)  # its holder removed it meanwhile: lock the file now at the path
            os.close(self.fd)
            self.fd = self._open()
        self.held = True
        who = {
            "holder": self.holder_text,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(),
        }
        who["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200] if sys.argv else ""
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(who).encode() + b"\n", 0)
        return True

    def _flock(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # lock_holders' probe holds a shared lock for a few microseconds: not a run, so look again once.
            time.sleep(SHARED_PROBE_RETRY_S)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
        return True

    def _is_current(self) -> bool:
        try:
            at_path = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(self.fd)
        return (at_path.st_dev, at_path.st_ino) == (mine.st_dev, mine.st_ino)

    def holder(self) -> str | None:
        return _file_holder_text(self.fd)

    def still_held(self) -> bool:
        return self.held

    def close(self) -> None:
        try:
            if self.held:
                with contextlib.suppress(OSError):  # a file it may not remove is reused by the next holder
                    os.unlink(self.path)
                os.ftruncate(self.fd, 0)
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.held = False
            os.close(self.fd)


def _file_holder_text(fd: int) -> str | None:
    """Who the lock file open at ``fd`` says holds it; None if it says nothing readable (not yet written)."""
    try:
        who = json.loads(os.pread(fd, 4096, 0) or b"null")
        since = datetime.fromisoformat(who["since"])
        name = who.get("holder") or f"reconcile pid {who['pid']} on {who['host']}"  # no "holder": an older version's
        described = f"{name}, since {_since(since)}"
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # just taken, not yet written: it will be
    return f"{described} ({who['command']})" if who.get("command") else described


def _file_lock_holder(path: Path) -> str | None:
    """Who holds the lock file at ``path`` right now; None if nobody does (or it does not exist).

    Its text alone proves nothing: a holder killed outright leaves it behind. A
    shared lock tried without waiting does: refused, an exclusive lock is held.
    Granted, it is released at once, untouched.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # never taken (or unreadable: then its holder cannot be told either)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _file_holder_text(fd) or UNKNOWN_HOLDER
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# --- in-memory SQLite ---------------------------------------------------------------------------------

_process_locks: dict[str, str] = {}
"""The in-memory stores' held locks: fingerprint → holder text."""
_process_locks_guard = threading.Lock()


class _ProcessLock:
    def __init__(self, fingerprint: str, holder: str) -> None:
        self.fingerprint = fingerprint
        self.holder_text = holder
        self.held = False

    def try_acquire(self) -> bool:
        with _process_locks_guard:
            if self.fingerprint in _process_locks:
                return False
            _process_locks[self.fingerprint] = self.holder_text
        self.held = True
        return True

    def holder(self) -> str | None:
        with _process_locks_guard:
            holder = _process_locks.get(self.fingerprint)
        return f"{holder} (this process)" if holder else None

    def still_held(self) -> bool:
        return self.held

    def close(self) -> None:
        if self.held:
            with _process_locks_guard:
                _process_locks.pop(self.fingerprint, None)
        self.held = False
