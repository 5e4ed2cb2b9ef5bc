"""The store: every run and every action it took, as an audit trail.

A run row is written when the run starts and completed when it ends
(:mod:`reconciler.store.runs`). Each action, a user's (``actions``) or a group's
(``group_actions``, from :mod:`reconciler.plan.groups`), is recorded as an *intent*
(pending) and committed before its request is sent, then completed with its
*outcome* (:mod:`reconciler.store.journal`); each write is its own short
transaction, so a crash loses at most the outcome of the requests in flight.
Those stay pending, with their run 'running', until the next run of the target
starts, or ``history`` or ``show`` looks while no run of it is alive; either
marks them interrupted (:meth:`Store.settle_abandoned_runs`), and the run's
``applied``/``failed`` count user and group actions alike. The next plan,
computed from live state, redoes whatever they did not do.

SQLite by default (WAL mode, so readers such as ``reconcile history`` do not
block a running apply), or PostgreSQL (``postgresql+psycopg://``; a plain
``postgresql://`` means the same driver): see :mod:`reconciler.store.engine`.
Only Actions reach the store: they carry no secret.

The schema is versioned with alembic (:mod:`reconciler.store.schema`). Opening a
:class:`Store` on an empty database creates the schema at the newest revision
(zero set-up), stamps a database made before the schema was versioned, and
refuses one at another revision with :class:`SchemaError`: an upgrade is an
operator's decision (``reconcile db upgrade``), taken once, not a side effect of
whichever process starts first.

Runs of one target (one config fingerprint) never overlap, whichever process
or host starts them: see :meth:`Store.run_lock` and :mod:`reconciler.store.locks`.

Several tenants (targets) served by several replicas sharing one store: each run
records its tenant and the replica that did it (:meth:`Store.start_run`);
:meth:`Store.tenant_states` gives every target's latest run, last success and
failure streak in a few queries whatever their number
(:mod:`reconciler.store.tenants`), and :meth:`Store.lock_holders` which of them
a process is running right now. Replicas reading one Okta org share its rate
budget through the store (:meth:`Store.rate_ledger`, :mod:`reconciler.store.rate_windows`).

The System Log follower keeps its cursor here, and its gate counts the writes of a sliding window
(:mod:`reconciler.store.log_cursors`).
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from reconciler.store.acknowledgements import Acknowledgements
from reconciler.store.alert_states import AlertStates
from reconciler.store.engine import store_engine, store_errors
from reconciler.store.files import check_writable, create_database_file
from reconciler.store.journal import ActionJournal
from reconciler.store.locks import LockBusy, RunLock, lock_holders, run_lock
from reconciler.store.log_cursors import LogCursors
from reconciler.store.rate_windows import RateWindows
from reconciler.store.reports import ReportQueries
from reconciler.store.runs import RunRecords
from reconciler.store.schema import SchemaError, inspect_schema, prepare_schema
from reconciler.store.tenants import TenantQueries
from reconciler.store.urls import StoreError, is_in_memory, masked_url, normalize_url, sqlite_path


class NoStore(StoreError):
    """There is no store yet: no run has happened with this configuration."""


def no_run_yet(where: str, config_path: str | Path | None) -> str:
    config = f"--config {config_path} " if config_path else ""
    return (
        f"no store at {where} yet: no run has happened with this configuration. The first run creates it, "
        f"e.g. reconcile {config}--dry-run"
    )


def refuse_missing_store(database: Path, config_path: str | Path | None) -> None:
    """NoStore when the SQLite file ``database`` does not exist; nothing is created."""
    if not database.exists():
        raise NoStore(no_run_yet(str(database), config_path))


def default_replica_name() -> str:
    """Which process this is, as a run records it when no replica name is given: ``HOST pid N``."""
    return f"{socket.gethostname()} pid {os.getpid()}"


def operating_user() -> str:
    """Who runs this command: the user who ran sudo when under sudo, else the process's user."""
    if sudo_user := os.environ.get("SUDO_USER"):
        return sudo_user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


