"""Pages for their readers (issue 14, items 3-5): the blocked page, plain words, no dead ends."""

from __future__ import annotations

from urllib.parse import parse_qs
from urllib.parse import urlsplit

import requests
from flask import Flask

from app.connectors import catalogue
from app.connectors import scope_words
from app.consent import notices
from app.models import ConsentRequest
from app.platform.extensions import db
from tests.signins import People
from tests.signins import Web

SITES = "https://graph.microsoft.com/Sites.Read.All"


def blocked(user: Web, connector: str = "sharepoint") -> str:
    """Authenticate with a login hint, meet "Need admin approval", come back; return the page."""
    answer = user.post(
        f"/connectors/{connector}/authenticate",
        f"/connectors/{connector}",
        login_hint=user.username,
    )
    back = user.callback(user.entra_answer(answer.headers["Location"], cancel=True))
    assert back.status_code == 403
    return back.get_data(as_text=True)


def requests_of(app: Flask) -> list[ConsentRequest]:
    """Return every consent request row."""
    with app.app_context():
        return list(db.session.scalars(db.select(ConsentRequest)))


def test_the_blocked_page_speaks_to_the_person_and_carries_both_codes(person: People) -> None:
    page = blocked(person("user@contoso.test"))
    lead = page.split('<p class="lead">', 1)[1].split("</p>", 1)[0]
    assert lead.startswith("SharePoint needs an approval from your IT administrator")
    assert "You left Microsoft" not in page and "Privileged Role Administrator" not in page
    assert "Enterprise applications" not in page  # the admin-center path is the admin's
    assert "AADSTS code: AADSTS65004" in page
    assert "Shown by Microsoft: AADSTS90094 (Need admin approval) or AADSTS90095" in page
    assert "AADSTS65004" in page.split("Shown by Microsoft", 1)[0]  # 65004 stays the code
    assert "passes by Microsoft once more" in page  # why the second trip is needed
    assert "required" in page.split('id="justification"', 1)[1].split(">", 1)[0]


def test_send_request_goes_to_microsoft_quietly_as_the_same_person(
    person: People, app: Flask
) -> None:
    user = person("user@contoso.test")
    blocked(user)
    sent = user.post("/consent-requests", connector="sharepoint", justification="Reports")
    query = parse_qs(urlsplit(sent.headers["Location"]).query)
    assert query["prompt"] == ["none"] and query["login_hint"] == ["user@contoso.test"]
    assert set(query["scope"][0].split()) == {"openid", "profile", "offline_access"}
    done = user.callback(user.entra_answer(sent.headers["Location"]))  # no page at Entra
    assert done.status_code == 303 and "/consent-requests/" in done.headers["Location"]
    [found] = requests_of(app)
    assert found.connector == "sharepoint" and found.scopes == SITES


def test_a_quiet_trip_entra_cannot_finish_falls_back_to_its_page(
    person: People, app: Flask
) -> None:
    user = person("user@contoso.test")
    blocked(user)
    sent = user.post("/consent-requests", connector="sharepoint", justification="Reports")
    user.entra_session = requests.Session()  # Entra no longer knows this browser
    refused = user.entra_answer(sent.headers["Location"])
    assert parse_qs(urlsplit(refused).query)["error"] == ["login_required"]
    again = user.callback(refused)
    assert again.status_code == 303
    query = parse_qs(urlsplit(again.headers["Location"]).query)
    assert "prompt" not in query and query["login_hint"] == ["user@contoso.test"]
    assert set(query["scope"][0].split()) == {"openid", "profile", "offline_access"}
    done = user.callback(user.entra_answer(again.headers["Location"]))
    assert done.status_code == 303 and "/consent-requests/" in done.headers["Location"]
    assert len(requests_of(app)) == 1


def test_an_empty_justification_is_refused_with_the_form_again(person: People, app: Flask) -> None:
    user = person("user@contoso.test")
    blocked(user)
    answer = user.post("/consent-requests", connector="sharepoint", justification="   ")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "Write why you need SharePoint, then press Send request." in page
    assert 'aria-invalid="true"' in page and "Send request" in page
    assert not requests_of(app)


