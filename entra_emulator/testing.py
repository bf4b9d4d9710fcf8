"""A scripted person who follows the emulator's pages with requests, for fast tests."""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field
from html.parser import HTMLParser
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urljoin
from urllib.parse import urlsplit

import requests

MAX_STEPS = 25


class SignInStopped(Exception):
    """The person was stopped on an emulator page (an error, or an admin-approval dead end)."""

    def __init__(self, code: int | None, page: str, text: str) -> None:
        """Keep the AADSTS code, the page kind and the page's text."""
        self.code = code
        self.page = page
        self.text = text
        label = f"AADSTS{code}" if code else "no AADSTS code"
        super().__init__(f"sign-in stopped on the {page!r} page ({label}): {text[:300]}")


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str, str]] = field(default_factory=list)  # (label, name, value)


@dataclass
class Page:
    kind: str = ""
    code: str = ""
    forms: list[Form] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)  # label -> href
    text: list[str] = field(default_factory=list)


class _Parser(HTMLParser):
    """Collect the page kind, forms, buttons, links and visible text."""

    def __init__(self) -> None:
        """Start with an empty page."""
        super().__init__()
        self.page = Page()
        self._button: tuple[str, str] | None = None
        self._link: str | None = None
        self._label: list[str] = []
        self._hidden = 0  # inside <style>, <script> or <title>: not visible text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record forms, inputs, buttons and links."""
        a = {k: v or "" for k, v in attrs}
        if tag in ("style", "script", "title"):
            self._hidden += 1
        elif tag == "body":
            self.page.kind, self.page.code = a.get("data-page", ""), a.get("data-code", "")
        elif tag == "form":
            self.page.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif tag == "input" and self.page.forms and a.get("name"):
            if a.get("type") != "checkbox":
                self.page.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "button":
            self._button, self._label = (a.get("name", ""), a.get("value", "")), []
        elif tag == "a":
            self._link, self._label = a.get("href", ""), []

    def handle_endtag(self, tag: str) -> None:
        """Close buttons and links with their visible labels."""
        label = " ".join("".join(self._label).split())
        if tag in ("style", "script", "title"):
            self._hidden = max(0, self._hidden - 1)
        elif tag == "button" and self._button and self.page.forms:
            self.page.forms[-1].buttons.append((label, *self._button))
            self._button = None
        elif tag == "a" and self._link is not None:
            self.page.links[label] = self._link
            self._link = None

    def handle_data(self, data: str) -> None:
        """Keep text for labels and error messages."""
        if self._hidden:
            return
        self._label.append(data)
        if data.strip():
            self.page.text.append(data.strip())


def parse(html: str) -> Page:
    """Return what a person sees on a page."""
    parser = _Parser()
    parser.feed(html)
    return parser.page


class Person:
    """Someone at a browser who signs in, consents, cancels or asks for approval."""

    def __init__(
        self,
        username: str,
        password: str,
        accept: bool,
        on_behalf_of_org: bool,
        cancel: bool,
        justification: str | None,
        origins: set[str],
    ) -> None:
        """Keep who the person is, what they will choose and the emulator's origins."""
        self.username, self.password = username, password
        self.accept, self.on_behalf, self.cancel = accept, on_behalf_of_org, cancel
        self.justification = justification
        self.origins = origins  # host:port of the emulator's two origins; any other is the app
        self.mfa_code = ""  # typed on the "Enter code" page
        self.new_password: str | None = None  # typed on "Update your password"; None stops there
        self._updated = False

    def run(self, auth_uri: str, browser: requests.Session) -> str:
        """Follow pages from auth_uri until the browser would leave for the application."""
        response = browser.get(auth_uri, allow_redirects=False, timeout=10)
        for _ in range(MAX_STEPS):
            if response.is_redirect:
                target = urljoin(response.url, response.headers["Location"])
                if urlsplit(target).netloc not in self.origins:
                    return target
                response = browser.get(target, allow_redirects=False, timeout=10)
                continue
            step = self._act(response.url, parse(response.text))
            if isinstance(step, str):
                return step
            method, url, data = step
            if method == "post":
                response = browser.post(url, data=data, allow_redirects=False, timeout=10)
            else:
                response = browser.get(url, allow_redirects=False, timeout=10)
        raise SignInStopped(None, "loop", "too many pages")

    def _act(self, url: str, page: Page) -> str | tuple[str, str, dict[str, str]]:
        """Return the person's next request, or the URL of an auto-submitted form_post."""
        kind = page.kind
        if kind == "signin-email":
            return self._submit(url, page, username=self.username)
        if kind == "signin-password":
            if any(t.startswith("AADSTS") for t in page.text):  # 50126, 50057: stop, not retry
                raise SignInStopped(_code(page), kind, " ".join(page.text))
            return self._submit(url, page, password=self.password)
        if kind == "signin-mfa":
            if any(t.startswith("You didn't enter") for t in page.text):  # a wrong code: stop
                raise SignInStopped(None, kind, " ".join(page.text))
            return self._submit(url, page, otc=self.mfa_code)
        if kind == "signin-update-password":
            if self.new_password is None or self._updated:  # none to give, or it was refused
                raise SignInStopped(50055, kind, " ".join(page.text))
            new, self._updated = self.new_password, True
            values = {"current_password": self.password, "new_password": new}
            return self._submit(url, page, **values, confirm_password=new)
        if kind == "picker":
            return self._pick(url, page)
        if kind in ("consent", "admin-consent"):
            extra = {"on_behalf": "1"} if self.on_behalf and self.accept else {}
            return self._submit(url, page, button="Accept" if self.accept else "Cancel", **extra)
        if kind == "need-admin" and self.cancel:
            return (
                "get",
                urljoin(url, page.links["Return to the application without granting consent"]),
                {},
            )
        if kind == "approval" and self.justification is not None:
            return self._submit(url, page, justification=self.justification)
        if kind == "approval" and self.cancel:
            return "get", urljoin(url, page.links["Back to app"]), {}
        if kind == "form-post":
            form = page.forms[0]
            return f"{form.action}?{urlencode(form.fields)}"
        raise SignInStopped(_code(page), kind or "unknown", " ".join(page.text))

    def _submit(
        self, url: str, page: Page, button: str | None = None, **values: str
    ) -> tuple[str, str, dict[str, str]]:
        """Fill the page's form and press a button (or its only button)."""
        shown = [t for t in page.text if t.startswith("AADSTS")]
        if shown and page.kind == "signin-email":  # e.g. 50034: the account does not exist
            raise SignInStopped(_code(page), page.kind, shown[0])
        form = page.forms[0]
        data = dict(form.fields) | values
        for label, name, value in form.buttons:
            if button is None or label == button:
                if name:
                    data[name] = value
                break
        return form.method, urljoin(url, form.action), data

    def _pick(self, url: str, page: Page) -> tuple[str, str, dict[str, str]]:
        """Choose this person's account, or "Use another account"."""
        for form in page.forms:
            if form.fields.get("username") == self.username.lower():
                return form.method, urljoin(url, form.action), dict(form.fields)
        form = page.forms[-1]
        return form.method, urljoin(url, form.action), dict(form.fields)


def callback_query(url: str) -> dict[str, str]:
    """Return the query of a callback URL as a flat dict, as Flask's request.args gives it."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _code(page: Page) -> int | None:
    """Return the AADSTS code a page shows."""
    if page.code.isdigit():
        return int(page.code)
    found = re.search(r"AADSTS(\d+)", " ".join(page.text))
    return int(found.group(1)) if found else None
