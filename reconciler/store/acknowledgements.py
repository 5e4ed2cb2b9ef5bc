"""Acknowledged findings (``acknowledgements``, revision 0005): recorded, listed, revoked; never deleted."""

from __future__ import annotations

from sqlmodel import col, select

from reconciler.store.repository import Repository
from reconciler.store.tables import Acknowledgement, utc_now


class Acknowledgements(Repository):
    """The Store's part that keeps who acknowledged which finding of which target, when and why."""

    def acknowledge(self, acknowledgement: Acknowledgement) -> Acknowledgement:
        """Record it (its ``acknowledged_at`` set now if unset); returns it with its id."""
        with self._session() as session:
            session.add(acknowledgement)
            session.commit()
            session.refresh(acknowledgement)
            return acknowledgement

    def acknowledgements(self, fingerprint: str, *, revoked: bool = False) -> list[Acknowledgement]:
        """This target's acknowledgements in force, oldest first; with ``revoked``, the revoked ones too."""
        with self._session() as session:
            query = select(Acknowledgement).where(Acknowledgement.config_fingerprint == fingerprint)
            if not revoked:
                query = query.where(col(Acknowledgement.revoked_at).is_(None))
            return list(session.exec(query.order_by(col(Acknowledgement.id))).all())

    def revoke_acknowledgement(self, fingerprint: str, ack_id: int, by: str) -> Acknowledgement | None:
        """Revoke one of this target's acknowledgements in force; None if there is no such one."""
        with self._session() as session:
            row = session.get(Acknowledgement, ack_id)
            if row is None or row.config_fingerprint != fingerprint or row.revoked_at is not None:
                return None
            row.revoked_at, row.revoked_by = utc_now(), by
            session.add(row)
            session.commit()
            session.refresh(row)
            return row
