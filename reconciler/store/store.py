"""The store: every run and every action it took, as an audit trail.

A run row is written when the run starts and completed when it ends. Each
action, a user's (``actions``) or a group's (``group_actions``, from
:mod:`reconciler.group_plan`), is recorded as an *intent* (pending) and
committed before its request is sent, then completed with its *outcome*; each
write is its own short transaction, so a crash loses at most the outcome of the
requests in flight. Those stay pending, with their run 'running', until the next
run of the target starts, or ``history`` or ``show`` looks while no run of it is
alive; either marks them interrupted (:meth:`Store.settle_abandoned_runs`), and
the run's ``applied``/``failed`` count user and group actions alike. The next
plan, computed from live state, redoes whatever they did not do.

SQLite by default (WAL mode, so readers such as ``reconcile history`` do not
block a running apply), or PostgreSQL (``postgresql+psycopg://``; a plain
``postgresql://`` means the same driver). Only Actions reach the store: they
carry no secret.

The schema is versioned with alembic (the revisions ship in
``reconciler/migrations/versions``): 0001 made ``runs``, ``actions`` and
``alert_states`` (the tables as they were before versioning); 0002 added
``group_actions`` and the group plan's counts (``runs.planned_groups``); 0003
added the run's tenant and replica (``runs.tenant``, ``runs.replica``) and an
index on ``runs (config_fingerprint, id)`` for :meth:`Store.tenant_states`.
Opening a :class:`Store`:

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

Runs of one target (one config fingerprint) never overlap, whichever process
or host starts them: see :meth:`Store.run_lock` and :mod:`reconciler.locks`.

Several tenants (targets) served by several replicas sharing one store: each run
records its tenant and the replica that did it (:meth:`Store.start_run`);
:meth:`Store.tenant_states` gives every target's latest run, last success and
failure streak in a few queries whatever their number, and
:meth:`Store.lock_holders` which of them a process is running right now.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlmodel import Field, Session, SQLModel, col, func, select

from reconciler.models.groups import GroupAction, GroupActionKind
from reconciler.models.records import SUMMARY_KEYS, Action, ActionKind

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

    from reconciler.store.locks import RunLock
from reconciler.models.runs import SOURCE_READ_WHOLE, SUCCESSFUL, ActionStatus, RunMode, RunStatus
from reconciler.store.urls import StoreError, _in_memory, is_postgresql, masked_url, normalize_url, sqlite_path

SQLITE_BUSY_TIMEOUT_MS: Final = 5000
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


_Row = TypeVar("_Row", bound=SQLModel)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the store keeps UTC datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _text_enum(enum: type[StrEnum]) -> sa.Enum:
    """Stored as its value in a VARCHAR: readable in SQL, no database enum type to migrate."""
    return sa.Enum(enum, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


def utc_now() -> datetime:
    return datetime.now(UTC)


GROUP_SUMMARY_KEYS: Final = (*(kind.value for kind in GroupActionKind), "in_sync")
"""The keys of :meth:`reconciler.group_plan.GroupPlan.summary`, as ``runs.planned_groups`` keeps them."""


TENANT_NAME_LENGTH: Final = 63
REPLICA_NAME_LENGTH: Final = 200


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (sa.Index("ix_runs_config_fingerprint_id", "config_fingerprint", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = Field(sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    mode: RunMode = Field(sa_type=_text_enum(RunMode))
    status: RunStatus = Field(sa_type=_text_enum(RunStatus), index=True)
    config_fingerprint: str = Field(max_length=64)
    """:func:`reconciler.config.fingerprint`: which Okta app and SCIM endpoint the run reconciled."""
    planned_create: int | None = None
    """The plan's counts, one column per kind; None until the plan is computed."""
    planned_update: int | None = None
    planned_deactivate: int | None = None
    planned_reactivate: int | None = None
    planned_link: int | None = None
    planned_conflict: int | None = None
    planned_unmanaged: int | None = None
    planned_in_sync: int | None = None
    source_count: int | None = None
    """How many assignments Okta listed; the baseline of the source-shrink guard."""
    managed_count: int | None = None
    """How many platform users were linked to Okta users when the run read them."""
    applied: int = 0
    """Actions that succeeded, counted when the run ends."""
    failed: int = 0
    """Actions that failed, counted when the run ends."""
    error: str | None = Field(default=None, sa_type=sa.Text)
    planned_groups: dict[str, int] | None = Field(default=None, sa_type=sa.JSON(none_as_null=True))
    """The group plan's counts (``GroupPlan.summary()``, every key of :data:`GROUP_SUMMARY_KEYS`); SQL NULL
    when the run planned no groups (groups not configured, or not reached). Added by revision 0002."""
    tenant: str | None = Field(default=None, max_length=TENANT_NAME_LENGTH)
    """The ``[[tenants]]`` name the run was for; None for a single-tenant config (and every run before 0003)."""
    replica: str | None = Field(default=None, max_length=REPLICA_NAME_LENGTH)
    """Which process ran it (:attr:`Store.replica`); None for every run before revision 0003."""

    @property
    def summary(self) -> dict[str, int] | None:
        """The plan summary as :meth:`reconciler.records.Plan.summary` gives it; None before planning."""
        if self.planned_in_sync is None:
            return None
        return {key: getattr(self, f"planned_{key}") or 0 for key in SUMMARY_KEYS}

    @property
    def group_summary(self) -> dict[str, int] | None:
        """The group plan summary as :meth:`reconciler.group_plan.GroupPlan.summary` gives it; None if none."""
        if self.planned_groups is None:
            return None
        return {key: int(self.planned_groups.get(key) or 0) for key in GROUP_SUMMARY_KEYS}


