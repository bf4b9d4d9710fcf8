"""Microsoft's managed user-consent policies: the published list, the mail client variant."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests

from entra_emulator import Emulator
from entra_emulator import SignInStopped
from entra_emulator import config
from entra_emulator.managed_consent import MAIL_CLIENTS
from entra_emulator.managed_consent import RECOMMENDED_EXCLUSIONS
from entra_emulator.testing import callback_query
from tests.entra_emulator.conftest import CcaFactory
from tests.entra_emulator.conftest import Connect

PORTAL_ID = "5f1c7a3e-8d2b-4c6e-9a1f-0b7d3e2c4a61"
REDIRECT = "http://127.0.0.1:5000/auth/callback"
GRAPH = "https://graph.microsoft.com"
POLICY = "/_emulator/tenants/contoso.test/policy"
# One example per group of Microsoft's list (the 2025 files and sites, the late-2025 Outlook
# additions, the 2026 additions), then more of each.
EXAMPLES = {
    "2025 files and sites": ["Files.Read.All", "Sites.ReadWrite.All"],
    "late-2025 Outlook mail and calendar": ["Mail.ReadWrite", "Calendars.ReadWrite"],
    "2026 contacts, tasks and people": [
        "Contacts.ReadWrite",
        "Contacts.Read.Shared",
        "Contacts.ReadWrite.Shared",
        "People.Read",
        "Tasks.Read",
        "Tasks.ReadWrite",
        "Tasks.Read.Shared",
        "Tasks.ReadWrite.Shared",
    ],
}
BLOCKED = [(group, name) for group, names in EXAMPLES.items() for name in names]


def authorize_url(emu: Emulator, *names: str) -> str:
    """Return an authorize URL like the one MSAL builds, for these Graph permissions."""
    scopes = " ".join(f"{GRAPH}/{name}" for name in names)
    query = {
        "client_id": PORTAL_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": f"{scopes} offline_access openid profile",
        "state": "s1",
        "nonce": "n1",
    }
    return f"{emu.browser_url}/organizations/oauth2/v2.0/authorize?{urlencode(query)}"


def stopped_at(emu: Emulator, url: str, username: str) -> str | None:
    """Return the page that stops the sign-in (need-admin, ...), or None when a code came."""
    try:
        answer = callback_query(emu.sign_in(url, username))
    except SignInStopped as stopped:
        return str(stopped.page)
    assert answer.get("code"), answer
    return None


def test_every_group_of_the_published_list_has_an_example() -> None:
    assert set(EXAMPLES) == set(RECOMMENDED_EXCLUSIONS)
    for group, names in EXAMPLES.items():
        assert set(names) <= set(RECOMMENDED_EXCLUSIONS[group])
    assert config.load().settings["recommended_2025_exclusions"] == [
        name for names in RECOMMENDED_EXCLUSIONS.values() for name in names
    ]


@pytest.mark.parametrize(("group", "name"), BLOCKED)
def test_recommended_2025_refuses_user_consent_to_the_list(
    emu: Emulator, group: str, name: str
) -> None:
    """contoso (recommended-2025): each listed permission needs an admin (90094)."""
    url = authorize_url(emu, name)
    with pytest.raises(SignInStopped) as stopped:
        emu.sign_in(url, "user@contoso.test")
    assert (stopped.value.page, stopped.value.code) == ("need-admin", 90094), group
    assert stopped_at(emu, url, "user@fabrikam.test") is None  # legacy: the user may


def test_recommended_2025_lets_users_grant_what_is_not_listed(emu: Emulator) -> None:
    """Contacts.Read and Calendars.Read? Only Contacts.Read is off Microsoft's list."""
    assert stopped_at(emu, authorize_url(emu, "Contacts.Read"), "user@contoso.test") is None
    grants = emu.control("GET", "/_emulator/state").json()["grants"]
    assert [(g["principal"], g["scopes"]) for g in grants] == [
        ("user@contoso.test", ["Contacts.Read"])
    ]
    url = authorize_url(emu, "Contacts.Read", "Calendars.Read")
    assert stopped_at(emu, url, "user@contoso.test") == "need-admin"  # one listed: all wait


