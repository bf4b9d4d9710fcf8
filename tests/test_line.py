"""An export's connection: kept alive across pages, a stale one renewed once, a broken one named."""

from __future__ import annotations

import json

import pytest

from app.data.line import Line
from app.data.line import LineBroken
from app.data.proxy import tls_context
from entra_emulator import Emulator


def discovery(entra: Emulator) -> str:
    """Return a URL of the emulator that needs no token (the faults can name its endpoint)."""
    return f"{entra.base_url}/organizations/v2.0/.well-known/openid-configuration"


def test_pages_share_one_connection_and_a_stale_one_is_renewed_once(entra: Emulator) -> None:
    line = Line(entra.base_url, tls_context(str(entra.ca_path)), timeout=10)
    try:
        for _ in range(2):
            line.send(discovery(entra), {"Accept": "application/json"})
            answer = line.receive()
            assert answer.status == 200 and json.loads(answer.body)["issuer"]
        # The resource drops the kept connection (as an idle timeout does): sent again, once.
        entra.control(
            "POST", "/_emulator/faults", json={"endpoint": "discovery", "drop": True, "count": 1}
        )
        line.send(discovery(entra), {})
        assert line.receive().status == 200
        statuses = [r["status"] for r in entra.request_log(endpoint="discovery")]
        assert statuses == [200, 200, "dropped", 200]
    finally:
        line.close()


def test_a_fresh_connection_that_breaks_is_not_tried_again(entra: Emulator) -> None:
    line = Line(entra.base_url, tls_context(str(entra.ca_path)), timeout=10)
    fault = {"endpoint": "discovery", "drop": True, "count": 2}
    entra.control("POST", "/_emulator/faults", json=fault)
    line.send(discovery(entra), {})
    with pytest.raises(LineBroken):
        line.receive()
    assert [r["status"] for r in entra.request_log(endpoint="discovery")] == ["dropped"]
    with pytest.raises(LineBroken, match="another origin"):
        line.send("https://elsewhere.test/x", {})
