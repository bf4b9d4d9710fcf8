"""MSAL wrapper, Flask-free: start and finish sign-in flows, get tokens silently, check the IdP."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from urllib.parse import urlsplit

import jwt
import msal
import requests
import requests.adapters
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from urllib3.util.retry import Retry

from app import msal_logs
from app.connectors import MSA_TENANT
from app.connectors import RESERVED_SCOPES
from app.connectors import Connector
from app.connectors import account_type_for_tenant
from app.connectors import authority_tenant as default_authority_tenant
from app.errors import EntraError
from app.errors import IdentityUnavailable
from app.errors import PortalError
from app.errors import ReauthenticationRequired
from app.errors import SignInExpired
from app.errors import SignInRejected
from app.errors import TemporarilyUnavailable

log = logging.getLogger(__name__)

# Process-wide MSAL HTTP cache: discovery is fetched once and kept (pitfall 19).
HTTP_CACHE: dict[Any, Any] = {}
# Flow keys the portal adds to MSAL's flow dict; stripped before MSAL sees the flow again.
CONNECTOR_KEY = "portal.connector"
AUTHORITY_KEY = "portal.authority_tenant"
CREATED_KEY = "portal.created_at"
SCOPES_KEY = "portal.scopes"
MSAL_EXPIRY_MARGIN = 300  # MSAL treats an access token with < 5 minutes left as expired
REFUSED_ERRORS = frozenset(
    {"invalid_grant", "interaction_required", "consent_required", "login_required", "invalid_scope"}
)
GENERIC_TENANTS = frozenset({"common", "organizations", "consumers"})
DEFAULT_RETRY_AFTER = 5
MAX_FLOW_CLIENTS = 64  # cached flow-starting clients per process (common, organizations, ...)
_last = threading.local()  # Retry-After of the last answer seen by this thread


class RefreshRefused(Exception):
    """Entra refused the refresh token; the broker decides after re-reading the row."""

    def __init__(self, error: str, codes: tuple[int, ...] = (), suberror: str | None = None):
        super().__init__(error)
        self.error = error
        self.codes = codes
        self.suberror = suberror


@dataclass(frozen=True)
class SignIn:
    """A verified sign-in: who signed in, for which connector, and their fresh token cache."""

    home_account_id: str
    username: str
    name: str
    oid: str
    tenant_id: str
    account_type: str
    wids: tuple[str, ...]
    roles: tuple[str, ...]
    scopes_granted: tuple[str, ...]
    connector_id: str
    cache_blob: str
    authority_tenant: str = "organizations"


@dataclass(frozen=True)
class TokenOutcome:
    """An access token and, when MSAL's cache changed, the blob to store."""

    access_token: str
    expires_at: int
    scope: str
    source: str
    cache_blob: str | None


@dataclass(frozen=True)
class IdentitySettings:
    """What the identity module needs from configuration."""

    authority_host: str
    client_id: str
    redirect_uri: str
    client_secret: str = ""
    client_certificate: str = ""
    client_certificate_key: str = ""
    ca_file: str = ""
    http_timeout: float = 10.0
    flow_ttl: int = 600

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> IdentitySettings:
        """Build from the app's configuration mapping."""
        return cls(
            authority_host=str(config["AUTHORITY_HOST"]).rstrip("/"),
            client_id=str(config["CLIENT_ID"]),
            redirect_uri=str(config["REDIRECT_URI"]),
            client_secret=str(config.get("CLIENT_SECRET") or ""),
            client_certificate=str(config.get("CLIENT_CERTIFICATE") or ""),
            client_certificate_key=str(config.get("CLIENT_CERTIFICATE_KEY") or ""),
            ca_file=str(config.get("CA_FILE") or ""),
            http_timeout=float(config.get("HTTP_TIMEOUT") or 10.0),
            flow_ttl=int(config.get("FLOW_TTL") or 600),
        )


class _TimedSession(requests.Session):
    """A requests session that always has a timeout and remembers Retry-After."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        """Send with the default timeout unless one is given; note Retry-After."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        _last.retry_after = None
        response = super().request(method, url, *args, **kwargs)
        _last.retry_after = response.headers.get("Retry-After")
        return response


def make_http_client(ca_file: str | None, timeout: float) -> requests.Session:
    """Return a session for MSAL and discovery: our CA, no environment, timeouts, few retries."""
    session = _TimedSession(timeout)
    session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies must not override verify (pitfall 4)
    session.verify = ca_file or True
    # Retry only connection set-up, never a POST that reached Entra: a code or RT is single-use.
    retries = Retry(total=1, connect=1, read=0, status=0, other=0, backoff_factor=0.2)
    adapter = requests.adapters.HTTPAdapter(max_retries=retries)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def last_retry_after(default: int = DEFAULT_RETRY_AFTER) -> int:
    """Return the Retry-After seconds of this thread's last answer, or default."""
    raw = getattr(_last, "retry_after", None)
    try:
        return max(1, min(int(str(raw)), 3600)) if raw is not None else default
    except ValueError:
        return default


