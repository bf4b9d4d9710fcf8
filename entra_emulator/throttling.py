"""Service protection at /token: at most a set rate per (client_id, tenant), else 429.

Microsoft documents that Entra throttles an app that calls the token endpoint too often and
answers 429 with Retry-After, but publishes no rate for it (docs/emulator-fidelity.md). The
emulator therefore takes the rate from `settings.token_requests_per_second` (0, the default, is
off) and counts what it admitted in each whole second of the clock (inferred).
"""

from __future__ import annotations

import math
import time

from entra_emulator.errors import EntraError
from entra_emulator.state import State


def check(state: State, client_id: str, tenant: str, now: float | None = None) -> None:
    """Count one token request of this app in this tenant; raise 429 over the rate."""
    rate = int(state.settings.get("token_requests_per_second") or 0)
    if rate <= 0:
        return
    now = time.time() if now is None else now
    second = int(now)
    with state.lock:
        key = (client_id, tenant.lower())
        counted_in, count = state.token_windows.get(key, (second, 0))
        if counted_in != second:
            counted_in, count = second, 0
        if count < rate:
            state.token_windows[key] = (second, count + 1)  # a refused request is not counted
            return
    wait = second + 1 - now
    error = EntraError(90033, status=429)
    error.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    raise error