class ActionRecord(SQLModel, table=True):
    __tablename__ = "actions"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    kind: ActionKind = Field(sa_type=_text_enum(ActionKind))
    user_name: str
    okta_user_id: str | None = None
    scim_id: str | None = None
    reason: str = Field(sa_type=sa.Text)
    changes: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    """``{SCIM path: {"before": ..., "after": ...}}``, as in :meth:`Action.to_json`."""
    status: ActionStatus = Field(sa_type=_text_enum(ActionStatus), index=True)
    error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class GroupActionRecord(SQLModel, table=True):
    """A group action of a run (:class:`reconciler.group_plan.GroupAction`), as :class:`ActionRecord` is a user's."""

    __tablename__ = "group_actions"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="runs.id", index=True)
    kind: GroupActionKind = Field(sa_type=_text_enum(GroupActionKind))
    group_name: str
    """The Okta group's name (the platform's displayName for UNMANAGED)."""
    okta_group_id: str | None = None
    scim_id: str | None = None
    """The platform group's id: the planned one, or the one a CREATE_GROUP learned."""
    members: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    """As in :attr:`GroupAction.members`: Okta user ids to add, or SCIM user ids to remove."""
    member_count: int = 0
    """``len(members)``, so that a listing need not read the members."""
    reason: str = Field(sa_type=sa.Text)
    status: ActionStatus = Field(sa_type=_text_enum(ActionStatus), index=True)
    error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class AlertState(SQLModel, table=True):
    """An alert condition that was active after the latest run that could judge it (see reconciler.alerts).

    A row exists while its condition holds, and is removed once its clearing has been
    told (or needs no telling: nobody was ever told it started).
    """

    __tablename__ = "alert_states"

    config_fingerprint: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=64)
    """The condition: ``drift``, ``drift:<kind>``, ``blocked``, ``failed`` or ``consecutive_failures``."""
    title: str = Field(sa_type=sa.Text)
    """The condition's one-line title at the latest run that found it: a resolved alert names it."""
    active_since: datetime = Field(sa_type=UtcDateTime)
    last_sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    """When an alert about it was last delivered; None while it has never been (no channel, or none answered)."""
    last_run_id: int
    """The latest run that found it; a plain pointer, not a foreign key."""


