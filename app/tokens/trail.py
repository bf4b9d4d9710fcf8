"""The access trail: which code read a connection, from which address and agent, per hour."""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import cast

from sqlalchemy import Engine
from sqlalchemy import Table
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import SQLAlchemyError

from app.models import DB
from app.models import AccessTrail
from app.models import Connection
from app.models import utcnow

log = logging.getLogger(__name__)
TABLE = cast(Table, AccessTrail.__table__)
KEY = ("connection_id", "hour", "code", "address", "agent", "what")
CODE_PREFIX = 12  # hex digits of the code's HMAC: enough to tell codes apart, useless to guess


@dataclass
class Caller:
    """Who is calling the API in this request: set by the web layer, read once by the broker."""

    address: str
    agent: str
    what: str  # token, connection, proxy, tables, table
    recorded: bool = False  # one request is one read, however many lookups it makes


# The web layer sets this around each API call; the broker records the first lookup under it.
calling: ContextVar[Caller | None] = ContextVar("calling", default=None)


@dataclass(frozen=True)
class Read:
    """One row of the trail as pages show it, with its connection's connector and account."""

    connection_id: str
    hour: datetime
    code: str
    address: str
    agent: str
    what: str
    count: int
    first_at: datetime
    last_at: datetime
    connector: str
    username: str


Key = tuple[str, datetime, str, str, str, str]


class Trail:
    """Counts reads in memory and adds them to the hour's row at most once per period a key.

    The first read of a key in a process is written at once (so "last used by" is current);
    later ones within `period` wait for the next read after it, or for the process to exit.
    The write is one atomic upsert (count = count + n), so concurrent writers lose nothing.
    """

    def __init__(self, engine: Callable[[], Engine], period: float = 60.0) -> None:
        self._engine = engine
        self._period = period
        self._lock = threading.Lock()
        self._pending: dict[Key, tuple[int, datetime, datetime]] = {}  # count, first, last
        self._written: dict[Key, float] = {}
        _ALL.add(self)

    def hit(self, connection_id: str, code_hash: str, caller: Caller) -> None:
        """Count one read; write what is due."""
        now = utcnow()
        hour = now.replace(minute=0, second=0, microsecond=0)
        key: Key = (
            connection_id,
            hour,
            code_hash[:CODE_PREFIX],
            caller.address[:45],
            caller.agent[:200],
            caller.what[:16],
        )
        clock = time.monotonic()
        with self._lock:
            count, first, _ = self._pending.get(key, (0, now, now))
            self._pending[key] = (count + 1, first, now)
            if clock - self._written.get(key, -self._period - 1) < self._period:
                return
            due = self._take(clock, hour)
        self._write(due)

    def flush(self) -> None:
        """Write every pending count now (at exit, and in tests)."""
        with self._lock:
            due, self._pending = self._pending, {}
            self._written.clear()
        self._write(due)

    def _take(self, clock: float, hour: datetime) -> dict[Key, tuple[int, datetime, datetime]]:
        """Remove and return the counts whose period is over; forget past hours' keys."""
        due = {
            key: value
            for key, value in self._pending.items()
            if clock - self._written.get(key, -self._period - 1) >= self._period
        }
        for key in due:
            del self._pending[key]
            self._written[key] = clock
        for key in [k for k in self._written if k[1] < hour and k not in self._pending]:
            del self._written[key]
        return due

    def _write(self, due: dict[Key, tuple[int, datetime, datetime]]) -> None:
        """Upsert each due count; on a database failure keep it for the next write."""
        if not due:
            return
        try:
            engine = self._engine()
            with engine.begin() as conn:
                for key, (count, first, last) in due.items():
                    conn.execute(_upsert(engine.dialect.name, key, count, first, last))
        except SQLAlchemyError as error:  # bookkeeping only: never fail a read for it
            log.warning("access trail not written: %s", type(error).__name__)
            with self._lock:
                for key, (count, first, last) in due.items():
                    more, _, later = self._pending.get(key, (0, first, last))
                    self._pending[key] = (count + more, first, max(last, later))
                    self._written.pop(key, None)


def _upsert(dialect: str, key: Key, count: int, first: datetime, last: datetime) -> Any:
    """Return INSERT ... ON CONFLICT DO UPDATE adding `count` to the hour's row."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = dict(zip(KEY, key, strict=True))
    statement = insert(TABLE).values(**values, count=count, first_at=first, last_at=last)
    return statement.on_conflict_do_update(
        index_elements=list(KEY),
        set_={
            "count": TABLE.c.count + statement.excluded.count,
            "last_at": statement.excluded.last_at,
        },
    )


def reads(db: DB, connection_ids: Sequence[str], limit: int = 50) -> list[Read]:
    """Return the newest trail rows of these connections, newest first."""
    if not connection_ids:
        return []
    return _reads(db, AccessTrail.connection_id.in_(list(connection_ids)), limit)


def tenant_reads(db: DB, tenant_id: str, limit: int = 200) -> list[Read]:
    """Return the newest trail rows of a tenant's connections (the admin's page)."""
    return _reads(db, Connection.tenant_id == tenant_id, limit)


def _reads(db: DB, where: Any, limit: int) -> list[Read]:
    """Return trail rows joined to their connection, newest first."""
    query = (
        select(AccessTrail, Connection.connector, Connection.username)
        .join(Connection, Connection.id == AccessTrail.connection_id)
        .where(where)
        .order_by(AccessTrail.last_at.desc(), AccessTrail.id.desc())
        .limit(limit)
    )
    return [_read(row, connector, username) for row, connector, username in db.execute(query)]


def latest(db: DB, connection_ids: Sequence[str]) -> dict[str, Read]:
    """Return each connection's most recent read (the connection page's "last used by")."""
    found = {}
    for connection_id in connection_ids:  # a person's few connections: one indexed read each
        newest = reads(db, [connection_id], limit=1)
        if newest:
            found[connection_id] = newest[0]
    return found


def prune(db: DB, days: int, now: datetime | None = None) -> int:
    """Delete rows of hours older than `days` days; commit; return how many went."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    result = db.execute(delete(AccessTrail).where(AccessTrail.hour < cutoff))
    db.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def _read(row: AccessTrail, connector: str, username: str) -> Read:
    """Copy a row into a plain value."""
    return Read(
        row.connection_id, row.hour, row.code, row.address, row.agent, row.what, row.count,
        row.first_at, row.last_at, connector, username,
    )  # fmt: skip


_ALL: weakref.WeakSet[Trail] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    """Write what a stopping process still counts."""
    for trail in list(_ALL):
        trail.flush()
