"""Token broker: code -> connection -> cached or refreshed access token, one refresh at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine
from sqlalchemy import Row
from sqlalchemy import Select
from sqlalchemy.orm import Session

from app.errors import ConnectionDamaged
from app.errors import InvalidToken
from app.errors import ReauthenticationRequired
from app.errors import ScopeNotAllowed
from app.errors import TemporarilyUnavailable
from app.identity import claims as claim_codec
from app.identity.entra import Identity
from app.identity.outcomes import RefreshRefused
from app.identity.outcomes import TokenOutcome
from app.models import REAUTHENTICATION_REQUIRED
from app.models import REVOKED
from app.models import Connection
from app.models import iso
from app.tokens.locks import RefreshLocks
from app.tokens.refresh_slots import RefreshSlots
from app.tokens.rows import BY_CODE
from app.tokens.rows import BY_ID
from app.tokens.rows import DECOY_ACCOUNT
from app.tokens.rows import DECOY_ID
from app.tokens.rows import TokenRow
from app.tokens.rows import decoy_cache
from app.tokens.throttle import RefreshThrottle
from app.tokens.throttle_stores import MemoryPaces
from app.tokens.trail import Trail
from app.tokens.trail import calling
from app.tokens.vault import Vault
from app.tokens.writes import Events
from app.tokens.writes import RowWrites

log = logging.getLogger(__name__)
MAX_CODE_LENGTH = 256
SIBLING_RETRIES = 2


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
        public_url: str,
        lock_ttl: float = 60.0,
        last_used_resolution: int = 60,
        events: Events = None,
        refresh_slots: int = 4,
        refresh_slot_wait: float = 1.0,
        refreshed: Callable[[str], None] | None = None,
        trail: Trail | None = None,
        throttle: RefreshThrottle | None = None,
    ) -> None:
        self._trail = trail  # the access trail: which code read which connection, from where
        # The metrics hook, called with each refresh's result (ok, refused, unavailable, busy).
        self._refreshed = refreshed or _ignore
        self._events = events  # notify.Notifier.publish: webhooks for connection events
        self._sessions = sessions
        self._engine = engine
        self._vault = vault
        self._identity = identity
        self._locks = locks
        self._public_url = public_url.rstrip("/")
        self._lock_ttl = lock_ttl
        self._rows = RowWrites(sessions, vault, events, timedelta(seconds=last_used_resolution))
        self._slots = RefreshSlots(refresh_slots, refresh_slot_wait, self._refreshed)
        # Each tenant's refresh pace and Entra's Retry-After, shared by every instance.
        self._throttle = throttle or RefreshThrottle(MemoryPaces())
        decoy = decoy_cache(identity.settings.client_id)
        self._decoy_kid, self._decoy_sealed = vault.seal(DECOY_ID, decoy)

    # -- the token API -------------------------------------------------------------------------

    def access_token(
        self,
        code: str,
        scopes: Sequence[str] | None = None,
        *,
        force_refresh: bool = False,
        before: Callable[[str], object] | None = None,
        claims: str | None = None,
    ) -> dict[str, Any]:
        """Return a current access token for the connection this code belongs to.

        `before` is called with the connector id once the code is known and before any refresh:
        the proxy refuses a path there, with one lookup instead of two. `claims` is a resource's
        claims challenge (JSON): the cached token is not enough, MSAL refreshes with it.
        """
        row = self._find(code)
        if before is not None:
            before(row.connector)
        wanted = self._allowed_scopes(row, scopes)
        if row.status == REAUTHENTICATION_REQUIRED:
            raise self._reauthenticate(row, claims)
        # force_refresh: the resource refused the cached token (the proxy's one retry on a 401).
        force_refresh = force_refresh or bool(claims)
        outcome = None if force_refresh else self._cached(row, wanted)
        if outcome is None:  # the refresh's own write records the use: one write, not two
            outcome = self._refresh(row, wanted, force=force_refresh, used=True, claims=claims)
        else:
            self._rows.touch(row)
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

    def connector_of(self, code: str) -> str:
        """Return the connector of the connection a code belongs to (InvalidToken if none)."""
        return self._find(code).connector

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

    def _find(self, code: str) -> TokenRow:
        """Return the live connection for a code; every failure looks and costs the same (C24)."""
        candidate = code if len(code) <= MAX_CODE_LENGTH else code[:MAX_CODE_LENGTH]
        digest = self._vault.hash_code(candidate)  # always one HMAC and one indexed query,
        found = self._fetch(BY_CODE, digest=digest)  # whatever the code looks like
        row = TokenRow.of(found) if found is not None else None
        if row is None or row.status == REVOKED or not self._vault.looks_like_code(code):
            self._decoy()
            raise InvalidToken()
        caller = calling.get()
        if self._trail is not None and caller is not None and not caller.recorded:
            caller.recorded = True  # the proxy's retry or an export's next page is the same read
            self._trail.hit(row.id, digest, caller)
        return row

    def _decoy(self) -> None:
        """Do what a live code costs next: decrypt a cache of typical size and look a token up.

        Without it an unknown code answers measurably sooner than a valid one (a timing oracle
        on the code space, C24).
        """
        blob = self._vault.open(DECOY_ID, self._decoy_kid, self._decoy_sealed).decode()
        self._identity.cached_token(blob, DECOY_ACCOUNT, ["decoy"])

    def _allowed_scopes(self, row: TokenRow, scopes: Sequence[str] | None) -> list[str]:
        """Return the scopes to ask for, refusing any beyond the connection's consent (C27)."""
        if not scopes:
            return list(row.scopes)
        if not set(scopes) <= set(row.scopes):
            raise ScopeNotAllowed()
        return list(scopes)

    def _cached(self, row: TokenRow, scopes: Sequence[str]) -> TokenOutcome | None:
        """Return a fresh cached token from the row's blob, without a lock or I/O."""
        return self._identity.cached_token(self._open(row), row.home_account_id, scopes)

    def _refresh(
        self,
        row: TokenRow,
        scopes: Sequence[str],
        force: bool = False,
        used: bool = False,
        claims: str | None = None,
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
            with self._slots.hold(busy=lambda: self._throttle.later(row.tenant_id)):
                return self._refresh_held(current, scopes, force, used, claims)

    def _refresh_held(
        self,
        row: TokenRow,
        scopes: Sequence[str],
        force: bool = False,
        used: bool = False,
        claims: str | None = None,
    ) -> TokenOutcome:
        """Call Entra while holding the lock; store only over the version we read."""
        for _ in range(SIBLING_RETRIES + 1):
            self._throttle.admit(row.tenant_id)  # the tenant's pace; 503 with a place in line
            try:
                outcome = self._identity.token_for(
                    self._open(row),
                    row.home_account_id,
                    scopes,
                    row.authority_tenant,
                    force,
                    claims,
                )
            except TemporarilyUnavailable:
                self._refreshed("unavailable")
                self._throttle.hold_off(row.tenant_id)  # Entra's Retry-After, for everyone
                raise
            except RefreshRefused as refused:
                self._refreshed("refused")
                fresh = self._reread(row.id)
                if fresh.cache_version != row.cache_version:  # a sibling stored a newer RT
                    row = fresh
                    continue
                self._rows.mark_reauthentication(row, refused)
                raise self._reauthenticate(row, claims) from None
            except ReauthenticationRequired:
                self._rows.mark_reauthentication(row, RefreshRefused("no_refresh_token"))
                raise self._reauthenticate(row) from None
            self._refreshed("ok")
            if outcome.cache_blob is not None:
                self._rows.store_refreshed(row, outcome.cache_blob, used)
            return outcome
        raise TemporarilyUnavailable(retry_after=1)

    def _reauthenticate(self, row: TokenRow, claims: str | None = None) -> ReauthenticationRequired:
        """Return the 409 error with the reconnect link (carrying a claims challenge, if any)."""
        url = self.reauthenticate_url(row.id)
        if claims:  # the new sign-in must satisfy the challenge the resource made
            url += "?" + urlencode({"claims": claim_codec.encode(claims)})
        return ReauthenticationRequired(reauthenticate_url=url)

    def _open(self, row: TokenRow) -> str:
        """Decrypt the row's MSAL cache."""
        try:
            return self._vault.open(row.id, row.key_id, row.sealed_cache).decode()
        except ConnectionDamaged:
            log.error("security: sealed cache of connection %s failed to open", row.id)
            raise

    def _reread(self, connection_id: str) -> TokenRow:
        """Read the row again (after waiting for or failing a refresh)."""
        found = self._fetch(BY_ID, id=connection_id)
        if found is None or found.status == REVOKED:
            raise InvalidToken()
        return TokenRow.of(found)

    # -- transactions --------------------------------------------------------------------------

    def _read(self) -> Session:
        """Return a session for a short read."""
        return self._sessions()

    def _fetch(self, statement: Select[Any], **params: Any) -> Row[Any] | None:
        """Run one of the broker's Core reads on a pooled connection, without an ORM session."""
        with self._engine().connect() as conn:
            return conn.execute(statement, params).first()


def _ignore(_result: str) -> None:
    """Count nothing (no metrics hook was given)."""