def test_my_requests_and_my_connections_show_the_pending_request(person: People) -> None:
    user = person("user@contoso.test")
    blocked(user)
    sent = user.post("/consent-requests", connector="sharepoint", justification="Reports")
    status = user.callback(user.entra_answer(sent.headers["Location"])).headers["Location"]
    request_id = status.rsplit("/", 1)[-1]
    mine = user.page("/consent-requests")
    assert "<h1>My requests</h1>" in mine and ">Pending<" in mine and ">SharePoint</a>" in mine
    assert f'/consent-requests/{request_id}" spellcheck="false">' in mine  # the Copy-able link
    assert 'data-copy="link-' in mine
    assert 'href="/consent-requests">My requests</a>' in mine  # in the navigation
    connections = user.page("/connections")
    assert (
        "Waiting for approval" in connections and f"/consent-requests/{request_id}" in connections
    )
    shown = user.page(f"/consent-requests/{request_id}")
    assert 'id="status-link"' in shown and 'data-copy="status-link"' in shown
    assert "Read items in all site collections" in shown and "<summary>Technical name" in shown

    other = person("appadmin@contoso.test")
    other.sign_in()
    assert "You have not sent any requests" in other.page("/consent-requests")


def test_the_admin_reads_the_roles_and_the_admin_center_path(person: People) -> None:
    user = person("user@contoso.test")
    blocked(user)
    sent = user.post("/consent-requests", connector="sharepoint", justification="Reports")
    status = user.callback(user.entra_answer(sent.headers["Location"])).headers["Location"]
    admin = person("admin@contoso.test")
    admin.sign_in()
    page = admin.page(urlsplit(status).path)
    assert "Privileged Role Administrator" in page and "Cloud Application Administrator" in page
    assert "Enterprise applications &gt; Connector Consent Portal &gt; Permissions" in page


def test_the_admins_mail_names_the_roles_and_where_to_grant() -> None:
    found = ConsentRequest(id="r1", tenant_id="t", connector="sharepoint", scopes=SITES)
    [mail] = notices.to_admins("https://portal", found, "SharePoint", "u@x", "Reports", ["a@x"])
    assert "Global Administrator" in mail.text and "Application Administrator" in mail.text
    assert "Enterprise applications > Connector Consent Portal > Permissions" in mail.text
    assert "organisation" not in mail.text and "for your organization" in mail.text


def test_scopes_read_as_microsoft_words_them() -> None:
    connectors = catalogue()
    assert connectors["sharepoint"].scope_words == [("Read items in all site collections", SITES)]
    assert scope_words("https://graph.microsoft.com/Files.Read.All") == (
        "Read all files that you can access"
    )
    assert scope_words("https://graph.microsoft.com/Mail.Read") == "Read your mail"
    assert scope_words("https://contoso.crm.dynamics.com/user_impersonation") == (
        "Access Common Data Service as organization users"
    )
    assert scope_words("https://storage.azure.com/user_impersonation") == "Access Azure Storage"
    assert scope_words("https://graph.microsoft.com/Some.New") == "Some.New"  # unknown: its name


def test_the_connector_page_shows_words_and_offers_only_what_works(web: Web) -> None:
    page = web.page("/connectors/sharepoint")
    assert "Read items in all site collections" in page
    assert f"<summary>Technical name</summary><code>{SITES}</code>" in page
    assert "Maintain access to data you have given it access to" in page
    assert "Personal Microsoft account" not in page  # not offered where it cannot work
    assert "does not work with personal Microsoft accounts" in page
    assert "organisation" not in page
    onedrive = web.page("/connectors/onedrive")
    assert 'value="" checked> Either: Microsoft asks which account' in onedrive


def test_a_personal_account_on_the_default_path_connects(web: Web) -> None:
    """OneDrive's default is "common": a personal account meets no error page there."""
    auth_uri = web.authenticate("onedrive", account_type="")
    assert "/common/" in auth_uri
    web.code(web.callback(web.entra.sign_in(auth_uri, "pat@outlook.test", accept=True)))


def test_check_access_states_only_what_is_known(web: Web) -> None:
    web.code(web.connect("onedrive", "user@fabrikam.test"))
    page = web.page("/connectors/onedrive?check=1")
    assert "Allowed for your account" in page and "Available" in page
    page = web.page("/connectors/sharepoint?check=1")
    assert "Not known yet" in page and "default consent settings" not in page
