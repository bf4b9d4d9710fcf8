"""The consent engine through the pages: policies, roles, admin approval and admin consent."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests

from entra_emulator import Emulator
from entra_emulator import SignInStopped
from entra_emulator.testing import callback_query

PORTAL_ID = "5f1c7a3e-8d2b-4c6e-9a1f-0b7d3e2c4a61"
REDIRECT = "http://127.0.0.1:5000/auth/callback"
SITES = "https://graph.microsoft.com/Sites.Read.All"
USER_READ = "https://graph.microsoft.com/User.Read"
STORAGE = "https://storage.azure.com/user_impersonation"


def authorize_url(emu: Emulator, tenant: str = "organizations", **params: str) -> str:
    """Return an authorize URL like the one MSAL builds."""
    query = {
        "client_id": PORTAL_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": f"{USER_READ} offline_access openid profile",
        "state": "s1",
        "nonce": "n1",
        "client_info": "1",
    } | params
    return f"{emu.browser_url}/{tenant}/oauth2/v2.0/authorize?{urlencode(query)}"


def grants(emu: Emulator) -> list[dict[str, object]]:
    """Return the grants of the control plane's state."""
    result: list[dict[str, object]] = emu.control("GET", "/_emulator/state").json()["grants"]
    return result


def test_user_consent_stores_a_principal_grant(emu: Emulator) -> None:
    url = emu.sign_in(authorize_url(emu), "user@fabrikam.test")
    answer = callback_query(url)
    assert answer["state"] == "s1" and answer["code"] and answer["session_state"]
    (grant,) = grants(emu)
    assert grant["principal"] == "user@fabrikam.test"
    assert grant["consent_type"] == "Principal"


def test_declining_consent_redirects_access_denied_65004(emu: Emulator) -> None:
    answer = callback_query(emu.sign_in(authorize_url(emu), "user@fabrikam.test", accept=False))
    assert answer["error"] == "access_denied"
    assert answer["error_description"].startswith("AADSTS65004:")
    assert "\r\nTrace ID: " in answer["error_description"]
    assert answer["state"] == "s1"
    assert grants(emu) == []


def test_recommended_policy_sends_users_to_need_admin_approval(emu: Emulator) -> None:
    url = authorize_url(emu, scope=f"{SITES} openid profile offline_access")
    with pytest.raises(SignInStopped) as stopped:
        emu.sign_in(url, "user@contoso.test")
    assert (stopped.value.page, stopped.value.code) == ("need-admin", 90094)
    answer = callback_query(emu.sign_in(url, "user@contoso.test", cancel=True))
    assert answer["error"] == "access_denied"
    assert answer["error_subcode"] == "cancel"
    assert answer["error_description"].startswith("AADSTS65004:")


def test_recommended_policy_still_allows_user_read(emu: Emulator) -> None:
    assert "code" in callback_query(emu.sign_in(authorize_url(emu), "user@contoso.test"))


def test_admin_consents_for_the_organization(emu: Emulator) -> None:
    url = authorize_url(emu, scope=f"{SITES} openid profile offline_access")
    emu.sign_in(url, "admin@contoso.test", on_behalf_of_org=True)
    (grant,) = grants(emu)
    assert grant["principal"] is None and grant["scopes"] == ["Sites.Read.All"]
    assert "code" in callback_query(emu.sign_in(url, "user@contoso.test"))  # now covered


def test_approval_required_records_a_request(emu: Emulator) -> None:
    url = authorize_url(emu, scope=f"{STORAGE} openid profile offline_access")
    with pytest.raises(SignInStopped) as stopped:
        emu.sign_in(url, "assigned@northwind.test", justification="quarterly reports")
    assert stopped.value.code == 90095
    (pending,) = emu.control("GET", "/_emulator/state").json()["consent_requests"]
    assert pending["justification"] == "quarterly reports"
    assert pending["scopes"] == [STORAGE]
    back = callback_query(emu.sign_in(url, "assigned@northwind.test", cancel=True))
    assert (back["error"], back["error_subcode"]) == ("access_denied", "cancel")
    decided = emu.control("POST", f"/_emulator/consent-requests/{pending['id']}/approve").json()
    assert decided["status"] == "approved"
    assert "code" in callback_query(emu.sign_in(url, "assigned@northwind.test"))


def test_assignment_required_blocks_unassigned_users_with_50105(emu: Emulator) -> None:
    with pytest.raises(SignInStopped) as stopped:
        emu.sign_in(authorize_url(emu), "user@northwind.test")
    assert stopped.value.code == 50105


def test_disabled_app_shows_7000112(emu: Emulator) -> None:
    emu.control(
        "POST", "/_emulator/tenants/fabrikam.test/enterprise-app", json={"account_enabled": False}
    )
    with pytest.raises(SignInStopped) as stopped:
        emu.sign_in(authorize_url(emu), "user@fabrikam.test")
    assert stopped.value.code == 7000112


def test_personal_account_is_refused_for_storage(emu: Emulator) -> None:
    url = authorize_url(emu, "common", scope=f"{STORAGE} openid profile offline_access")
    with pytest.raises(SignInStopped) as stopped:
        emu.sign_in(url, "pat@outlook.test")
    assert stopped.value.code == 500208
    assert "You can't sign in here with a personal account" in stopped.value.text


