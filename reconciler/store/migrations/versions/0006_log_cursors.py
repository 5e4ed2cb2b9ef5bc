"""Incremental reconciliation: ``log_cursors`` (where each target's System Log follower stands) and
``actions.okta_changed_at`` (when Okta's state changed for an incremental repair's user).

The follower checkpoints, after each batch of events is repaired and journaled, the ``next`` link of
Okta's log, the highest ``published`` seen and the latest event uuids: one row per target (config
fingerprint), rewritten in place. ``okta_changed_at`` is the ``published`` time of the event behind an
incremental run's action: time to repair is its ``finished_at`` minus it (NULL for every other action).
The index on ``actions.created_at`` serves the sliding-window gate, which counts the writes of the last
minutes (``Store.writes_since``) without reading every run of the target.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

TENANT_LENGTH = 63


def upgrade() -> None:
    op.create_table(
        "log_cursors",
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(TENANT_LENGTH), nullable=True),
        sa.Column("next_url", sa.Text(), nullable=True),
        sa.Column("high_water", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recent_uuids", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("fingerprint"),
    )
    op.add_column("actions", sa.Column("okta_changed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_actions_created_at", "actions", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_actions_created_at", table_name="actions")
    with op.batch_alter_table("actions") as batch:  # SQLite: alembic copies the table without the column
        batch.drop_column("okta_changed_at")
    op.drop_table("log_cursors")
