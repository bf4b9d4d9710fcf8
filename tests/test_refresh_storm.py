"""A refresh storm: 500 expired connections on two instances, Entra down and back.

Callers honour Retry-After. Every connection refreshes exactly once, none is marked broken, and
the portal keeps to its configured rate (below Entra's limit), which the two instances share
through Redis or the database, so the emulator never answers 429 (issue 13, item 6).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from bisect import bisect_left
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select

from bench.rows import seed_refreshable
from entra_emulator import Emulator
from tests.conftest import TEST_REDIS
from tests.conftest import UNLIMITED
from tests.conftest import forget_refresh_paces
from tests.conftest import make_app
from tests.conftest import require_service
from tests.signins import connect_account

CONNECTIONS = 500
STORM_REDIS_DB = 13  # the tests use 15, the bench 14
RATE = 16  # the portal's refreshes per second for the tenant
# A request sent in its slot reaches Entra a little later (a busy machine, TLS), so arrivals
# counted per second can exceed the pace by the slots sent in the last JITTER of the second
# before: a timing the test cannot hold. The emulator's limit (Entra's) therefore sits that far
# above the pace, as docs/operations.md advises operators to set it.
JITTER = 0.25
LIMIT = RATE + math.ceil(JITTER * RATE)  # 20 refreshes per second
OUTAGE = 3.0  # seconds of 503 + Retry-After from the token endpoint
CALLERS = 16  # threads per instance, each calling for whichever connection is due next
SHARED = ("DATABASE_URL", "REDIS_URL", "AUTHORITY_HOST", "CLIENT_ID", "CLIENT_SECRET", "CA_FILE",
          "RESOURCE_URLS", "CONNECTOR_SCOPES", "ENCRYPTION_KEYS", "HASH_KEY", "SECRET_KEY",
          "PUBLIC_URL", "REFRESH_RATE", "REFRESH_CONCURRENCY")  # fmt: skip


@pytest.fixture(params=["redis", "database"])
def storm_app(request: pytest.FixtureRequest, tmp_path: Path, entra: Emulator) -> Any:
    """Yield a portal pacing refreshes through Redis, or through its database."""
    settings: dict[str, Any] = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}",
        "REFRESH_RATE": RATE,
        # Slots for the rate x (wait + latency) refreshes in flight, over two instances.
        "REFRESH_CONCURRENCY": 12,
    }
    if request.param == "redis":
        url = require_service(TEST_REDIS, "PORTAL_TEST_REDIS_URL", "pace refreshes in Redis")
        # Its own Redis database: other test runs on db 15 pace the same demo tenant.
        settings["REDIS_URL"] = urlsplit(url)._replace(path=f"/{STORM_REDIS_DB}").geturl()
        forget_refresh_paces(settings["REDIS_URL"])
    portal = make_app(tmp_path, dict(entra.portal_settings()) | settings)
    yield portal
    from tests.conftest import dispose

    dispose(portal)


def seeded(portal: Flask, entra: Emulator) -> list[str]:
    """Connect one account with a 1-second token, then copy it into CONNECTIONS expired ones."""
    from app.platform import extensions

    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 1})
    template, _ = connect_account(portal, entra)
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 3599})
    with portal.app_context():
        engine = extensions.db.engine
        return seed_refreshable(engine, extensions.vault(), template, CONNECTIONS, "storm", entra)


# One portal instance: its own process (own GIL) and callers, sharing the pace with the other.
INSTANCE = r"""
import heapq, json, sys, threading, time
from app import create_app
settings, codes = json.loads(sys.argv[1]), json.load(open(sys.argv[2]))
start_at, callers = float(sys.argv[3]), int(sys.argv[4])
app = create_app(settings)
due, lock, statuses, bad = [(start_at, c) for c in codes], threading.Lock(), {}, []
left = [len(codes)]
def call():
    client = app.test_client()
    while True:
        with lock:
            if left[0] == 0 or bad:
                return
            when, code = heapq.heappop(due) if due else (None, "")
        if when is None:
            time.sleep(0.05)
            continue
        time.sleep(max(0.0, when - time.time()))
        answer = client.post("/api/v1/token", headers={"Authorization": f"Bearer {code}"})
        with lock:
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            if answer.status_code == 200:
                left[0] -= 1
            elif answer.status_code == 503 and answer.headers.get("Retry-After"):
                heapq.heappush(due, (time.time() + int(answer.headers["Retry-After"]), code))
            else:
                bad.append(f"{answer.status_code} {answer.get_data(as_text=True)[:200]}")