class Identity:
    """Talks to Entra (or the emulator) through MSAL; plain values in and out."""

    def __init__(self, settings: IdentitySettings) -> None:
        msal_logs.install()
        self.settings = settings
        self.http = make_http_client(settings.ca_file or None, settings.http_timeout)
        self._credential: Any = None
        self._jwks: dict[str, Any] = {}
        self._jwks_lock = threading.Lock()
        self._discovery: dict[str, dict[str, Any]] = {}
        # One client per authority for starting flows: building one costs as much as the rest
        # of a sign-in request, and initiate_auth_code_flow reads it without touching any cache.
        self._flow_clients: dict[str, msal.ConfidentialClientApplication] = {}
        self._flow_clients_lock = threading.Lock()

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
            raise EntraError.from_response(response, details=details)
        scopes = list(flow.get(SCOPES_KEY) or [])
        cache = msal.SerializableTokenCache()
        result = self._redeem(authority, cache, flow, response, scopes)
        if "error" in result:
            raise EntraError.from_response(result, details=details)
        claims = self.validate_id_token(str(result.get("id_token") or ""), authority)
        return self._sign_in(result, claims, flow, authority, cache)

    def _redeem(
        self,
        authority: str,
        cache: msal.SerializableTokenCache,
        flow: Mapping[str, Any],
        response: Mapping[str, str],
        scopes: list[str],
    ) -> dict[str, Any]:
        """Call MSAL's code redemption, turning each failure type into ours (pitfall 7)."""
        cca = self._cca(authority, cache)
        msal_flow = {k: v for k, v in flow.items() if not k.startswith("portal.")}
        try:
            result = cca.acquire_token_by_auth_code_flow(msal_flow, dict(response), scopes=scopes)
        except ValueError:  # state missing or mismatched; the message holds both states: not logged
            raise SignInRejected() from None
        except RuntimeError:  # the ID token's nonce does not match this flow
            raise SignInRejected() from None
        except (msal.exceptions.MsalServiceError, requests.RequestException, OSError) as error:
            log.warning("code redemption failed: %s", type(error).__name__)
            raise IdentityUnavailable(retry_after=last_retry_after(30)) from None
        return dict(result or {})

    def _sign_in(
        self,
        result: Mapping[str, Any],
        claims: Mapping[str, Any],
        flow: Mapping[str, Any],
        authority: str,
        cache: msal.SerializableTokenCache,
    ) -> SignIn:
        """Assemble the SignIn from a verified token response."""
        tid = str(claims["tid"])
        return SignIn(
            home_account_id=home_account_id(result, claims),
            username=str(claims.get("preferred_username") or claims.get("upn") or ""),
            name=str(claims.get("name") or ""),
            oid=str(claims.get("oid") or claims.get("sub")),
            tenant_id=tid,
            account_type=account_type_for_tenant(tid),
            wids=tuple(str(w) for w in claims.get("wids") or ()),
            roles=tuple(str(r) for r in claims.get("roles") or ()),
            scopes_granted=tuple(str(result.get("scope") or "").split()),
            connector_id=str(flow.get(CONNECTOR_KEY) or ""),
            cache_blob=cache.serialize(),
            authority_tenant=authority,
        )

    # -- ID token validation (MSAL checks only the nonce, pitfall 8) -------------------------

    def validate_id_token(self, token: str, authority: str) -> dict[str, Any]:
        """Verify signature, aud, exp, iss and tid of an ID token; return its claims."""
        if not token:
            raise SignInRejected()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise SignInRejected() from None
        tid = unverified.get("tid")
        if header.get("alg") != "RS256" or not isinstance(tid, str) or not tid:
            raise SignInRejected()
        key = self._signing_key(str(header.get("kid") or ""), authority)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.settings.client_id,
                issuer=f"{self.settings.authority_host}/{tid}/v2.0",
                leeway=120,
                options={"require": ["exp", "iat", "iss", "aud", "tid", "sub"]},
            )
        except jwt.PyJWTError:
            raise SignInRejected() from None
        check_tenant(authority, tid)
        return claims

    def _signing_key(self, kid: str, authority: str) -> Any:
        """Return the public key for kid, refetching the JWKS once for a new kid."""
        with self._jwks_lock:
            if kid not in self._jwks:
                self._jwks.update(self._fetch_jwks(authority))
            jwk = self._jwks.get(kid)
        if jwk is None:
            raise SignInRejected()
        return jwk

    def _fetch_jwks(self, authority: str) -> dict[str, Any]:
        """Fetch the keys named by discovery's jwks_uri."""
        uri = str(self.discovery(authority).get("jwks_uri") or "")
        try:
            response = self.http.get(uri)
            response.raise_for_status()
            keys = response.json().get("keys", [])
            return {str(k["kid"]): jwt.PyJWK(k).key for k in keys if k.get("kid")}
        except (requests.RequestException, OSError, ValueError, KeyError, jwt.PyJWTError) as error:
            log.warning("could not load signing keys: %s", type(error).__name__)
            raise IdentityUnavailable() from None

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

    # -- tokens for a stored connection ------------------------------------------------------

    def cached_token(
        self, cache_blob: str, home_account_id: str, scopes: Sequence[str]
    ) -> TokenOutcome | None:
        """Return a still-fresh access token from the blob without MSAL or I/O, else None."""
        try:
            entries = json.loads(cache_blob).get("AccessToken", {})
        except (ValueError, AttributeError):
            return None
        wanted = set(scopes)
        now = time.time()
        for entry in entries.values():
            if entry.get("home_account_id") != home_account_id:
                continue
            if entry.get("client_id") != self.settings.client_id:
                continue
            target = str(entry.get("target") or "")
            if not wanted <= set(target.split()):
                continue
            expires_on = int(entry.get("expires_on") or 0)
            refresh_on = int(entry.get("refresh_on") or expires_on)
            if expires_on - now <= MSAL_EXPIRY_MARGIN or refresh_on <= now:
                continue  # MSAL would refresh this one; so do we, under the lock
            return TokenOutcome(
                str(entry["secret"]), expires_on, resource_scopes(target), "cache", None
            )
        return None

    def token_for(
        self,
        cache_blob: str,
        home_account_id: str,
        scopes: Sequence[str],
        authority_tenant: str,
        force_refresh: bool = False,
    ) -> TokenOutcome:
        """Return an access token, refreshing through MSAL when the cache has none fresh."""
        cache = msal.SerializableTokenCache()
        cache.deserialize(cache_blob)
        cca = self._cca(authority_tenant, cache, unavailable=TemporarilyUnavailable)
        account = next(
            (a for a in cca.get_accounts() if a.get("home_account_id") == home_account_id), None
        )
        if account is None:
            raise ReauthenticationRequired()
        try:
            result = cca.acquire_token_silent_with_error(
                list(scopes), account, force_refresh=force_refresh
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
    ) -> msal.ConfidentialClientApplication:
        """Build a client for one authority; construction performs discovery (pitfall 2)."""
        try:
            return msal.ConfidentialClientApplication(
                self.settings.client_id,
                client_credential=self._client_credential(),
                authority=f"{self.settings.authority_host}/{authority}",
                instance_discovery=False,
                http_client=self.http,
                http_cache=HTTP_CACHE,
                token_cache=cache,
            )
        except (
            requests.RequestException,
            msal.exceptions.MsalServiceError,
            OSError,
            ValueError,
        ) as error:
            log.warning("identity provider unavailable: %s", type(error).__name__)
            raise unavailable(retry_after=last_retry_after(30)) from None

    def _client_credential(self) -> Any:
        """Return the client secret, or a certificate credential for client assertions."""
        if self._credential is None:
            if self.settings.client_certificate:
                self._credential = certificate_credential(
                    self.settings.client_certificate, self.settings.client_certificate_key
                )
            else:
                self._credential = self.settings.client_secret
        return self._credential


