"""The System Log follower's side of the store: its cursor (``log_cursors``, revision 0006), the writes of the
sliding window its gate counts, and when Okta's state changed for each user it repaired.

Each method is one short transaction. A cursor is saved only after the batch it follows is journaled, so a
crash in between re-reads the batch's events; the plan, made from both sides' state then, redoes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from reconciler.models.log import RECENT_UUIDS_KEPT, LogCursor
from reconciler.models.records import ActionKind
from reconciler.models.runs import ActionStatus, RunMode
from reconciler.store.repository import Repository, upsert_insert
from reconciler.store.tables import ActionRecord, LogCursorRecord, Run

WINDOW_KINDS: Final = (ActionKind.CREATE, ActionKind.UPDATE, ActionKind.DEACTIVATE, ActionKind.REACTIVATE)
"""The kinds of user writes the sliding-window gate counts: those ``[thresholds]`` limits per kind."""

MAY_HAVE_BEEN_SENT: Final = (
    ActionStatus.SUCCEEDED,
    ActionStatus.FAILED,
    ActionStatus.PENDING,
    ActionStatus.INTERRUPTED,
)
"""The writes :meth:`LogCursors.writes_since` counts: every one that may have reached the platform. A failed
write may have been applied before its answer was lost (a timeout, a 5xx after the commit), a pending one is
in flight, an interrupted one's outcome is unknown; only a skipped one (a dry-run, held by the gate) was
surely never sent. Counting too many can only hold a write back for one window; too few could let a burst
through."""


class LogCursors(Repository):
    """The Store's part that keeps each target's place in Okta's System Log and what its follower wrote."""

    def log_cursor(self, fingerprint: str) -> LogCursor | None:
        """The target's saved cursor; None when its follower never checkpointed (or its cursor was dropped)."""
        with self._session() as session:
            row = session.get(LogCursorRecord, fingerprint)
        if row is None:
            return None
        return LogCursor(
            row.next_url, row.high_water, tuple(json.loads(row.recent_uuids)), row.updated_at, row.last_ok_at
        )

    def save_log_cursor(self, fingerprint: str, cursor: LogCursor, tenant: str | None = None) -> None:
        """Insert or replace the target's cursor, atomically; only the newest :data:`RECENT_UUIDS_KEPT` uuids
        (the last of ``cursor.recent_uuids``) are kept."""
        values = {
            "fingerprint": fingerprint,
            "tenant": tenant,
            "next_url": cursor.next_url,
            "high_water": cursor.high_water,
            "recent_uuids": json.dumps(list(cursor.recent_uuids[-RECENT_UUIDS_KEPT:])),
            "updated_at": cursor.updated_at,
            "last_ok_at": cursor.last_ok_at,
        }
        with self._session() as session:
            session.execute(_upsert(session, values))
            session.commit()

    def drop_log_cursor(self, fingerprint: str) -> None:
        """Forget the target's cursor (its follower starts over with a full audit); nothing if it has none."""
        with self._session() as session:
            session.execute(sa.delete(LogCursorRecord).where(col(LogCursorRecord.fingerprint) == fingerprint))
            session.commit()

    def writes_since(self, fingerprint: str, since: datetime) -> dict[str, int]:
        """The user writes of the target's incremental runs recorded at or after ``since``, by kind (``create``,
        ``update``, ``deactivate``, ``reactivate``; a kind without any is left out): each write that may have
        reached the platform (:data:`MAY_HAVE_BEEN_SENT`), counted from when its intent was recorded, just
        before it was sent. Full runs are left out: their own gate weighed them, whole."""
        query = (
            select(ActionRecord.kind, func.count())
            .join(Run, col(Run.id) == col(ActionRecord.run_id))
            .where(
                col(ActionRecord.created_at) >= since,
                col(ActionRecord.kind).in_(WINDOW_KINDS),
                col(ActionRecord.status).in_(MAY_HAVE_BEEN_SENT),
                Run.config_fingerprint == fingerprint,
                Run.mode == RunMode.INCREMENTAL,
            )
            .group_by(ActionRecord.kind)
        )
        with self._session() as session:
            return {ActionKind(kind).value: int(count) for kind, count in session.execute(query)}

    def mark_okta_changes(self, run_id: int, changed_at: Mapping[str, datetime]) -> None:
        """Set ``okta_changed_at`` on the run's actions about each Okta user of ``changed_at`` (by
        ``okta_user_id``), in one transaction; users without an action in the run are ignored."""
        if not changed_at:
            return
        statement = (
            sa.update(ActionRecord)
            .where(col(ActionRecord.run_id) == run_id, col(ActionRecord.okta_user_id) == sa.bindparam("user"))
            .values(okta_changed_at=sa.bindparam("changed_at"))
        )
        rows = [{"user": user, "changed_at": at} for user, at in changed_at.items()]
        with self.engine.begin() as connection:
            connection.execute(statement, rows)


def _upsert(session: Session, values: dict[str, object]) -> sa.Insert:
    """INSERT ... ON CONFLICT (fingerprint) DO UPDATE: one statement, atomic on both backends."""
    statement = upsert_insert(session, LogCursorRecord).values(**values)
    replaced = {name: statement.excluded[name] for name in values if name != "fingerprint"}
    return statement.on_conflict_do_update(index_elements=["fingerprint"], set_=replaced)