INTERRUPTED_RUN_ERROR: Final = "interrupted: the process stopped before the run finished"
INTERRUPTED_ACTION_ERROR: Final = (
    "interrupted: outcome unknown; the next plan, computed from live state, redoes it if needed"
)


def default_replica_name() -> str:
    """Which process this is, as a run records it when no replica name is given: ``HOST pid N``."""
    return f"{socket.gethostname()} pid {os.getpid()}"


@dataclass(frozen=True)
class TenantState:
    """Where a target (a config fingerprint) stands in the store: see :meth:`Store.tenant_states`.

    ``TenantState()``: a target never run.
    """

    latest: Run | None = None
    """Its run with the highest id, whatever its status (running included); None if it never ran."""
    last_success_at: datetime | None = None
    """When its latest run whose status is in :data:`SUCCESSFUL` finished; None if none did."""
    consecutive_failures: int = 0
    """How many of its latest finished runs failed, counting back to the last that did not (running ones skipped)."""


class Store:
    """Runs and actions in a database; every method is one short transaction.

    Opening it checks the schema (see the module's docstring): an empty database
    gets the newest schema, one behind raises :class:`SchemaError`, whose message
    names the upgrade command (with ``--config config_path`` when given).

    ``replica`` names this process in the runs it records and in the run locks it
    holds (default: :func:`default_replica_name`).
    """

    def __init__(self, url: str, *, config_path: str | Path | None = None, replica: str | None = None) -> None:
        self.url = normalize_url(url)
        self.replica = replica or default_replica_name()
        self._replica_named = bool(replica)
        self.engine = _engine(self.url)
        try:
            with _store_errors(self.url):
                with self.engine.connect() as connection:
                    status = _inspect(connection, self.url)
                if status.state != "current":
                    # An in-memory SQLite database lives in this engine's one connection: prepare it there.
                    in_memory = self.engine if _in_memory(self.url) else None
                    status = _prepare(self.url, upgrade=False, engine=in_memory)
            if status.state != "current":
                raise SchemaError(status.problem(config_path), status)
        except BaseException:
            self.engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"Store({masked_url(self.url)!r})"

    def close(self) -> None:
        self.engine.dispose()

    def run_lock(self, fingerprint: str, wait_s: float = 0.0) -> AbstractContextManager[RunLock]:
        """Hold the run lock of the target ``fingerprint`` for the duration of a ``with`` block.

        Raises :class:`reconciler.locks.LockBusy` if another process (or another
        Store in this one) holds it for longer than ``wait_s`` seconds (0: do not
        wait). Released when the block ends, and by the operating system or the
        database server if the process dies. See :mod:`reconciler.locks`.

        The holder that others see is ``reconcile <replica>`` when this Store was
        given a replica name, else ``reconcile pid N on HOST`` (the same facts as
        the default replica name).
        """
        from reconciler.store.locks import run_lock

        holder = f"reconcile {self.replica}" if self._replica_named else None
        return run_lock(self.url, fingerprint, wait_s, holder=holder)

    def lock_holders(self, fingerprints: Iterable[str]) -> dict[str, str]:
        """Which of these targets' run locks are held right now, and by whom (:func:`reconciler.locks.lock_holders`).

        Takes no lock (but for an instant on SQLite) and waits for none.
        """
        from reconciler.store.locks import lock_holders

        return lock_holders(self.url, fingerprints, engine=self.engine)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # --- runs --------------------------------------------------------------------------------

    def start_run(self, mode: RunMode | str, fingerprint: str, tenant: str | None = None) -> int:
        """Record a run of the target ``fingerprint`` (of the ``[[tenants]]`` entry ``tenant``, if any) as running."""
        run = Run(
            started_at=utc_now(),
            mode=RunMode(mode),
            status=RunStatus.RUNNING,
            config_fingerprint=fingerprint,
            tenant=tenant,
            replica=self.replica,
        )
        with self._session() as session:
            session.add(run)
            session.commit()
            assert run.id is not None
            return run.id

    def record_plan_counts(self, run_id: int, summary: dict[str, int]) -> None:
        """Keep the plan's counts (``Plan.summary()``) on the run."""
        unknown = set(summary) - set(SUMMARY_KEYS)
        if unknown:
            raise ValueError(f"unknown summary keys: {sorted(unknown)}")
        with self._session() as session:
            run = _existing(session, Run, run_id)
            for key in SUMMARY_KEYS:
                setattr(run, f"planned_{key}", summary.get(key, 0))
            session.commit()

    def record_group_plan_counts(self, run_id: int, summary: dict[str, int]) -> None:
        """Keep the group plan's counts (``GroupPlan.summary()``) on the run; a kind not given counts 0."""
        unknown = set(summary) - set(GROUP_SUMMARY_KEYS)
        if unknown:
            raise ValueError(f"unknown group summary keys: {sorted(unknown)}")
        with self._session() as session:
            run = _existing(session, Run, run_id)
            run.planned_groups = {key: int(summary.get(key, 0)) for key in GROUP_SUMMARY_KEYS}
            session.commit()

    def record_populations(self, run_id: int, source_count: int, managed_count: int) -> None:
        """Keep how many assignments Okta listed and how many platform users Okta manages."""
        with self._session() as session:
            run = _existing(session, Run, run_id)
            run.source_count, run.managed_count = source_count, managed_count
            session.commit()

    def last_trusted_source_count(self, fingerprint: str, before_run_id: int) -> int | None:
        """Okta's assignment count at the latest run before ``before_run_id`` that read it whole and wasn't blocked."""
        query = (
            select(Run.source_count)
            .where(
                Run.config_fingerprint == fingerprint,
                col(Run.id) < before_run_id,
                col(Run.status).in_(SOURCE_READ_WHOLE),
                col(Run.source_count).is_not(None),
            )
            .order_by(col(Run.id).desc())
            .limit(1)
        )
        with self._session() as session:
            return session.exec(query).first()

    def consecutive_failures(self, fingerprint: str) -> int:
        """How many of the latest finished runs for this target failed, counting back to the last that did not."""
        with self._session() as session:
            return _failure_streaks(session, [fingerprint]).get(fingerprint, 0)

    def tenant_states(
        self, fingerprints: Iterable[str], modes: Iterable[RunMode] | None = None
    ) -> dict[str, TenantState]:
        """Every target of ``fingerprints`` (each one a key, run or not) and where it stands (:class:`TenantState`).

        Three queries in one transaction whatever the number of targets (none when
        none is asked for): the latest run of each, its latest successful run's
        end, its failure streak. Each uses the index on ``(config_fingerprint, id)``.
        With ``modes``, ``latest`` is the latest run of those modes (the service's
        schedule counts its own applies, not an operator's dry-run).
        """
        wanted = list(dict.fromkeys(fingerprints))
        if not wanted:
            return {}
        fingerprint = col(Run.config_fingerprint)
        newest_query = select(fingerprint, func.max(Run.id).label("id")).where(fingerprint.in_(wanted))
        if modes is not None:
            newest_query = newest_query.where(col(Run.mode).in_(list(modes)))
        newest = newest_query.group_by(fingerprint).subquery()
        succeeded = (
            select(fingerprint, func.max(Run.id).label("id"))
            .where(fingerprint.in_(wanted), col(Run.status).in_(SUCCESSFUL))
            .group_by(fingerprint)
            .subquery()
        )
        with self._session() as session:
            latest = {
                run.config_fingerprint: run for run in session.exec(select(Run).join(newest, Run.id == newest.c.id))
            }
            success_query = select(fingerprint, Run.finished_at).join(succeeded, Run.id == succeeded.c.id)
            last_success = {fp: finished for fp, finished in session.execute(success_query)}
            streaks = _failure_streaks(session, wanted)
        return {fp: TenantState(latest.get(fp), last_success.get(fp), streaks.get(fp, 0)) for fp in wanted}

    def finish_run(self, run_id: int, status: RunStatus | str, error: str | None = None) -> None:
        """End the run with ``status`` and count its actions' outcomes.

        Actions still pending have no outcome and never will: they become interrupted.
        """
        status = RunStatus(status)
        if status is RunStatus.RUNNING:
            raise ValueError("a run finishes with a final status, not 'running'")
        with self._session() as session:
            run = _existing(session, Run, run_id)
            run.status, run.error, run.finished_at = status, error, utc_now()
            _interrupt_pending_actions(session, run)
            _count_outcomes(session, run)
            session.commit()

    def mark_interrupted(self, started_before: datetime | None = None, fingerprint: str | None = None) -> list[int]:
        """Mark runs left 'running' by a stopped process, and their pending actions, interrupted.

        Call it when a process starts, before its own run: every run still
        'running' that started before ``started_before`` (default: now) is
        taken as abandoned. Returns the ids of the runs marked.

        With ``fingerprint``, only that target's runs: call it so while holding
        the target's run lock (:meth:`run_lock`), and a run that another process
        is doing right now, for this target or another, is never taken for
        abandoned. Without it, every target's: right only when no other process
        shares the store.
        """
        cutoff = started_before or utc_now()
        query = select(Run).where(Run.status == RunStatus.RUNNING, col(Run.started_at) < cutoff)
        if fingerprint is not None:
            query = query.where(Run.config_fingerprint == fingerprint)
        with self._session() as session:
            runs = session.exec(query).all()
            for run in runs:
                _interrupt(session, run)
            session.commit()
            return [run.id for run in runs if run.id is not None]

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
        from reconciler.store.locks import LockBusy

        try:
            with self.run_lock(fingerprint):
                return self.mark_interrupted(fingerprint=fingerprint)
        except (LockBusy, StoreError, SQLAlchemyError):
            return []

    def recent_runs(self, limit: int = 20, fingerprints: Iterable[str] | None = None) -> list[Run]:
        """The latest runs first; with ``fingerprints``, only those targets' runs."""
        query = select(Run).order_by(col(Run.id).desc()).limit(limit)
        if fingerprints is not None:
            query = query.where(col(Run.config_fingerprint).in_(list(fingerprints)))
        with self._session() as session:
            return list(session.exec(query).all())

    def get_run(self, run_id: int) -> Run | None:
        with self._session() as session:
            return session.get(Run, run_id)

    # --- actions -----------------------------------------------------------------------------

    def record_intent(self, run_id: int, action: Action) -> int:
        """Record ``action`` as pending; call it before its request is sent.

        This and :meth:`record_outcome` run once per write, so they use plain
        SQL statements: the ORM's unit of work costs milliseconds per row.
        """
        return self._insert(_INSERT_ACTION, _action_record(run_id, action, ActionStatus.PENDING))

    def record_outcome(
        self, action_id: int, succeeded: bool, error: str | None = None, scim_id: str | None = None
    ) -> None:
        """Complete a recorded intent; ``scim_id`` is the id a create or a link learned."""
        self._complete(_COMPLETE_ACTION, ActionRecord.__tablename__, action_id, succeeded, error, scim_id)

    def record_skipped(self, run_id: int, actions: Iterable[Action], why: str | None = None) -> None:
        """Record, in one transaction, actions that will not be sent (see ActionStatus.SKIPPED).

        ``why`` (kept in ``error``) says what held them back: the safety gate, the
        error-rate breaker, a stale saved plan; None for dry-runs and report-only kinds.
        """
        with self._session() as session:
            session.add_all(_action_record(run_id, action, ActionStatus.SKIPPED, why) for action in actions)
            session.commit()

    def actions_of(self, run_id: int) -> list[ActionRecord]:
        """The run's actions in the order they were recorded."""
        with self._session() as session:
            query = select(ActionRecord).where(ActionRecord.run_id == run_id).order_by(col(ActionRecord.id))
            return list(session.exec(query).all())

    # --- group actions -----------------------------------------------------------------------

    def record_group_intent(self, run_id: int, action: GroupAction) -> int:
        """Record the group ``action`` as pending before its request is sent (plain SQL, as :meth:`record_intent`)."""
        return self._insert(_INSERT_GROUP_ACTION, _group_action_record(run_id, action, ActionStatus.PENDING))

    def record_group_outcome(
        self, action_id: int, succeeded: bool, error: str | None = None, scim_id: str | None = None
    ) -> None:
        """Complete a recorded group intent; ``scim_id`` is the id a CREATE_GROUP learned (None: keep the planned one).

        As :meth:`record_outcome`, one plain SQL statement.
        """
        table = GroupActionRecord.__tablename__
        self._complete(_COMPLETE_GROUP_ACTION, table, action_id, succeeded, error, scim_id)

    def _insert(self, statement: sa.Insert, record: ActionRecord | GroupActionRecord) -> int:
        with self.engine.begin() as connection:
            inserted = connection.execute(statement, record.model_dump(exclude={"id"})).inserted_primary_key
        assert inserted is not None
        return int(inserted[0])

    def _complete(
        self, statement: sa.Update, table: str, action_id: int, succeeded: bool, error: str | None, scim_id: str | None
    ) -> None:
        values = {
            "action_id": action_id,
            "new_status": ActionStatus.SUCCEEDED if succeeded else ActionStatus.FAILED,
            "new_error": error,
            "new_finished_at": utc_now(),
            "new_scim_id": scim_id,
        }
        with self.engine.begin() as connection:
            if connection.execute(statement, values).rowcount == 0:
                raise LookupError(f"no {table} row with id {action_id}")

    def record_group_skipped(self, run_id: int, actions: Iterable[GroupAction], why: str | None = None) -> None:
        """Record, in one transaction, group actions that will not be sent; ``why`` as in :meth:`record_skipped`."""
        with self._session() as session:
            session.add_all(_group_action_record(run_id, action, ActionStatus.SKIPPED, why) for action in actions)
            session.commit()

    def group_actions_of(self, run_id: int) -> list[GroupActionRecord]:
        """The run's group actions in the order they were recorded."""
        with self._session() as session:
            query = (
                select(GroupActionRecord).where(GroupActionRecord.run_id == run_id).order_by(col(GroupActionRecord.id))
            )
            return list(session.exec(query).all())

    # --- alert state -------------------------------------------------------------------------

    def alert_states(self, fingerprint: str) -> dict[str, AlertState]:
        """The conditions active for this target, by key."""
        with self._session() as session:
            query = select(AlertState).where(AlertState.config_fingerprint == fingerprint).order_by(col(AlertState.key))
            return {row.key: row for row in session.exec(query).all()}

    def save_alert_state(self, state: AlertState) -> None:
        """Insert or replace the state of ``state.key`` for ``state.config_fingerprint``."""
        with self._session() as session:
            session.merge(state)
            session.commit()

    def remove_alert_state(self, fingerprint: str, key: str) -> None:
        """Forget a condition that cleared; nothing happens if it is not stored."""
        with self._session() as session:
            row = session.get(AlertState, (fingerprint, key))
            if row is not None:
                session.delete(row)
                session.commit()


