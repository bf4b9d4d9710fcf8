"""Every AADSTS behaviour the emulator claims: where it surfaces and what it says."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
import requests

from entra_emulator import Emulator
from entra_emulator import SignInStopped
from entra_emulator.errors import CATALOGUE
from entra_emulator.testing import callback_query
from entra_emulator.testing import parse

PORTAL_ID = "5f1c7a3e-8d2b-4c6e-9a1f-0b7d3e2c4a61"
SECRET = "dev-only-portal-secret-not-for-production"
REDIRECT = "http://127.0.0.1:5000/auth/callback"
USER_READ = "https://graph.microsoft.com/User.Read"
VERIFIER = "v" * 43


@dataclass
class Seen:
    surface: str  # json, page or redirect
    code: int | None
    error: str | None
    text: str
    status: int = 0


def _session(emu: Emulator) -> requests.Session:
    """Return a client that trusts the emulator's CA."""
    s = requests.Session()
    s.trust_env = False
    s.verify = str(emu.ca_path)
    return s


def _json(response: requests.Response) -> Seen:
    """Return what a token-endpoint style JSON error says."""
    body = response.json()
    return Seen(
        "json",
        body["error_codes"][0],
        body["error"],
        body["error_description"],
        response.status_code,
    )


def _redirect_or_page(response: requests.Response) -> Seen:
    """Return a redirect's error or a page's AADSTS code, fetched without a person."""
    if response.is_redirect:
        answer = callback_query(response.headers["Location"])
        return _from_query(answer)
    page = parse(response.text)
    return Seen("page", int(page.code) if page.code else None, None, " ".join(page.text))


def _from_query(answer: dict[str, str]) -> Seen:
    """Return what an error redirect says."""
    found = re.match(r"AADSTS(\d+)", answer.get("error_description", ""))
    return Seen(
        "redirect",
        int(found.group(1)) if found else None,
        answer.get("error"),
        answer.get("error_description", ""),
    )


def _person(emu: Emulator, url: str, username: str, **kwargs: object) -> Seen:
    """Return where a scripted person ends: a page or a redirect to the app."""
    try:
        return _from_query(callback_query(emu.sign_in(url, username, **kwargs)))  # type: ignore[arg-type]
    except SignInStopped as stopped:
        return Seen("page", stopped.code, None, stopped.text)


def _authorize(emu: Emulator, tenant: str = "organizations", **params: str) -> str:
    """Return an authorize URL."""
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
    )
    query = {
        "client_id": PORTAL_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": f"{USER_READ} offline_access openid profile",
        "state": "t",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    } | params
    return f"{emu.browser_url}/{tenant}/oauth2/v2.0/authorize?{urlencode(query)}"


def _token(emu: Emulator, tenant: str = "organizations", **fields: str) -> Seen:
    """Return what the token endpoint answers to a form."""
    body = {"client_id": PORTAL_ID, "client_secret": SECRET} | fields
    body = {k: v for k, v in body.items() if v != ""}
    return _json(_session(emu).post(f"{emu.base_url}/{tenant}/oauth2/v2.0/token", data=body))


def _code(
    emu: Emulator, username: str = "user@fabrikam.test", tenant: str = "organizations"
) -> str:
    """Return a fresh authorization code for the portal app."""
    return callback_query(emu.sign_in(_authorize(emu, tenant), username))["code"]


def _redeem(emu: Emulator, code: str, tenant: str = "organizations", **fields: str) -> Seen:
    """Redeem a code with the usual fields, overridden by fields."""
    base = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "scope": f"{USER_READ} offline_access openid",
        "code_verifier": VERIFIER,
    }
    return _token(emu, tenant, **(base | fields))


def _refresh_token(emu: Emulator) -> str:
    """Return a refresh token of user@fabrikam.test."""
    body = (
        _session(emu)
        .post(
            f"{emu.base_url}/organizations/oauth2/v2.0/token",
            data={
                "client_id": PORTAL_ID,
                "client_secret": SECRET,
                "grant_type": "authorization_code",
                "code": _code(emu),
                "redirect_uri": REDIRECT,
                "code_verifier": VERIFIER,
                "scope": f"{USER_READ} offline_access",
            },
        )
        .json()
    )
    return str(body["refresh_token"])


def _control(emu: Emulator, path: str, body: dict[str, object]) -> None:
    """Call the control plane and insist it worked."""
    assert emu.control("POST", path, json=body).ok


def t_replayed(emu: Emulator) -> Seen:
    code = _code(emu)
    first = _session(emu).post(
        f"{emu.base_url}/organizations/oauth2/v2.0/token",
        data={
            "client_id": PORTAL_ID,
            "client_secret": SECRET,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER,
            "scope": USER_READ,
        },
    )
    assert first.ok
    return _redeem(emu, code)


def t_expired_code(emu: Emulator) -> Seen:
    _control(emu, "/_emulator/settings", {"code_lifetime_seconds": 0})
    return _redeem(emu, _code(emu))


def t_revoked(emu: Emulator) -> Seen:
    rt = _refresh_token(emu)
    _control(emu, "/_emulator/refresh-tokens/revoke", {})
    return _token(emu, grant_type="refresh_token", refresh_token=rt, scope=USER_READ)


