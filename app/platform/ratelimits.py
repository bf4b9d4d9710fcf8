"""Fixed-window rate limits for the token API: every key of a request in one Redis round trip."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence

import limits
import redis
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from app.errors import ConfigError

# Count every key, start its window on the first hit, and answer (count, seconds left) per key.
# Atomic, so instances sharing Redis never lose a hit or leave a counter without an expiry.
HIT_ALL = """
local out = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('EXPIRE', key, ARGV[i]) end
  out[#out + 1] = count
  out[#out + 1] = redis.call('TTL', key)
end
return out
"""


@functools.lru_cache(maxsize=64)
def parse(text: str) -> limits.RateLimitItem:
    """Return the limit that a setting such as "120/minute" names; ConfigError if it names none."""
    try:
        return limits.parse(text)
    except ValueError as error:
        raise ConfigError(f"{text!r} is not a rate limit such as 120/minute") from error


class RateLimits:
    """Counts requests per key in Redis (shared by every instance) or in this process."""

    def __init__(self, redis_client: redis.Redis | None, prefix: str = "ccp:rl") -> None:
        self.prefix = prefix
        self._script = redis_client.register_script(HIT_ALL) if redis_client else None
        self._memory = FixedWindowRateLimiter(MemoryStorage())

    def hit(self, checks: Sequence[tuple[str, str]]) -> int | None:
        """Count one request against each (key, limit); return seconds to wait if one is over.

        Redis errors propagate: the caller answers 503 rather than serving without limits.
        """
        items = [(key, parse(limit)) for key, limit in checks]
        if self._script is None:
            return self._hit_memory(items)
        keys = [f"{self.prefix}:{item.key_for(key)}" for key, item in items]
        answer = self._script(keys=keys, args=[item.get_expiry() for _, item in items])
        waits = [
            max(1, int(answer[2 * n + 1]))
            for n, (_, item) in enumerate(items)
            if int(answer[2 * n]) > item.amount
        ]
        return max(waits) if waits else None

    def _hit_memory(self, items: Sequence[tuple[str, limits.RateLimitItem]]) -> int | None:
        """Count in this process (no Redis: each gunicorn worker keeps its own counts)."""
        waits = []
        for key, item in items:
            if not self._memory.hit(item, key):
                reset = self._memory.get_window_stats(item, key).reset_time
                waits.append(max(1, int(reset - time.time() + 0.999)))
        return max(waits) if waits else None
