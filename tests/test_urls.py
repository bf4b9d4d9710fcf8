"""The redirect-target validator keeps every redirect on this site (C12)."""

from __future__ import annotations

from urllib.parse import urljoin
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.web.urls import local_path

# The oauth2-proxy open-redirect corpus (pkg/app/redirect/validator_test.go) and friends.
HOSTILE = [
    "//evil.com",
    "/\\evil.com",
    "/%09/evil.com",
    "/%0a/evil.com",
    "/%0b/evil.com",
    "/%0d/evil.com",
    "/ /evil.com",
    "/./\\evil.com",
    "\\\\evil.com",
    "https://portal.example.evil.com",
    "http://evil.com/",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/\t/evil.com",
    "/\r\n/evil.com",
    "%2F%2Fevil.com",
    "/%2F/evil.com",
    "/%5Cevil.com",
    "evil.com",
    "",
    "/" + "a" * 5000,
]
SAFE = ["/", "/connections", "/connectors/sharepoint?check=1", "/consent-requests/12#status"]


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_targets_fall_back(target: str) -> None:
    """Every corpus entry becomes the fallback."""
    assert local_path(target, "/") == "/"


@pytest.mark.parametrize("target", SAFE)
def test_local_paths_are_kept(target: str) -> None:
    """Ordinary paths on this site are returned unchanged."""
    assert local_path(target, "/") == target


@given(st.text(max_size=300))
def test_result_always_stays_on_this_origin(target: str) -> None:
    """Whatever comes in, a browser resolves the result to this origin."""
    result = local_path(target, "/")
    resolved = urlsplit(urljoin("https://portal.example/", result))
    assert (resolved.scheme, resolved.netloc) == ("https", "portal.example")
    assert result.startswith("/") and not result.startswith("//")
