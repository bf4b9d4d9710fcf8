"""Before any redirect: which scopes a tenant's users may grant themselves (issue 13, item 7)."""

from __future__ import annotations

import html
import re

import pytest
from flask import Flask

from app.consent import user_consent
from app.consent.user_consent import ADMIN
from app.consent.user_consent import DEPENDS
from app.consent.user_consent import USER
from entra_emulator import Emulator
from tests.signins import People
from tests.signins import Web

GRAPH = "https://graph.microsoft.com"
RECOMMENDED = "ManagePermissionGrantsForSelf.microsoft-user-default-recommended"
MAIL_CLIENTS = "ManagePermissionGrantsForSelf.microsoft-user-default-allow-consent-apps"
LEGACY = "ManagePermissionGrantsForSelf.microsoft-user-default-legacy"
LOW = "ManagePermissionGrantsForSelf.microsoft-user-default-low"
OWNED = "ManagePermissionGrantsForOwnedResource.microsoft-dynamically-managed-permissions-for-team"


def run_readiness(admin: Web) -> str:
    """Sign the admin in for the readiness check and return the readiness page's text."""
    admin.sign_in()
    answer = admin.post("/admin/readiness", "/admin/readiness")
    assert admin.callback(admin.entra_answer(answer.headers["Location"])).status_code == 303
    return admin.page("/admin/readiness")


def row(page: str, name: str) -> str:
    """Return one readiness row's text."""
    found = re.search(rf"<th scope=\"row\">{re.escape(name)}</th>.*?</tr>", page, re.S)
    assert found, f"no row {name!r}"
    return html.unescape(found.group(0))


def check_access(user: Web, connector: str) -> str:
    """Return the text of the Access check section of a connector's page."""
    page = user.page(f"/connectors/{connector}?check=1")
    section = page.split('id="check-heading"')[1].split("</section>")[0]
    return html.unescape(re.sub(r"<[^>]+>", "", section))


# -- the published list, in the portal's own copy --------------------------------------------


@pytest.mark.parametrize(
    ("scope", "who"),
    [
        (f"{GRAPH}/Files.Read.All", ADMIN),
        (f"{GRAPH}/sites.read.all", ADMIN),  # permission names ignore case
        (f"{GRAPH}/Mail.Read", ADMIN),
        (f"{GRAPH}/Calendars.ReadWrite", ADMIN),
        (f"{GRAPH}/Tasks.ReadWrite.Shared", ADMIN),
        (f"{GRAPH}/People.Read", ADMIN),
        ("https://outlook.office365.com/IMAP.AccessAsUser.All", ADMIN),
        (f"{GRAPH}/Contacts.Read", USER),
        (f"{GRAPH}/User.Read", USER),
        ("https://contoso.crm.dynamics.com/user_impersonation", USER),
        ("https://storage.azure.com/user_impersonation", USER),
        ("https://storage.azure.com/Mail.Read", USER),  # the list names Graph's and Exchange's
        (f"{GRAPH}/Directory.Read.All", ADMIN),  # admin-only by definition
    ],
)
def test_the_managed_policy_splits_by_the_published_list(scope: str, who: str) -> None:
    for assigned in ([RECOMMENDED], [RECOMMENDED, MAIL_CLIENTS, OWNED]):
        (found,) = user_consent.split(assigned, [scope]).scopes
        assert found.who == who, (assigned, scope)


def test_each_policy_setting_says_who_grants() -> None:
    sites, dynamics = (
        f"{GRAPH}/Sites.Read.All",
        "https://contoso.crm.dynamics.com/user_impersonation",
    )

    def who(assigned: list[str], **kw: bool) -> list[str]:
        return [s.who for s in user_consent.split(assigned, [sites, dynamics], **kw).scopes]

    assert who([LEGACY]) == [USER, USER]
    assert who([LEGACY], assignment_required=True) == [ADMIN, ADMIN]
    assert who([]) == who([OWNED]) == [ADMIN, ADMIN]  # user consent off
    assert who([RECOMMENDED]) == [ADMIN, USER]
    assert who([MAIL_CLIENTS]) == [ADMIN, ADMIN]  # six named mail apps only
    assert who([LOW]) == [DEPENDS, DEPENDS]
    assert who([RECOMMENDED, LOW]) == [DEPENDS, USER]  # one policy allowing is enough
    assert who(["ManagePermissionGrantsForSelf.contoso-custom"]) == [DEPENDS, DEPENDS]
    label = user_consent.policy_label
    assert label([RECOMMENDED, MAIL_CLIENTS]) == "Let Microsoft manage your consent settings"
    assert label([OWNED]) == "Do not allow user consent"