def certificate_credential(certificate_path: str, key_path: str) -> dict[str, str]:
    """Return MSAL's client-assertion credential from PEM files."""
    with open(certificate_path, "rb") as handle:
        certificate_pem = handle.read()
    with open(key_path) as handle:
        private_key = handle.read()
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    return {
        "private_key": private_key,
        "thumbprint": certificate.fingerprint(hashes.SHA1()).hex(),  # noqa: S324 - x5t is SHA-1
        "public_certificate": certificate.public_bytes(Encoding.PEM).decode("ascii"),
    }


def check_tenant(authority: str, tid: str) -> None:
    """Refuse an ID token from a tenant the flow did not ask for (C10)."""
    if authority == "consumers" and tid != MSA_TENANT:
        raise SignInRejected()
    if authority == "organizations" and tid == MSA_TENANT:
        raise SignInRejected()
    if authority not in GENERIC_TENANTS and tid.lower() != authority.lower():
        raise SignInRejected()


def home_account_id(result: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    """Return MSAL's home account id: uid.utid from client_info, else the ID token's sub."""
    raw = str(result.get("client_info") or "")
    if raw:
        try:
            info = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            return f"{info['uid']}.{info['utid']}"
        except (ValueError, KeyError, TypeError):
            pass
    return str(claims.get("sub") or "")


def resource_scopes(scope: str) -> str:
    """Return a scope string without the OpenID Connect scopes MSAL adds."""
    return " ".join(s for s in scope.split() if s not in RESERVED_SCOPES)


def refresh_error(result: Mapping[str, Any]) -> Exception:
    """Turn MSAL's error dict from a silent call into RefreshRefused or a retryable error."""
    error = str(result.get("error") or "")
    codes = tuple(int(c) for c in result.get("error_codes") or () if str(c).isdigit())
    if error in REFUSED_ERRORS:
        return RefreshRefused(error, codes, result.get("suberror"))
    # invalid_client and friends are the operator's problem, not the connection's: retry later.
    log.warning("token endpoint error %r codes=%s", error[:64], codes[:3])
    return TemporarilyUnavailable(retry_after=last_retry_after())
