"""What ``reconcile report`` reads: a target's runs and actions over a period, in a few plain SQL queries.

A period holds the runs of one target (config fingerprint) that *started* in ``[start, end)`` and their actions.
The queries count and page in the database (``GROUP BY``, ``LIMIT``): a period of a thousand runs over 100,000
users holds hundreds of thousands of actions, and the report reads only the rows it shows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlmodel import col, select

from reconciler.models.records import ActionKind
from reconciler.models.runs import FULL_AUDIT_MODES, RunMode
from reconciler.store.repository import Repository
from reconciler.store.tables import ActionRecord, Run

ACTION_COLUMNS: Final = (
    ActionRecord.id,
    ActionRecord.run_id,
    ActionRecord.kind,
    ActionRecord.user_name,
    ActionRecord.okta_user_id,
    ActionRecord.status,
    ActionRecord.error,
    ActionRecord.reason,
    ActionRecord.created_at,
    ActionRecord.finished_at,
    ActionRecord.okta_changed_at,
    ActionRecord.changes,
)
"""The action columns a report reads (with ``runs.mode`` joined): everything but the SCIM id."""
REVOCATION_COLUMNS: Final = (
    ActionRecord.run_id,
    ActionRecord.user_name,
    ActionRecord.okta_user_id,
    ActionRecord.status,
    ActionRecord.created_at,
    ActionRecord.finished_at,
    ActionRecord.okta_changed_at,
)
"""What time to revoke needs of a deactivation: a dry-run records one per drifting user per run, so thousands."""
STREAM_BATCH: Final = 5_000


def _period_runs(fingerprint: str, start: datetime, end: datetime) -> sa.Select[Any]:
    return sa.select(Run.id).where(
        Run.config_fingerprint == fingerprint, col(Run.started_at) >= start, col(Run.started_at) < end
    )


def _live_actions(fingerprint: str, start: datetime, end: datetime) -> sa.Select[Any]:
    """The period's actions of runs that could write (every mode but dry-run), with their run's mode."""
    return (
        sa.select(*ACTION_COLUMNS, Run.mode)
        .join(Run, col(Run.id) == ActionRecord.run_id)
        .where(col(ActionRecord.run_id).in_(_period_runs(fingerprint, start, end)), Run.mode != RunMode.DRY_RUN)
    )


class ReportQueries(Repository):
    """The Store's part that reads a period for a report; it writes nothing."""

    def runs_between(self, fingerprint: str, start: datetime, end: datetime) -> list[Run]:
        """The target's runs that started in ``[start, end)``, oldest first."""
        query = (
            select(Run)
            .where(Run.config_fingerprint == fingerprint, col(Run.started_at) >= start, col(Run.started_at) < end)
            .order_by(col(Run.started_at), col(Run.id))
        )
        with self._session() as session:
            return list(session.exec(query).all())

    def run_span(self, fingerprint: str) -> tuple[int, datetime | None, datetime | None]:
        """How many runs the target has, and when its first and its latest started (None, None without runs).

        ``min`` and ``max`` keep the column's type, so they come back as the UTC datetimes the store keeps."""
        query = sa.select(sa.func.count(), sa.func.min(Run.started_at), sa.func.max(Run.started_at)).where(
            Run.config_fingerprint == fingerprint
        )
        with self.engine.connect() as connection:
            count, first, last = connection.execute(query).one()
        return int(count), first, last

    def last_planned_audit(self, fingerprint: str, before: datetime) -> Run | None:
        """The target's latest full audit that started before ``before`` and got as far as a plan."""
        query = (
            select(Run)
            .where(
                Run.config_fingerprint == fingerprint,
                col(Run.mode).in_(FULL_AUDIT_MODES),
                col(Run.planned_in_sync).is_not(None),
                col(Run.started_at) < before,
            )
            .order_by(col(Run.started_at).desc(), col(Run.id).desc())
            .limit(1)
        )
        with self._session() as session:
            return session.exec(query).first()

    def live_action_counts(self, fingerprint: str, start: datetime, end: datetime) -> dict[tuple[str, str], int]:
        """``{(kind, status): count}`` of the period's actions of runs that could write."""
        actions = _live_actions(fingerprint, start, end).subquery()
        query = sa.select(actions.c.kind, actions.c.status, sa.func.count()).group_by(actions.c.kind, actions.c.status)
        with self.engine.connect() as connection:
            return {(str(kind), str(status)): int(n) for kind, status, n in connection.execute(query)}

    def latest_live_actions(
        self, fingerprint: str, start: datetime, end: datetime, kind: str, limit: int | None
    ) -> list[dict[str, Any]]:
        """The period's actions of ``kind`` of runs that could write, the latest ``limit`` of them (all with
        None), oldest first."""
        query = _live_actions(fingerprint, start, end).where(ActionRecord.kind == ActionKind(kind))
        query = query.order_by(col(ActionRecord.id).desc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
        return rows[::-1]

    def stream_live_actions(
        self, fingerprint: str, start: datetime, end: datetime, kind: str
    ) -> Iterator[dict[str, Any]]:
        """Every action of ``kind`` of the period's runs that could write, oldest first, read in batches: the
        JSON and CSV exports write them as they come, never holding them all."""
        query = _live_actions(fingerprint, start, end).where(ActionRecord.kind == ActionKind(kind))
        query = query.order_by(col(ActionRecord.id))
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=STREAM_BATCH).execute(query)
            for row in result:
                yield dict(row._mapping)

    def drift_found(self, fingerprint: str, start: datetime, end: datetime) -> dict[str, int]:
        """Distinct users the period's runs (dry-runs included) found drifting, by kind."""
        query = (
            sa.select(ActionRecord.kind, sa.func.count(sa.distinct(ActionRecord.user_name)))
            .where(col(ActionRecord.run_id).in_(_period_runs(fingerprint, start, end)))
            .group_by(ActionRecord.kind)
        )
        with self.engine.connect() as connection:
            return {str(kind): int(n) for kind, n in connection.execute(query)}

    def deactivations_until(self, fingerprint: str, since: datetime, end: datetime) -> list[Mapping[str, Any]]:
        """The target's deactivations (found or applied, any mode) recorded in ``[since, end)``, oldest first:
        what time to revoke is computed from."""
        runs = sa.select(Run.id).where(Run.config_fingerprint == fingerprint)
        query = (
            sa.select(*REVOCATION_COLUMNS)
            .where(
                col(ActionRecord.run_id).in_(runs),
                ActionRecord.kind == ActionKind.DEACTIVATE,
                col(ActionRecord.created_at) >= since,
                col(ActionRecord.created_at) < end,
            )
            .order_by(col(ActionRecord.id))
        )
        with self.engine.connect() as connection:
            return [row._mapping for row in connection.execute(query)]

    def run_actions(self, run_id: int, kinds: Collection[str], limit: int | None) -> tuple[int, list[dict[str, Any]]]:
        """How many actions of ``kinds`` the run recorded, and the first ``limit`` of them (all with None)."""
        chosen = (ActionRecord.run_id == run_id, col(ActionRecord.kind).in_([ActionKind(kind) for kind in kinds]))
        count = sa.select(sa.func.count()).where(*chosen)
        query = sa.select(*ACTION_COLUMNS).where(*chosen).order_by(col(ActionRecord.id))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            total = int(connection.execute(count).scalar_one())
            return total, [dict(row._mapping) for row in connection.execute(query)]
