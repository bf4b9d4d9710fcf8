"""Sessions at rest: store keys become a keyed hash of the cookie, and session data is sealed.

Rows written before this revision are keyed by the cookie value itself and hold plain msgpack.
They cannot be moved to the new form without keeping the cookie values they expose, so this
revision ends them: every browser signs in again once. Redis sessions (PORTAL_REDIS_URL) are not
touched here; their old keys are never read again and expire with their TTL.

Revision ID: 0005_sessions_at_rest
Revises: 0004_link_tenant
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_sessions_at_rest"
down_revision = "0004_link_tenant"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM sessions"))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM sessions"))  # sealed rows mean nothing to older code
