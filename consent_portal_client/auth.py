"""PortalAuth: sign `requests` calls with a current token from a PortalCredential."""

from __future__ import annotations

from requests import PreparedRequest
from requests.auth import AuthBase

from consent_portal_client.credential import PortalCredential


class PortalAuth(AuthBase):
    """Add `Authorization: Bearer <access token>` to each request (requests' auth= hook)."""

    def __init__(self, credential: PortalCredential, *scopes: str) -> None:
        """Sign with tokens for scopes; none means the connection's own scopes."""
        self.credential = credential
        self.scopes = scopes

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        """Set the header from the credential's cache, refreshing it when due."""
        token = self.credential.portal_token(*self.scopes)
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        return request
