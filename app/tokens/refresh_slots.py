"""How many upstream refreshes one process runs at once, and the short line that waits for one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager

from app.errors import TemporarilyUnavailable


class RefreshSlots:
    """At most `count` refreshes at once and as many callers waiting; everyone else 503."""

    # Refresh traffic then holds at most 2 x count threads, never those that probes and cached
    # tokens need.

    def __init__(
        self, count: int, wait: float = 1.0, counted: Callable[[str], None] | None = None
    ) -> None:
        self._counted = counted or _ignore  # the metrics hook: a refused caller counts as "busy"
        self._slots = threading.BoundedSemaphore(count)  # configuration refuses count < 1
        self._line = threading.BoundedSemaphore(count)
        self._wait = wait

    @contextmanager
    def hold(self, busy: Callable[[], TemporarilyUnavailable] | None = None) -> Iterator[None]:
        """Hold a slot: take a free one, else wait up to `wait` in line, else 503 at once.

        `busy` makes the 503 (the tenant's throttle gives the caller its place in line).
        """
        refuse = busy or _retry_soon
        if not self._slots.acquire(blocking=False):
            if not self._line.acquire(blocking=False):  # the line is full too
                self._counted("busy")
                raise refuse()
            try:
                free = self._slots.acquire(timeout=self._wait)
            finally:
                self._line.release()
            if not free:
                self._counted("busy")
                raise refuse()
        try:
            yield
        finally:
            self._slots.release()


def _retry_soon() -> TemporarilyUnavailable:
    """Return the 503 for a caller who found no slot: retry in a second."""
    return TemporarilyUnavailable(retry_after=1)


def _ignore(_result: str) -> None:
    """Count nothing (no metrics hook was given)."""
