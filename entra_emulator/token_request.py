"""A token request, parsed once: what the grant handlers and client authentication read."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote


@dataclass(frozen=True)
class TokenRequest:
    grant_type: str
    segment: str  # the tenant path segment as echoed: a GUID, common, organizations, consumers
    tenant_id: str | None  # the tenant GUID named in the path; None for the three aliases
    endpoint: str  # the URL the request was sent to: a client assertion's audience
    client_id: str  # from the form, else from HTTP Basic; lower case
    client_secret: str | None = None  # from the form, else from HTTP Basic
    client_assertion: str = ""
    client_assertion_type: str = ""
    code: str | None = None
    redirect_uri: str | None = None
    code_verifier: str | None = None
    refresh_token: str = ""
    scope: str = ""
    client_info: bool = False  # client_info=1: the response carries client_info
    claims: str = ""  # the claims request parameter (JSON): client capabilities, a challenge

    @classmethod
    def parse(
        cls,
        form: Mapping[str, str],
        authorization: str,
        segment: str,
        tenant_id: str | None,
        endpoint: str,
    ) -> TokenRequest:
        """Return the request a token call's form and Authorization header make."""
        basic = _basic_credentials(authorization)
        return cls(
            grant_type=form.get("grant_type", ""),
            segment=segment,
            tenant_id=tenant_id,
            endpoint=endpoint,
            client_id=(form.get("client_id") or (basic[0] if basic else "")).lower(),
            client_secret=form.get("client_secret") or (basic[1] if basic else None),
            client_assertion=form.get("client_assertion", ""),
            client_assertion_type=form.get("client_assertion_type", ""),
            code=form.get("code"),
            redirect_uri=form.get("redirect_uri"),
            code_verifier=form.get("code_verifier"),
            refresh_token=form.get("refresh_token", ""),
            scope=form.get("scope", ""),
            client_info=form.get("client_info") == "1",
            claims=form.get("claims", ""),
        )


def _basic_credentials(header: str) -> tuple[str, str] | None:
    """Return (client_id, secret) from an HTTP Basic header, if any."""
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:]).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id), unquote(secret)
