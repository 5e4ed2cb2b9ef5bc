"""Group actions: the table ``group_actions`` and the group plan's counts, ``runs.planned_groups``.

``group_actions`` records each action of a run's group plan (reconciler.group_plan)
as ``actions`` records a user's: an intent, then its outcome. ``planned_groups``
holds ``GroupPlan.summary()``; it stays NULL for runs that planned no groups,
which every run made before this revision is.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

ENUM_LENGTH = 16
"""Enums are stored as their value in a VARCHAR (no database enum type to migrate)."""


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("runs", sa.Column("planned_groups", sa.JSON(), nullable=True))
    op.create_table(
        "group_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(ENUM_LENGTH), nullable=False),
        sa.Column("group_name", sa.String(), nullable=False),
        sa.Column("okta_group_id", sa.String(), nullable=True),
        sa.Column("scim_id", sa.String(), nullable=True),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(ENUM_LENGTH), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_group_actions_run_id", "group_actions", ["run_id"], unique=False)
    op.create_index("ix_group_actions_status", "group_actions", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_group_actions_status", table_name="group_actions")
    op.drop_index("ix_group_actions_run_id", table_name="group_actions")
    op.drop_table("group_actions")
    with op.batch_alter_table("runs") as batch:  # SQLite: alembic copies the table without the column
        batch.drop_column("planned_groups")
