"""What revisions 0001 and 0002 share: the shape of a run's action table (``actions``, ``group_actions``).

Revision scripts are history: the schema each one makes must never change, and
these helpers are part of that history, frozen with the revisions that call them.
A later revision that needs another shape writes its own; it never edits these.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

ENUM_LENGTH = 16
"""Enums are stored as their value in a VARCHAR (no database enum type to migrate)."""


def utc() -> sa.DateTime:
    """A timezone-aware datetime column type (the store keeps UTC)."""
    return sa.DateTime(timezone=True)


def create_action_table(name: str, *subject: sa.Column[object]) -> None:
    """The table ``name`` with its indexes: id, run_id and kind, then the ``subject`` columns, then the outcome."""
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(ENUM_LENGTH), nullable=False),
        *subject,
        sa.Column("status", sa.String(ENUM_LENGTH), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("finished_at", utc(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(f"ix_{name}_run_id", name, ["run_id"], unique=False)
    op.create_index(f"ix_{name}_status", name, ["status"], unique=False)


def drop_action_table(name: str) -> None:
    """Undo :func:`create_action_table`."""
    op.drop_index(f"ix_{name}_status", table_name=name)
    op.drop_index(f"ix_{name}_run_id", table_name=name)
    op.drop_table(name)
