"""Every page of the portal, for each role, at 390 and 1280 px: no sideways scroll, axe clean.

The page list is checked against the app's URL map, so a new page cannot be forgotten. With
PORTAL_SCREENSHOTS=<dir> set, the run also writes the README's screenshots into that folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import Page

from app.consent import records
from app.models import Connection
from app.platform import extensions
from app.platform.extensions import db
from entra_emulator import Emulator
from tests.browser.conftest import LivePortal
from tests.signins import accept_if_asked
from tests.signins import connect_account
from tests.signins import entra_sign_in
from tests.signins import staff_id

pytestmark = pytest.mark.browser
WIDTHS = (320, 390, 1280)  # the narrowest phones, a common one, a desktop
ROLES = ("anonymous", "user", "admin", "helpdesk")
SIGN_INS = {"user": "user@fabrikam.test", "admin": "admin@fabrikam.test"}
SIGN_INS["helpdesk"] = "helpdesk@contoso.test"
FABRIKAM = "7a2e4c6b-9d1f-4b3a-8e5c-0f2d4b6a8c1e"
CONTOSO = "3c9f6a1e-2b7d-4e58-9a0c-6d1f2e3b4a5c"
CONNECTORS = ("sharepoint", "onedrive", "outlook", "dynamics", "azure-storage")
SERIOUS = ("serious", "critical")
LINK_KINDS = ("authenticate", "reconnect", "admin_consent", "consent_request")

# GET endpoints that answer no HTML page: files, JSON, CSV, metrics, and the OAuth callback
# (a redirect target whose outcome pages the flows' own browser tests reach).
NOT_PAGES = {
    "static",
    "health.healthz",
    "health.readyz",
    "health.prometheus",
    "api.connection",
    "api.openapi",
    "data.proxy",
    "data.proxy_to_host",
    "data.tables",
    "data.table",
    "admin.audit_csv",
    "auth.callback",
}

# Each role's pages: (endpoint, path). {placeholders} come from the data the test seeds;
# endpoint None is the error page (an unknown address).
PAGES: dict[str, list[tuple[str | None, str]]] = {
    "anonymous": [
        ("connectors.index", "/"),
        *[("connectors.show", f"/connectors/{c}") for c in CONNECTORS],
        ("connectors.show", "/connectors/onedrive?check=1"),
        ("auth.sign_in", "/sign-in"),
        ("auth.signed_out", "/signed-out"),
        ("outcomes.aadsts", "/help/aadsts/65001"),
        ("landing.show", "/l/{link_token}"),
        ("landing.show", "/l/no-such-link"),
        ("connections.reconnect_page", "/connections/{connection}/reconnect"),
        (None, "/no-such-page"),
    ],
    "user": [
        ("connectors.index", "/"),
        *[("connectors.show", f"/connectors/{c}?check=1") for c in CONNECTORS],
        ("connections.index", "/connections"),
        ("connections.index", "/connections?show=revoked"),
        ("connections.reconnect_page", "/connections/{connection}/reconnect"),
        ("connections.revoke", "/connections/{connection}/revoke"),
        ("connections.remove", "/connections/{revoked}/remove"),
        ("connections.regenerate", "/connections/{connection}/regenerate"),
        ("consent.index", "/consent-requests"),
        ("consent.show", "/consent-requests/{request}"),
        ("consent.try_again_page", "/consent-requests/{approved}/try-again"),
        ("auth.account", "/account"),
        (None, "/no-such-page"),
    ],
    "admin": [
        ("admin.index", "/admin"),
        ("admin.audit", "/admin/audit"),
        ("admin.audit", "/admin/audit?event=consent_request.created"),
        ("grant.confirm_withdraw", "/admin/connectors/onedrive/withdraw"),
        ("admin.access_trail", "/admin/access"),
        ("readiness.show", "/admin/readiness"),
        ("admin.credentials_page", "/admin/credentials"),
        ("consent.show", "/consent-requests/{request}"),
        ("connections.index", "/connections"),
        ("auth.account", "/account"),
    ],
    "helpdesk": [
        ("helpdesk.index", "/helpdesk"),
        *[("helpdesk.index", f"/helpdesk?kind={kind}") for kind in LINK_KINDS],
        ("helpdesk.show_link", "/helpdesk/links/{link}"),
        ("helpdesk.troubleshoot", "/helpdesk/troubleshoot"),
        ("helpdesk_users.lookup", "/helpdesk/users"),
        ("helpdesk_users.lookup", "/helpdesk/users?q=user@contoso.test"),
    ],
}
# The README's screenshots, written only when PORTAL_SCREENSHOTS names a folder: (role, width,
# path) -> file name; "code" is the code page of a new connection.
SCREENSHOTS = {
    ("anonymous", 1280, "/connectors/onedrive?check=1"): "authenticate.png",
    ("user", 1280, "code"): "connection-code.png",
    ("user", 1280, "/connections"): "connections.png",
    ("user", 390, "/connections"): "phone-connections.png",
}
NOT_FOUND = {"/l/no-such-link"}  # the dead-link page answers 404, as it should
AXE = Axe()


def test_the_list_covers_every_html_page(portal: LivePortal) -> None:
    """A new GET page fails here until it is added to PAGES (or, if not HTML, to NOT_PAGES)."""
    served = {r.endpoint for r in portal.app.url_map.iter_rules() if "GET" in (r.methods or ())}
    listed = {endpoint for pages in PAGES.values() for endpoint, _ in pages}
    listed |= {endpoint for _, endpoint, _ in JOURNEYS}
    assert served - NOT_PAGES - listed == set(), "pages missing from PAGES"
    assert listed - {None} - served == set(), "PAGES names endpoints the app no longer has"


def problems_on(page: Page, width: int) -> list[str]:
    """Return what is wrong with the page shown now: sideways scroll, serious axe findings."""
    found = []
    # A page reached by a redirect chain may be measured before its stylesheet applies (an
    # unstyled <pre> is as wide as its longest line): measure the page as people see it.
    page.wait_for_load_state("load")
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    if widths[0] > widths[1]:
        wide = page.evaluate(WIDEST_ELEMENT)
        found.append(f"{page.url} at {width} px: scrollWidth {widths[0]} > {widths[1]} ({wide})")
    results = AXE.run(page).response
    for violation in results["violations"]:
        if violation["impact"] in SERIOUS:
            nodes = "; ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
            found.append(f"{page.url} at {width} px: axe {violation['id']} on {nodes}")
    return found


# Names the element that sticks out furthest to the right, so a failure says what to fix.
WIDEST_ELEMENT = """() => {
  let worst = null, right = document.documentElement.clientWidth;
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect().right;
    if (r > right) { right = r; worst = el; }
  }
  return worst ? `${worst.tagName.toLowerCase()}.${worst.className} ends at ${right}` : 'none';
}"""


def sign_in(page: Page, portal_url: str, username: str) -> None:
    """Sign in to the portal in the browser through the emulator's pages."""
    page.goto(f"{portal_url}/sign-in")
    page.get_by_label("Email address (optional)").fill(username)
    page.get_by_role("button", name="Sign in with Microsoft").click()
    entra_sign_in(page)
    accept_if_asked(page)
    page.get_by_role("button", name="Sign out").wait_for()


