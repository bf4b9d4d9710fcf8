"""What an attacker found (issue 16, items 1-3): proxy trust, limits per parsed code, bounded input.

Case ids C46-C50 in docs/security.md.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from app.errors import ConfigError
from app.platform.security import TrustedProxies
from app.platform.security import trusted_networks
from app.web.bearer import parse_authorization
from tests.conftest import fresh_address
from tests.conftest import gunicorn
from tests.conftest import require_service

TEST_REDIS = os.environ.get("PORTAL_TEST_REDIS_URL", "")
STORES = ["memory", "redis"]
MB = 1024 * 1024


def code() -> str:
    """Return a well-formed connection code that belongs to no connection."""
    return "ccp_" + secrets.token_urlsafe(32)


def peer() -> dict[str, str]:
    """Return a fresh socket peer: Redis keeps counts between runs within the minute."""
    return {"REMOTE_ADDR": fresh_address()}


def limits_in(store: str) -> dict[str, str]:
    """Return the settings that keep the limits in this process or in Redis."""
    if store == "memory":
        return {}
    # Skips on a machine without Redis, fails under CI=true (where .ci/run always sets it).
    return {
        "REDIS_URL": require_service(TEST_REDIS, "PORTAL_TEST_REDIS_URL", "run with Redis limits")
    }


def access_lines(text: str) -> list[dict[str, Any]]:
    """Return the portal's access-log lines in captured standard error."""
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "app.access"]


# C46: X-Forwarded-For counts only from a trusted proxy.


@pytest.mark.parametrize("store", STORES)
def test_spoofed_forwarded_for_does_not_escape_the_address_limit(
    make_portal: Callable[..., Flask], store: str, capsys: Any
) -> None:
    portal = make_portal(RATELIMIT_IP="3/minute", RATELIMIT_TOKEN="1000/minute", **limits_in(store))
    client = portal.test_client()
    sprayer = peer()
    capsys.readouterr()
    statuses = [
        client.post(
            "/api/v1/token",
            headers={"Authorization": f"Bearer {code()}", "X-Forwarded-For": f"198.51.100.{n}"},
            environ_base=sprayer,
        ).status_code
        for n in range(5)
    ]
    assert statuses == [401] * 3 + [429] * 2
    remotes = {line["remote"] for line in access_lines(capsys.readouterr().err)}
    assert remotes == {sprayer["REMOTE_ADDR"]}


def test_forwarded_headers_from_an_untrusted_peer_change_nothing() -> None:
    seen = run_middleware(
        ("10.0.0.0/8",),
        REMOTE_ADDR="192.0.2.9",
        HTTP_X_FORWARDED_FOR="198.51.100.1",
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_HOST="evil.example",
    )
    assert (seen["REMOTE_ADDR"], seen["wsgi.url_scheme"], seen["HTTP_HOST"]) == (
        "192.0.2.9", "http", "portal.example"
    )  # fmt: skip


@pytest.mark.parametrize("store", STORES)
def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(
    make_portal: Callable[..., Flask], store: str, capsys: Any
) -> None:
    portal = make_portal(
        RATELIMIT_IP="2/minute",
        RATELIMIT_TOKEN="1000/minute",
        TRUSTED_PROXIES="127.0.0.1/32, ::1",
        **limits_in(store),
    )
    client = portal.test_client()  # its peer is 127.0.0.1: the trusted proxy
    first = f"198.51.100.{secrets.randbelow(250) + 1}"
    second = f"192.0.2.{secrets.randbelow(250) + 1}"

    def call(client_address: str) -> int:
        # The left-most entry is whatever the client sent; the proxy appended the real one.
        forwarded = f"10.6.6.6, {client_address}"
        headers = {"Authorization": f"Bearer {code()}", "X-Forwarded-For": forwarded}
        return client.post("/api/v1/token", headers=headers).status_code

    capsys.readouterr()
    assert [call(first) for _ in range(3)] == [401, 401, 429]
    assert call(second) == 401  # another client behind the same proxy has its own budget
    remotes = [line["remote"] for line in access_lines(capsys.readouterr().err)]
    assert remotes == [first] * 3 + [second]