# --- engines and URLs ------------------------------------------------------------------------


def _engine(url: str) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if make_url(url).get_backend_name() != "sqlite":
        # pre_ping: a service holds its pool for months; a connection the server closed is replaced, not used.
        return _create_engine(url, pool_pre_ping=True)
    engine = _create_engine(url)
    sa.event.listen(engine, "connect", _tune_sqlite)
    return engine


def migration_engine(url: str) -> Engine:
    """An engine whose transactions serialise schema changes and hold DDL too (one connection, no pool).

    SQLite: pysqlite's own transaction handling is turned off so that DDL stays
    inside the transaction, and the transaction starts with BEGIN IMMEDIATE,
    which takes the database's write lock at once (another process waits for it,
    up to the busy timeout). PostgreSQL runs DDL in transactions already; the
    caller takes an advisory lock in it (:data:`MIGRATION_LOCK_KEY`).
    """
    url = normalize_url(url)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = _create_engine(url, poolclass=NullPool)
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


def _create_engine(url: str, **options: Any) -> Engine:
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
def _store_errors(url: str, doing: str = "use") -> Iterator[None]:
    """A database that cannot be reached or read becomes a StoreError that says which, password masked."""
    try:
        yield
    except SQLAlchemyError as error:
        reason = getattr(error, "orig", None) or error
        raise StoreError(f"cannot {doing} the store at {masked_url(url)}: {str(reason).strip()}") from error


