"""Store URLs: normalised, masked for messages, and the SQLite file behind one; the store's error type."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from reconciler.errors import ReconcileError


class StoreError(ReconcileError):
    """The store cannot be used: unreachable, unusable URL, or a schema this version cannot work with."""


def normalize_url(url: str) -> str:
    """``postgresql://`` means psycopg (3), the driver this package installs; everything else as given."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StoreError(f"the store URL is not a database URL: {error}") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def masked_url(url: str | URL) -> str:
    """The URL fit to show: its password, if any, replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for another backend or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser()


def is_in_memory(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite" and sqlite_path(url) is None


def is_postgresql(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"