def test_the_right_most_untrusted_address_is_the_client() -> None:
    seen = run_middleware(
        ("10.0.0.0/8", "2001:db8::/32"),
        REMOTE_ADDR="10.1.1.1",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.4, 10.2.2.2, 2001:db8::5",
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_HOST="consent.example.com",
    )
    assert (seen["REMOTE_ADDR"], seen["wsgi.url_scheme"], seen["HTTP_HOST"]) == (
        "198.51.100.4", "https", "consent.example.com"
    )  # fmt: skip
    garbage = run_middleware(("10.0.0.0/8",), REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="x, y")
    assert garbage["REMOTE_ADDR"] == "10.1.1.1"  # not an address: the proxy stays the peer


def run_middleware(trusted: tuple[str, ...], **environ: str) -> dict[str, Any]:
    """Return the environ the app sees behind TrustedProxies."""
    seen: dict[str, Any] = {}

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(env)
        return []

    base = {"wsgi.url_scheme": "http", "HTTP_HOST": "portal.example"} | environ
    TrustedProxies(app, trusted_networks(trusted))(base, lambda *a: None)  # type: ignore[arg-type]
    return seen


@pytest.mark.parametrize("value", ["10.0.0.0/33", "10.0.0.1/8", "proxy.internal", "10.0.0.0/8;"])
def test_a_bad_trusted_proxy_refuses_start_up(
    make_portal: Callable[..., Flask], value: str
) -> None:
    with pytest.raises(ConfigError, match="PORTAL_TRUSTED_PROXIES"):
        make_portal(TRUSTED_PROXIES=f"127.0.0.1/32,{value}")


# C47: one budget per code, whatever the scheme's case or the trailing spaces.


@pytest.mark.parametrize("store", STORES)
def test_every_spelling_of_a_code_shares_one_budget(
    make_portal: Callable[..., Flask], store: str
) -> None:
    portal = make_portal(RATELIMIT_TOKEN="3/minute", RATELIMIT_IP="1000/minute", **limits_in(store))
    client = portal.test_client()
    one = code()
    spellings = [f"{s} {one}" for s in ("Bearer", "bearer", "BEARER", "bEaReR")] + [
        f"Bearer {one}  "
    ]
    answers = [
        client.post("/api/v1/token", headers={"Authorization": h}, environ_base=peer())
        for h in spellings
    ]
    assert [a.status_code for a in answers] == [401, 401, 401, 429, 429]
    assert answers[-1].headers["Retry-After"]


MALFORMED = [
    "Bearer  {code}",
    "Bearer\t{code}",
    "Bearer",
    "Bearer ",
    "Bearer {code} x",
    "Bearer {code}\u00e9",
    " Bearer {code}",
    "Basic {code}",
    "Bearer {code}" + "A" * 600,
    "",
]


@pytest.mark.parametrize("store", STORES)
def test_malformed_headers_are_refused_before_the_code_budget(
    make_portal: Callable[..., Flask], store: str
) -> None:
    portal = make_portal(RATELIMIT_TOKEN="1/minute", RATELIMIT_IP="1000/minute", **limits_in(store))
    client = portal.test_client()
    one = code()
    well_formed = {"Authorization": f"Bearer {one}"}
    refused = [
        client.post("/api/v1/token", headers={"Authorization": h.format(code=one)})
        for h in MALFORMED
    ]
    unknown = client.post("/api/v1/token", headers=well_formed)
    assert unknown.status_code == 401  # the malformed variants did not spend this code's budget
    assert client.post("/api/v1/token", headers=well_formed).status_code == 429
    # C24: a malformed header looks exactly like an unknown code.
    assert {(a.status_code, a.get_data()) for a in refused} == {(401, unknown.get_data())}
    assert {a.headers["WWW-Authenticate"] for a in refused} == {'Bearer error="invalid_token"'}


@pytest.mark.parametrize("store", STORES)
def test_malformed_headers_count_against_the_address(
    make_portal: Callable[..., Flask], store: str
) -> None:
    portal = make_portal(RATELIMIT_IP="3/minute", RATELIMIT_TOKEN="1000/minute", **limits_in(store))
    client = portal.test_client()
    sprayer = peer()
    statuses = [
        client.post(
            "/api/v1/token",
            headers={"Authorization": MALFORMED[n % len(MALFORMED)].format(code=code())},
            environ_base=sprayer,
        ).status_code
        for n in range(5)
    ]
    assert statuses == [401] * 3 + [429] * 2


