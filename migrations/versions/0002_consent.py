"""Consent requests, their requesters, tenant-wide consents, known admins, deliveries.

Revision ID: 0002_consent
Revises: 0001
Create Date: 2025-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_consent"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=320), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_requests")),
    )
    op.create_index(
        op.f("ix_consent_requests_status"), "consent_requests", ["status"], unique=False
    )
    op.create_index(
        op.f("ix_consent_requests_tenant_id"), "consent_requests", ["tenant_id"], unique=False
    )
    op.create_index(
        "uq_consent_requests_open",
        "consent_requests",
        ["tenant_id", "connector"],
        unique=True,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "consent_requesters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("oid", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["consent_requests.id"],
            name=op.f("fk_consent_requesters_request_id_consent_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_requesters")),
        sa.UniqueConstraint(
            "request_id", "oid", name=op.f("uq_consent_requesters_request_id_oid")
        ),
    )
    op.create_index(
        op.f("ix_consent_requesters_request_id"),
        "consent_requesters",
        ["request_id"],
        unique=False,
    )
    op.create_table(
        "tenant_consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("granted_by", sa.String(length=320), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_consents")),
        sa.UniqueConstraint(
            "tenant_id", "connector", name=op.f("uq_tenant_consents_tenant_id_connector")
        ),
    )
    op.create_table(
        "known_admins",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "username", name=op.f("pk_known_admins")),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    op.create_index(op.f("ix_deliveries_status"), "deliveries", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_deliveries_status"), table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_table("known_admins")
    op.drop_table("tenant_consents")
    op.drop_index(op.f("ix_consent_requesters_request_id"), table_name="consent_requesters")
    op.drop_table("consent_requesters")
    op.drop_index(
        "uq_consent_requests_open",
        table_name="consent_requests",
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index(op.f("ix_consent_requests_tenant_id"), table_name="consent_requests")
    op.drop_index(op.f("ix_consent_requests_status"), table_name="consent_requests")
    op.drop_table("consent_requests")
