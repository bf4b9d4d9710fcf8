"""The load generator's process: keep-alive clients in threads, latencies back in a queue.

Clients speak HTTP/1.1 with http.client and do nothing with an answer but read it: no cookie
jar, no redirect bookkeeping, no proxy lookup. A client library that does those (requests)
costs more CPU per call than the portal's no-op, saturates this process's GIL first, and then
measures itself: more so on answers that set cookies or redirect, like the sign-in. Like a
well-behaved data tool, a client waits as long as Retry-After asks after a 429 or 503.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from typing import Any
from urllib.parse import urlencode
from urllib.parse import urlsplit

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
RETRY_AFTER_CAP = 5.0  # seconds; the portal asks for 1


class Client:
    """One keep-alive connection that reconnects when the server closes it."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def call(
        self, method: str, path: str, headers: dict[str, str], body: str | None = None
    ) -> tuple[http.client.HTTPResponse, bytes]:
        """Send one request and read the whole answer: its status and headers, and its body."""
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                answer = self.conn.getresponse()
                content = answer.read()
                if answer.will_close:
                    self.conn.close()
                return answer, content
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()  # the server dropped an idle keep-alive connection
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def session_form(client: Client, path: str) -> tuple[dict[str, str], str]:
    """Open a page once; return its session cookie header and its form's CSRF field."""
    page, content = client.call("GET", path, {})
    cookie = (page.getheader("Set-Cookie") or "").split(";", 1)[0]
    token = CSRF.search(content.decode()).group(1)  # type: ignore[union-attr]
    return {"Cookie": cookie}, urlencode({"csrf_token": token})


def load_worker(spec: dict[str, Any], out: Any) -> None:
    """Run spec["clients"] threads for spec["seconds"]; put (count, latencies, errors, statuses).

    Clients are closed-loop (the next call as soon as an answer arrives) unless spec["interval"]
    paces each one to a call every that many seconds, as a health probe is.

    errors counts answers whose status is not spec["expect"]; statuses counts every status.
    """
    latencies: list[float] = []
    errors = [0]
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    codes = spec.get("codes") or [None]
    deadline = [0.0]
    # The window starts once every client is connected (and holds its session and form).
    ready = threading.Barrier(
        spec["clients"], action=lambda: deadline.__setitem__(0, time.monotonic() + spec["seconds"])
    )

    def client(n: int) -> None:
        http = Client(spec["base"])
        mine: list[float] = []
        bad = 0
        seen: dict[int, int] = {}
        base_headers: dict[str, str] = {}
        body = None
        if spec.get("csrf_from"):
            base_headers, body = session_form(http, spec["csrf_from"])
            base_headers["Content-Type"] = "application/x-www-form-urlencoded"
        ready.wait()
        i = n
        interval = spec.get("interval")
        # A paced client probes as an orchestrator does: on a fixed tick, staggered from the
        # other clients; a tick missed while an answer was late is dropped, not sent late.
        due = time.perf_counter() + (interval * n / spec["clients"] if interval else 0.0)
        while time.monotonic() < deadline[0]:
            code = codes[i % len(codes)]
            i += spec["clients"]
            headers = base_headers | {"Authorization": f"Bearer {code}"} if code else base_headers
            if interval:
                time.sleep(max(0.0, due - time.perf_counter()))
            started = time.perf_counter()
            answer, _ = http.call(spec["method"], spec["path"], headers, body)
            mine.append(time.perf_counter() - started)
            if interval:
                due += interval * max(1, 1 + int((time.perf_counter() - due) // interval))
            seen[answer.status] = seen.get(answer.status, 0) + 1
            if answer.status != spec["expect"]:
                bad += 1
            if answer.status in (429, 503):  # back off as the API asks, like a well-behaved tool
                time.sleep(min(RETRY_AFTER_CAP, float(answer.getheader("Retry-After") or 0)))
        with lock:
            latencies.extend(mine)
            errors[0] += bad
            for status, count in seen.items():
                statuses[status] = statuses.get(status, 0) + count

    threads = [threading.Thread(target=client, args=(n,)) for n in range(spec["clients"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((len(latencies), latencies, errors[0], statuses))
