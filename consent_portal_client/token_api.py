"""One call to POST /api/v1/token: timeouts, bounded retries on 503 and 429, typed errors."""

from __future__ import annotations

import email.utils
import time
from typing import Any
from urllib.parse import urlsplit

import requests

from consent_portal_client.errors import InvalidConnectionCode
from consent_portal_client.errors import PortalClientError
from consent_portal_client.errors import PortalUnavailable
from consent_portal_client.errors import ReauthenticationRequired
from consent_portal_client.errors import ScopeNotAllowed
from consent_portal_client.tokens import PortalToken

RETRYABLE = (429, 503)
DEFAULT_RETRY_AFTER = 1.0  # a 503 without Retry-After: wait a little, not a minute
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def token_url(portal_url: str) -> str:
    """Return the token endpoint under a portal URL; plain HTTP only on this machine."""
    parts = urlsplit(portal_url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
        # The code is a long-lived secret: never send it in clear text across a network.
        raise ValueError(f"portal_url must be an https:// URL, not {portal_url!r}")
    return portal_url.rstrip("/") + "/api/v1/token"


class TokenAPI:
    """The portal's token endpoint as seen through one connection code."""

    def __init__(
        self,
        code: str,
        portal_url: str,
        session: requests.Session,
        timeout: float,
        max_wait: float,
        max_retries: int,
    ) -> None:
        if not code or not code.strip():
            raise ValueError("code: expected the connection code the portal showed")
        self.url = token_url(portal_url)
        self._headers = {"Authorization": f"Bearer {code.strip()}", "Accept": "application/json"}
        self._session = session
        self._timeout = timeout
        self._max_wait = max_wait
        self._max_retries = max_retries

    def fetch(self, scope: str | None) -> PortalToken:
        """Return a token, retrying 503 and 429 after Retry-After within the wait budget."""
        waited = 0.0
        for attempt in range(self._max_retries + 1):
            response = self._post(scope)
            if response.status_code == 200:
                return parse_token(response)
            delay = retry_delay(response)
            if delay is None or attempt == self._max_retries or waited + delay > self._max_wait:
                raise error_for(response, delay)
            time.sleep(delay)
            waited += delay
        raise AssertionError("unreachable: the last attempt raises")

    def _post(self, scope: str | None) -> requests.Response:
        """Send one request with a timeout; never follow a redirect with the code."""
        try:
            return self._session.post(
                self.url,
                headers=self._headers,
                json={"scope": scope} if scope else None,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            reason = type(exc).__name__
            raise PortalUnavailable(f"could not reach the portal at {self.url} ({reason})") from exc


def parse_token(response: requests.Response) -> PortalToken:
    """Return the token of a 200 answer, or refuse an answer that is not one."""
    body = _json(response)
    token, expires_at = body.get("access_token"), body.get("expires_at")
    if not isinstance(token, str) or not token or not isinstance(expires_at, int | float):
        raise PortalClientError("the portal's answer holds no access token", status=200)
    connector = body.get("connector")
    return PortalToken(
        token,
        int(expires_at),
        str(body.get("scope") or ""),
        connector if isinstance(connector, str) else None,
    )


def retry_delay(response: requests.Response) -> float | None:
    """Return the seconds to wait before retrying, or None if the answer is final."""
    if response.status_code not in RETRYABLE:
        return None
    raw = response.headers.get("Retry-After", "").strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw)  # Retry-After may be an HTTP date
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    return max(0.0, when.timestamp() - time.time())


def error_for(response: requests.Response, retry_after: float | None) -> PortalClientError:
    """Return the exception for a refusal, with the portal's own words."""
    body = _json(response)
    status = response.status_code
    error = str(body.get("error") or "") or None
    said = str(body.get("error_description") or body.get("message") or "").strip()
    message = f"{said or 'the portal refused the request'} ({error or 'no error code'}, {status})"
    if status == 401:
        return InvalidConnectionCode(message, error=error, status=status)
    if status == 403:
        return ScopeNotAllowed(message, error=error, status=status)
    if status == 409:
        url = body.get("reauthenticate_url")
        url = url if isinstance(url, str) and url else None
        hint = f"; the connection's owner reconnects at {url}" if url else ""
        return ReauthenticationRequired(message + hint, reauthenticate_url=url, error=error)
    if status in RETRYABLE or status >= 500:
        return PortalUnavailable(message, error=error, status=status, retry_after=retry_after)
    return PortalClientError(message, error=error, status=status)


def _json(response: requests.Response) -> dict[str, Any]:
    """Return the answer's JSON object, or an empty dict for anything else."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
