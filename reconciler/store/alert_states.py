"""The alert conditions active for each target (``alert_states``), kept between runs by reconciler.alerts."""

from __future__ import annotations

from sqlmodel import col, select

from reconciler.store.repository import Repository
from reconciler.store.tables import AlertState


class AlertStates(Repository):
    """The Store's part that keeps which alert conditions are active, per target."""

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
