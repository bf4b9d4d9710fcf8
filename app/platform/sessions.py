"""Server-side browser sessions stored in the portal's own database (the default store)."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import cast

import redis
from flask import Flask
from flask import Request
from flask import Response
from flask import request
from flask.sessions import SessionInterface
from flask.sessions import SessionMixin
from flask_session import Session
from flask_session.base import ServerSideSession
from flask_session.base import ServerSideSessionInterface
from flask_session.redis import RedisSessionInterface
from itsdangerous import BadSignature
from itsdangerous import URLSafeSerializer
from sqlalchemy import delete
from sqlalchemy import orm
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from app.errors import ConnectionDamaged
from app.errors import ServiceUnavailable
from app.models import ServerSession
from app.platform.services import VAULT
from app.tokens.vault import Vault

log = logging.getLogger(__name__)

# Paths that must never read or write the browser session (no cookie, no store access).
COOKIE_FREE = ("/api/", "/healthz", "/readyz", "/metrics")
# Raised by a store that is down: the request gets an empty session and then a 503 (C23).
STORE_DOWN = (redis.RedisError, OperationalError)
STORE_DOWN_KEY = "ccp.session_store_down"
LOADED_KEY = "ccp.session_loaded"  # environ flag: this request's session came from the store
# The store key is HMAC(key, cookie value): a reader of the database, a backup or Redis learns no
# cookie. The key is derived from SECRET_KEY (no new setting: it already signs everything the
# browser holds); rotating SECRET_KEY ends every session, as it does for Flask's own cookies.
STORE_KEY_PURPOSE = b"ccp-session-store-id"
# Session data is sealed with the vault, bound to its store key (pending flows, CSRF, user).
SEAL_SEPARATOR = b"\x00"
# Anonymous visitors whose session holds only Flask-WTF's CSRF token get no row: the session
# cookie itself carries the token, signed with SECRET_KEY (a signed double-submit, C52).
CSRF_SALT = "ccp-anonymous-csrf"
CSRF_SESSION_KEY = "csrf_token"  # Flask-WTF's WTF_CSRF_FIELD_NAME default, which the app keeps


def _naive_utc() -> datetime:
    """Return naive UTC now, the form the sessions table stores."""
    return datetime.now(UTC).replace(tzinfo=None)


class KeyedStore(ServerSideSessionInterface):
    """Store ids are a keyed hash of the cookie value, and stored data is sealed (C51)."""

    app: Flask

    def _get_store_id(self, sid: str) -> str:
        """Return the store key for a cookie value: prefix + HMAC-SHA256 (never the value)."""
        secret = str(self.app.secret_key or "").encode()
        key = hmac.digest(secret, STORE_KEY_PURPOSE, "sha256")
        return self.key_prefix + hmac.new(key, sid.encode(), hashlib.sha256).hexdigest()

    def _vault(self) -> Vault:
        """Return the app's vault (built after the session interface, so looked up late)."""
        return cast(Vault, self.app.extensions[VAULT])

    def _seal(self, store_id: str, session: ServerSideSession) -> bytes:
        """Serialise and seal the session data for this store key."""
        key_id, blob = self._vault().seal(f"session:{store_id}", self.serializer.encode(session))
        return key_id.encode() + SEAL_SEPARATOR + blob

    def _open(self, store_id: str, stored: bytes) -> dict[str, Any] | None:
        """Open sealed session data; None for data not sealed for this key (an ended session)."""
        key_id, found, blob = bytes(stored).partition(SEAL_SEPARATOR)
        if not found:
            return None
        try:
            plain = self._vault().open(f"session:{store_id}", key_id.decode(), blob)
        except (ConnectionDamaged, UnicodeDecodeError):
            return None
        data: dict[str, Any] = self.serializer.decode(plain)
        return data


class SealedRedisSessionInterface(KeyedStore, RedisSessionInterface):
    """Flask-Session's Redis store, with hashed keys and sealed values."""

    def _retrieve_session_data(self, store_id: str) -> dict[str, Any] | None:
        """Return the opened data of a live session, or None."""
        stored = self.client.get(store_id)
        return self._open(store_id, cast(bytes, stored)) if stored else None

    def _upsert_session(
        self, session_lifetime: timedelta, session: ServerSideSession, store_id: str
    ) -> None:
        """Store the sealed session with its lifetime as the TTL."""
        ttl = int(session_lifetime.total_seconds())
        self.client.set(name=store_id, value=self._seal(store_id, session), ex=ttl)


class DatabaseSessionInterface(KeyedStore):
    """Flask-Session's interface over the migrated "sessions" table, in short transactions."""

    ttl = False  # SQL has no TTL: expired rows are skipped on read and swept now and then

    def __init__(self, app: Flask, sessions: Callable[[], orm.Session]) -> None:
        config = app.config
        self._sessions = sessions
        super().__init__(
            app,
            key_prefix=config["SESSION_KEY_PREFIX"],
            use_signer=False,
            permanent=config["SESSION_PERMANENT"],
            sid_length=32,
            serialization_format="msgpack",
            cleanup_n_requests=config.get("SESSION_CLEANUP_N_REQUESTS") or 200,
        )

    def _retrieve_session_data(self, store_id: str) -> dict[str, Any] | None:
        """Return the stored data of a live session, or None."""
        with self._sessions() as db:
            row = db.scalars(
                select(ServerSession).where(ServerSession.session_id == store_id)
            ).first()
        if row is None or row.expiry is None or row.expiry <= _naive_utc() or row.data is None:
            return None
        return self._open(store_id, row.data)

    def _delete_session(self, store_id: str) -> None:
        """Delete a stored session (sign-out and id regeneration)."""
        with self._sessions() as db, db.begin():
            db.execute(delete(ServerSession).where(ServerSession.session_id == store_id))

    def _upsert_session(
        self, session_lifetime: timedelta, session: ServerSideSession, store_id: str
    ) -> None:
        """Insert or update a session with a new expiry."""
        data = self._seal(store_id, session)
        expiry = _naive_utc() + session_lifetime
        with self._sessions() as db, db.begin():
            row = db.scalars(
                select(ServerSession).where(ServerSession.session_id == store_id)
            ).first()
            if row is None:
                db.add(ServerSession(session_id=store_id, data=data, expiry=expiry))
            else:
                row.data, row.expiry = data, expiry

    def _delete_expired_sessions(self) -> None:
        """Sweep expired sessions."""
        with self._sessions() as db, db.begin():
            db.execute(delete(ServerSession).where(ServerSession.expiry <= _naive_utc()))