def connect_in_browser(page: Page, portal_url: str, username: str) -> None:
    """Connect OneDrive as this person; the browser ends on the code page."""
    page.goto(f"{portal_url}/connectors/onedrive")
    page.get_by_role("button", name="Authenticate").click()
    entra_sign_in(page, username)
    accept_if_asked(page)
    page.get_by_label("Connection code").wait_for()


def seed(app: Flask, entra: Emulator) -> dict[str, str]:
    """Make the rows the role's pages show: connections, a revoked one, a request, a link."""
    connection, _ = connect_account(app, entra, "onedrive", "user@fabrikam.test")
    revoked, _ = connect_account(app, entra, "outlook", "user@fabrikam.test")
    with app.app_context():
        extensions.connection_store().revoke(revoked)
        row = db.session.get(Connection, connection)
        assert row is not None
        who = records.Requester(row.oid, row.username, row.tenant_id, "Our reports live there")
        request, _ = records.open_request(db.session, who, "sharepoint", ["Sites.Read.All"], 7)
        approved, _ = records.open_request(db.session, who, "dynamics", ["user_impersonation"], 7)
        records.approve(db.session, approved, "admin@fabrikam.test")
        files = ["https://graph.microsoft.com/Files.Read.All"]  # Withdraw's confirmation page
        records.record_tenant_consent(
            db.session, FABRIKAM, "onedrive", files, "admin@fabrikam.test"
        )
        db.session.commit()
        # The admin role's account is also a portal admin here, so its pages include Credentials.
        app.config["ADMIN_USERS"] = [*app.config["ADMIN_USERS"], staff_id(entra, SIGN_INS["admin"])]
        made = extensions.links().create(
            db.session,
            kind="authenticate",
            created_by="helpdesk@contoso.test",
            tenant_id=CONTOSO,
            scope=None,
            connector="onedrive",
            login_hint="user@contoso.test",
        )
        return {
            "connection": connection,
            "revoked": revoked,
            "request": request.id,
            "approved": approved.id,
            "link": made.link.id,
            "link_token": made.url.rsplit("/", 1)[1],
        }