def test_a_code_in_the_query_with_a_bad_header_is_still_refused_as_misplaced(
    make_portal: Callable[..., Flask],
) -> None:
    client = make_portal().test_client()
    answer = client.post("/api/v1/token", query_string={"code": code()})
    assert answer.status_code == 400
    assert "Authorization header" in answer.get_json()["error_description"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer ccp_abc", "ccp_abc"),
        ("bEaReR ccp_abc", "ccp_abc"),
        ("Bearer ccp_abc   ", "ccp_abc"),
        ("Bearer a.b-c_d~e+f/g==", "a.b-c_d~e+f/g=="),
        ("Bearer  ccp_abc", None),
        ("Bearer\tccp_abc", None),
        ("Bearer ", None),
        ("Bearer ccp_a=b", None),
        (
            "Bearer ccp_\u212a",
            None,
        ),  # KELVIN SIGN folds to K under a careless case-insensitive match
        ("Bearerccp_abc", None),
        ("Bearer ccp_abc\r\n", None),
    ],
)
def test_parse_authorization(header: str, expected: str | None) -> None:
    assert parse_authorization(header) == expected


@given(st.text(max_size=600))
def test_parse_authorization_returns_a_b64token_or_nothing(header: str) -> None:
    parsed = parse_authorization(header)
    if parsed is not None:
        assert header.rstrip(" ") == header[:7] + parsed
        assert header[:7].lower() == "bearer " and parsed.isascii() and len(header) <= 512


# C48: the header is checked before the body is read; bodies are bounded.


class Body:
    """An input stream that claims a large size and counts the bytes anyone reads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read_bytes = 0
        self._at_end = False

    def read(self, n: int = -1) -> bytes:
        """Hand out up to n bytes of a JSON-ish filler, counting them."""
        n = self.size - self.read_bytes if n is None or n < 0 else n
        n = max(0, min(n, self.size - self.read_bytes))
        self.read_bytes += n
        return b" " * n

    def readline(self, n: int = -1) -> bytes:
        """Read like read(); werkzeug's form parser may ask for lines."""
        return self.read(n)

    def tell(self) -> int:
        """Return the position (the test client measures the stream with tell and seek)."""
        return self.size if self._at_end else self.read_bytes

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move to the end or back to the start, which is all the test client does."""
        self._at_end = whence == 2
        return self.tell()


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize(
    ("authorization", "status", "error"),
    [("Bearer  {code}", 401, "invalid_token"), ("Bearer {code}", 413, "invalid_request")],
)
def test_a_huge_body_with_a_bad_code_is_refused_unread(
    make_portal: Callable[..., Flask],
    content_type: str,
    authorization: str,
    status: int,
    error: str,
) -> None:
    """A malformed header: 401 before the body; an unknown code: 413 from Content-Length alone."""
    client = make_portal().test_client()
    body = Body(100 * MB)
    answer = client.post(
        "/api/v1/token",
        headers={
            "Authorization": authorization.format(code=code()),
            "Content-Length": str(body.size),
        },
        content_type=content_type,
        input_stream=body,
    )
    assert answer.status_code == status
    assert answer.get_json()["error"] == error
    assert body.read_bytes == 0


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_body_over_the_api_limit_gets_413_json_unread(
    make_portal: Callable[..., Flask], entra: Any, content_type: str
) -> None:
    from tests.signins import connect_account

    portal = make_portal(API_MAX_BODY=4096)
    _, real = connect_account(portal, entra, "onedrive")
    body = Body(100 * MB)
    answer = portal.test_client().post(
        "/api/v1/token",
        headers={"Authorization": f"Bearer {real}", "Content-Length": str(body.size)},
        content_type=content_type,
        input_stream=body,
    )
    assert answer.status_code == 413
    assert answer.get_json()["error"] == "invalid_request"
    assert body.read_bytes == 0
    small = portal.test_client().post(
        "/api/v1/token",
        headers={"Authorization": f"Bearer {real}"},
        json={"scope": "https://graph.microsoft.com/Files.Read.All"},
    )
    assert small.status_code == 200


def test_a_form_over_the_page_limit_gets_413_unread(make_portal: Callable[..., Flask]) -> None:
    client = make_portal(FORM_MAX_BODY=65536).test_client()
    body = Body(100 * MB)
    answer = client.post(
        "/l/anything",
        headers={"Content-Length": str(body.size)},
        content_type="application/x-www-form-urlencoded",
        input_stream=body,
    )
    assert answer.status_code == 413
    assert body.read_bytes == 0


@pytest.mark.parametrize("path", ["/api/v1/token", "/api/v1/connection", "/api/v1/tables"])
def test_huge_headers_get_431_json_on_the_api(make_portal: Callable[..., Flask], path: str) -> None:
    client = make_portal().test_client()
    method = client.post if path.endswith("token") else client.get
    answer = method(path, headers={"Authorization": f"Bearer {code()}", "X-Pad": "a" * MB})
    assert answer.status_code == 431
    assert answer.get_json()["error"] == "invalid_request"
    assert answer.headers["Content-Type"] == "application/json"


# C49/C50: the same through a real gunicorn, as `consent-portal serve` runs it.


@pytest.fixture
def served(app: Flask, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """Run `consent-portal serve --workers 1` on the app's database; yield (host, port)."""
    with gunicorn(app, tmp_path, workers=1) as (port, process):
        wait_until_up(port, process)
        yield "127.0.0.1", port