# -- the readiness page (staff) --------------------------------------------------------------


def test_readiness_on_recommended_2025_names_what_needs_an_admin(
    app: Flask, person: People
) -> None:
    """contoso: SharePoint, OneDrive and Outlook need an admin; Dynamics and Storage do not."""
    page = run_readiness(person("admin@contoso.test"))
    sharepoint = row(page, "Who can allow SharePoint")
    assert "Needs an admin: Sites.Read.All (on Microsoft's list since July 2025" in sharepoint
    assert "Grant for organization for SharePoint" in sharepoint
    assert "Needs an admin: Files.Read.All" in row(page, "Who can allow OneDrive")
    outlook = row(page, "Who can allow Outlook")
    assert "Needs an admin: Mail.Read (on Microsoft's list since late 2025" in outlook
    for name in ("Dynamics 365", "Azure Storage"):
        found = row(page, f"Who can allow {name}")
        assert "Users may grant themselves: user_impersonation" in found and "OK" in found
        assert "Needs an admin" not in found
    assert "Let Microsoft manage your consent settings" in row(page, "User consent policy")


def test_readiness_on_legacy_lets_users_grant_everything(app: Flask, person: People) -> None:
    page = run_readiness(person("admin@fabrikam.test"))
    for name, scope in (("SharePoint", "Sites.Read.All"), ("Outlook", "Mail.Read")):
        found = row(page, f"Who can allow {name}")
        assert f"Users may grant themselves: {scope}" in found and "Needs an admin" not in found
    assert "Allow user consent for apps" in row(page, "User consent policy")


def test_readiness_reads_the_mail_client_variant(
    app: Flask, person: People, entra: Emulator
) -> None:
    """allow-consent-apps: the portal is not one of the six mail apps, so nothing changes."""
    entra.control(
        "POST",
        "/_emulator/tenants/contoso.test/policy",
        json={"user_consent_policy": "allow-consent-apps"},
    )
    page = run_readiness(person("admin@contoso.test"))
    assert "Let Microsoft manage your consent settings" in row(page, "User consent policy")
    assert "Needs an admin: Mail.Read" in row(page, "Who can allow Outlook")
    assert "Users may grant themselves: user_impersonation" in row(
        page, "Who can allow Dynamics 365"
    )


def test_a_granted_connector_needs_nobody(app: Flask, person: People, entra: Emulator) -> None:
    entra.control(
        "POST",
        "/_emulator/grants",
        json={
            "tenant": "contoso.test",
            "client_id": "5f1c7a3e-8d2b-4c6e-9a1f-0b7d3e2c4a61",
            "resource": GRAPH,
            "scopes": ["Sites.Read.All"],
            "principal": None,
        },
    )
    page = run_readiness(person("admin@contoso.test"))
    assert "Granted for everyone" in row(page, "Who can allow SharePoint")


# -- Check access (end users) ----------------------------------------------------------------


def test_check_access_on_recommended_2025_names_the_admins_part(app: Flask, person: People) -> None:
    user = person("user@contoso.test")
    user.sign_in()
    assert "Who can allow it" not in check_access(user, "sharepoint")  # nothing known yet
    run_readiness(person("admin@contoso.test"))
    sharepoint = check_access(user, "sharepoint")
    assert "Who can allow it" in sharepoint
    assert "Your IT administrator has to allow this" in sharepoint
    assert "Read items in all site collections (Sites.Read.All)" in sharepoint
    assert "You can allow" not in sharepoint
    assert "Let Microsoft manage your consent settings" in sharepoint
    outlook = check_access(user, "outlook")
    assert "Your IT administrator has to allow this" in outlook and "(Mail.Read)" in outlook
    dynamics = check_access(user, "dynamics")
    assert "You can allow it yourself" in dynamics and "(user_impersonation)" in dynamics
    assert "IT administrator has to allow" not in dynamics


def test_check_access_on_legacy_says_the_user_may(app: Flask, person: People) -> None:
    run_readiness(person("admin@fabrikam.test"))
    user = person("user@fabrikam.test")
    user.sign_in()
    sharepoint = check_access(user, "sharepoint")
    assert "You can allow it yourself" in sharepoint
    assert "Read items in all site collections (Sites.Read.All)" in sharepoint
    assert "IT administrator has to allow" not in sharepoint
    assert "Allow user consent for apps" in sharepoint
    other = person("user@contoso.test")  # another tenant's check says nothing of contoso's
    other.sign_in()
    assert "Who can allow it" not in check_access(other, "sharepoint")
