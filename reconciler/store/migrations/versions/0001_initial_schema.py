"""The schema as the store made it before it was versioned: runs, actions, alert_states.

A database made by ``create_all`` before migrations existed has exactly these
tables and columns; the store recognises one and stamps it at this revision
(see reconciler.store.schema.PREVERSIONED_COLUMNS).

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from reconciler.store.migrations.action_tables import ENUM_LENGTH, create_action_table, drop_action_table, utc

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", utc(), nullable=False),
        sa.Column("finished_at", utc(), nullable=True),
        sa.Column("mode", sa.String(ENUM_LENGTH), nullable=False),
        sa.Column("status", sa.String(ENUM_LENGTH), nullable=False),
        sa.Column("config_fingerprint", sa.String(64), nullable=False),
        sa.Column("planned_create", sa.Integer(), nullable=True),
        sa.Column("planned_update", sa.Integer(), nullable=True),
        sa.Column("planned_deactivate", sa.Integer(), nullable=True),
        sa.Column("planned_reactivate", sa.Integer(), nullable=True),
        sa.Column("planned_link", sa.Integer(), nullable=True),
        sa.Column("planned_conflict", sa.Integer(), nullable=True),
        sa.Column("planned_unmanaged", sa.Integer(), nullable=True),
        sa.Column("planned_in_sync", sa.Integer(), nullable=True),
        sa.Column("source_count", sa.Integer(), nullable=True),
        sa.Column("managed_count", sa.Integer(), nullable=True),
        sa.Column("applied", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_runs_status", "runs", ["status"], unique=False)
    create_action_table(
        "actions",
        sa.Column("user_name", sa.String(), nullable=False),
        sa.Column("okta_user_id", sa.String(), nullable=True),
        sa.Column("scim_id", sa.String(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
    )
    op.create_table(
        "alert_states",
        sa.Column("config_fingerprint", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("active_since", utc(), nullable=False),
        sa.Column("last_sent_at", utc(), nullable=True),
        sa.Column("last_run_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("config_fingerprint", "key"),
    )


def downgrade() -> None:
    op.drop_table("alert_states")
    drop_action_table("actions")
    op.drop_index("ix_runs_status", table_name="runs")
    op.drop_table("runs")