threads = [threading.Thread(target=call) for _ in range(callers)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"statuses": statuses, "bad": bad, "left": left[0], "ended": time.time()}))
"""


@pytest.mark.slow
def test_a_refresh_storm_drains_at_the_rate_and_loses_nothing(
    storm_app: Flask, entra: Emulator, tmp_path: Path
) -> None:
    from app.models import REAUTHENTICATION_REQUIRED
    from app.models import Connection
    from app.platform import extensions

    codes = seeded(storm_app, entra)
    entra.control("POST", "/_emulator/settings", json={"token_requests_per_second": LIMIT})
    entra.control("DELETE", "/_emulator/requests")
    outage = {"endpoint": "token", "status": 503, "retry_after": 2}
    assert entra.control("POST", "/_emulator/faults", json=outage).status_code == 201
    settings = {key: storm_app.config[key] for key in SHARED if storm_app.config.get(key)}
    settings |= {"TESTING": True, "INSTANCE_PATH": storm_app.instance_path} | UNLIMITED
    start_at = time.time() + 5  # both instances imported and built by then
    processes = []
    for n, half in enumerate((codes[::2], codes[1::2])):
        listed = tmp_path / f"codes{n}.json"
        listed.write_text(json.dumps(half))
        command = [sys.executable, "-c", INSTANCE, json.dumps(settings), str(listed),
                   str(start_at), str(CALLERS)]  # fmt: skip
        processes.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
    time.sleep(max(0.0, start_at + OUTAGE - time.time()))
    entra.control("DELETE", "/_emulator/faults")  # Entra is back
    results = [
        json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in processes
    ]
    drained = max(r["ended"] for r in results) - start_at
    statuses = sum((Counter(r["statuses"]) for r in results), Counter())

    assert [r["bad"] for r in results] == [[], []] and [r["left"] for r in results] == [0, 0]
    log = entra.request_log(endpoint="token", grant_type="refresh_token")
    done = Counter(e["refresh_token_fingerprint"] for e in log if e["status"] == 200)
    assert len(done) == CONNECTIONS and set(done.values()) == {1}  # each exactly once
    per_second = Counter(int(e["received"]) for e in log)
    assert max(per_second.values()) <= LIMIT, (sorted(per_second.items()), statuses)
    assert [e for e in log if e["status"] == 429] == []  # the portal kept to Entra's limit
    # ...at its own pace: no five seconds see more than five seconds of slots, give or take the
    # same jitter (a pace of LIMIT would put 100 refreshes into them).
    arrivals = sorted(e["received"] for e in log if e["status"] == 200)
    busiest = max(bisect_left(arrivals, start + 5) - i for i, start in enumerate(arrivals))
    assert busiest <= 5 * RATE + math.ceil(JITTER * RATE), (busiest, sorted(per_second.items()))
    with storm_app.app_context(), extensions.session_factory() as db:
        broken = db.scalar(
            select(func.count())
            .select_from(Connection)
            .where(Connection.status == REAUTHENTICATION_REQUIRED)
        )
    assert broken == 0
    # The drain after the outage takes about connections / rate, not a pile-up's retries.
    assert drained < OUTAGE + 2 + 1.3 * CONNECTIONS / RATE, (drained, statuses)
