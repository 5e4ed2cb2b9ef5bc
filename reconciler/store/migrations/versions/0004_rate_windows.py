"""Shared rate budgets: ``rate_windows``, one Okta org's current window per endpoint family.

Several replicas reading one Okta org claim each request from the org's window
count here before sending it, so that together they spend the share one would
(``reconciler.net.shared_pacing``). A row per (org, family), rewritten as
windows pass; nothing else refers to it.

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "rate_windows",
        sa.Column("org", sa.String(255), nullable=False),
        sa.Column("family", sa.String(64), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=True),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("resets_at", sa.Float(), nullable=True),
        sa.Column("opened_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("org", "family"),
    )


def downgrade() -> None:
    op.drop_table("rate_windows")
