"""The tenant of the helpdesk member who created a sharing link.

Links made before this revision have no tenant: only the operator's own helpdesk
(PORTAL_HELPDESK_USERS) sees them.

Revision ID: 0004_link_tenant
Revises: 0003_helpdesk
Create Date: 2025-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_link_tenant"
down_revision = "0003_helpdesk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("helpdesk_links", sa.Column("tenant_id", sa.String(length=64), nullable=True))
    op.create_index(
        op.f("ix_helpdesk_links_tenant_id"), "helpdesk_links", ["tenant_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_helpdesk_links_tenant_id"), table_name="helpdesk_links")
    with op.batch_alter_table("helpdesk_links") as batch:  # SQLite drops a column by copying
        batch.drop_column("tenant_id")