def test_the_list_stays_a_setting(emu: Emulator) -> None:
    emu.control("POST", "/_emulator/settings", json={"recommended_2025_exclusions": ["Tasks.Read"]})
    assert stopped_at(emu, authorize_url(emu, "Files.Read.All"), "user@contoso.test") is None
    assert stopped_at(emu, authorize_url(emu, "Tasks.Read"), "user@contoso.test") == "need-admin"


def test_allow_consent_apps_keeps_the_list_for_other_apps(emu: Emulator) -> None:
    """The mail client policy lets its apps have the list; the portal is not one of them."""
    answer = emu.control("POST", POLICY, json={"user_consent_policy": "allow-consent-apps"})
    assert answer.json()["policy"] == "allow-consent-apps"
    assert answer.json()["allow_consent_apps"] == list(MAIL_CLIENTS)
    url = authorize_url(emu, "Mail.Read", "Tasks.Read")
    assert stopped_at(emu, url, "user@contoso.test") == "need-admin"
    assert stopped_at(emu, authorize_url(emu, "Contacts.Read"), "user@contoso.test") is None


def test_allow_consent_apps_lets_users_grant_the_list_to_its_apps(emu: Emulator) -> None:
    """With the portal named among the tenant's allowed apps, its users grant the list."""
    emu.control(
        "POST",
        POLICY,
        json={"user_consent_policy": "allow-consent-apps", "allow_consent_apps": [PORTAL_ID]},
    )
    url = authorize_url(emu, "Mail.Read", "Calendars.ReadWrite", "Tasks.ReadWrite")
    assert stopped_at(emu, url, "user@contoso.test") is None
    (grant,) = emu.control("GET", "/_emulator/state").json()["grants"]
    assert grant["principal"] == "user@contoso.test"
    assert sorted(grant["scopes"]) == ["Calendars.ReadWrite", "Mail.Read", "Tasks.ReadWrite"]
    # Still no user consent to what needs an admin by definition, for any app.
    admin_only = authorize_url(emu, "Directory.Read.All")
    assert stopped_at(emu, admin_only, "user@contoso.test") == "need-admin"
    # recommended-2025 alone has no mail client policy: the same app is refused again.
    emu.control("POST", POLICY, json={"user_consent_policy": "recommended-2025"})
    assert stopped_at(emu, authorize_url(emu, "Tasks.Read"), "user@contoso.test") == "need-admin"


def test_graph_reports_both_managed_policies(
    emu: Emulator, http: requests.Session, make_cca: CcaFactory, connect: Connect
) -> None:
    emu.control("POST", POLICY, json={"user_consent_policy": "allow-consent-apps"})
    scopes = [f"{GRAPH}/Policy.Read.All"]
    token = connect(make_cca(), "admin@contoso.test", scopes, redeem=scopes)["access_token"]
    policy = http.get(
        f"{emu.base_url}/graph/v1.0/policies/authorizationPolicy",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert policy["defaultUserRolePermissions"]["permissionGrantPoliciesAssigned"] == [
        "ManagePermissionGrantsForSelf.microsoft-user-default-recommended",
        "ManagePermissionGrantsForSelf.microsoft-user-default-allow-consent-apps",
    ]


def test_the_world_file_takes_the_variant_and_its_apps() -> None:
    world = config.build(
        {
            "tenants": [
                {
                    "domains": ["a.test"],
                    "user_consent_policy": "allow-consent-apps",
                    "allow_consent_apps": [PORTAL_ID.upper()],
                },
                {"domains": ["b.test"], "user_consent_policy": "allow-consent-apps"},
            ]
        }
    )
    a, b = world.tenants.values()
    assert (a.policy, a.consent_apps) == ("allow-consent-apps", [PORTAL_ID])
    assert b.consent_apps == list(MAIL_CLIENTS)
