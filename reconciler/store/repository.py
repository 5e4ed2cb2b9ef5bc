"""The base of the Store's parts (runs, actions journal, tenants' states, alert states): an engine and sessions."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

Row = TypeVar("Row", bound=SQLModel)


class Repository:
    """What every part of :class:`reconciler.store.Store` works through: its engine, one session per transaction."""

    engine: Engine

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)


def existing_row(session: Session, model: type[Row], row_id: int) -> Row:
    """The row of ``model`` with this id; LookupError if there is none."""
    row = session.get(model, row_id)
    if row is None:
        raise LookupError(f"no {model.__tablename__} row with id {row_id}")
    return row
