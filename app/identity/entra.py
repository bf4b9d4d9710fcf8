"""MSAL wrapper, Flask-free: start and finish sign-in flows, get tokens silently, check the IdP."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode
from urllib.parse import urlsplit

import msal
import requests

from app.connectors import Connector
from app.connectors import authority_tenant as default_authority_tenant
from app.errors import IdentityUnavailable
from app.errors import ReauthenticationRequired
from app.errors import SignInExpired
from app.errors import SignInRejected
from app.errors import TemporarilyUnavailable
from app.identity import outcomes
from app.identity import signins
from app.identity.clients import MsalClients
from app.identity.entra_errors import entra_error
from app.identity.outcomes import TokenOutcome
from app.identity.outcomes import refresh_error
from app.identity.outcomes import resource_scopes
from app.identity.signins import AUTHORITY_KEY
from app.identity.signins import CONNECTOR_KEY
from app.identity.signins import CREATED_KEY
from app.identity.signins import SCOPES_KEY
from app.identity.signins import SignIn
from app.identity.transport import last_retry_after

log = logging.getLogger(__name__)

MAX_FLOW_CLIENTS = 64  # cached flow-starting clients per process (common, organizations, ...)


class Identity(MsalClients):
    """Talks to Entra (or the emulator) through MSAL; plain values in and out."""

    # -- sign-in ---------------------------------------------------------------------------

    def start_flow(
        self,
        connector: Connector,
        *,
        account_type: str | None,
        login_hint: str | None = None,
        domain_hint: str | None = None,
        prompt: str | None = None,
        tenant: str | None = None,
        claims: str | None = None,
    ) -> dict[str, Any]:
        """Begin an auth-code flow for a connector; store the result server-side by its state."""
        authority = tenant or default_authority_tenant(connector, account_type)
        cca = self._flow_client(authority)
        try:
            flow = cca.initiate_auth_code_flow(
                list(connector.scopes),
                redirect_uri=self.settings.redirect_uri,
                login_hint=login_hint,
                domain_hint=domain_hint,
                prompt=prompt,
                claims_challenge=claims,
            )
        except ValueError as error:  # a bad prompt value or scope: our bug, not the user's
            raise IdentityUnavailable("The sign-in request could not be built.") from error
        flow[CONNECTOR_KEY] = connector.id
        flow[AUTHORITY_KEY] = authority
        flow[CREATED_KEY] = time.time()
        flow[SCOPES_KEY] = list(connector.scopes)
        return dict(flow)

    def finish_flow(self, flow: Mapping[str, Any], response: Mapping[str, str]) -> SignIn:
        """Redeem a callback for tokens and verify the ID token; the flow was already popped."""
        created = float(flow.get(CREATED_KEY) or 0)
        if time.time() - created > self.settings.flow_ttl:
            raise SignInExpired()
        if response.get("state") != flow.get("state"):
            raise SignInRejected()
        authority = str(flow.get(AUTHORITY_KEY) or "organizations")
        details = {"connector": str(flow.get(CONNECTOR_KEY) or "")}
        if response.get("error"):  # checked before "code": both together is an error (C6)
            raise entra_error(response, details=details)
        scopes = list(flow.get(SCOPES_KEY) or [])
        cache = msal.SerializableTokenCache()
        result = self._redeem(authority, cache, flow, response, scopes)
        if "error" in result:
            raise entra_error(result, details=details)
        claims = self.validate_id_token(str(result.get("id_token") or ""), authority)
        return signins.sign_in(result, claims, flow, authority, cache)

    def _redeem(
        self,
        authority: str,
        cache: msal.SerializableTokenCache,
        flow: Mapping[str, Any],
        response: Mapping[str, str],
        scopes: list[str],
    ) -> dict[str, Any]:
        """Call MSAL's code redemption, turning each failure type into ours (pitfall 7)."""
        msal_flow = {k: v for k, v in flow.items() if not k.startswith("portal.")}
        try:  # a code survives a refused client credential: Entra checks the client first
            result = self._authenticated(
                lambda position: self._cca(authority, cache, position=position),
                lambda cca: cca.acquire_token_by_auth_code_flow(
                    msal_flow, dict(response), scopes=scopes
                ),
            )
        except ValueError:  # state missing or mismatched; the message holds both states: not logged
            raise SignInRejected() from None
        except RuntimeError:  # the ID token's nonce does not match this flow
            raise SignInRejected() from None
        except (msal.exceptions.MsalServiceError, requests.RequestException, OSError) as error:
            log.warning("code redemption failed: %s", type(error).__name__)
            raise IdentityUnavailable(retry_after=last_retry_after(30)) from None
        return dict(result or {})

    # -- tokens for a stored connection ------------------------------------------------------

    def cached_token(
        self, cache_blob: str, home_account_id: str, scopes: Sequence[str]
    ) -> TokenOutcome | None:
        """Return a still-fresh access token from the blob without MSAL or I/O, else None."""
        return outcomes.cached_token(cache_blob, self.settings.client_id, home_account_id, scopes)

    def token_for(
        self,
        cache_blob: str,
        home_account_id: str,
        scopes: Sequence[str],
        authority_tenant: str,
        force_refresh: bool = False,
        claims: str | None = None,
    ) -> TokenOutcome:
        """Return an access token, refreshing through MSAL when the cache has none fresh.

        claims: a resource's claims challenge (JSON); MSAL then refreshes with it.
        """
        cache = msal.SerializableTokenCache()
        cache.deserialize(cache_blob)
        first = self.credentials.current
        cca = self._cca(authority_tenant, cache, TemporarilyUnavailable, first)
        account = next(
            (a for a in cca.get_accounts() if a.get("home_account_id") == home_account_id), None
        )
        if account is None:
            raise ReauthenticationRequired()

        def build(position: int) -> msal.ConfidentialClientApplication:
            """Return the client already built for the first credential, else a new one."""
            if position == first:
                return cca
            return self._cca(authority_tenant, cache, TemporarilyUnavailable, position)

        try:
            result = self._authenticated(
                build,
                lambda client: client.acquire_token_silent_with_error(
                    list(scopes),
                    account,
                    force_refresh=force_refresh or bool(claims),
                    claims_challenge=claims,
                ),
            )
        except (
            msal.exceptions.MsalServiceError,
            requests.RequestException,
            OSError,
            ValueError,
        ) as error:
            log.warning("token refresh failed: %s", type(error).__name__)
            raise TemporarilyUnavailable(retry_after=last_retry_after()) from None
        if result is None:
            raise ReauthenticationRequired()
        if "error" in result:
            raise refresh_error(result)
        expires_in = int(result.get("expires_in") or 0)
        return TokenOutcome(
            access_token=str(result["access_token"]),
            expires_at=int(time.time()) + expires_in,
            scope=resource_scopes(str(result.get("scope") or " ".join(scopes))),
            source=str(result.get("token_source") or "identity_provider"),
            cache_blob=cache.serialize() if cache.has_state_changed else None,
        )

    # -- links and health --------------------------------------------------------------------

    def admin_consent_url(self, tenant_id: str, scopes: Sequence[str], state: str) -> str:
        """Return the v2 admin-consent URL for exactly these scopes in one tenant."""
        endpoint = str(self.discovery("organizations").get("authorization_endpoint") or "")
        parts = urlsplit(endpoint)
        query = urlencode(
            {
                "client_id": self.settings.client_id,
                "redirect_uri": self.settings.redirect_uri,
                "scope": " ".join(scopes),
                "state": state,
            }
        )
        return f"{parts.scheme}://{parts.netloc}/{tenant_id}/v2.0/adminconsent?{query}"

    def logout_url(self, post_logout_redirect_uri: str) -> str | None:
        """Return the IdP's end-session URL, or None when it cannot be discovered."""
        try:
            endpoint = self.discovery("common").get("end_session_endpoint")
        except IdentityUnavailable:
            return None
        if not endpoint:
            return None
        return f"{endpoint}?{urlencode({'post_logout_redirect_uri': post_logout_redirect_uri})}"
