"""The load generator's process: keep-alive clients in threads, latencies back in a queue."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import requests

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def load_worker(spec: dict[str, Any], out: Any) -> None:
    """Run spec["clients"] threads for spec["seconds"]; put (count, latencies, errors, statuses).

    errors counts answers whose status is not spec["expect"]; statuses counts every status.
    """
    latencies: list[float] = []
    errors = [0]
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + spec["seconds"]
    codes = spec.get("codes") or [None]

    def client(n: int) -> None:
        session = requests.Session()
        mine: list[float] = []
        bad = 0
        seen: dict[int, int] = {}
        form: dict[str, str] = {}
        if spec.get("csrf_from"):
            page = session.get(spec["base"] + spec["csrf_from"], timeout=30).text
            form = {"csrf_token": CSRF.search(page).group(1)}  # type: ignore[union-attr]
        i = n
        while time.monotonic() < deadline:
            code = codes[i % len(codes)]
            i += spec["clients"]
            headers = {"Authorization": f"Bearer {code}"} if code else {}
            started = time.perf_counter()
            answer = session.request(
                spec["method"], spec["base"] + spec["path"], headers=headers, data=form or None,
                allow_redirects=False, timeout=60,
            )  # fmt: skip
            mine.append(time.perf_counter() - started)
            seen[answer.status_code] = seen.get(answer.status_code, 0) + 1
            if answer.status_code != spec["expect"]:
                bad += 1
        with lock:
            latencies.extend(mine)
            errors[0] += bad
            for status, n in seen.items():
                statuses[status] = statuses.get(status, 0) + n

    threads = [threading.Thread(target=client, args=(n,)) for n in range(spec["clients"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((len(latencies), latencies, errors[0], statuses))
