"""An app's secrets and certificates expire (7000222, 700027) and Graph lists them with dates."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import requests

from app.identity.transport import certificate_credential
from entra_emulator import Emulator
from entra_emulator import config
from tests.entra_emulator.conftest import CcaFactory
from tests.test_keys import self_signed

GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]
REDIRECTS = ["http://127.0.0.1/auth/callback"]


def register(emu: Emulator, **body: Any) -> dict[str, Any]:
    """Register an app through the control plane; return its answer."""
    answer = emu.control("POST", "/_emulator/apps", json={"redirect_uris": REDIRECTS} | body)
    assert answer.status_code == 201, answer.text
    registered: dict[str, Any] = answer.json()
    return registered


def expire(emu: Emulator, client_id: str, **which: Any) -> None:
    """End one of an app's credentials now."""
    answer = emu.control("POST", f"/_emulator/apps/{client_id}/expiry", json=which)
    assert answer.status_code == 200, answer.text


def test_an_expired_secret_answers_7000222_and_the_other_still_works(
    emu: Emulator, make_cca: CcaFactory
) -> None:
    app = register(emu, secrets=[{"display_name": "old"}, {"display_name": "new"}])
    old, new = app["client_secrets"]
    cid = app["client_id"]
    assert "access_token" in make_cca("contoso.test", cid, old).acquire_token_for_client(
        GRAPH_DEFAULT
    )
    expire(emu, cid, secret=old)
    refused = make_cca("contoso.test", cid, old).acquire_token_for_client(GRAPH_DEFAULT)
    assert refused["error"] == "invalid_client"
    assert refused["error_codes"] == [7000222]
    assert refused["error_description"].startswith(
        f"AADSTS7000222: The provided client secret keys for app '{cid}' are expired. Visit the "
        "Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or "
        "consider using certificate credentials for added security: https://aka.ms/certCreds."
    )
    wrong = make_cca("contoso.test", cid, "not-" + new).acquire_token_for_client(GRAPH_DEFAULT)
    assert wrong["error_codes"] == [7000215]
    assert "access_token" in make_cca("contoso.test", cid, new).acquire_token_for_client(
        GRAPH_DEFAULT
    )


def test_an_expired_certificate_is_refused_with_700027(
    emu: Emulator, make_cca: CcaFactory, tmp_path: Path
) -> None:
    cert_path, key_path, pem = self_signed(tmp_path)
    app = register(emu, certificates=[{"pem": pem, "display_name": "portal 2026"}])
    credential = certificate_credential(str(cert_path), str(key_path))
    cid = app["client_id"]
    assert "access_token" in make_cca("contoso.test", cid, credential).acquire_token_for_client(
        GRAPH_DEFAULT
    )
    expire(emu, cid, certificate=pem)
    refused = make_cca("contoso.test", cid, credential).acquire_token_for_client(GRAPH_DEFAULT)
    assert refused["error"] == "invalid_client"
    assert refused["error_codes"] == [700027]
    assert "The key used is expired." in refused["error_description"]


def test_graph_lists_the_apps_credentials_without_their_values(
    emu: Emulator, make_cca: CcaFactory, http: requests.Session, tmp_path: Path
) -> None:
    _cert, _key, pem = self_signed(tmp_path)
    app = register(
        emu,
        home_tenant="contoso.test",
        application_permissions=["Application.Read.All"],
        secrets=[{"display_name": "rotation 2", "expires_in": 86400}],
        certificates=[pem],
    )
    cid, secret = app["client_id"], app["client_secret"]
    token = make_cca("contoso.test", cid, secret).acquire_token_for_client(GRAPH_DEFAULT)
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    listed = http.get(
        f"{emu.base_url}/graph/v1.0/applications",
        params={"$filter": f"appId eq '{cid}'"},
        headers=headers,
    )
    assert listed.status_code == 200, listed.text
    assert secret not in listed.text
    (found,) = listed.json()["value"]
    assert found["appId"] == cid
    (password,) = found["passwordCredentials"]
    assert password["displayName"] == "rotation 2"
    assert password["hint"] == secret[:3]
    assert password["secretText"] is None
    end = dt.datetime.fromisoformat(password["endDateTime"].replace("Z", "+00:00"))
    assert abs((end - dt.datetime.now(dt.UTC)).total_seconds() - 86400) < 60
    assert set(password) >= {"keyId", "displayName", "hint", "endDateTime", "startDateTime"}
    (key,) = found["keyCredentials"]
    assert key["type"] == "AsymmetricX509Cert" and key["usage"] == "Verify"
    assert key["endDateTime"].startswith(
        (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()[:8]
    )
    one = http.get(f"{emu.base_url}/graph/v1.0/applications(appId='{cid}')", headers=headers)
    assert one.status_code == 200, one.text
    assert one.json()["passwordCredentials"] == found["passwordCredentials"]


def test_graph_applications_needs_application_read_all(
    emu: Emulator, make_cca: CcaFactory, http: requests.Session
) -> None:
    app = register(emu, home_tenant="contoso.test")
    token = make_cca("contoso.test", app["client_id"], app["client_secret"])
    result = token.acquire_token_for_client(GRAPH_DEFAULT)
    listed = http.get(
        f"{emu.base_url}/graph/v1.0/applications",
        headers={"Authorization": f"Bearer {result['access_token']}"},
    )
    assert listed.status_code == 403
    assert listed.json()["error"]["code"] == "Authorization_RequestDenied"


def test_world_file_secrets_may_carry_an_end_date() -> None:
    data = tomllib.loads(config.DEFAULT_CONFIG.read_text(encoding="utf-8"))
    data["apps"].append(
        {
            "client_id": "0a6e1b1c-1d4b-4b8e-9a52-3c1f2e7d9b10",
            "secrets": [
                "plain-secret-value",
                {"value": "dated-secret-value", "end_date_time": dt.datetime(2026, 1, 31, 12)},
            ],
            "expired_secrets": ["gone-secret-value"],
        }
    )
    app = config.build(data).apps["0a6e1b1c-1d4b-4b8e-9a52-3c1f2e7d9b10"]
    assert app.secrets == ["plain-secret-value", "dated-secret-value"]
    dated = app.credentials["dated-secret-value"]
    assert dated.end == dt.datetime(2026, 1, 31, 12, tzinfo=dt.UTC).timestamp()
    assert app.credentials["gone-secret-value"].expired()
    assert not app.credentials["plain-secret-value"].expired()