# --- schema versions -------------------------------------------------------------------------

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
    if (path is not None and not path.exists()) or _in_memory(url):
        return SchemaStatus(masked_url(url), "empty", None, _head())
    engine = _create_engine(url, poolclass=NullPool)
    try:
        with _store_errors(url), engine.connect() as connection:
            return _inspect(connection, url)
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
    with _store_errors(url, "upgrade (nothing was changed)"):
        status = _prepare(url, upgrade=True)
    if status.state != "current":
        raise SchemaError(status.problem(), status)
    assert status.current is not None
    return status.current


def _prepare(url: str, *, upgrade: bool, engine: Engine | None = None) -> SchemaStatus:
    """Under the migration lock: create an empty schema, stamp a pre-versioned one, upgrade if asked."""
    own_engine = engine is None
    engine = engine or migration_engine(url)
    try:
        with engine.connect() as connection, connection.begin():
            if is_postgresql(url):
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            status = _inspect(connection, url)
            if status.state == "unversioned" and status.detail is None:
                _alembic(connection, "stamp", FIRST_REVISION)
                status = _inspect(connection, url)
            if status.state == "empty" or (status.state == "behind" and upgrade):
                _alembic(connection, "upgrade", "head")
                status = _inspect(connection, url)
        return status
    finally:
        if own_engine:
            engine.dispose()


