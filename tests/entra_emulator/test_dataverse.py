"""Dataverse entity sets: $select, $filter, odata.maxpagesize and paging cookies to the end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from entra_emulator import Emulator

Token = Callable[[str, list[str]], str]
DYNAMICS = "https://contoso.crm.dynamics.com/user_impersonation"
Get = Callable[..., requests.Response]


@pytest.fixture
def dataverse(emu: Emulator, http: requests.Session, token: Token) -> Get:
    """Return a GET helper for user@contoso.test in the contoso organisation."""
    headers = {"Authorization": f"Bearer {token('user@contoso.test', [DYNAMICS])}"}
    base = f"{emu.base_url}/dynamics/contoso.crm.dynamics.com/api/data/v9.2"

    def get(path: str, **extra: str) -> requests.Response:
        url = path if path.startswith("https://") else f"{base}/{path}"
        return http.get(url, headers=headers | extra, timeout=10)

    return get


def follow(get: Get, path: str, page_size: int) -> tuple[list[dict[str, Any]], int]:
    """Return every row by following @odata.nextLink with the same Prefer header."""
    rows, pages, url = [], 0, path
    prefer = {"Prefer": f"odata.maxpagesize={page_size}"}
    while url:
        page = get(url, **prefer)
        assert page.status_code == 200, page.text
        assert page.headers["Preference-Applied"] == f"odata.maxpagesize={page_size}"
        rows += page.json()["value"]
        pages += 1
        url = page.json().get("@odata.nextLink")
    return rows, pages


def test_entity_set_rows_and_headers(dataverse: Get) -> None:
    answer = dataverse("accounts")
    assert answer.status_code == 200 and answer.headers["OData-Version"] == "4.0"
    body = answer.json()
    assert len(body["value"]) == 240 and "@odata.nextLink" not in body  # under 5,000: one page
    assert "Preference-Applied" not in answer.headers
    third = body["value"][2]
    assert third["name"] == "Account 3" and third["accountnumber"] == "ACC 3"
    assert third["address1_city"] == "London" and third["numberofemployees"] == 111
    assert third["accountid"].endswith("000000000003")
    one = dataverse(f"accounts({third['accountid']})").json()
    assert one["name"] == "Account 3"


def test_select_and_filter(dataverse: Get) -> None:
    picked = dataverse("contacts?$select=fullname,jobtitle").json()
    assert picked["@odata.context"].endswith("#contacts(fullname,jobtitle)")
    assert set(picked["value"][0]) == {"@odata.etag", "contactid", "fullname", "jobtitle"}
    london = dataverse("accounts?$filter=address1_city eq 'london'&$select=name").json()["value"]
    assert len(london) == 40 and london[0]["name"] == "Account 3"  # case-insensitive, as Dataverse
    assert dataverse("accounts?$filter=numberofemployees eq 111").json()["value"][0]["name"]
    refused = dataverse("accounts?$select=nope")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "0x80060888"
    assert dataverse("accounts?$filter=contains(name,'x')").status_code == 400
    assert dataverse("nothings").status_code == 404


def test_maxpagesize_pages_to_the_end(dataverse: Get) -> None:
    rows, pages = follow(dataverse, "accounts?$select=name", 50)
    assert len(rows) == 240 and pages == 5
    assert [r["name"] for r in rows] == [f"Account {i}" for i in range(1, 241)]
    filtered, pages = follow(dataverse, "accounts?$filter=address1_city eq 'Paris'", 15)
    assert len(filtered) == 40 and pages == 3
    assert all(r["address1_city"] == "Paris" for r in filtered)


def test_page_size_limits_top_and_count(emu: Emulator, dataverse: Get) -> None:
    emu.control("POST", "/_emulator/data", json={"rows": {"contacts": 12000}})
    annotations = 'odata.include-annotations="*"'
    first = dataverse("contacts?$select=fullname&$count=true", Prefer=annotations)
    body = first.json()
    assert len(body["value"]) == 5000 and body["@odata.count"] == 5000  # Dataverse's maximum
    assert body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] is True
    plain = dataverse("contacts?$select=fullname&$count=true&$top=1").json()
    assert "@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded" not in plain
    ignored = dataverse("contacts?$select=fullname", Prefer="odata.maxpagesize=9000")
    assert len(ignored.json()["value"]) == 5000 and "Preference-Applied" not in ignored.headers
    rows, pages = follow(dataverse, "contacts?$select=fullname", 5000)
    assert len(rows) == 12000 and pages == 3 and rows[-1]["fullname"] == "Contact 12000"
    top = dataverse("contacts?$top=7", Prefer="odata.maxpagesize=3").json()
    assert len(top["value"]) == 7 and "@odata.nextLink" not in top


def test_whoami_and_entity_sets_need_a_security_role(
    emu: Emulator, http: requests.Session, token: Token
) -> None:
    outsider = {"Authorization": f"Bearer {token('helpdesk@contoso.test', [DYNAMICS])}"}
    base = f"{emu.base_url}/dynamics/contoso.crm.dynamics.com/api/data/v9.2"
    assert http.get(f"{base}/accounts", headers=outsider).status_code == 403
    assert http.get(f"{base}/WhoAmI", headers=outsider).status_code == 403
    anonymous = http.get(f"{base}/accounts")
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"]
