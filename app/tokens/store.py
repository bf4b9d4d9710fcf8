"""Connections as the pages see them: create or reconnect, new code, revoke, remove."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.connectors import Connector
from app.errors import AccountTypeNotSupported
from app.errors import ConnectionNotActive
from app.errors import TemporarilyUnavailable
from app.identity.signins import SignIn
from app.models import ACTIVE
from app.models import REVOKED
from app.models import Connection
from app.models import RefreshLease
from app.models import new_id
from app.models import utcnow
from app.tokens.vault import Vault
from app.tokens.writes import Events
from app.tokens.writes import Transaction
from app.tokens.writes import audit
from app.tokens.writes import publish


class ConnectionStore:
    """Stores sign-ins as connections, each with its sealed MSAL cache and a hashed code."""

    def __init__(self, *, sessions: Callable[[], Session], vault: Vault, events: Events = None):
        self._sessions = sessions
        self._vault = vault
        self._events = events

    def create_or_update(
        self, sign_in: SignIn, connector: Connector, actor: str | None = None
    ) -> tuple[Connection, str | None]:
        """Store a sign-in's cache: replace it on the account's live connection, or create one."""
        if sign_in.account_type not in connector.account_types:
            raise AccountTypeNotSupported(connector.name)
        for _ in range(2):  # a concurrent callback may create the same row: then update it
            existing = self._live(sign_in, connector)
            try:
                if existing is not None:
                    return self._update(existing, sign_in, connector, actor), None
                return self._create(sign_in, connector, actor)
            except IntegrityError:
                continue
        raise TemporarilyUnavailable(retry_after=1)

    def regenerate_code(self, connection_id: str, actor: str = "owner") -> str:
        """Give a connection a new code; the old one stops working at once."""
        code = self._vault.new_code()
        with Transaction(self._sessions()) as db:
            result = db.execute(
                update(Connection)
                .where(Connection.id == connection_id, Connection.status != REVOKED)
                .values(code_hash=self._vault.hash_code(code))
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise ConnectionNotActive()
            db.add(audit(actor, "connection.code_regenerated", connection_id))
        return code

    def revoke(self, connection_id: str, actor: str = "owner") -> None:
        """Revoke a connection: the code stops working and the sealed tokens are erased."""
        with Transaction(self._sessions()) as db:
            db.execute(
                update(Connection)
                .where(Connection.id == connection_id, Connection.status != REVOKED)
                .values(
                    status=REVOKED,
                    code_hash=None,
                    key_id="",
                    sealed_cache=b"",
                    cache_version=Connection.cache_version + 1,
                    revoked_at=utcnow(),
                )
            )
            db.add(audit(actor, "connection.revoked", connection_id))

    def remove(self, connection_id: str, actor: str = "owner") -> bool:
        """Delete a revoked connection (its tokens were erased at revoke); its audit rows stay."""
        with Transaction(self._sessions()) as db:
            result = db.execute(
                delete(Connection).where(
                    Connection.id == connection_id, Connection.status == REVOKED
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return False  # live (revoke first) or already removed
            db.execute(delete(RefreshLease).where(RefreshLease.connection_id == connection_id))
            db.add(audit(actor, "connection.removed", connection_id))
        return True

    def _live(self, sign_in: SignIn, connector: Connector) -> Connection | None:
        """Return the account's live connection for this connector and tenant."""
        with self._sessions() as db:
            return db.scalars(
                select(Connection).where(
                    Connection.home_account_id == sign_in.home_account_id,
                    Connection.tenant_id == sign_in.tenant_id,
                    Connection.connector == connector.id,
                    Connection.status != REVOKED,
                )
            ).first()

    def _create(
        self, sign_in: SignIn, connector: Connector, actor: str | None
    ) -> tuple[Connection, str]:
        """Insert a new connection and return it with its code (shown once)."""
        code = self._vault.new_code()
        connection_id = new_id()
        key_id, sealed = self._vault.seal(connection_id, sign_in.cache_blob.encode())
        connection = Connection(
            id=connection_id,
            connector=connector.id,
            tenant_id=sign_in.tenant_id,
            oid=sign_in.oid,
            home_account_id=sign_in.home_account_id,
            username=sign_in.username,
            display_name=sign_in.name,
            account_type=sign_in.account_type,
            scopes=connector.scope_string,
            authority_tenant=sign_in.authority_tenant,
            tenant_domain=sign_in.tenant_domain,
            code_hash=self._vault.hash_code(code),
            key_id=key_id,
            sealed_cache=sealed,
            cache_version=1,
            status=ACTIVE,
            created_at=utcnow(),
            last_refresh_at=utcnow(),
        )
        with Transaction(self._sessions()) as db:
            db.add(connection)
            db.add(audit(actor or sign_in.username, "connection.created", connection_id))
        publish(self._events, "connection.created", connection_id, connector.id,
                tenant=sign_in.tenant_id)  # fmt: skip
        return connection, code

    def _update(
        self, existing: Connection, sign_in: SignIn, connector: Connector, actor: str | None
    ) -> Connection:
        """Replace the sealed cache of a reconnected connection; its code keeps working."""
        key_id, sealed = self._vault.seal(existing.id, sign_in.cache_blob.encode())
        values = {
            "key_id": key_id,
            "sealed_cache": sealed,
            "cache_version": Connection.cache_version + 1,
            "status": ACTIVE,
            "username": sign_in.username,
            "display_name": sign_in.name,
            "scopes": connector.scope_string,
            "authority_tenant": sign_in.authority_tenant,
            "last_error_code": None,
            "last_error": None,
            "last_refresh_at": utcnow(),
        }
        if sign_in.tenant_domain:  # a reconnect at the tenant's id keeps the domain it had
            values["tenant_domain"] = sign_in.tenant_domain
        with Transaction(self._sessions()) as db:
            db.execute(update(Connection).where(Connection.id == existing.id).values(**values))
            db.add(audit(actor or sign_in.username, "connection.reconnected", existing.id))
        with self._sessions() as db:
            fresh = db.get(Connection, existing.id)
        assert fresh is not None
        return fresh
