"""Acknowledgements: findings (a conflict, an unmanaged user) a person reviewed, with who, when and why.

``reconcile ack`` records one for the finding as it is (its digest); a dry-run no longer
exits 2 for a finding so acknowledged, and shows it marked. Revoking keeps the row, with
who revoked it and when.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "acknowledgements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("config_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("okta_user_id", sa.String(), nullable=True),
        sa.Column("scim_id", sa.String(), nullable=True),
        sa.Column("finding", sa.Text(), nullable=False),
        sa.Column("finding_digest", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_acknowledgements_config_fingerprint", "acknowledgements", ["config_fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_acknowledgements_config_fingerprint", table_name="acknowledgements")
    op.drop_table("acknowledgements")
