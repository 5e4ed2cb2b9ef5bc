"""The store: every run and every action it took, as an audit trail.

A run row is written when the run starts and completed when it ends. Each
action is recorded as an *intent* (pending) and committed before its request
is sent, then completed with its *outcome*; each write is its own short
transaction, so a crash loses at most the outcome of the requests in flight.
Those stay pending and the next start marks them interrupted: the next plan,
computed from live state, redoes whatever they did not do.

SQLite by default (WAL mode, so readers such as ``reconcile history`` do not
block a running apply); any SQLAlchemy URL otherwise (PostgreSQL). Tables are
created when absent. Only Actions reach the store: they carry no secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Field, Session, SQLModel, col, func, select

from reconciler.records import SUMMARY_KEYS, Action, ActionKind

SQLITE_BUSY_TIMEOUT_MS: Final = 5000

_Row = TypeVar("_Row", bound=SQLModel)


class RunMode(StrEnum):
    DRY_RUN = "dry-run"
    APPLY = "apply"
    APPLY_PLAN = "apply-plan"
    """``reconcile apply PLAN_FILE``: a saved, reviewed plan applied to live state."""


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    DRIFT = "drift"
    """A dry-run found drift."""
    FAILED = "failed"
    PARTIAL = "partial"
    """An apply in which some actions failed."""
    INTERRUPTED = "interrupted"
    """Left running by a process that stopped; found by a later start."""
    BLOCKED = "blocked"
    """The safety gate stopped gated writes; ``error`` says which limit tripped."""


SOURCE_READ_WHOLE: Final = frozenset({RunStatus.SUCCEEDED, RunStatus.DRIFT, RunStatus.PARTIAL})
"""Runs whose Okta listing is a trusted baseline for the source-shrink guard.

A blocked run is left out on purpose: its listing is the suspicious one, and a
baseline taken from it would let a sustained drop through on the next run.
"""


class ActionStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Recorded but not sent: a dry-run, a report-only kind, or stopped by the safety gate."""
    INTERRUPTED = "interrupted"
    """Sent (perhaps) by a process that stopped before recording the outcome."""


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


class Run(SQLModel, table=True):
    __tablename__ = "runs"

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

    @property
    def summary(self) -> dict[str, int] | None:
        """The plan summary as :meth:`reconciler.records.Plan.summary` gives it; None before planning."""
        if self.planned_in_sync is None:
            return None
        return {key: getattr(self, f"planned_{key}") or 0 for key in SUMMARY_KEYS}


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


class Store:
    """Runs and actions in a database; every method is one short transaction."""

    def __init__(self, url: str) -> None:
        self.engine = _engine(url)
        SQLModel.metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # --- runs --------------------------------------------------------------------------------

    def start_run(self, mode: RunMode | str, fingerprint: str) -> int:
        run = Run(started_at=utc_now(), mode=RunMode(mode), status=RunStatus.RUNNING, config_fingerprint=fingerprint)
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
        query = (
            select(Run.status)
            .where(Run.config_fingerprint == fingerprint, Run.status != RunStatus.RUNNING)
            .order_by(col(Run.id).desc())
            .limit(10_000)
        )
        with self._session() as session:
            failures = 0
            for status in session.exec(query):
                if status is not RunStatus.FAILED:
                    break
                failures += 1
            return failures

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

    def mark_interrupted(self, started_before: datetime | None = None) -> list[int]:
        """Mark runs left 'running' by a stopped process, and their pending actions, interrupted.

        Call it when a process starts, before its own run: every run still
        'running' that started before ``started_before`` (default: now) is
        taken as abandoned. Returns the ids of the runs marked.
        """
        cutoff = started_before or utc_now()
        with self._session() as session:
            runs = session.exec(select(Run).where(Run.status == RunStatus.RUNNING, col(Run.started_at) < cutoff)).all()
            for run in runs:
                _interrupt(session, run)
            session.commit()
            return [run.id for run in runs if run.id is not None]

    def recent_runs(self, limit: int = 20) -> list[Run]:
        """The latest runs first."""
        with self._session() as session:
            return list(session.exec(select(Run).order_by(col(Run.id).desc()).limit(limit)).all())

    def get_run(self, run_id: int) -> Run | None:
        with self._session() as session:
            return session.get(Run, run_id)

    # --- actions -----------------------------------------------------------------------------

    def record_intent(self, run_id: int, action: Action) -> int:
        """Record ``action`` as pending; call it before its request is sent."""
        record = _action_record(run_id, action, ActionStatus.PENDING)
        with self._session() as session:
            session.add(record)
            session.commit()
            assert record.id is not None
            return record.id

    def record_outcome(
        self, action_id: int, succeeded: bool, error: str | None = None, scim_id: str | None = None
    ) -> None:
        """Complete a recorded intent; ``scim_id`` is the id a create or a link learned."""
        with self._session() as session:
            record = _existing(session, ActionRecord, action_id)
            record.status = ActionStatus.SUCCEEDED if succeeded else ActionStatus.FAILED
            record.error, record.finished_at = error, utc_now()
            if scim_id is not None:
                record.scim_id = scim_id
            session.commit()

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


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    sa.event.listen(engine, "connect", _tune_sqlite)
    return engine


def _tune_sqlite(connection: Any, _record: Any) -> None:
    """WAL lets readers work during a write; busy_timeout makes a writer wait instead of failing."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _existing(session: Session, model: type[_Row], row_id: int) -> _Row:
    row = session.get(model, row_id)
    if row is None:
        raise LookupError(f"no {model.__tablename__} row with id {row_id}")
    return row


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


def _count_outcomes(session: Session, run: Run) -> None:
    query = select(ActionRecord.status, func.count()).where(ActionRecord.run_id == run.id).group_by(ActionRecord.status)
    counts = dict(session.exec(query).all())
    run.applied = counts.get(ActionStatus.SUCCEEDED, 0)
    run.failed = counts.get(ActionStatus.FAILED, 0)


def _interrupt(session: Session, run: Run) -> None:
    run.status, run.error = RunStatus.INTERRUPTED, INTERRUPTED_RUN_ERROR
    _interrupt_pending_actions(session, run)
    _count_outcomes(session, run)


def _interrupt_pending_actions(session: Session, run: Run) -> None:
    pending = session.exec(
        select(ActionRecord).where(ActionRecord.run_id == run.id, ActionRecord.status == ActionStatus.PENDING)
    ).all()
    for record in pending:
        record.status, record.error = ActionStatus.INTERRUPTED, INTERRUPTED_ACTION_ERROR
    session.flush()
