"""A tenant's refresh pace, shared by every instance: a rate, Entra's Retry-After, a queue.

Each tenant has three instants (a `Pace`): the next free refresh slot, the end of the last
Retry-After Entra gave, and the last place promised to a caller sent away. A refresh takes the
next slot if it comes within `wait` (and sleeps until then); otherwise the caller gets 503 with a
Retry-After that points at its own place in the queue, one slot after the last caller's, so the
callers of a storm come back spread at the rate instead of all at once. The stores
(`throttle_stores`) keep the three instants in Redis or the database, so every instance paces
the same tenant together.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from app.errors import TemporarilyUnavailable
from app.identity.transport import last_retry_after

MAX_RETRY_AFTER = 3600
GRID_OFFSET = 0.1  # slots sit this share of an interval after the grid of whole seconds
LATE = 0.3  # a share of an interval: woken later than this after its slot, a refresh takes another
LATE_RETRIES = 2


@dataclass(frozen=True)
class Pace:
    """A tenant's refresh pace: epoch seconds, 0 when never set."""

    next_at: float = 0.0  # the next free refresh slot
    blocked_until: float = 0.0  # Entra's Retry-After: no refresh before it
    queue_at: float = 0.0  # the place last promised to a caller sent away


def slot(at: float, interval: float) -> float:
    """Return the first slot at or after `at` on the tenant's grid of slots.

    A second holds exactly rate slots, the first a tenth of an interval after the whole second:
    a request late on its way by less than the rest of an interval still arrives in the second
    its slot was in, so no second at Entra sees more than the rate (Entra counts per second,
    inferred; the emulator does).
    """
    if interval <= 0:
        return at
    return (math.ceil(at / interval - GRID_OFFSET) + GRID_OFFSET) * interval


def take(pace: Pace, now: float, interval: float, wait: float) -> tuple[Pace, float | None]:
    """Return the pace after taking the next slot and the seconds until it; None: too far."""
    start = slot(max(now, pace.next_at, pace.blocked_until), interval)
    if start - now > wait:
        return pace, None
    if interval <= 0:  # no rate: only Retry-After counts, nothing to write
        return pace, max(0.0, start - now)
    return Pace(start + interval, pace.blocked_until, pace.queue_at), max(0.0, start - now)


def later(pace: Pace, now: float, interval: float) -> tuple[Pace, float]:
    """Return the pace after promising a caller the next place in line, and its delay."""
    start = slot(max(now, pace.next_at, pace.blocked_until), interval)
    if interval <= 0:
        return pace, start - now
    place = max(start, pace.queue_at + interval)
    return Pace(pace.next_at, pace.blocked_until, place), place - now


def block(pace: Pace, now: float, seconds: float) -> Pace:
    """Return the pace after Entra asked for `seconds` without refreshes."""
    return Pace(pace.next_at, max(pace.blocked_until, now + seconds), pace.queue_at)


class PaceStore(Protocol):
    """Where the tenants' paces live: each call is one atomic step on one tenant."""

    def take(self, tenant: str, interval: float, wait: float) -> float | None:
        """Take the tenant's next slot if it comes within wait: seconds until it, else None."""

    def later(self, tenant: str, interval: float) -> float:
        """Promise a caller the tenant's next place in line: seconds until it."""

    def block(self, tenant: str, seconds: float) -> None:
        """Hold the tenant's refreshes for seconds (Entra's Retry-After)."""


class RefreshThrottle:
    """Paces refreshes per tenant and spreads the callers it turns away."""

    def __init__(
        self,
        store: PaceStore,
        rate: float = 0.0,
        wait: float = 1.0,
        *,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._interval = 1.0 / rate if rate > 0 else 0.0  # 0: no rate, only Retry-After
        self._wait = wait
        self._sleep = sleep
        self._jitter = jitter

    def admit(self, tenant: str) -> None:
        """Wait for the tenant's next refresh slot, or raise 503 with a place in line."""
        for _ in range(LATE_RETRIES + 1):
            delay = self._store.take(tenant, self._interval, self._wait)
            if delay is None:
                break
            due = time.monotonic() + delay
            if delay > 0:
                self._sleep(delay)
            # A thread woken late (a busy process) lets its slot go: sent now, it could land
            # beside the next slot's request, or in the next second.
            if time.monotonic() - due <= LATE * self._interval or self._interval <= 0:
                return
        raise self.later(tenant)

    def later(self, tenant: str) -> TemporarilyUnavailable:
        """Return the 503 for a caller turned away: its Retry-After is its place in line."""
        delay = self._store.later(tenant, self._interval)
        if self._interval <= 0:  # no queue to place it in: spread over as long again
            delay += self._jitter() * delay
        else:  # whole seconds: a caller lands somewhere in the second of its place
            delay += self._jitter()
        return TemporarilyUnavailable(retry_after=_seconds(delay))

    def hold_off(self, tenant: str) -> None:
        """Record the Retry-After of the answer Entra just gave this thread, for every instance.

        Only an answer that carried one (a 429, a 503) holds the tenant: a dropped connection or
        a 5xx without it fails that refresh alone (MSAL replays it for that token, pitfall 10).
        """
        seconds = last_retry_after(default=0)
        if seconds > 0:
            self._store.block(tenant, float(seconds))


def _seconds(delay: float) -> int:
    """Return a Retry-After header's whole seconds for a delay: at least 1."""
    return max(1, min(MAX_RETRY_AFTER, math.ceil(delay)))
