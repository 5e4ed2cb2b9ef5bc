"""The base of the Store's parts (runs, actions journal, tenants' states, alert states): an engine and sessions."""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa
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


def upsert_insert(session: Session, model: type[SQLModel]) -> Any:
    """The INSERT of ``model``'s table in the session's dialect, which has ``on_conflict_do_nothing`` and
    ``on_conflict_do_update`` (PostgreSQL's, or SQLite's): one atomic statement on both backends.

    Each dialect's insert is imported when its store is in use: a SQLite store never loads PostgreSQL's dialect.
    """
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(sa.inspect(model).local_table)
