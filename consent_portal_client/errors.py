"""What the token API can answer besides a token, one exception class per case."""

from __future__ import annotations


class PortalClientError(Exception):
    """Base of every failure this client raises; `error` is the portal's code, if any."""

    def __init__(self, message: str, *, error: str | None = None, status: int | None = None):
        super().__init__(message)
        self.error = error
        self.status = status


class InvalidConnectionCode(PortalClientError):
    """401 invalid_token: the code is unknown, malformed or revoked; a new one is needed."""


class ScopeNotAllowed(PortalClientError):
    """The scopes asked for lie outside the connection's resource or consent (403)."""


class ReauthenticationRequired(PortalClientError):
    """409: Microsoft no longer accepts the connection; its owner must open reauthenticate_url."""

    def __init__(
        self,
        message: str,
        *,
        reauthenticate_url: str | None,
        error: str | None = "reauthentication_required",
    ):
        super().__init__(message, error=error, status=409)
        self.reauthenticate_url = reauthenticate_url  # None for connection_damaged


class PortalUnavailable(PortalClientError):
    """503 or 429 still after the allowed retries, or the portal could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, error=error, status=status)
        self.retry_after = retry_after
