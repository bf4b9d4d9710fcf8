"""Refresh locks: one holder per connection across threads and processes, leases that lapse."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import cast

import pytest
import redis
from flask import Flask
from sqlalchemy import Engine
from sqlalchemy import Table
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import select

from app.models import Base
from app.models import RefreshLease
from app.platform import extensions
from app.platform.extensions import _sqlite_pragmas
from app.tokens.locks import RefreshLocks
from tests.conftest import require_service

REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "")


@pytest.fixture(params=["database", "redis"])
def locks(request: pytest.FixtureRequest, tmp_path: Path) -> RefreshLocks:
    """Return locks on a SQLite lease table, or on Redis when configured."""
    if request.param == "redis":
        url = require_service(REDIS_URL, "PORTAL_TEST_REDIS_URL", "test the Redis lock")
        return RefreshLocks(redis_client=redis.Redis.from_url(url), wait=2.0)
    engine = sqlite_engine(tmp_path)
    return RefreshLocks(engine=lambda: engine, wait=2.0)


def sqlite_engine(tmp_path: Path) -> Engine:
    """Return a WAL-mode SQLite engine with the portal's tables."""
    engine = create_engine(f"sqlite:///{tmp_path / 'locks.db'}")
    event.listen(engine, "connect", _sqlite_pragmas)
    Base.metadata.create_all(engine)
    return engine


def test_only_one_holder_at_a_time(locks: RefreshLocks) -> None:
    connection_id = str(uuid.uuid4())
    inside = 0
    most = 0
    guard = threading.Lock()
    results: list[bool] = []

    def work() -> None:
        nonlocal inside, most
        with locks.hold(connection_id, ttl=10) as held:
            results.append(held)
            with guard:
                inside += 1
                most = max(most, inside)
            time.sleep(0.02)
            with guard:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 8
    assert most == 1


def test_a_waiter_gives_up_after_the_bound(locks: RefreshLocks) -> None:
    connection_id = str(uuid.uuid4())
    locks.wait = 0.3
    with locks.hold(connection_id, ttl=10) as first:
        assert first
        started = time.monotonic()
        with locks.hold(connection_id, ttl=10) as second:
            assert second is False
        assert 0.25 < time.monotonic() - started < 2.0


def test_different_connections_do_not_block(locks: RefreshLocks) -> None:
    locks.wait = 0.2
    with locks.hold(str(uuid.uuid4()), ttl=10) as a, locks.hold(str(uuid.uuid4()), ttl=10) as b:
        assert a and b


def test_a_crashed_holders_lease_lapses(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path)
    locks = RefreshLocks(engine=lambda: engine, wait=2.0)
    connection_id = str(uuid.uuid4())
    with engine.begin() as conn:  # a holder that died without releasing
        conn.execute(
            cast(Table, RefreshLease.__table__)
            .insert()
            .values(connection_id=connection_id, holder="dead", expires_at=time.time() + 0.3)
        )
    started = time.monotonic()
    with locks.hold(connection_id, ttl=5) as held:
        assert held
        assert time.monotonic() - started >= 0.25
    with engine.connect() as conn:
        assert conn.execute(select(RefreshLease)).first() is None  # released on exit


def test_the_holder_renews_its_lease(locks: RefreshLocks) -> None:
    connection_id = str(uuid.uuid4())
    locks.wait = 0.1
    with locks.hold(connection_id, ttl=0.3) as held:
        assert held
        time.sleep(0.8)  # far beyond the ttl: renewal keeps others out (C32)
        with locks.hold(connection_id, ttl=0.3) as other:
            assert other is False
    with locks.hold(connection_id, ttl=0.3) as after:
        assert after


def test_the_apps_own_locks_renew_outside_a_request(app: Flask) -> None:
    """The renewer thread has no app context: the lease must still be renewed (C32)."""
    with app.app_context():
        locks = extensions.locks()
    locks.wait = 0.1
    connection_id = str(uuid.uuid4())
    with locks.hold(connection_id, ttl=0.3) as held:
        assert held
        time.sleep(0.8)
        with locks.hold(connection_id, ttl=0.3) as other:
            assert other is False
