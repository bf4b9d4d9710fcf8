"""Fixed-window counters: in this process, or in Redis with every key in one round trip."""

from __future__ import annotations

import os
import secrets

import pytest
import redis

from app.errors import ConfigError
from app.platform.ratelimits import RateLimits
from app.platform.ratelimits import parse
from tests.conftest import require_service

REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "")


def redis_limits() -> tuple[RateLimits, redis.Redis]:
    """Return counters in the test Redis under a prefix of their own, and the client."""
    url = require_service(REDIS_URL, "PORTAL_TEST_REDIS_URL", "test the Redis counters")
    client = redis.Redis.from_url(url)
    return RateLimits(client, prefix=f"test:rl:{secrets.token_hex(4)}"), client


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> tuple[RateLimits, redis.Redis | None]:
    """Return counters in memory, or in Redis."""
    if request.param == "memory":
        return RateLimits(None), None
    return redis_limits()


def test_the_request_over_the_limit_waits_for_the_window(
    store: tuple[RateLimits, redis.Redis | None],
) -> None:
    limits, _ = store
    answers = [limits.hit([("ip:a", "2/minute")]) for _ in range(3)]
    assert answers[:2] == [None, None]
    assert answers[2] is not None and 1 <= answers[2] <= 60
    assert limits.hit([("ip:b", "2/minute")]) is None, "another key has its own count"


def test_every_key_is_counted_and_the_longest_wait_wins(
    store: tuple[RateLimits, redis.Redis | None],
) -> None:
    limits, _ = store
    checks = [("ip:c", "10/minute"), ("code:c", "1/hour")]
    assert limits.hit(checks) is None
    wait = limits.hit(checks)
    assert wait is not None and 60 < wait <= 3600, "the hourly limit is the one breached"
    for _ in range(8):
        limits.hit([("ip:c", "10/minute")])
    assert limits.hit([("ip:c", "10/minute")]) is not None, "both calls counted on ip:c"


def test_redis_counters_always_expire() -> None:
    limits, client = redis_limits()
    limits.hit([("ip:d", "5/minute"), ("code:d", "5/hour")])
    keys = list(client.scan_iter(f"{limits.prefix}:*"))
    assert len(keys) == 2
    assert all(0 < client.ttl(key) <= 3600 for key in keys)
    client.delete(*keys)


def test_a_limit_must_parse() -> None:
    assert parse("120/minute").amount == 120
    with pytest.raises(ConfigError):
        parse("lots")
