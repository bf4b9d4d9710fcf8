"""Tenant refresh paces: a rate, Entra's Retry-After and a queue, shared by every instance."""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine
from sqlalchemy import event

from app.errors import TemporarilyUnavailable
from app.models import Base
from app.platform.extensions import _sqlite_pragmas
from app.tokens import throttle
from app.tokens.throttle import Pace
from app.tokens.throttle import PaceStore
from app.tokens.throttle import RefreshThrottle
from app.tokens.throttle_stores import DatabasePaces
from app.tokens.throttle_stores import MemoryPaces
from app.tokens.throttle_stores import RedisPaces
from tests.conftest import postgres_schema
from tests.conftest import require_service

REDIS_URL = os.environ.get("PORTAL_TEST_REDIS_URL", "")
PG_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")


def frozen() -> float:
    """Return the same instant every time: the database and memory stores' clock in tests."""
    return 1_000_000.0


@pytest.fixture(params=["memory", "sqlite", "postgresql", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PaceStore]:
    """Yield a pace store on each backend (on a frozen clock, except Redis's own)."""
    if request.param == "memory":
        yield MemoryPaces(frozen)
    elif request.param == "redis":
        url = require_service(REDIS_URL, "PORTAL_TEST_REDIS_URL", "test Redis paces")
        yield RedisPaces(redis.Redis.from_url(url))
    elif request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'paces.db'}")
        event.listen(engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(engine)
        yield DatabasePaces(lambda: engine, frozen)
        engine.dispose()
    else:
        url = require_service(PG_URL, "PORTAL_TEST_DATABASE_URL", "test database paces")
        with postgres_schema(url) as schema_url:
            engine = create_engine(schema_url)
            Base.metadata.create_all(engine)
            yield DatabasePaces(lambda: engine, frozen)
            engine.dispose()


def tenant() -> str:
    """Return a tenant no other test (or earlier run on the shared Redis) has used."""
    return str(uuid.uuid4())


# -- the steps, as pure functions -------------------------------------------------------------


def test_slots_sit_a_tenth_of_an_interval_after_the_whole_seconds() -> None:
    assert throttle.slot(100.0, 0.1) == pytest.approx(100.01)
    assert throttle.slot(100.01, 0.1) == pytest.approx(100.01)
    assert throttle.slot(100.02, 0.1) == pytest.approx(100.11)
    assert throttle.slot(100.3, 0.0) == 100.3  # no rate: no grid


def test_take_paces_and_refuses_beyond_the_wait() -> None:
    pace, delay = throttle.take(Pace(), 100.0, 0.5, wait=1.0)
    assert (pace.next_at, delay) == (pytest.approx(100.55), pytest.approx(0.05))
    pace, delay = throttle.take(pace, 100.0, 0.5, wait=1.0)
    assert delay == pytest.approx(0.55)
    pace, delay = throttle.take(pace, 100.0, 0.5, wait=1.0)
    assert delay is None and pace.next_at == pytest.approx(101.05)  # too far: nothing taken


def test_places_in_line_follow_each_other_at_the_rate() -> None:
    pace = Pace(next_at=103.0)
    delays = []
    for _ in range(3):
        pace, delay = throttle.later(pace, 100.0, 0.25)
        delays.append(delay)
    assert delays == [pytest.approx(3.025), pytest.approx(3.275), pytest.approx(3.525)]


def test_retry_after_holds_every_slot() -> None:
    pace = throttle.block(Pace(), 100.0, 5)
    assert throttle.take(pace, 100.0, 0.1, wait=1.0)[1] is None
    assert throttle.take(pace, 104.5, 0.1, wait=1.0)[1] == pytest.approx(0.51)
    assert throttle.block(pace, 101.0, 2).blocked_until == 105.0  # the later end wins


# -- the stores ----------------------------------------------------------------------------


def test_every_store_paces_at_the_rate(store: PaceStore) -> None:
    t = tenant()
    delays = [store.take(t, 0.1, 1.0) for _ in range(12)]
    taken = [d for d in delays if d is not None]
    assert len(taken) == 10  # a second's worth: slots at 0.01, 0.11, ... 0.91 s
    assert all(b - a == pytest.approx(0.1, abs=0.02) for a, b in itertools.pairwise(taken))
    assert delays[-2:] == [None, None]
    place = store.later(t, 0.1)
    assert store.later(t, 0.1) - place == pytest.approx(0.1, abs=0.02)
    assert store.take(tenant(), 0.1, 1.0) is not None  # another tenant: its own pace


def test_every_store_shares_retry_after(store: PaceStore) -> None:
    t = tenant()
    assert store.take(t, 0.0, 1.0) == pytest.approx(0, abs=0.01)  # no rate: nothing to wait for
    store.block(t, 2)
    assert store.take(t, 0.0, 1.0) is None
    assert store.later(t, 0.0) == pytest.approx(2, abs=0.1)
    assert store.take(t, 0.0, 3.0) == pytest.approx(2, abs=0.1)  # within the wait: sleep


def test_concurrent_takers_never_share_a_slot(store: PaceStore) -> None:
    t = tenant()
    clock = time.time if isinstance(store, RedisPaces) else frozen  # Redis keeps its own

    def slot_now() -> float:
        """Take a slot alone and return when it is (within a round trip on a real clock)."""
        before = clock()
        delay = store.take(t, 0.2, 10.0)  # slots far apart next to a round trip's time
        assert delay is not None
        return before + delay

    first = slot_now()
    slots: list[float] = []
    guard = threading.Lock()

    def work() -> None:
        for _ in range(5):
            delay = store.take(t, 0.2, 10.0)
            assert delay is not None
            with guard:
                slots.append(delay)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(slots) == 30
    assert round((slot_now() - first) / 0.2) == 31  # 30 slots between, one each
    if clock is frozen:  # the same now for all: the delays themselves are the slots
        assert len({round(d / 0.2 - 0.1) for d in slots}) == 30


# -- the throttle ----------------------------------------------------------------------------


def test_admit_sleeps_until_the_slot_then_turns_callers_away_with_places() -> None:
    slept: list[float] = []
    paced = RefreshThrottle(MemoryPaces(), rate=4, wait=1.0, sleep=slept.append, jitter=lambda: 0)
    t = tenant()
    for _ in range(4):
        paced.admit(t)
    assert len(slept) >= 3 and all(0 < s <= 1.0 for s in slept[-3:])
    refusals = []
    for _ in range(8):
        with pytest.raises(TemporarilyUnavailable) as refused:
            paced.admit(t)
        refusals.append(refused.value.retry_after)
    assert refusals == sorted(refusals) and refusals[-1] - refusals[0] >= 1  # spread, in order


def test_without_a_rate_turned_away_callers_spread_over_the_retry_after() -> None:
    store = MemoryPaces()
    t = tenant()
    store.block(t, 4)
    early = RefreshThrottle(store, jitter=lambda: 0.0).later(t).retry_after
    late = RefreshThrottle(store, jitter=lambda: 0.99).later(t).retry_after
    assert (early, late) == (4, 8)
    assert RefreshThrottle(MemoryPaces()).later(t).retry_after == 1  # nothing held: soon


def test_a_refresh_woken_late_lets_its_slot_go() -> None:
    store = MemoryPaces()
    t = tenant()
    store.take(t, 0.25, 1.0)  # the next slot is ahead: admit has to sleep
    naps: list[float] = []

    def oversleep(delay: float) -> None:
        naps.append(delay)
        time.sleep(delay + 0.1)  # a busy process: woken 0.1 s (0.4 intervals) late

    with pytest.raises(TemporarilyUnavailable):
        RefreshThrottle(store, rate=4, wait=1.0, sleep=oversleep).admit(t)
    assert len(naps) == 3  # late every time: three slots let go, then a place in line


@pytest.mark.parametrize(("given", "rate"), [("0", 0.0), (0.0, 0.0), ("12.5", 12.5), (20, 20.0)])
def test_the_rate_setting_is_off_at_zero(given: object, rate: float) -> None:
    from app.platform.config import coerce

    config = {"REFRESH_RATE": given}
    coerce(config, ["REFRESH_RATE"])
    assert config["REFRESH_RATE"] == rate


def test_a_negative_rate_stops_start_up() -> None:
    from app.platform.config import ConfigError
    from app.platform.config import coerce

    with pytest.raises(ConfigError, match="PORTAL_REFRESH_RATE must be positive"):
        coerce({"REFRESH_RATE": "-1"}, ["REFRESH_RATE"])
