"""MSAL plumbing, Flask-free: the HTTP session, Retry-After, client credentials and clients."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import msal
import requests
import requests.adapters
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from urllib3.util.retry import Retry

from app.errors import PortalError

log = logging.getLogger(__name__)

# Process-wide MSAL HTTP cache: discovery is fetched once and kept (pitfall 19).
HTTP_CACHE: dict[Any, Any] = {}
DEFAULT_RETRY_AFTER = 5
_last = threading.local()  # Retry-After of the last answer seen by this thread


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


def build_client(
    client_id: str,
    authority_url: str,
    credential: Callable[[], Any],
    http: requests.Session,
    cache: msal.SerializableTokenCache | None,
    unavailable: type[PortalError],
    capabilities: list[str] | None = None,
) -> msal.ConfidentialClientApplication:
    """Build a client for one authority; construction performs discovery (pitfall 2)."""
    try:
        return msal.ConfidentialClientApplication(
            client_id,
            client_credential=credential(),  # in the try: unreadable PEM files mean "unavailable"
            authority=authority_url,
            instance_discovery=False,
            http_client=http,
            http_cache=HTTP_CACHE,
            token_cache=cache,
            # CP1 (PORTAL_CAE): the portal handles claims challenges, so Entra gives CAE tokens.
            client_capabilities=capabilities,
        )
    except (
        requests.RequestException,
        msal.exceptions.MsalServiceError,
        OSError,
        ValueError,
    ) as error:
        log.warning("identity provider unavailable: %s", type(error).__name__)
        raise unavailable(retry_after=last_retry_after(30)) from None


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