def _alembic(connection: Connection, command_name: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    getattr(command, command_name)(config, revision)


@functools.cache
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR))


def _head() -> str:
    head = _script().get_current_head()
    assert head is not None, "reconciler/migrations has no revision"
    return head


def _inspect(connection: Connection, url: str) -> SchemaStatus:
    from alembic.runtime.migration import MigrationContext
    from alembic.util import CommandError

    masked, head = masked_url(url), _head()
    inspector = sa.inspect(connection)
    tables = set(inspector.get_table_names())
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
        _script().get_revision(current)
    except CommandError:
        return SchemaStatus(masked, "ahead", current, head)
    return SchemaStatus(masked, "behind", current, head, _pending(current))


def _pending(current: str | None) -> tuple[str, ...]:
    return tuple(script.revision for script in reversed(list(_script().iterate_revisions("head", current))))


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


def _failure_streaks(session: Session, fingerprints: list[str]) -> dict[str, int]:
    """Each target's failure streak, in one query: its failed runs newer than its newest finished run that did not fail.

    The targets without one (no failed run since the last that did not fail) are left out.
    """
    fingerprint = col(Run.config_fingerprint)
    barrier = (
        select(fingerprint, func.max(Run.id).label("id"))
        .where(fingerprint.in_(fingerprints), col(Run.status).not_in((RunStatus.RUNNING, RunStatus.FAILED)))
        .group_by(fingerprint)
        .subquery()
    )
    query = (
        select(fingerprint, func.count())
        .select_from(Run)
        .outerjoin(barrier, barrier.c.config_fingerprint == fingerprint)
        .where(
            fingerprint.in_(fingerprints),
            Run.status == RunStatus.FAILED,
            col(Run.id) > func.coalesce(barrier.c.id, 0),
        )
        .group_by(fingerprint)
    )
    return {fp: int(count) for fp, count in session.execute(query)}


