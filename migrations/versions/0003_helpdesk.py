"""Helpdesk sharing links and their events.

Revision ID: 0003_helpdesk
Revises: 0002_consent
Create Date: 2025-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_helpdesk"
down_revision = "0002_consent"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "helpdesk_links",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("connector", sa.String(length=64), nullable=True),
        sa.Column("connection_id", sa.String(length=36), nullable=True),
        sa.Column("consent_request_id", sa.String(length=36), nullable=True),
        sa.Column("login_hint", sa.String(length=320), nullable=True),
        sa.Column("tenant", sa.String(length=255), nullable=True),
        sa.Column("account_type", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("multi_use", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=320), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_key", sa.String(length=64), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_helpdesk_links")),
    )
    op.create_index(
        op.f("ix_helpdesk_links_token_hash"), "helpdesk_links", ["token_hash"], unique=True
    )
    op.create_index(
        op.f("ix_helpdesk_links_login_hint"), "helpdesk_links", ["login_hint"], unique=False
    )
    op.create_table(
        "link_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.String(length=36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["helpdesk_links.id"],
            name=op.f("fk_link_events_link_id_helpdesk_links"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_events")),
    )
    op.create_index(op.f("ix_link_events_link_id"), "link_events", ["link_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_link_events_link_id"), table_name="link_events")
    op.drop_table("link_events")
    op.drop_index(op.f("ix_helpdesk_links_login_hint"), table_name="helpdesk_links")
    op.drop_index(op.f("ix_helpdesk_links_token_hash"), table_name="helpdesk_links")
    op.drop_table("helpdesk_links")
