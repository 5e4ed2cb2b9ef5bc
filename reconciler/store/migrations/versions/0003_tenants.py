"""Tenants: which tenant a run was for (``runs.tenant``), which process ran it (``runs.replica``).

With several tenants (one Okta app into one SCIM endpoint each) served by
several ``reconcile serve`` replicas sharing one store, a run names its tenant
(the ``[[tenants]]`` name; NULL for a single-tenant config, and for every run
made before this revision) and the replica that did it (NULL before this
revision). The index on ``(config_fingerprint, id)`` serves the per-target
questions every replica asks every few seconds: each target's latest run, its
last success, its failure streak (``Store.tenant_states``).

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

TENANT_LENGTH = 63
REPLICA_LENGTH = 200


def upgrade() -> None:
    op.add_column("runs", sa.Column("tenant", sa.String(TENANT_LENGTH), nullable=True))
    op.add_column("runs", sa.Column("replica", sa.String(REPLICA_LENGTH), nullable=True))
    op.create_index("ix_runs_config_fingerprint_id", "runs", ["config_fingerprint", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_runs_config_fingerprint_id", table_name="runs")
    with op.batch_alter_table("runs") as batch:  # SQLite: alembic copies the table without the columns
        batch.drop_column("replica")
        batch.drop_column("tenant")