def init_app(app: Flask, server_session: ServerSessions) -> None:
    """Bind server-side sessions, keep machine paths cookie-free, answer 503 without a store."""
    server_session.init_app(app)
    app.session_interface = CookieFreePaths(app.session_interface, COOKIE_FREE)
    app.before_request(_refuse_without_session_store)


class ServerSessions(Session):
    """Flask-Session, with our own migrated table instead of one created at start-up."""

    def __init__(self, db_sessions: Callable[[], orm.Session]) -> None:
        super().__init__()
        self._db_sessions = db_sessions  # short ORM sessions on the app's engine

    def _get_interface(self, app: Flask) -> SessionInterface:
        """Return Redis sessions when configured, else sessions in the portal's database."""
        config = app.config
        if config["SESSION_TYPE"] == "redis":
            return SealedRedisSessionInterface(
                app,
                config["SESSION_REDIS"],
                key_prefix=config["SESSION_KEY_PREFIX"],
                use_signer=False,
                permanent=config["SESSION_PERMANENT"],
                sid_length=32,
                serialization_format="msgpack",
            )
        return DatabaseSessionInterface(app, self._db_sessions)


def _refuse_without_session_store() -> None:
    """Answer 503 when the session store could not be read for this request (C23)."""
    if request.environ.get(STORE_DOWN_KEY):
        raise ServiceUnavailable()


class CookieFreePaths(SessionInterface):
    """Delegate to the real session store, except for machine paths, which get no session."""

    def __init__(self, inner: SessionInterface, prefixes: tuple[str, ...]) -> None:
        self.inner = inner
        self.prefixes = prefixes

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _machine(self, req: Request) -> bool:
        """Tell whether this request is for the API or health checks."""
        return req.path.startswith(self.prefixes)

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        """Open the stored session, or an empty unsaved one for machine paths."""
        if self._machine(request):
            return ServerSideSession(sid="", permanent=False)
        token = _anonymous_csrf(app, request)
        if token is not None:  # the cookie is a signed CSRF token, never a store id: no read
            inner = cast(ServerSideSessionInterface, self.inner)
            sid = inner._generate_sid(inner.sid_length)
            session = inner.session_class({CSRF_SESSION_KEY: token}, sid=sid)
            session.permanent = inner.permanent
            session.modified = False  # held, not changed: on its own it is never stored
            return session
        try:
            session = cast(ServerSideSession, self.inner.open_session(app, request))
        except STORE_DOWN as error:  # never fall back to another store: 503 follows
            log.warning("session store unavailable: %s", type(error).__name__)
            request.environ[STORE_DOWN_KEY] = True
            return ServerSideSession(sid="", permanent=False)
        request.environ[LOADED_KEY] = bool(session)
        return session

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Save the session, except on machine paths (they never set a cookie)."""
        if self._machine(request) or request.environ.get(STORE_DOWN_KEY):
            return
        if set(session.keys()) - {"_permanent"} == {CSRF_SESSION_KEY}:
            # Only a CSRF token: no row; the session cookie carries the signed token instead.
            server_side = cast(ServerSideSession, session)
            token = dict.pop(server_side, CSRF_SESSION_KEY)
            inner = cast(ServerSideSessionInterface, self.inner)
            if request.environ.get(LOADED_KEY):  # a stored session that now holds nothing
                inner._delete_session(inner._get_store_id(str(server_side.sid)))
            signed = _signer(app).dumps(token)
            if request.cookies.get(self.get_cookie_name(app)) != signed:
                response.set_cookie(
                    self.get_cookie_name(app),
                    signed,
                    expires=self.get_expiration_time(app, session),
                    httponly=True,
                    secure=self.get_cookie_secure(app),
                    samesite=self.get_cookie_samesite(app),
                    path=self.get_cookie_path(app),
                    domain=self.get_cookie_domain(app),
                )
            response.vary.add("Cookie")
            return
        self.inner.save_session(app, session, response)

    def regenerate(self, session: SessionMixin) -> None:
        """Give the session a new id and delete the old one (flask-session's regenerate)."""
        self.inner.regenerate(session)  # type: ignore[attr-defined]


def _signer(app: Flask) -> URLSafeSerializer:
    """Return the serializer that signs an anonymous visitor's CSRF token cookie."""
    return URLSafeSerializer(str(app.secret_key or ""), salt=CSRF_SALT)


def _anonymous_csrf(app: Flask, req: Request) -> str | None:
    """Return the CSRF token from a valid signed cookie, or None."""
    raw = req.cookies.get(app.config["SESSION_COOKIE_NAME"])
    if not raw or "." not in raw:  # store ids are token_urlsafe: they never hold a dot
        return None
    try:
        token = _signer(app).loads(raw)
    except BadSignature:
        return None
    return token if isinstance(token, str) else None