def _existing(session: Session, model: type[_Row], row_id: int) -> _Row:
    row = session.get(model, row_id)
    if row is None:
        raise LookupError(f"no {model.__tablename__} row with id {row_id}")
    return row


def _completion(model: type[ActionRecord] | type[GroupActionRecord]) -> sa.Update:
    """The UPDATE that completes an intent of ``model``; ``scim_id`` is kept unless a new one is given."""
    return (
        sa.update(model)
        .where(col(model.id) == sa.bindparam("action_id"))
        .values(
            status=sa.bindparam("new_status"),
            error=sa.bindparam("new_error"),
            finished_at=sa.bindparam("new_finished_at"),
            scim_id=func.coalesce(sa.bindparam("new_scim_id", type_=sa.String), col(model.scim_id)),
        )
    )


_INSERT_ACTION: Final = sa.insert(ActionRecord)
_COMPLETE_ACTION: Final = _completion(ActionRecord)
_INSERT_GROUP_ACTION: Final = sa.insert(GroupActionRecord)
_COMPLETE_GROUP_ACTION: Final = _completion(GroupActionRecord)
"""Built once, so that recording each write reuses one compiled statement."""


def _action_record(run_id: int, action: Action, status: ActionStatus, error: str | None = None) -> ActionRecord:
    return ActionRecord(
        error=error,
        run_id=run_id,
        kind=action.kind,
        user_name=action.user_name,
        okta_user_id=action.okta_user_id,
        scim_id=action.scim_id,
        reason=action.reason,
        changes=action.to_json()["changes"],
        status=status,
        created_at=utc_now(),
    )


