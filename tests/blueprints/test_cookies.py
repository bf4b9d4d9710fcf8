"""The session cookie under HTTPS is locked down (C19)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask


def test_c19_cookie_flags_under_https(make_portal: Callable[..., Flask]) -> None:
    portal = make_portal(PUBLIC_URL="https://portal.example")
    answer = portal.test_client().get("/sign-in", base_url="https://portal.example")
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("__Host-ccp_session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie
    assert "Domain" not in cookie
    assert "max-age=" in answer.headers["Strict-Transport-Security"]
