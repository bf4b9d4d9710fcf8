"""The code page's examples for data tools: this portal's URL, never the code (issue 12, item 3)."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page
from playwright.sync_api import expect

from app.data import snippets
from app.data import tables
from tests.browser.conftest import LivePortal
from tests.browser.test_connect import connect

pytestmark = pytest.mark.browser
TOOLS = ("curl", "power-query", "qlik", "python", "proxy-url")


def open_examples(page: Page) -> list[str]:
    """Open every example on the code page and return their texts."""
    for details in page.locator("details.snippet").all():
        details.locator("summary").click()
    return [page.locator(f"#snippet-{tool}").inner_text() for tool in TOOLS]


def test_examples_show_this_portal_and_never_the_code(page: Page, portal: LivePortal) -> None:
    """Each example names this portal's API; the code is in its field only; Copy copies."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    code = connect(page, portal.url, "onedrive", "user@fabrikam.test")
    # Closed, the examples leave the code's Copy the only Copy button a person sees.
    assert page.get_by_role("button", name="Copy").count() == 1
    texts = open_examples(page)
    for text in texts:
        assert f"{portal.url}/api/v1/" in text
        assert code not in text
    assert "<connection code>" in texts[0] and "& Code]" in texts[1]
    assert code not in page.locator("section.snippets").inner_text()

    curl = page.locator("#example-curl")
    curl.get_by_role("button", name="Copy the curl example").click()
    expect(curl.get_by_role("status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == texts[0]
    assert page.get_by_label("Connection code").input_value() == code  # still there, untouched


def test_the_examples_answer_with_the_real_code(page: Page, portal: LivePortal) -> None:
    """The proxy and table URLs the page shows work as they are, with the code in the header."""
    code = connect(page, portal.url, "onedrive", "user@fabrikam.test")
    open_examples(page)
    proxy_url = page.locator("#snippet-proxy-url").inner_text()
    qlik_url = page.locator("#snippet-qlik").inner_text()
    headers = {"Authorization": f"Bearer {code}"}
    proxied = requests.get(proxy_url, headers=headers, timeout=30)
    assert proxied.status_code == 200, proxied.text
    table = requests.get(qlik_url, headers=headers, timeout=30)
    assert table.status_code == 200 and table.headers["Content-Type"] == "application/json"


def test_the_code_page_fits_a_phone(page: Page, portal: LivePortal) -> None:
    """At 390 px the open examples wrap inside their boxes: the page never scrolls sideways."""
    page.set_viewport_size({"width": 390, "height": 844})
    connect(page, portal.url, "onedrive", "user@fabrikam.test")
    open_examples(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for tool in TOOLS:
        box = page.locator(f"#snippet-{tool}").locator("xpath=..")
        assert box.evaluate("e => e.scrollWidth <= e.clientWidth"), tool


@pytest.mark.parametrize("connector", sorted(snippets.TYPICAL) + ["dynamics-contoso"])
def test_every_connector_has_examples_of_its_own_tables(connector: str) -> None:
    """Each typical table is one of its connector's; every example says where the code goes."""
    found = snippets.examples("https://portal.example.com/", connector)
    assert found.typical.table in tables.for_connector(connector)
    assert found.table_url.startswith("https://portal.example.com/api/v1/tables/")
    assert found.proxy_url.startswith("https://portal.example.com/api/v1/proxy/")
    assert [s.id for s in found.snippets] == list(TOOLS)
    for snippet in found.snippets:  # Power Query names a parameter; the others the placeholder
        said = " ".join([snippet.intro, snippet.text, *(v for _, v in snippet.settings)])
        assert snippets.PLACEHOLDER in said or "& Code]" in snippet.text
