"""Every staff view is guarded: no route of the admin or helpdesk areas forgets its role."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator

import pytest
from flask import Flask

from tests.signins import Web

HELPDESK = ("helpdesk", "helpdesk_users")
ADMIN = ("admin", "grant", "readiness")
People = Callable[[str], Web]


def routes(app: Flask, blueprints: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """Yield (method, path) for every route of these blueprints, with placeholder arguments."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in blueprints:
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<{argument}>", "x").replace(f"<int:{argument}>", "1")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method, path


def test_the_staff_areas_have_routes(app: Flask) -> None:
    assert len(list(routes(app, HELPDESK))) >= 8 and len(list(routes(app, ADMIN))) >= 7


def test_no_helpdesk_route_lets_another_account_in(app: Flask, person: People) -> None:
    user = person("user@fabrikam.test")
    user.sign_in()
    for method, path in routes(app, HELPDESK):
        # No CSRF token on purpose: the role is refused first, as such (C22).
        answer = user.client.open(path, method=method)
        assert answer.status_code == 403, (method, path, answer.status_code)


def test_no_admin_route_lets_another_account_in(app: Flask, person: People) -> None:
    user = person("user@fabrikam.test")
    user.sign_in()
    token = user.csrf("/")
    for method, path in routes(app, ADMIN):
        data = {"csrf_token": token} if method == "POST" else None
        answer = user.client.open(path, method=method, data=data)
        assert answer.status_code == 403, (method, path, answer.status_code)


@pytest.mark.parametrize("blueprints", [HELPDESK, ADMIN], ids=["helpdesk", "admin"])
def test_anonymous_visitors_are_sent_to_sign_in(app: Flask, blueprints: tuple[str, ...]) -> None:
    client = app.test_client()
    for method, path in routes(app, blueprints):
        if method == "GET":
            answer = client.get(path)
            assert answer.status_code == 302, (path, answer.status_code)
            assert answer.headers["Location"].startswith("/sign-in?next="), path


def test_an_anonymous_admin_post_meets_the_csrf_check_first(app: Flask) -> None:
    client = app.test_client()
    for method, path in routes(app, ADMIN):
        if method == "POST":
            assert client.post(path).status_code == 400, path  # as before the move: CSRF first
