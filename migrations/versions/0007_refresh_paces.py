"""Refresh paces: each tenant's next refresh slot, Entra's Retry-After and the callers' queue.

Revision ID: 0007_refresh_paces
Revises: 0006_access_trail
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_refresh_paces"
down_revision = "0006_access_trail"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refresh_paces",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.Column("blocked_until", sa.Float(), nullable=False),
        sa.Column("queue_at", sa.Float(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_refresh_paces")),
    )


def downgrade() -> None:
    op.drop_table("refresh_paces")
