"""PortalCredential: azure-core's TokenCredential over a connection code, with a token cache."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

import requests

from consent_portal_client.errors import ScopeNotAllowed
from consent_portal_client.scopes import Ask
from consent_portal_client.scopes import answered_resource
from consent_portal_client.scopes import plan
from consent_portal_client.token_api import TokenAPI
from consent_portal_client.tokens import AccessToken
from consent_portal_client.tokens import AccessTokenInfo
from consent_portal_client.tokens import PortalToken


class PortalCredential:
    """Get access tokens for one connection from the portal; keep each until shortly before expiry.

    Implements azure-core's TokenCredential and SupportsTokenInfo protocols structurally, so it
    needs azure-core only when an Azure SDK uses it.
    """

    def __init__(
        self,
        code: str,
        portal_url: str,
        *,
        timeout: float = 10.0,
        max_wait: float = 30.0,
        max_retries: int = 3,
        refresh_margin: float = 300.0,
        session: requests.Session | None = None,
    ) -> None:
        """Check the URL and keep the code; no request is made until a token is asked for."""
        self._own_session = session is None
        self._session = session or requests.Session()
        self._api = TokenAPI(code, portal_url, self._session, timeout, max_wait, max_retries)
        self.portal_url = portal_url
        self.refresh_margin = refresh_margin  # like MSAL and azure-identity: 5 minutes early
        self._tokens: dict[str | None, PortalToken] = {}
        self._resource: str | None = None  # the connection's resource, once an answer named it
        self._refresh = threading.Lock()

    def __repr__(self) -> str:
        """Describe the credential without its code."""
        return f"PortalCredential(portal_url={self.portal_url!r})"

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """Return a token for scopes (TokenCredential); claims and tenant are the connection's."""
        token = self.portal_token(*scopes)
        return AccessToken(token.access_token, token.expires_at)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        """Return a token for scopes with the time to refresh it (SupportsTokenInfo)."""
        token = self.portal_token(*scopes)
        refresh_on = int(token.expires_at - self.refresh_margin)
        return AccessTokenInfo(token.access_token, token.expires_at, refresh_on=refresh_on)

    def portal_token(self, *scopes: str) -> PortalToken:
        """Return a cached token with time to live, or a new one from the portal."""
        ask = plan(scopes)
        self._check_resource(ask)
        cached = self._fresh(ask)
        if cached is not None:
            return cached
        with self._refresh:  # one refresh at a time: a waiter finds what the first one fetched
            cached = self._fresh(ask)
            if cached is None:
                cached = self._api.fetch(ask.scope)
                self._resource = answered_resource(cached.scope) or self._resource
                self._tokens[ask.scope] = cached
        self._check_resource(ask)  # a first .default request learns the resource only now
        return cached

    def close(self) -> None:
        """Close the HTTP session if this credential opened it."""
        if self._own_session:
            self._session.close()

    def __enter__(self) -> PortalCredential:
        """Return the credential for a with block."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the credential at the end of a with block."""
        self.close()

    def _fresh(self, ask: Ask) -> PortalToken | None:
        """Return the cached token for this request if it outlives the refresh margin."""
        token = self._tokens.get(ask.scope)
        if token is not None and token.fresh(time.time(), self.refresh_margin):
            return token
        return None

    def _check_resource(self, ask: Ask) -> None:
        """Refuse scopes of another resource than the connection's, once that is known."""
        if ask.resource and self._resource and ask.resource != self._resource:
            raise ScopeNotAllowed(
                f"this connection's tokens are for {self._resource}, not {ask.resource}; "
                "connect the account to a connector for that resource"
            )
