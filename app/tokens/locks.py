"""At most one refresh per connection across processes: a Redis lock or a database lease."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from sqlalchemy import Engine
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError

from app.models import RefreshLease

log = logging.getLogger(__name__)
POLL_SECONDS = 0.05

# Delete or extend the key only while it still holds our token (never another holder's lock).
RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


class RefreshLocks:
    """Per-connection mutual exclusion that works across workers and hosts."""

    def __init__(
        self,
        engine: Callable[[], Engine] | None = None,
        redis_client: redis.Redis | None = None,
        wait: float = 25.0,
    ) -> None:
        if engine is None and redis_client is None:
            raise ValueError("RefreshLocks needs a database engine or a Redis client")
        self._engine = engine
        self._redis = redis_client
        self.wait = wait

    @contextmanager
    def hold(self, connection_id: str, ttl: float) -> Iterator[bool]:
        """Hold the connection's lock; yield False if it could not be had within the wait."""
        token = secrets.token_hex(16)
        deadline = time.monotonic() + self.wait
        while not self._acquire(connection_id, token, ttl):
            if time.monotonic() >= deadline:
                yield False
                return
            time.sleep(POLL_SECONDS)
        # The holder renews its lease every ttl/3, so a refresh slower than the ttl keeps it
        # (C32); if the process dies, renewal stops and the lease lapses after ttl.
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew_until, args=(connection_id, token, ttl, stop), daemon=True
        )
        renewer.start()
        try:
            yield True
        finally:
            stop.set()
            renewer.join(timeout=1.0)
            self._release(connection_id, token)

    def _renew_until(
        self, connection_id: str, token: str, ttl: float, stop: threading.Event
    ) -> None:
        """Extend the lease until told to stop."""
        while not stop.wait(ttl / 3):
            try:
                if not self._renew(connection_id, token, ttl):
                    log.warning("refresh lease lost for connection %s", connection_id)
                    return
            except Exception as error:  # noqa: BLE001 - a dead renewer would silently drop C32
                log.warning("refresh lease renewal failed: %s", type(error).__name__)

    # -- backends ------------------------------------------------------------------------------

    def _acquire(self, connection_id: str, token: str, ttl: float) -> bool:
        """Try once to take the lock."""
        if self._redis is not None:
            return bool(self._redis.set(_key(connection_id), token, nx=True, px=int(ttl * 1000)))
        return self._db_acquire(connection_id, token, ttl)

    def _renew(self, connection_id: str, token: str, ttl: float) -> bool:
        """Extend our lease; False when it is no longer ours."""
        if self._redis is not None:
            script = self._redis.register_script(RENEW)
            return bool(script(keys=[_key(connection_id)], args=[token, int(ttl * 1000)]))
        with self._db().begin() as conn:
            result = conn.execute(
                update(RefreshLease)
                .where(RefreshLease.connection_id == connection_id, RefreshLease.holder == token)
                .values(expires_at=time.time() + ttl)
            )
            return bool(result.rowcount)

    def _release(self, connection_id: str, token: str) -> None:
        """Give the lock back if it is still ours."""
        try:
            if self._redis is not None:
                self._redis.register_script(RELEASE)(keys=[_key(connection_id)], args=[token])
                return
            with self._db().begin() as conn:
                conn.execute(
                    delete(RefreshLease).where(
                        RefreshLease.connection_id == connection_id, RefreshLease.holder == token
                    )
                )
        except (redis.RedisError, OperationalError) as error:  # the lease lapses on its own
            log.warning("refresh lease release failed: %s", type(error).__name__)

    def _db_acquire(self, connection_id: str, token: str, ttl: float) -> bool:
        """Insert the lease row, or take it over if it expired; each in one transaction."""
        now = time.time()
        try:
            with self._db().begin() as conn:
                conn.execute(
                    insert(RefreshLease).values(
                        connection_id=connection_id, holder=token, expires_at=now + ttl
                    )
                )
            return True
        except IntegrityError:
            pass
        with self._db().begin() as conn:
            result = conn.execute(
                update(RefreshLease)
                .where(RefreshLease.connection_id == connection_id, RefreshLease.expires_at < now)
                .values(holder=token, expires_at=now + ttl)
            )
            return bool(result.rowcount)

    def _db(self) -> Engine:
        """Return the engine for lease rows."""
        assert self._engine is not None
        return self._engine()


def _key(connection_id: str) -> str:
    """Return the Redis key of a connection's refresh lock."""
    return f"ccp:refresh-lock:{connection_id}"
