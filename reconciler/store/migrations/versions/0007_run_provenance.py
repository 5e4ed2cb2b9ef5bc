"""Who started each run, which saved plan an ``apply-plan`` run applied, and an index for reports.

``runs.started_by`` is the operating-system user who started a one-off command (``reconcile``, ``apply``,
``follow``; under sudo, the user who ran sudo), NULL for the service's scheduled runs (``runs.replica`` names
the process) and for every run before this revision. ``runs.plan_run_id`` is, for an ``apply-plan`` run, the
dry-run that wrote the saved plan it applied. ``reconcile report`` shows both beside the actions (who applied
which reviewed plan), and reads a period's runs through the index on ``runs.started_at``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

STARTED_BY_LENGTH = 200


def upgrade() -> None:
    op.add_column("runs", sa.Column("started_by", sa.String(STARTED_BY_LENGTH), nullable=True))
    op.add_column("runs", sa.Column("plan_run_id", sa.Integer(), nullable=True))
    op.create_index("ix_runs_started_at", "runs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_started_at", table_name="runs")
    with op.batch_alter_table("runs") as batch:  # SQLite: alembic copies the table without the columns
        batch.drop_column("plan_run_id")
        batch.drop_column("started_by")
