"""The access trail: which code read a connection's token or data, from where, per hour.

Revision ID: 0006_access_trail
Revises: 0005_sessions_at_rest
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_access_trail"
down_revision = "0005_sessions_at_rest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_trail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("agent", sa.String(length=200), nullable=False),
        sa.Column("what", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_trail")),
        sa.UniqueConstraint(
            "connection_id",
            "hour",
            "code",
            "address",
            "agent",
            "what",
            name=op.f("uq_access_trail_connection_id_hour_code_address_agent_what"),
        ),
    )
    op.create_index(op.f("ix_access_trail_hour"), "access_trail", ["hour"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_access_trail_hour"), table_name="access_trail")
    op.drop_table("access_trail")
