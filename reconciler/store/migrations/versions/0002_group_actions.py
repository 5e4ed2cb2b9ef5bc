"""Group actions: the table ``group_actions`` and the group plan's counts, ``runs.planned_groups``.

``group_actions`` records each action of a run's group plan (reconciler.plan.groups)
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

from reconciler.store.migrations.action_tables import create_action_table, drop_action_table

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("planned_groups", sa.JSON(), nullable=True))
    create_action_table(
        "group_actions",
        sa.Column("group_name", sa.String(), nullable=False),
        sa.Column("okta_group_id", sa.String(), nullable=True),
        sa.Column("scim_id", sa.String(), nullable=True),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    drop_action_table("group_actions")
    with op.batch_alter_table("runs") as batch:  # SQLite: alembic copies the table without the column
        batch.drop_column("planned_groups")
