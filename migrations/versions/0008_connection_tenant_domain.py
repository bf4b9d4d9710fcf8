"""A connection's tenant domain (how a guest named the resource tenant) and its person's index.

Revision ID: 0008_connection_tenant_domain
Revises: 0007_refresh_paces
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_connection_tenant_domain"
down_revision = "0007_refresh_paces"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A server default fills the existing rows, so the column can be NOT NULL on any engine.
    with op.batch_alter_table("connections") as batch:
        batch.add_column(
            sa.Column("tenant_domain", sa.String(length=253), nullable=False, server_default="")
        )
    op.create_index(
        op.f("ix_connections_home_account_id"), "connections", ["home_account_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_connections_home_account_id"), table_name="connections")
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("tenant_domain")
