"""The emulator's HTTP: connections stay open between requests, as Entra keeps them."""

from __future__ import annotations

import http.client
import ssl
from contextlib import closing
from urllib.parse import urlencode
from urllib.parse import urlsplit

from entra_emulator import Emulator

TOKEN_BODY = urlencode({"client_id": "5f1c7a3e-8d2b-4c6e-9a1f-0b7d3e2c4a61", "grant_type": "x"})
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def back_channel(emu: Emulator) -> http.client.HTTPSConnection:
    """Open one TLS connection to the emulator's HTTPS port."""
    parts = urlsplit(emu.base_url)
    context = ssl.create_default_context(cafile=str(emu.ca_path))
    return http.client.HTTPSConnection(str(parts.hostname), parts.port, context=context, timeout=10)


def ask(
    conn: http.client.HTTPConnection, method: str, path: str, body: str | None = None
) -> http.client.HTTPResponse:
    """Send one request on this connection and read the whole answer."""
    conn.request(method, path, body=body, headers=FORM if body is not None else {})
    answer = conn.getresponse()
    answer.read()
    return answer


def test_one_tls_connection_carries_discovery_and_token_calls(emu: Emulator) -> None:
    discovery = "/contoso.test/v2.0/.well-known/openid-configuration"
    with closing(back_channel(emu)) as conn:
        first = ask(conn, "GET", discovery)
        sock = conn.sock
        assert sock is not None and not first.will_close
        refused = ask(conn, "POST", "/contoso.test/oauth2/v2.0/token", TOKEN_BODY)
        again = ask(conn, "GET", discovery)
        assert [first.status, again.status] == [200, 200]
        assert refused.status == 401 and not refused.will_close, "the form body was read whole"
        assert conn.sock is sock, "no second connection (and no second TLS handshake)"


def test_browser_pages_keep_the_connection_too(emu: Emulator) -> None:
    parts = urlsplit(emu.browser_url)
    authorize = "/organizations/oauth2/v2.0/authorize"
    with closing(http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=10)) as conn:
        answers = [ask(conn, "GET", authorize)]  # no client_id: an error page
        sock = conn.sock
        answers += [ask(conn, "POST", authorize, "a=b"), ask(conn, "GET", authorize)]
        assert [a.status for a in answers] == [400, 400, 400]
        assert not any(a.will_close for a in answers)
        assert sock is not None and conn.sock is sock


def test_a_chunked_upload_is_answered_and_then_closed(emu: Emulator) -> None:
    with closing(back_channel(emu)) as conn:
        conn.request(
            "POST",
            "/contoso.test/oauth2/v2.0/token",
            body=iter([TOKEN_BODY.encode()]),
            headers=FORM | {"Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        answer = conn.getresponse()
        assert answer.status == 401 and answer.read()
        assert answer.will_close
