"""Server-side browser sessions stored in the portal's own database (the default store)."""

from __future__ import annotations

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
from sqlalchemy import delete
from sqlalchemy import orm
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from app.errors import ServiceUnavailable
from app.models import ServerSession

log = logging.getLogger(__name__)

# Paths that must never read or write the browser session (no cookie, no store access).
COOKIE_FREE = ("/api/", "/healthz", "/readyz", "/metrics")
# Raised by a store that is down: the request gets an empty session and then a 503 (C23).
STORE_DOWN = (redis.RedisError, OperationalError)
STORE_DOWN_KEY = "ccp.session_store_down"


def _naive_utc() -> datetime:
    """Return naive UTC now, the form the sessions table stores."""
    return datetime.now(UTC).replace(tzinfo=None)


class DatabaseSessionInterface(ServerSideSessionInterface):
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
        data: dict[str, Any] = self.serializer.decode(row.data)
        return data

    def _delete_session(self, store_id: str) -> None:
        """Delete a stored session (sign-out and id regeneration)."""
        with self._sessions() as db, db.begin():
            db.execute(delete(ServerSession).where(ServerSession.session_id == store_id))

    def _upsert_session(
        self, session_lifetime: timedelta, session: ServerSideSession, store_id: str
    ) -> None:
        """Insert or update a session with a new expiry."""
        data = self.serializer.encode(session)
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
        if app.config["SESSION_TYPE"] == "redis":
            return cast(SessionInterface, super()._get_interface(app))
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
        try:
            return self.inner.open_session(app, request)
        except STORE_DOWN as error:  # never fall back to another store: 503 follows
            log.warning("session store unavailable: %s", type(error).__name__)
            request.environ[STORE_DOWN_KEY] = True
            return ServerSideSession(sid="", permanent=False)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Save the session, except on machine paths (they never set a cookie)."""
        if self._machine(request) or request.environ.get(STORE_DOWN_KEY):
            return
        self.inner.save_session(app, session, response)

    def regenerate(self, session: SessionMixin) -> None:
        """Give the session a new id and delete the old one (flask-session's regenerate)."""
        self.inner.regenerate(session)  # type: ignore[attr-defined]
