"""The MSAL clients, discovery documents, signing keys and credential one process holds."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msal
import requests

from app.errors import IdentityUnavailable
from app.errors import PortalError
from app.identity import app_registration
from app.identity import claims
from app.identity import credentials
from app.identity import id_tokens
from app.identity import msal_logs
from app.identity import transport
from app.identity.app_registration import LOOKUP_SECONDS
from app.identity.settings import IdentitySettings
from app.identity.transport import make_http_client

log = logging.getLogger(__name__)
MAX_FLOW_CLIENTS = 64  # cached flow-starting clients per process (common, organizations, ...)


class MsalClients:
    """Builds MSAL clients per authority and caches what they discover; no Flask."""

    def __init__(self, settings: IdentitySettings) -> None:
        msal_logs.install()
        self.settings = settings
        self.http = make_http_client(settings.ca_file or None, settings.http_timeout)
        self.credentials = credentials.CredentialRing(
            credentials.load(
                settings.client_secrets,
                settings.client_secret_expiries,
                settings.client_certificates,
            )
        )
        self._expiries_asked: float | None = None  # when Graph was last asked (monotonic)
        self._discovery: dict[str, dict[str, Any]] = {}
        self._signing_keys = id_tokens.SigningKeys(self.http, self.discovery)
        # One client per authority for starting flows: building one costs as much as the rest
        # of a sign-in request, and initiate_auth_code_flow reads it without touching any cache.
        self._flow_clients: dict[str, msal.ConfidentialClientApplication] = {}
        self._flow_clients_lock = threading.Lock()

    @property
    def _jwks(self) -> dict[str, Any]:
        """Return the signing-key cache by kid (tests seed it to validate without network)."""
        return self._signing_keys.keys

    # -- ID token validation (MSAL checks only the nonce, pitfall 8) -------------------------

    def validate_id_token(self, token: str, authority: str) -> dict[str, Any]:
        """Verify signature, aud, exp, iss and tid of an ID token; return its claims."""
        return id_tokens.validate_id_token(
            token,
            authority,
            client_id=self.settings.client_id,
            authority_host=self.settings.authority_host,
            keys=self._signing_keys,
        )

    def discovery(self, authority: str, timeout: float | None = None) -> dict[str, Any]:
        """Return the OIDC discovery document for an authority tenant (cached per process)."""
        known = self._discovery.get(authority)
        if known is not None:
            return known
        url = f"{self.settings.authority_host}/{authority}/v2.0/.well-known/openid-configuration"
        try:
            response = self.http.get(url, timeout=timeout or self.settings.http_timeout)
            response.raise_for_status()
            document = dict(response.json())
        except (requests.RequestException, OSError, ValueError) as error:
            log.warning("discovery failed for %s: %s", authority, type(error).__name__)
            raise IdentityUnavailable() from None
        self._discovery[authority] = document
        return document

    def check(self, timeout: float = 3.0) -> bool:
        """Return True when the IdP's discovery answers within timeout."""
        url = f"{self.settings.authority_host}/organizations/v2.0/.well-known/openid-configuration"
        try:
            return self.http.get(url, timeout=timeout).status_code == 200
        except (requests.RequestException, OSError):  # OSError: the CA file is missing
            return False

    # -- MSAL construction -------------------------------------------------------------------

    def _flow_client(self, authority: str) -> msal.ConfidentialClientApplication:
        """Return this process's client for starting flows at one authority (built once)."""
        cca = self._flow_clients.get(authority)
        if cca is None:
            with self._flow_clients_lock:
                cca = self._flow_clients.get(authority)
                if cca is None:  # a failed build raises and is retried by the next request
                    cca = self._cca(authority)
                    if len(self._flow_clients) < MAX_FLOW_CLIENTS:  # bounded: one per tenant
                        self._flow_clients[authority] = cca
        return cca

    def _cca(
        self,
        authority: str,
        cache: msal.SerializableTokenCache | None = None,
        unavailable: type[PortalError] = IdentityUnavailable,
        position: int | None = None,
    ) -> msal.ConfidentialClientApplication:
        """Build a client for one authority with one credential (default: the one in use)."""
        chosen = position or self.credentials.current
        return transport.build_client(
            self.settings.client_id,
            f"{self.settings.authority_host}/{authority}",
            lambda: self.credentials.msal(chosen),
            self.http,
            cache,
            unavailable,
            capabilities=claims.capabilities() if self.settings.cae else None,
        )

    def _authenticated(
        self,
        build: Callable[[int], msal.ConfidentialClientApplication],
        call: Callable[[msal.ConfidentialClientApplication], dict[str, Any] | None],
    ) -> dict[str, Any] | None:
        """Run a token call, moving to the next credential when Entra refuses the one used."""
        position = self.credentials.current
        while True:
            result = call(build(position))
            code = credentials.refused_code(result)
            following = self.credentials.refused(position, code) if code else None
            if following is None:
                return result
            log.warning(
                "client credential %d refused with AADSTS%d; trying credential %d",
                position,
                code,
                following,
            )
            position = following

    # -- what is known about the credentials' expiry ------------------------------------------

    def credential_status(self, ask_graph: bool = True) -> list[dict[str, Any]]:
        """Return each credential's state, asking Graph for secrets' expiry at most hourly."""
        now = time.monotonic()
        asked = self._expiries_asked
        stale = asked is None or now - asked > LOOKUP_SECONDS
        if ask_graph and self.settings.app_tenant and stale:
            self._expiries_asked = now
            self.credentials.learn_expiries(self._graph_expiries())
        return self.credentials.status()

    def _graph_expiries(self) -> dict[str, datetime]:
        """Return the secrets' ends from Graph (Application.Read.All), or {} when it says no."""
        authority = self.settings.app_tenant
        try:
            result = self._authenticated(
                lambda p: self._cca(authority, position=p),
                lambda cca: cca.acquire_token_for_client(app_registration.SCOPES),
            )
            token = str((result or {}).get("access_token") or "")
            if not token:
                log.info("no app-only Graph token: %s", (result or {}).get("error"))
                return {}
            return app_registration.secret_expiries(
                self.http, self.settings.graph_url, token, self.settings.client_id
            )
        except (PortalError, requests.RequestException, OSError, ValueError) as error:
            log.info("secret expiry lookup failed: %s", type(error).__name__)
            return {}
