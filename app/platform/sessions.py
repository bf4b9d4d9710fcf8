"""Server-side browser sessions stored in the portal's own database (the default store)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from flask import Flask
from flask_session.base import ServerSideSession
from flask_session.base import ServerSideSessionInterface
from sqlalchemy import delete
from sqlalchemy import orm
from sqlalchemy import select

from app.models import ServerSession


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
