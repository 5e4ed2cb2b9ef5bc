"""Alembic's environment for the store's schema (see reconciler.store: db_upgrade, schema_status).

The application passes an open connection, already inside the transaction that
serialises migrations (``config.attributes["connection"]``): every revision then
runs in that one transaction, and a failure leaves the schema as it was (on
PostgreSQL, whose DDL is transactional; SQLite's is too, as the store opens it).

The alembic command line (developers; see alembic.ini beside this file) takes the
database from ``-x url=...``; ``--sql`` renders the SQL instead of running it.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from reconciler.store.engine import migration_engine
from reconciler.store.schema import VERSION_TABLE

config = context.config
target_metadata = SQLModel.metadata


def _configure(**options: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,  # SQLite cannot ALTER most things: alembic copies the table instead
        compare_type=True,
        **options,
    )


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        # Inside the caller's transaction, which holds DDL on SQLite too (see migration_engine).
        _configure(connection=connection, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the database with -x url=sqlite:///path/to/reconciler.db (or a postgresql URL)")
    if context.is_offline_mode():
        _configure(url=url, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = migration_engine(url)
    try:
        with engine.connect() as opened, opened.begin():
            _configure(connection=opened, transactional_ddl=True)
            context.run_migrations()
    finally:
        engine.dispose()


run_migrations()