def test_personal_account_signs_in_at_common_for_mail(emu: Emulator) -> None:
    url = authorize_url(emu, "common", scope="https://graph.microsoft.com/Mail.Read openid")
    answer = callback_query(emu.sign_in(url, "pat@outlook.test"))
    assert "code" in answer


def test_personal_account_is_refused_at_organizations(emu: Emulator) -> None:
    with pytest.raises(SignInStopped) as stopped:
        emu.sign_in(authorize_url(emu), "pat@outlook.test")
    assert stopped.value.code == 500208


def test_session_is_reused_and_prompt_none_answers_without_pages(emu: Emulator) -> None:
    browser = requests.Session()
    emu.sign_in(authorize_url(emu), "user@fabrikam.test", session=browser)
    silent = browser.get(authorize_url(emu, prompt="none"), allow_redirects=False)
    assert "code=" in silent.headers["Location"]
    ungranted = authorize_url(emu, prompt="none", scope="https://graph.microsoft.com/Mail.Read")
    refused = callback_query(browser.get(ungranted, allow_redirects=False).headers["Location"])
    assert refused["error"] == "consent_required"
    assert refused["error_description"].startswith("AADSTS65001:")
    nobody = callback_query(
        requests.get(authorize_url(emu, prompt="none"), allow_redirects=False).headers["Location"]
    )
    assert nobody["error"] == "login_required"


def test_select_account_shows_the_picker(emu: Emulator) -> None:
    browser = requests.Session()
    emu.sign_in(authorize_url(emu), "user@fabrikam.test", session=browser)
    page = browser.get(authorize_url(emu, prompt="select_account"))
    assert 'data-page="picker"' in page.text and "user@fabrikam.test" in page.text
    answer = emu.sign_in(
        authorize_url(emu, prompt="select_account"), "admin@fabrikam.test", session=browser
    )
    assert "code" in callback_query(answer)


def test_form_post_auto_submits_the_same_fields(emu: Emulator) -> None:
    url = emu.sign_in(authorize_url(emu, response_mode="form_post"), "user@fabrikam.test")
    assert url.startswith(REDIRECT) and "code" in callback_query(url)


def test_wrong_password_stops_with_50126(emu: Emulator) -> None:
    with pytest.raises(SignInStopped) as stopped:
        emu.sign_in(authorize_url(emu), "user@fabrikam.test", password="nope")
    assert stopped.value.code == 50126


def test_v2_admin_consent_grants_tenant_wide(emu: Emulator) -> None:
    query = {"client_id": PORTAL_ID, "redirect_uri": REDIRECT, "scope": SITES, "state": "a1"}
    url = f"{emu.browser_url}/contoso.test/v2.0/adminconsent?{urlencode(query)}"
    answer = callback_query(emu.sign_in(url, "admin@contoso.test"))
    tenant_id = emu.control("GET", "/_emulator/state").json()["tenants"][0]["id"]
    assert answer == {"admin_consent": "True", "tenant": tenant_id, "scope": SITES, "state": "a1"}
    (grant,) = grants(emu)
    assert grant["principal"] is None


def test_v2_admin_consent_refuses_non_admins_with_90093(emu: Emulator) -> None:
    query = {"client_id": PORTAL_ID, "redirect_uri": REDIRECT, "scope": SITES}
    url = f"{emu.browser_url}/contoso.test/v2.0/adminconsent?{urlencode(query)}"
    with pytest.raises(SignInStopped) as stopped:
        emu.sign_in(url, "user@contoso.test")
    assert stopped.value.code == 90093


def test_v2_admin_consent_decline_keeps_admin_consent_true(emu: Emulator) -> None:
    query = {"client_id": PORTAL_ID, "redirect_uri": REDIRECT, "scope": SITES, "state": "a2"}
    url = f"{emu.browser_url}/organizations/v2.0/adminconsent?{urlencode(query)}"
    answer = callback_query(emu.sign_in(url, "appadmin@contoso.test", accept=False))
    assert answer["admin_consent"] == "True"
    assert answer["error"] == "consent_required"
    assert answer["error_description"].startswith("AADSTS65004:")


def test_v1_admin_consent_covers_every_configured_permission(emu: Emulator) -> None:
    query = {"client_id": PORTAL_ID, "redirect_uri": REDIRECT, "state": "v1"}
    url = f"{emu.browser_url}/northwind.test/adminconsent?{urlencode(query)}"
    answer = callback_query(emu.sign_in(url, "admin@northwind.test"))
    assert "scope" not in answer and answer["admin_consent"] == "True"
    resources = {g["resource"] for g in grants(emu)}
    assert resources == {
        "https://graph.microsoft.com",
        "https://contoso.crm.dynamics.com",
        "https://storage.azure.com",
    }


def test_logout_returns_only_to_registered_uris(emu: Emulator) -> None:
    browser = requests.Session()
    emu.sign_in(authorize_url(emu), "user@fabrikam.test", session=browser)
    out = f"{emu.browser_url}/common/oauth2/v2.0/logout"
    back = browser.get(out, params={"post_logout_redirect_uri": REDIRECT}, allow_redirects=False)
    assert back.headers["Location"] == REDIRECT + ""
    page = browser.get(authorize_url(emu))
    assert 'data-page="signin-email"' in page.text  # the session is gone
    elsewhere = browser.get(out, params={"post_logout_redirect_uri": "https://evil.test/"})
    assert "You signed out of your account" in elsewhere.text