def visit_all(
    page: Page, portal: LivePortal, role: str, width: int, ids: dict[str, str]
) -> list[str]:
    """Open each of the role's pages and collect their problems."""
    found = []
    for endpoint, path in PAGES[role]:
        answer = page.goto(portal.url + path.format(**ids))
        assert answer is not None
        expected = 404 if endpoint is None or path in NOT_FOUND else 200
        if answer.status != expected:
            found.append(f"{path} answered {answer.status}, not {expected}")
        found += problems_on(page, width)
        shoot(page, (role, width, path))
    return found


def shoot(page: Page, key: tuple[str, int, str]) -> None:
    """Save a README screenshot of the page shown now, when PORTAL_SCREENSHOTS asks for them."""
    folder = os.environ.get("PORTAL_SCREENSHOTS")
    if folder and key in SCREENSHOTS:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / SCREENSHOTS[key]), full_page=True)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("role", ROLES)
def test_every_page_fits_and_passes_axe(
    page: Page, portal: LivePortal, entra: Emulator, role: str, width: int
) -> None:
    """Each role's pages: no sideways scroll, zero serious or critical axe violations."""
    page.set_viewport_size({"width": width, "height": 900})
    found: list[str] = []
    if role == "user":
        connect_in_browser(page, portal.url, SIGN_INS[role])
        found += problems_on(page, width)  # the code page of a new connection
        shoot(page, (role, width, "code"))
    elif role != "anonymous":
        sign_in(page, portal.url, SIGN_INS[role])
    ids = seed(portal.app, entra)
    found += visit_all(page, portal, role, width, ids)
    for who, _endpoint, journey in JOURNEYS:
        if who == role:
            journey(page, portal.url, ids)
            found += problems_on(page, width)
    assert not found, "\n".join(found)


def regenerated_code(page: Page, portal_url: str, ids: dict[str, str]) -> None:
    """End on the code page after Regenerate code was confirmed."""
    page.goto(f"{portal_url}/connections/{ids['connection']}/regenerate")
    page.get_by_role("button", name="Regenerate code").click()
    page.get_by_label("Connection code").wait_for()


def other_account(page: Page, portal_url: str, ids: dict[str, str]) -> None:
    """End on "You signed in with another account": Reconnect, then sign in as someone else."""
    page.context.clear_cookies()  # no Entra session yet: the emulator asks for an e-mail
    page.goto(f"{portal_url}/connections/{ids['connection']}/reconnect")
    page.get_by_role("button", name="Reconnect").click()
    entra_sign_in(page, "admin@fabrikam.test")
    accept_if_asked(page)
    page.get_by_role("heading", name="You signed in with another account").wait_for()


def blocked_consent(page: Page, portal_url: str, ids: dict[str, str]) -> None:
    """End on Admin approval required, the way a person whose organization blocks consent does."""
    page.context.clear_cookies()
    page.goto(f"{portal_url}/connectors/sharepoint")
    page.get_by_role("button", name="Authenticate").click()
    entra_sign_in(page, "user@contoso.test")
    page.get_by_role("link", name="Return to the application without granting consent").click()
    page.get_by_role("heading", name="Admin approval required").wait_for()


def link_for_someone_else(page: Page, portal_url: str, ids: dict[str, str]) -> None:
    """End on "This link was made for someone else": a link for user@, signed in as admin@."""
    page.context.clear_cookies()
    page.goto(f"{portal_url}/l/{ids['link_token']}")
    page.get_by_role("button", name="Continue to Microsoft sign-in").click()
    entra_sign_in(page, "admin@contoso.test")
    accept_if_asked(page)
    page.get_by_role("heading", name="This link was made for someone else").wait_for()


# Pages reached by pressing buttons, not by address: (role, endpoint or None, how to get there).
# None: a page the OAuth callback renders (other_account.html, outcomes/admin_approval.html,
# landing/made_for.html).
JOURNEYS: list[tuple[str, str | None, Callable[[Page, str, dict[str, str]], None]]] = [
    ("user", "connections.code", regenerated_code),
    ("anonymous", None, other_account),
    ("anonymous", None, blocked_consent),
    ("anonymous", None, link_for_someone_else),
]