def t_inactive(emu: Emulator) -> Seen:
    rt = _refresh_token(emu)
    _control(emu, "/_emulator/settings", {"refresh_token_lifetime_seconds": -1})
    return _token(emu, grant_type="refresh_token", refresh_token=rt, scope=USER_READ)


def t_no_consent(emu: Emulator) -> Seen:
    rt = _refresh_token(emu)
    return _token(
        emu,
        grant_type="refresh_token",
        refresh_token=rt,
        scope="https://graph.microsoft.com/Mail.Read",
    )


def t_access(**access: object) -> Callable[[Emulator], Seen]:
    """Return a trigger: a refresh after a Conditional Access outcome is set for the user."""

    def trigger(emu: Emulator) -> Seen:
        rt = _refresh_token(emu)
        _control(emu, "/_emulator/users/user@fabrikam.test/conditional-access", access)
        return _token(emu, grant_type="refresh_token", refresh_token=rt, scope=USER_READ)

    return trigger


def t_msa_storage(emu: Emulator) -> Seen:
    url = _authorize(emu, "common", scope="https://graph.microsoft.com/Files.Read offline_access")
    code = callback_query(emu.sign_in(url, "pat@outlook.test"))["code"]
    rt = (
        _session(emu)
        .post(
            f"{emu.base_url}/common/oauth2/v2.0/token",
            data={
                "client_id": PORTAL_ID,
                "client_secret": SECRET,
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": VERIFIER,
                "scope": "https://graph.microsoft.com/Files.Read offline_access",
            },
        )
        .json()["refresh_token"]
    )
    return _token(
        emu,
        "common",
        grant_type="refresh_token",
        refresh_token=rt,
        scope="https://storage.azure.com/user_impersonation",
    )


def t_disabled_token(emu: Emulator) -> Seen:
    rt = _refresh_token(emu)
    _control(emu, "/_emulator/tenants/fabrikam.test/enterprise-app", {"account_enabled": False})
    return _token(emu, grant_type="refresh_token", refresh_token=rt, scope=USER_READ)


def t_expired_secret(emu: Emulator) -> Seen:
    answer = emu.control(
        "POST", "/_emulator/apps", json={"redirect_uris": [REDIRECT], "expired_secrets": ["old"]}
    )
    return _token(
        emu, client_id=answer.json()["client_id"], client_secret="old", grant_type="refresh_token"
    )


def t_no_reply_address(emu: Emulator) -> Seen:
    client_id = emu.control("POST", "/_emulator/apps", json={"redirect_uris": []}).json()[
        "client_id"
    ]
    return _redirect_or_page(
        requests.get(_authorize(emu, client_id=client_id), allow_redirects=False)
    )


def t_get(url_of: Callable[[Emulator], str]) -> Callable[[Emulator], Seen]:
    """Return a trigger that fetches a URL without a person."""
    return lambda emu: _redirect_or_page(requests.get(url_of(emu), allow_redirects=False))


def t_person(
    username: str, url_of: Callable[[Emulator], str], **kw: object
) -> Callable[[Emulator], Seen]:
    """Return a trigger that sends a scripted person to a URL."""
    return lambda emu: _person(emu, url_of(emu), username, **kw)


