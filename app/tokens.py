"""Token broker: code -> connection -> cached or refreshed access token, one refresh at a time."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import Literal
from typing import cast

from sqlalchemy import Engine
from sqlalchemy import Row
from sqlalchemy import Select
from sqlalchemy import Table
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app import metrics
from app.connectors import Connector
from app.errors import AccountTypeNotSupported
from app.errors import ConnectionDamaged
from app.errors import InvalidToken
from app.errors import PortalError
from app.errors import ReauthenticationRequired
from app.errors import ScopeNotAllowed
from app.errors import TemporarilyUnavailable
from app.identity import Identity
from app.identity import RefreshRefused
from app.identity import SignIn
from app.identity import TokenOutcome
from app.locks import RefreshLocks
from app.models import ACTIVE
from app.models import REAUTHENTICATION_REQUIRED
from app.models import REVOKED
from app.models import AuditEvent
from app.models import Connection
from app.models import iso
from app.models import new_id
from app.models import utcnow
from app.vault import Vault

log = logging.getLogger(__name__)
MAX_CODE_LENGTH = 256
SIBLING_RETRIES = 2
DECOY_ID = "decoy"  # the associated data of the decoy cache; no connection has this id
DECOY_ACCOUNT = "decoy.decoy"


class ConnectionNotActive(PortalError):
    """The connection was revoked; nothing can be done with it any more."""

    status = 409
    code = "connection_revoked"
    title = "Connection revoked"
    message = "This connection was revoked. Connect again from the connector's page."


@dataclass(frozen=True)
class _Row:
    """The fields of a connection row the broker works with, read in one go."""

    id: str
    connector: str
    status: str
    home_account_id: str
    authority_tenant: str
    scopes: tuple[str, ...]
    username: str
    tenant_id: str
    key_id: str
    sealed_cache: bytes
    cache_version: int
    last_used_at: datetime | None

    @classmethod
    def of(cls, c: Connection | Row[Any]) -> _Row:
        """Copy the fields of a Connection, or of a row of _BY_CODE or _BY_ID."""
        return cls(
            c.id, c.connector, c.status, c.home_account_id, c.authority_tenant,
            tuple(c.scopes.split()), c.username, c.tenant_id, c.key_id, bytes(c.sealed_cache),
            c.cache_version, c.last_used_at,
        )  # fmt: skip


# The broker's reads and its refresh write as plain Core statements, built once: loading and
# tracking ORM objects cost a third of a cached-token call's CPU and more of a refresh's.
_TABLE = cast(Table, Connection.__table__)
_COLUMNS = tuple(_TABLE.c[name] for name in _Row.__dataclass_fields__)
_BY_CODE = select(*_COLUMNS).where(_TABLE.c.code_hash == bindparam("digest"))
_BY_ID = select(*_COLUMNS).where(_TABLE.c.id == bindparam("id"))


class Broker:
    """Turns connection codes into access tokens; plain values in and out."""

    def __init__(
        self,
        *,
        sessions: Callable[[], Session],
        engine: Callable[[], Engine],
        vault: Vault,
        identity: Identity,
        locks: RefreshLocks,
        connectors: Mapping[str, Connector],
        public_url: str,
        lock_ttl: float = 60.0,
        last_used_resolution: int = 60,
        events: Callable[[str, dict[str, Any]], None] | None = None,
        refresh_slots: int = 0,
        refresh_slot_wait: float = 1.0,
    ) -> None:
        self._events = events  # notify.Notifier.publish: webhooks for connection events
        self._sessions = sessions
        self._engine = engine
        self._vault = vault
        self._identity = identity
        self._locks = locks
        self._connectors = connectors
        self._public_url = public_url.rstrip("/")
        self._lock_ttl = lock_ttl
        self._last_used = timedelta(seconds=last_used_resolution)
        # At most refresh_slots upstream refreshes at once in this process (0: no cap), and at
        # most as many callers waiting for one; anyone beyond gets 503 at once. Refresh traffic
        # holds at most 2 x refresh_slots threads, never those that probes and cached tokens need.
        self._slots = threading.BoundedSemaphore(refresh_slots) if refresh_slots > 0 else None
        self._line = threading.BoundedSemaphore(refresh_slots) if refresh_slots > 0 else None
        self._slot_wait = refresh_slot_wait
        decoy = _decoy_cache(identity.settings.client_id)
        self._decoy_kid, self._decoy_sealed = vault.seal(DECOY_ID, decoy)

    # -- the token API -------------------------------------------------------------------------

    def access_token(self, code: str, scopes: Sequence[str] | None = None) -> dict[str, Any]:
        """Return a current access token for the connection this code belongs to."""
        row = self._find(code)
        wanted = self._allowed_scopes(row, scopes)
        if row.status == REAUTHENTICATION_REQUIRED:
            raise self._reauthenticate(row)
        outcome = self._cached(row, wanted)
        if outcome is None:  # the refresh's own write records the use: one write, not two
            outcome = self._refresh(row, wanted, used=True)
        else:
            self._touch(row)
        return {
            "access_token": outcome.access_token,
            "token_type": "Bearer",
            "expires_at": outcome.expires_at,
            "scope": outcome.scope,
            "connector": row.connector,
            "account": {"username": row.username, "tenant_id": row.tenant_id},
        }

    def connection_info(self, code: str) -> dict[str, Any]:
        """Return a connection's metadata for GET /api/v1/connection."""
        row = self._find(code)
        with self._read() as db:
            c = db.get(Connection, row.id)
            assert c is not None
            info = {
                "id": c.id,
                "connector": c.connector,
                "status": c.status,
                "scopes": c.scopes.split(),
                "account": {
                    "username": c.username,
                    "tenant_id": c.tenant_id,
                    "account_type": c.account_type,
                },
                "created_at": iso(c.created_at),
                "last_used_at": iso(c.last_used_at),
                "last_refresh_at": iso(c.last_refresh_at),
            }
        if row.status == REAUTHENTICATION_REQUIRED:
            info["reauthenticate_url"] = self.reauthenticate_url(row.id)
        return info

    def connection_token(self, connection_id: str, *, force_refresh: bool = False) -> TokenOutcome:
        """Return an access token for a connection by id (helpdesk tests, keep-alive job)."""
        row = self._reread(connection_id)
        if row.status == REAUTHENTICATION_REQUIRED:
            raise self._reauthenticate(row)
        scopes = list(row.scopes)
        if not force_refresh:
            cached = self._cached(row, scopes)
            if cached is not None:
                return cached
        return self._refresh(row, scopes, force=force_refresh)

    def reauthenticate_url(self, connection_id: str) -> str:
        """Return the page where the owner reconnects a connection."""
        return f"{self._public_url}/connections/{connection_id}/reconnect"

    def _find(self, code: str) -> _Row:
        """Return the live connection for a code; every failure looks and costs the same (C24)."""
        candidate = code if len(code) <= MAX_CODE_LENGTH else code[:MAX_CODE_LENGTH]
        digest = self._vault.hash_code(candidate)  # always one HMAC and one indexed query,
        found = self._fetch(_BY_CODE, digest=digest)  # whatever the code looks like
        row = _Row.of(found) if found is not None else None
        if row is None or row.status == REVOKED or not self._vault.looks_like_code(code):
            self._decoy()
            raise InvalidToken()
        return row

    def _decoy(self) -> None:
        """Do what a live code costs next: decrypt a cache of typical size and look a token up.

        Without it an unknown code answers measurably sooner than a valid one (a timing oracle
        on the code space, C24).
        """
        blob = self._vault.open(DECOY_ID, self._decoy_kid, self._decoy_sealed).decode()
        self._identity.cached_token(blob, DECOY_ACCOUNT, ["decoy"])

    def _allowed_scopes(self, row: _Row, scopes: Sequence[str] | None) -> list[str]:
        """Return the scopes to ask for, refusing any beyond the connection's consent (C27)."""
        if not scopes:
            return list(row.scopes)
        if not set(scopes) <= set(row.scopes):
            raise ScopeNotAllowed()
        return list(scopes)

    def _cached(self, row: _Row, scopes: Sequence[str]) -> TokenOutcome | None:
        """Return a fresh cached token from the row's blob, without a lock or I/O."""
        return self._identity.cached_token(self._open(row), row.home_account_id, scopes)

    def _refresh(
        self, row: _Row, scopes: Sequence[str], force: bool = False, used: bool = False
    ) -> TokenOutcome:
        """Refresh under the connection's lock, re-reading the row a sibling may have updated."""
        with self._locks.hold(row.id, self._lock_ttl) as held:
            current = self._reread(row.id)
            if force and current.cache_version != row.cache_version:
                force = False  # a sibling refreshed or reconnected meanwhile: that is enough
            cached = None if force else self._cached(current, scopes)
            if cached is not None:  # a sibling refreshed while we waited
                return cached
            if not held:  # the holder is still at Entra; never refresh beside it
                raise TemporarilyUnavailable(retry_after=1)
            with self._upstream_slot():
                return self._refresh_held(current, scopes, force, used)

    @contextmanager
    def _upstream_slot(self) -> Iterator[None]:
        """Hold one of this process's refresh slots: wait in a short line for one, else 503."""
        if self._slots is None or self._line is None:
            yield
            return
        if not self._slots.acquire(blocking=False):
            if not self._line.acquire(blocking=False):  # the line is full too
                metrics.refresh("busy")
                raise TemporarilyUnavailable(retry_after=1)
            try:
                free = self._slots.acquire(timeout=self._slot_wait)
            finally:
                self._line.release()
            if not free:
                metrics.refresh("busy")
                raise TemporarilyUnavailable(retry_after=1)
        try:
            yield
        finally:
            self._slots.release()

    def _refresh_held(
        self, row: _Row, scopes: Sequence[str], force: bool = False, used: bool = False
    ) -> TokenOutcome:
        """Call Entra while holding the lock; store only over the version we read."""
        for _ in range(SIBLING_RETRIES + 1):
            try:
                outcome = self._identity.token_for(
                    self._open(row), row.home_account_id, scopes, row.authority_tenant, force
                )
            except TemporarilyUnavailable:
                metrics.refresh("unavailable")
                raise
            except RefreshRefused as refused:
                metrics.refresh("refused")
                fresh = self._reread(row.id)
                if fresh.cache_version != row.cache_version:  # a sibling stored a newer RT
                    row = fresh
                    continue
                self._mark_reauthentication(row, refused)
                raise self._reauthenticate(row) from None
            except ReauthenticationRequired:
                self._mark_reauthentication(row, RefreshRefused("no_refresh_token"))
                raise self._reauthenticate(row) from None
            metrics.refresh("ok")
            if outcome.cache_blob is not None:
                self._store_refreshed(row, outcome.cache_blob, used)
            return outcome
        raise TemporarilyUnavailable(retry_after=1)

    def _store_refreshed(self, row: _Row, blob: str, used: bool = False) -> None:
        """Write the new cache only if nobody wrote since we read it (compare-and-swap)."""
        key_id, sealed = self._vault.seal(row.id, blob.encode())
        now = utcnow()
        values: dict[str, Any] = {
            "key_id": key_id,
            "sealed_cache": sealed,
            "cache_version": row.cache_version + 1,
            "last_refresh_at": now,
        }
        if used:  # a data tool's call, not the keep-alive job
            values["last_used_at"] = now
        with self._write() as db:
            result = db.connection().execute(
                update(_TABLE)
                .where(_TABLE.c.id == row.id, _TABLE.c.cache_version == row.cache_version)
                .values(**values)
            )
        if not result.rowcount:
            # Someone wrote a newer cache meanwhile (a reconnect, or a lock that lapsed):
            # theirs wins, so an older refresh token never overwrites a newer one.
            log.warning("refreshed cache not stored for %s: version moved on", row.id)

    def _mark_reauthentication(self, row: _Row, refused: RefreshRefused) -> None:
        """Flag the connection for reconnection; keep the row and its sealed cache (C29)."""
        code = f"AADSTS{refused.codes[0]}" if refused.codes else refused.error
        with self._write() as db:
            db.execute(
                update(Connection)
                .where(Connection.id == row.id, Connection.cache_version == row.cache_version)
                .values(
                    status=REAUTHENTICATION_REQUIRED,
                    last_error_code=code[:64],
                    last_error=f"refresh refused: {refused.error}"[:200],
                )
            )
            db.add(_audit("api", "connection.reauthentication_required", row.id, code=code))
        log.info("connection %s needs reauthentication (%s)", row.id, code)
        self._event("connection.reauthentication_required", row.id, row.connector, code=code)

    def _reauthenticate(self, row: _Row) -> ReauthenticationRequired:
        """Return the 409 error with the reconnect link."""
        return ReauthenticationRequired(reauthenticate_url=self.reauthenticate_url(row.id))

    def _touch(self, row: _Row) -> None:
        """Record use at most once per resolution period, to avoid a write per call."""
        now = utcnow()
        last = row.last_used_at
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        if last is not None and now - last < self._last_used:
            return
        try:
            with self._write() as db:
                db.execute(
                    update(Connection).where(Connection.id == row.id).values(last_used_at=now)
                )
        except TemporarilyUnavailable:  # bookkeeping only: never fail a token for it
            log.warning("last_used_at not updated for %s", row.id)

    def _open(self, row: _Row) -> str:
        """Decrypt the row's MSAL cache."""
        try:
            return self._vault.open(row.id, row.key_id, row.sealed_cache).decode()
        except ConnectionDamaged:
            log.error("security: sealed cache of connection %s failed to open", row.id)
            raise

    def _reread(self, connection_id: str) -> _Row:
        """Read the row again (after waiting for or failing a refresh)."""
        found = self._fetch(_BY_ID, id=connection_id)
        if found is None or found.status == REVOKED:
            raise InvalidToken()
        return _Row.of(found)

    # -- connections (called by the pages) ---------------------------------------------------

    def create_or_update_connection(
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

    def _live(self, sign_in: SignIn, connector: Connector) -> Connection | None:
        """Return the account's live connection for this connector and tenant."""
        with self._read() as db:
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
            code_hash=self._vault.hash_code(code),
            key_id=key_id,
            sealed_cache=sealed,
            cache_version=1,
            status=ACTIVE,
            created_at=utcnow(),
            last_refresh_at=utcnow(),
        )
        with self._write() as db:
            db.add(connection)
            db.add(_audit(actor or sign_in.username, "connection.created", connection_id))
        self._event("connection.created", connection_id, connector.id, tenant=sign_in.tenant_id)
        return connection, code

    def _event(self, event: str, connection_id: str, connector: str, **extra: str) -> None:
        """Tell the notifier (webhooks) about a connection event, if one is attached."""
        if self._events is not None:
            data = {"connection_id": connection_id, "connector": connector} | extra
            self._events(event, data)

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
        with self._write() as db:
            db.execute(update(Connection).where(Connection.id == existing.id).values(**values))
            db.add(_audit(actor or sign_in.username, "connection.reconnected", existing.id))
        with self._read() as db:
            fresh = db.get(Connection, existing.id)
        assert fresh is not None
        return fresh

    def regenerate_code(self, connection_id: str, actor: str = "owner") -> str:
        """Give a connection a new code; the old one stops working at once."""
        code = self._vault.new_code()
        with self._write() as db:
            result = db.execute(
                update(Connection)
                .where(Connection.id == connection_id, Connection.status != REVOKED)
                .values(code_hash=self._vault.hash_code(code))
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise ConnectionNotActive()
            db.add(_audit(actor, "connection.code_regenerated", connection_id))
        return code

    def revoke(self, connection_id: str, actor: str = "owner") -> None:
        """Revoke a connection: the code stops working and the sealed tokens are erased."""
        with self._write() as db:
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
            db.add(_audit(actor, "connection.revoked", connection_id))

    # -- transactions --------------------------------------------------------------------------

    def _read(self) -> Session:
        """Return a session for a short read."""
        return self._sessions()

    def _fetch(self, statement: Select[Any], **params: Any) -> Row[Any] | None:
        """Run one of the broker's Core reads on a pooled connection, without an ORM session."""
        with self._engine().connect() as conn:
            return conn.execute(statement, params).first()

    def _write(self) -> _Transaction:
        """Return a context that commits one short write transaction, or answers 503."""
        return _Transaction(self._sessions())


class _Transaction:
    """One short write transaction; a database failure becomes a retryable 503 (C35)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def __enter__(self) -> Session:
        self.session.begin()
        return self.session

    def __exit__(self, kind: Any, error: Any, _tb: Any) -> Literal[False]:
        try:
            if kind is None:
                self.session.commit()
            else:
                self.session.rollback()
        except OperationalError as failure:
            self.session.rollback()
            log.warning("database write failed: %s", type(failure).__name__)
            raise TemporarilyUnavailable(retry_after=2) from None
        finally:  # an IntegrityError from commit (a racing insert) must not leak the connection
            self.session.close()
        if isinstance(error, OperationalError):
            log.warning("database write failed: %s", type(error).__name__)
            raise TemporarilyUnavailable(retry_after=2) from None
        return False


def _decoy_cache(client_id: str) -> bytes:
    """Return an MSAL cache shaped and sized like a connection's (one account, AT, RT, ID)."""
    far = str(int(time.time()) + 10 * 365 * 86400)
    entry = {"home_account_id": DECOY_ACCOUNT, "environment": "login.microsoftonline.com",
             "client_id": client_id, "realm": "organizations"}  # fmt: skip
    cache = {
        "Account": {"a": entry | {"authority_type": "MSSTS", "username": "x" * 24}},
        "AccessToken": {"t": entry | {"credential_type": "AccessToken", "secret": "x" * 1800,
                                      "target": "decoy", "cached_at": far, "expires_on": far,
                                      "extended_expires_on": far, "token_type": "Bearer"}},
        "RefreshToken": {"r": entry | {"credential_type": "RefreshToken", "secret": "x" * 1200}},
        "IdToken": {"i": entry | {"credential_type": "IdToken", "secret": "x" * 1100}},
        "AppMetadata": {"m": {"client_id": client_id, "environment": "login.microsoftonline.com"}},
    }  # fmt: skip
    return json.dumps(cache).encode()


def _audit(actor: str, action: str, target: str, **detail: str) -> AuditEvent:
    """Return an audit event row."""
    return AuditEvent(at=utcnow(), actor=actor[:320], action=action, target=target, detail=detail)