class Store(
    RunRecords, ActionJournal, TenantQueries, AlertStates, RateWindows, Acknowledgements, LogCursors, ReportQueries
):
    """Runs and actions in a database; every method is one short transaction.

    Opening it checks the schema (see the module's docstring): an empty database
    gets the newest schema, one behind raises :class:`SchemaError`, whose message
    names the upgrade command (with ``--config config_path`` when given).

    ``create=False`` is for the commands that only look (``history``, ``show``,
    ``status``): a store that does not exist yet, a SQLite file that is not
    there or an empty database, raises :class:`NoStore` and is left as it was,
    rather than created empty.

    ``replica`` names this process in the runs it records and in the run locks it
    holds (default: :func:`default_replica_name`). ``started_by`` is the person a one-off command runs for
    (:func:`operating_user`), kept on each run it records; None for the service.
    """

    def __init__(
        self,
        url: str,
        *,
        config_path: str | Path | None = None,
        replica: str | None = None,
        create: bool = True,
        started_by: str | None = None,
    ) -> None:
        self.url = normalize_url(url)
        self.replica = replica or default_replica_name()
        self.started_by = started_by
        self._replica_named = bool(replica)
        database = sqlite_path(self.url)
        if database is not None:
            if not create:
                refuse_missing_store(database, config_path)
            create_database_file(database)
            check_writable(database)
        self.engine = store_engine(self.url)
        try:
            with store_errors(self.url):
                with self.engine.connect() as connection:
                    status = inspect_schema(connection, self.url)
                if status.state == "empty" and not create:
                    raise NoStore(no_run_yet(masked_url(self.url), config_path))
                if status.state != "current":
                    # An in-memory SQLite database lives in this engine's one connection: prepare it there.
                    in_memory = self.engine if is_in_memory(self.url) else None
                    status = prepare_schema(self.url, upgrade=False, engine=in_memory)
            if status.state != "current":
                raise SchemaError(status.problem(config_path), status)
        except BaseException:
            self.engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"Store({masked_url(self.url)!r})"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- run locks -----------------------------------------------------------------------------

    def run_lock(self, fingerprint: str, wait_s: float = 0.0) -> AbstractContextManager[RunLock]:
        """Hold the run lock of the target ``fingerprint`` for the duration of a ``with`` block.

        Raises :class:`reconciler.store.locks.LockBusy` if another process (or another
        Store in this one) holds it for longer than ``wait_s`` seconds (0: do not
        wait). Released when the block ends, and by the operating system or the
        database server if the process dies. See :mod:`reconciler.store.locks`.

        The holder that others see is ``reconcile <replica>`` when this Store was
        given a replica name, else ``reconcile pid N on HOST`` (the same facts as
        the default replica name).
        """
        holder = f"reconcile {self.replica}" if self._replica_named else None
        return run_lock(self.url, fingerprint, wait_s, holder=holder)

    def lock_holders(self, fingerprints: Iterable[str]) -> dict[str, str]:
        """Which of these targets' run locks are held right now, and by whom.

        See :func:`reconciler.store.locks.lock_holders`. Takes no lock (but for an instant on SQLite) and waits
        for none.
        """
        return lock_holders(self.url, fingerprints, engine=self.engine)

    def settle_abandoned_runs(self, fingerprint: str) -> list[int]:
        """Mark this target's runs left 'running' by a dead process interrupted, unless a run is in progress now.

        A process killed outright (SIGKILL, OOM killer, power loss) has no chance
        to record its run's end: its row stays 'running' and its in-flight
        actions 'pending'. Every run marks such leftovers when it starts, under
        the target's run lock (:meth:`mark_interrupted`); this does the same for
        the commands that only look (``history``, ``show``), so that a dead run is
        reported as interrupted at once rather than as still running until the
        next run. The lock is tried without waiting: held, it proves that no
        process runs this target, so whatever is still 'running' was abandoned;
        busy, a run is alive and nothing is touched. Like a stale state that
        Terraform detects and reports, it is best effort: a store this process may
        not write to (a read-only copy, a lock file it cannot create) is left as
        it is. Returns the ids of the runs marked.
        """
        try:
            with self.run_lock(fingerprint):
                return self.mark_interrupted(fingerprint=fingerprint)
        except (LockBusy, StoreError, SQLAlchemyError):
            return []
