"""Where the tenants' refresh paces live: Redis (one Lua script), the database, or memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import cast

import redis
from sqlalchemy import Engine
from sqlalchemy import Table
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from app.errors import ServiceUnavailable
from app.models import RefreshPace
from app.tokens import throttle
from app.tokens.throttle import Pace

KEEP_SECONDS = 60  # a pace outlives its last instant by this much, then Redis forgets it
CAS_ATTEMPTS = 50
TABLE = cast(Table, RefreshPace.__table__)
Step = Callable[[Pace, float], tuple[Pace, float | None]]

# throttle.take / later / block in one atomic step, on Redis's clock (every instance shares it);
# 0.1 is throttle.GRID_OFFSET.
# Floats go back as strings: Redis would truncate a Lua number to an integer.
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local mode, interval, arg = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local f = redis.call('HMGET', KEYS[1], 'next', 'blocked', 'queue')
local nxt, blocked, queue = tonumber(f[1]) or 0, tonumber(f[2]) or 0, tonumber(f[3]) or 0
local answer = 'none'
if mode == 'block' then
  blocked = math.max(blocked, now + arg)
else
  local start = math.max(now, nxt, blocked)
  if interval > 0 then start = (math.ceil(start / interval - 0.1) + 0.1) * interval end
  if mode == 'take' and start - now <= arg then
    if interval > 0 then nxt = start + interval end
    answer = tostring(math.max(0, start - now))
  elseif mode == 'later' then
    if interval > 0 then
      start = math.max(start, queue + interval)
      queue = start
    end
    answer = tostring(start - now)
  end
end
redis.call('HSET', KEYS[1], 'next', tostring(nxt), 'blocked', tostring(blocked),
           'queue', tostring(queue))
local last = math.max(nxt, blocked, queue, now)
redis.call('PEXPIRE', KEYS[1], math.ceil((last - now + tonumber(ARGV[4])) * 1000))
return answer
"""


class RedisPaces:
    """Paces in Redis hashes, changed by one script per step (every instance, one clock)."""

    def __init__(self, client: redis.Redis) -> None:
        self._script = client.register_script(SCRIPT)

    def take(self, tenant: str, interval: float, wait: float) -> float | None:
        """Take the next slot if it comes within wait."""
        answer = self._run(tenant, "take", interval, wait)
        return None if answer == "none" else float(answer)

    def later(self, tenant: str, interval: float) -> float:
        """Promise the next place in line."""
        return float(self._run(tenant, "later", interval, 0.0))

    def block(self, tenant: str, seconds: float) -> None:
        """Hold the tenant's refreshes for seconds."""
        self._run(tenant, "block", 0.0, seconds)

    def _run(self, tenant: str, mode: str, interval: float, arg: float) -> str:
        """Run the script on the tenant's hash."""
        answer = self._script(
            keys=[f"ccp:refresh-pace:{tenant}"], args=[mode, interval, arg, KEEP_SECONDS]
        )
        return answer.decode() if isinstance(answer, bytes) else str(answer)


class _Steps:
    """The three steps over any read-modify-write of a tenant's pace."""

    def _change(self, tenant: str, step: Step) -> float | None:
        """Apply one step to the tenant's pace atomically; return the step's answer."""
        raise NotImplementedError

    def take(self, tenant: str, interval: float, wait: float) -> float | None:
        """Take the next slot if it comes within wait."""
        return self._change(tenant, lambda p, now: throttle.take(p, now, interval, wait))

    def later(self, tenant: str, interval: float) -> float:
        """Promise the next place in line."""
        delay = self._change(tenant, lambda p, now: throttle.later(p, now, interval))
        assert delay is not None
        return delay

    def block(self, tenant: str, seconds: float) -> None:
        """Hold the tenant's refreshes for seconds."""
        self._change(tenant, lambda p, now: (throttle.block(p, now, seconds), None))


class DatabasePaces(_Steps):
    """Paces in the refresh_paces table, each step a compare-and-swap on the row's version."""

    def __init__(
        self, engine: Callable[[], Engine], clock: Callable[[], float] = time.time
    ) -> None:
        self._engine = engine
        self._clock = clock  # each instance's own clock: keep them in sync (NTP), as for leases

    def _change(self, tenant: str, step: Step) -> float | None:
        """Read the row, apply the step, write it back only over the version read."""
        for _ in range(CAS_ATTEMPTS):
            with self._engine().begin() as conn:
                row = conn.execute(select(TABLE).where(TABLE.c.tenant_id == tenant)).first()
            if row is None:
                self._create(tenant)
                continue
            before = Pace(row.next_at, row.blocked_until, row.queue_at)
            after, answer = step(before, self._clock())
            if after == before:  # a read-only step (no rate): nothing to write
                return answer
            with self._engine().begin() as conn:
                done = conn.execute(
                    update(TABLE)
                    .where(TABLE.c.tenant_id == tenant, TABLE.c.version == row.version)
                    .values(next_at=after.next_at, blocked_until=after.blocked_until,
                            queue_at=after.queue_at, version=row.version + 1)
                )  # fmt: skip
            if done.rowcount == 1:
                return answer
        raise ServiceUnavailable()  # the row changed under us every time: the caller retries

    def _create(self, tenant: str) -> None:
        """Insert the tenant's row (another instance may have just done so)."""
        try:
            with self._engine().begin() as conn:
                conn.execute(insert(TABLE).values(tenant_id=tenant, version=0))
        except IntegrityError:
            pass


class MemoryPaces(_Steps):
    """Paces in this process only: for a broker built without a shared store (tests)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._paces: dict[str, Pace] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def _change(self, tenant: str, step: Step) -> float | None:
        """Apply the step under the process's lock."""
        with self._lock:
            after, answer = step(self._paces.get(tenant, Pace()), self._clock())
            self._paces[tenant] = after
            return answer