def _group_action_record(
    run_id: int, action: GroupAction, status: ActionStatus, error: str | None = None
) -> GroupActionRecord:
    return GroupActionRecord(
        error=error,
        run_id=run_id,
        kind=action.kind,
        group_name=action.name,
        okta_group_id=action.okta_group_id,
        scim_id=action.scim_id,
        members=list(action.members),
        member_count=len(action.members),
        reason=action.reason,
        status=status,
        created_at=utc_now(),
    )


_ACTION_TABLES: Final = (ActionRecord, GroupActionRecord)
"""The tables of a run's actions: a run's outcome counts, and its interruption, cover both."""


def _count_outcomes(session: Session, run: Run) -> None:
    """``applied`` and ``failed``: the run's user and group actions that succeeded, or failed."""
    run.applied = run.failed = 0
    for model in _ACTION_TABLES:
        query = sa.select(model.status, func.count()).where(model.run_id == run.id).group_by(model.status)
        counts = {ActionStatus(status): count for status, count in session.execute(query).all()}
        run.applied += counts.get(ActionStatus.SUCCEEDED, 0)
        run.failed += counts.get(ActionStatus.FAILED, 0)


def _interrupt(session: Session, run: Run) -> None:
    run.status, run.error = RunStatus.INTERRUPTED, INTERRUPTED_RUN_ERROR
    _interrupt_pending_actions(session, run)
    _count_outcomes(session, run)


def _interrupt_pending_actions(session: Session, run: Run) -> None:
    """The run's user and group actions still pending become interrupted: their outcome is unknown."""
    for model in _ACTION_TABLES:
        pending = session.exec(select(model).where(model.run_id == run.id, model.status == ActionStatus.PENDING)).all()
        for record in pending:
            record.status, record.error = ActionStatus.INTERRUPTED, INTERRUPTED_ACTION_ERROR
    session.flush()