def wait_until_up(port: int, process: subprocess.Popen[bytes]) -> None:
    """Wait for /healthz, failing fast if gunicorn died."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "gunicorn exited during start-up"
        try:
            if exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
                b"HTTP/1.1 200"
            ):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail("gunicorn did not answer /healthz within 60 s")


def exchange(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send a raw request and return the whole answer; bounded by a 10 s socket timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(head + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-request: the answer may already be waiting
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and answer_complete(b"".join(chunks)):
                break
        return b"".join(chunks)


def answer_complete(data: bytes) -> bool:
    """Tell whether data holds a whole answer with a Content-Length."""
    head, _, rest = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(rest) >= int(value)
    return False


@pytest.mark.slow
@pytest.mark.parametrize(
    ("authorization", "status"),
    [("Bearer {code}", b"413 REQUEST ENTITY TOO LARGE"), ("Bearer  {code}", b"401 UNAUTHORIZED")],
)
def test_gunicorn_refuses_a_100_mb_body_from_its_headers(
    served: tuple[str, int], authorization: str, status: bytes
) -> None:
    _, port = served
    head = (
        "POST /api/v1/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Authorization: {authorization.format(code=code())}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {100 * MB}\r\n\r\n"
    ).encode()
    # Only 4 KB of the promised 100 MB are ever sent: an answer proves nobody waited for the rest.
    answer = exchange(port, head, b"{" + b" " * 4095)
    line, _, rest = answer.partition(b"\r\n")
    assert line == b"HTTP/1.1 " + status
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["error"] in (
        "invalid_token",
        "invalid_request",
    )


@pytest.mark.slow
def test_gunicorn_answers_oversized_headers(served: tuple[str, int]) -> None:
    _, port = served
    # Each field within gunicorn's 8190-byte limit, together over the portal's 32 KB: JSON 431.
    pads = "".join(f"X-Pad-{n}: {'a' * 8000}\r\n" for n in range(5))
    head = f"GET /api/v1/connection HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{pads}\r\n"
    answer = exchange(port, head.encode())
    assert answer.startswith(b"HTTP/1.1 431")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "invalid_request"
    # One 1 MB field, or 150 fields: gunicorn's own limits answer before the portal sees the
    # request, in JSON too (gunicorn.conf.py).
    for pads in (f"X-Pad: {'a' * MB}\r\n", "".join(f"X-{n}: a\r\n" for n in range(150))):
        head = f"GET /api/v1/connection HTTP/1.1\r\nHost: x\r\n{pads}\r\n"
        answer = exchange(port, head.encode())
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
        assert b"Content-Type: application/json" in answer.partition(b"\r\n\r\n")[0]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "invalid_request"
    head = f"GET /api/v1/{'a' * 5000} HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = exchange(port, head.encode())
    assert answer.startswith(b"HTTP/1.1 414"), answer[:200]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "invalid_request"
