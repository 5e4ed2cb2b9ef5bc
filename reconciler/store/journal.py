"""The actions journal: each action of a run, a user's or a group's, as an intent and then its outcome.

An intent is recorded (pending) and committed before its request is sent, then
completed with its outcome, each in a short transaction of its own; a crash loses
at most the outcomes of the requests in flight (see :mod:`reconciler.store.store`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from reconciler.models.groups import GroupAction
from reconciler.models.records import Action
from reconciler.models.runs import ActionStatus
from reconciler.store.repository import Repository
from reconciler.store.tables import ActionRecord, GroupActionRecord, Run, utc_now

ActionTable = type[ActionRecord] | type[GroupActionRecord]
Record = TypeVar("Record", ActionRecord, GroupActionRecord)

ACTION_TABLES: Final = (ActionRecord, GroupActionRecord)
"""The tables of a run's actions: a run's outcome counts, and its interruption, cover both."""
INTERRUPTED_ACTION_ERROR: Final = (
    "interrupted: outcome unknown; the next plan, computed from live state, redoes it if needed"
)


def _completion(model: ActionTable) -> sa.Update:
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


def _action_row(run_id: int, action: Action, status: ActionStatus, error: str | None = None) -> dict[str, Any]:
    """An ``actions`` row's columns (the id aside), as :class:`ActionRecord` holds them: built as a dict,
    since a model object costs more than the INSERT it feeds, once per write."""
    return {
        "run_id": run_id,
        "scim_id": action.scim_id,
        "reason": action.reason,
        "status": status,
        "error": error,
        "created_at": utc_now(),
        "finished_at": None,
        "kind": action.kind,
        "user_name": action.user_name,
        "okta_user_id": action.okta_user_id,
        "changes": action.to_json()["changes"],
    }


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
        members=action.member_entries() if action.named_members else list(action.members),
        member_count=len(action.members),
        reason=action.reason,
        status=status,
        created_at=utc_now(),
    )


def count_outcomes(session: Session, run: Run) -> None:
    """``applied`` and ``failed``: the run's user and group actions that succeeded, or failed."""
    run.applied = run.failed = 0
    for model in ACTION_TABLES:
        query = sa.select(model.status, func.count()).where(model.run_id == run.id).group_by(model.status)
        counts = {ActionStatus(status): count for status, count in session.execute(query).all()}
        run.applied += counts.get(ActionStatus.SUCCEEDED, 0)
        run.failed += counts.get(ActionStatus.FAILED, 0)


def interrupt_pending_actions(session: Session, run: Run) -> None:
    """The run's user and group actions still pending become interrupted: their outcome is unknown."""
    for model in ACTION_TABLES:
        pending = session.exec(select(model).where(model.run_id == run.id, model.status == ActionStatus.PENDING)).all()
        for record in pending:
            record.status, record.error = ActionStatus.INTERRUPTED, INTERRUPTED_ACTION_ERROR
    session.flush()


class ActionJournal(Repository):
    """The Store's part that records the actions of runs (``actions`` and ``group_actions``)."""

    # --- user actions ---------------------------------------------------------------------------

    def record_intent(self, run_id: int, action: Action) -> int:
        """Record ``action`` as pending; call it before its request is sent.

        This and :meth:`record_outcome` run once per write, so they use plain
        SQL statements: the ORM's unit of work costs milliseconds per row.
        """
        return self._insert(_INSERT_ACTION, _action_row(run_id, action, ActionStatus.PENDING))

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
        rows = [_action_row(run_id, action, ActionStatus.SKIPPED, why) for action in actions]
        if rows:  # one executemany: a dry-run of 100,000 users records a thousand at once
            with self.engine.begin() as connection:
                connection.execute(_INSERT_ACTION, rows)

    def actions_of(self, run_id: int) -> list[ActionRecord]:
        """The run's actions in the order they were recorded."""
        return self._records_of(ActionRecord, run_id)

    # --- group actions --------------------------------------------------------------------------

    def record_group_intent(self, run_id: int, action: GroupAction) -> int:
        """Record the group ``action`` as pending before its request is sent (plain SQL, as :meth:`record_intent`)."""
        row = _group_action_record(run_id, action, ActionStatus.PENDING).model_dump(exclude={"id"})
        return self._insert(_INSERT_GROUP_ACTION, row)

    def record_group_outcome(
        self, action_id: int, succeeded: bool, error: str | None = None, scim_id: str | None = None
    ) -> None:
        """Complete a recorded group intent; ``scim_id`` is the id a CREATE_GROUP learned (None: keep the planned one).

        As :meth:`record_outcome`, one plain SQL statement.
        """
        table = GroupActionRecord.__tablename__
        self._complete(_COMPLETE_GROUP_ACTION, table, action_id, succeeded, error, scim_id)

    def record_group_skipped(self, run_id: int, actions: Iterable[GroupAction], why: str | None = None) -> None:
        """Record, in one transaction, group actions that will not be sent; ``why`` as in :meth:`record_skipped`."""
        self._add_all(_group_action_record(run_id, action, ActionStatus.SKIPPED, why) for action in actions)

    def group_actions_of(self, run_id: int) -> list[GroupActionRecord]:
        """The run's group actions in the order they were recorded."""
        return self._records_of(GroupActionRecord, run_id)

    # --- the statements -------------------------------------------------------------------------

    def _insert(self, statement: sa.Insert, row: dict[str, Any]) -> int:
        with self.engine.begin() as connection:
            inserted = connection.execute(statement, row).inserted_primary_key
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

    def _add_all(self, records: Iterable[ActionRecord | GroupActionRecord]) -> None:
        with self._session() as session:
            session.add_all(records)
            session.commit()

    def _records_of(self, model: type[Record], run_id: int) -> list[Record]:
        with self._session() as session:
            return list(session.exec(select(model).where(model.run_id == run_id).order_by(col(model.id))).all())