SITES = "https://graph.microsoft.com/Sites.Read.All openid"
ADMIN_V2 = urlencode({"client_id": PORTAL_ID, "redirect_uri": REDIRECT, "scope": USER_READ})
# (code, surface, error value or None for pages, trigger)
CASES: list[tuple[int, str, str | None, Callable[[Emulator], Seen]]] = [
    (
        90002,
        "json",
        "invalid_tenant",
        lambda e: _json(
            _session(e).get(f"{e.base_url}/x.test/v2.0/.well-known/openid-configuration")
        ),
    ),
    (90002, "page", None, t_get(lambda e: _authorize(e, "x.test"))),
    (
        700016,
        "page",
        None,
        t_get(lambda e: _authorize(e, client_id="00000000-0000-0000-0000-000000000001")),
    ),
    (
        50011,
        "page",
        None,
        t_get(lambda e: _authorize(e, redirect_uri="http://127.0.0.1:5000/other")),
    ),
    (900971, "page", None, t_get(lambda e: _authorize(e, redirect_uri=""))),
    (500113, "page", None, t_no_reply_address),
    (
        700054,
        "redirect",
        "unsupported_response_type",
        t_get(lambda e: _authorize(e, response_type="id_token")),
    ),
    (900144, "redirect", "invalid_request", t_get(lambda e: _authorize(e, scope=""))),
    (
        70011,
        "redirect",
        "invalid_scope",
        t_get(lambda e: _authorize(e, scope="https://graph.microsoft.com/Nope.Read")),
    ),
    (
        500011,
        "redirect",
        "invalid_resource",
        t_get(lambda e: _authorize(e, scope="https://nothing.example/x")),
    ),
    (50058, "redirect", "login_required", t_get(lambda e: _authorize(e, prompt="none"))),
    (65004, "redirect", "access_denied", t_person("user@fabrikam.test", _authorize, accept=False)),
    (
        65004,
        "redirect",
        "access_denied",
        t_person("user@contoso.test", lambda e: _authorize(e, scope=SITES), cancel=True),
    ),
    (
        65004,
        "redirect",
        "consent_required",
        t_person(
            "admin@contoso.test",
            lambda e: f"{e.browser_url}/contoso.test/v2.0/adminconsent?{ADMIN_V2}",
            accept=False,
        ),
    ),
    (90094, "page", None, t_person("user@contoso.test", lambda e: _authorize(e, scope=SITES))),
    (
        90095,
        "page",
        None,
        t_person(
            "assigned@northwind.test",
            lambda e: _authorize(
                e, "northwind.test", scope="https://storage.azure.com/user_impersonation"
            ),
            justification="x",
        ),
    ),
    (
        90093,
        "page",
        None,
        t_person(
            "user@contoso.test",
            lambda e: f"{e.browser_url}/contoso.test/v2.0/adminconsent?{ADMIN_V2}",
        ),
    ),
    (90130, "page", None, t_get(lambda e: f"{e.browser_url}/common/v2.0/adminconsent?{ADMIN_V2}")),
    (50105, "page", None, t_person("user@northwind.test", _authorize)),
    (500208, "page", None, t_person("pat@outlook.test", _authorize)),
    (50020, "page", None, t_person("user@contoso.test", lambda e: _authorize(e, "fabrikam.test"))),
    (50126, "page", None, t_person("user@fabrikam.test", _authorize, password="wrong")),
    (50034, "page", None, t_person("nobody@fabrikam.test", _authorize)),
    (54005, "json", "invalid_grant", t_replayed),
    (70008, "json", "invalid_grant", t_expired_code),
    (501481, "json", "invalid_grant", lambda e: _redeem(e, _code(e), code_verifier="w" * 43)),
    (
        50011,
        "json",
        "invalid_grant",
        lambda e: _redeem(e, _code(e), redirect_uri="http://localhost:5000/auth/callback"),
    ),
    (700005, "json", "invalid_grant", lambda e: _redeem(e, _code(e), "contoso.test")),
    (
        28000,
        "json",
        "invalid_scope",
        lambda e: _redeem(
            e, _code(e), scope=f"{USER_READ} https://storage.azure.com/user_impersonation"
        ),
    ),
    (65001, "json", "invalid_grant", t_no_consent),
    (50173, "json", "invalid_grant", t_revoked),
    (700082, "json", "invalid_grant", t_inactive),
    (50076, "json", "invalid_grant", t_access(mfa="required")),
    (50079, "json", "invalid_grant", t_access(mfa="registration")),
    (53003, "json", "interaction_required", t_access(blocked=True)),
    (
        9002313,
        "json",
        "invalid_grant",
        lambda e: _token(e, grant_type="refresh_token", refresh_token="garbage"),
    ),
    (70011, "json", "invalid_scope", t_msa_storage),
    (7000112, "json", "unauthorized_client", t_disabled_token),
    (
        700016,
        "json",
        "unauthorized_client",
        lambda e: _token(e, client_id="00000000-0000-0000-0000-000000000001"),
    ),
    (
        7000218,
        "json",
        "invalid_client",
        lambda e: _token(e, client_secret="", grant_type="refresh_token"),
    ),
    (
        7000215,
        "json",
        "invalid_client",
        lambda e: _token(e, client_secret="wrong", grant_type="refresh_token"),
    ),
    (7000222, "json", "invalid_client", t_expired_secret),
    (
        700027,
        "json",
        "invalid_client",
        lambda e: _token(
            e,
            client_secret="",
            client_assertion="a.b.c",
            client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
    ),
    (70003, "json", "unsupported_grant_type", lambda e: _token(e, grant_type="password")),
    (900144, "json", "invalid_request", lambda e: _token(e, grant_type="authorization_code")),
    (
        50059,
        "json",
        "invalid_request",
        lambda e: _token(
            e, grant_type="client_credentials", scope="https://graph.microsoft.com/.default"
        ),
    ),
    (
        1002012,
        "json",
        "invalid_scope",
        lambda e: _token(e, "contoso.test", grant_type="client_credentials", scope=USER_READ),
    ),
    (
        900561,
        "json",
        "invalid_request",
        lambda e: _json(_session(e).get(f"{e.base_url}/common/oauth2/v2.0/token")),
    ),
]
STATUS = {"invalid_client": 401}


@pytest.mark.parametrize(
    ("code", "surface", "error", "trigger"),
    CASES,
    ids=[f"{code}-{surface}-{i}" for i, (code, surface, _, _) in enumerate(CASES)],
)
def test_aadsts(
    emu: Emulator, code: int, surface: str, error: str | None, trigger: Callable[[Emulator], Seen]
) -> None:
    seen = trigger(emu)
    assert (seen.surface, seen.code) == (surface, code), seen.text
    assert seen.error == error
    message = CATALOGUE[code][1].split("{")[0][:40]
    assert message in seen.text
    if surface == "json":
        assert seen.status == STATUS.get(error or "", 400)
