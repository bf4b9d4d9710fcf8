"""Typed failures the portal expects; one renderer turns them into pages or JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ConfigError(RuntimeError):
    """Refuse to start: the configuration is incomplete or unsafe."""


class PortalError(Exception):
    """Base of every expected failure; carries what the user and support need."""

    status: int = 500
    code: str = "server_error"
    title: str = "Something went wrong"
    message: str = "The portal could not finish this request. Try again later."
    retry_after: int | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: int | None = None,
        details: Mapping[str, str] | None = None,
    ) -> None:
        if message is not None:
            self.message = message
        if retry_after is not None:
            self.retry_after = retry_after
        self.details: dict[str, str] = dict(details or {})
        self.diagnosis: Any = None
        super().__init__(self.message)

    def api_body(self) -> dict[str, Any]:
        """Return the RFC 6750-style JSON body for the token API."""
        return {"error": self.code, "error_description": self.message}

    def http_headers(self) -> dict[str, str]:
        """Return the headers this error adds to an HTTP response."""
        if self.retry_after is not None:
            return {"Retry-After": str(self.retry_after)}
        return {}


class IdentityUnavailable(PortalError):
    """The identity provider did not answer or answered with a server error."""

    status = 503
    code = "temporarily_unavailable"
    title = "Microsoft sign-in is unavailable"
    message = "The sign-in service did not answer. Wait a moment and try again."
    retry_after = 30


class SignInExpired(PortalError):
    """The flow is unknown, expired or already used."""

    status = 400
    code = "sign_in_expired"
    title = "Sign-in expired"
    message = "Your sign-in expired or was already used. Start again."


class SignInRejected(PortalError):
    """The callback failed a state, nonce or ID-token check."""

    status = 400
    code = "sign_in_rejected"
    title = "Sign-in could not be verified"
    message = "The answer from the sign-in service could not be verified. Start again."


class EntraError(PortalError):
    """Entra answered with an error; the renderer maps it to a diagnosis."""

    status = 400
    code = "entra_error"
    title = "Microsoft sign-in reported a problem"
    message = "Microsoft sign-in did not complete."

    def __init__(
        self,
        error: str,
        description: str = "",
        *,
        codes: tuple[int, ...] = (),
        subcode: str | None = None,
        suberror: str | None = None,
        trace_id: str | None = None,
        correlation_id: str | None = None,
        admin_consent: bool = False,
        details: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(details=details)
        self.error = error
        self.description = description
        self.codes = codes
        self.subcode = subcode
        self.suberror = suberror
        self.trace_id = trace_id
        self.correlation_id = correlation_id
        self.admin_consent = admin_consent
        if codes:
            self.details.setdefault("aadsts", f"AADSTS{codes[0]}")
        if trace_id:
            self.details.setdefault("trace_id", trace_id)
        if correlation_id:
            self.details.setdefault("correlation_id", correlation_id)

    @property
    def aadsts(self) -> int | None:
        """Return the first AADSTS number, if Entra gave one."""
        return self.codes[0] if self.codes else None


class AccountTypeNotSupported(PortalError):
    """A personal Microsoft account was used for a work-only connector."""

    status = 400
    code = "account_type_not_supported"
    title = "This connector needs a work or school account"
    message = (
        "You signed in with a personal Microsoft account. This connector reads data that only "
        "exists in an organization's Microsoft 365 or Azure, so it needs a work or school "
        "account. Sign in again with the account your organization gave you."
    )

    def __init__(self, connector_name: str | None = None) -> None:
        message = None
        if connector_name:
            message = (
                f"{connector_name} works only with a work or school account, and you chose a "
                "personal Microsoft account. Personal accounts have no SharePoint sites, "
                "Dynamics 365 records or Azure Storage data for the portal to read. Sign in again "
                "with the account your organization gave you, or pick OneDrive or Outlook for "
                "personal data."
            )
        super().__init__(message, details={"connector": connector_name} if connector_name else None)


class InvalidToken(PortalError):
    """The connection code is unknown, malformed or revoked; one body for all."""

    status = 401
    code = "invalid_token"
    title = "Connection code not accepted"
    message = "The connection code is not valid."

    def http_headers(self) -> dict[str, str]:
        """Return the RFC 6750 challenge."""
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class CodeNotInHeader(PortalError):
    """The code arrived in the query string or body (C25)."""

    status = 400
    code = "invalid_request"
    title = "Connection code in the wrong place"
    message = "Send the code in the Authorization header: Authorization: Bearer <code>."

    def http_headers(self) -> dict[str, str]:
        """Return the RFC 6750 challenge."""
        return {"WWW-Authenticate": 'Bearer error="invalid_request"'}


class BadClaims(PortalError):
    """The token API's claims parameter is not a claims challenge's base64 value."""

    status = 400
    code = "invalid_request"
    title = "Bad claims"
    message = (
        "The claims parameter must be the base64 claims value of a resource's "
        "WWW-Authenticate challenge (a JSON object)."
    )


class ScopeNotAllowed(PortalError):
    """A code asked for a resource or scope its connector was not consented for."""

    status = 403
    code = "insufficient_scope"
    title = "Not allowed for this connection"
    message = "This connection code only gives access to its own connector's resource."


class ReauthenticationRequired(PortalError):
    """The refresh token was refused; the owner must reconnect."""

    status = 409
    code = "reauthentication_required"
    title = "Reconnect required"
    message = "Microsoft no longer accepts this connection. Its owner must reconnect it."

    def __init__(
        self,
        message: str | None = None,
        *,
        reauthenticate_url: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.reauthenticate_url = reauthenticate_url

    def api_body(self) -> dict[str, Any]:
        """Return the JSON body with the link the owner should open."""
        body = super().api_body()
        if self.reauthenticate_url:
            body["reauthenticate_url"] = self.reauthenticate_url
        return body


class TemporarilyUnavailable(PortalError):
    """Entra, the database or Redis failed for now; the caller retries."""

    status = 503
    code = "temporarily_unavailable"
    title = "Temporarily unavailable"
    message = "The token service is temporarily unavailable. Retry after the given delay."
    retry_after = 5


class ServiceUnavailable(TemporarilyUnavailable):
    """The database or Redis did not answer in time; the portal recovers by itself."""

    title = "Temporarily unavailable"
    message = "A service the portal depends on is not answering. Wait a moment and try again."
    retry_after = 2


class ConnectionNotActive(PortalError):
    """The connection was revoked; nothing can be done with it any more."""

    status = 409
    code = "connection_revoked"
    title = "Connection revoked"
    message = "This connection was revoked. Connect again from the connector's page."


class ConnectionDamaged(PortalError):
    """The sealed token cache failed authenticated decryption (C37)."""

    status = 409
    code = "connection_damaged"
    title = "Connection damaged"
    message = "This connection's stored credentials cannot be read. Reconnect it."


class BadProxyRequest(PortalError):
    """A proxied call or table export asked for something the portal will not fetch."""

    status = 400
    code = "invalid_request"
    title = "Request refused"
    message = "The request was refused before anything was sent."


class ResourceRefused(PortalError):
    """The resource refused an export's first page (403, 404, 400...): its status, its words."""

    code = "resource_refused"
    title = "The resource refused the request"
    message = "The resource refused the request."

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class NotFound(PortalError):
    """Nothing here for this visitor: unknown, out of their scope or not theirs, all alike."""

    status = 404
    code = "not_found"
    title = "Page not found"
    message = "There is nothing here. Check the link, or start from the connectors."


class Forbidden(PortalError):
    """The visitor may not do this, or the form came from another site."""

    status = 403
    code = "forbidden"
    title = "Not allowed"
    message = (
        "You don't have access to this page, or the form came from another site or expired. "
        "Go back, reload the page and try again."
    )


class Unauthorized(PortalError):
    """A machine endpoint's bearer token is missing or wrong."""

    status = 401
    code = "invalid_token"
    title = "Not signed in"
    message = "Send the endpoint's token: Authorization: Bearer <token>."

    def http_headers(self) -> dict[str, str]:
        """Return the RFC 6750 challenge."""
        return {"WWW-Authenticate": "Bearer"}


class AlreadyDecided(PortalError):
    """An admin acted on a consent request that another decision settled first."""

    status = 409
    code = "already_decided"
    title = "Already decided"
    message = "This request was already decided. Open it to see the decision."


class NoAdministrator(PortalError):
    """A personal Microsoft account asked for admin consent: there is nobody to ask."""

    status = 400
    code = "no_administrator"
    title = "There is no administrator to ask"
    message = "Personal Microsoft accounts have no administrator to ask."


class ConsentNotVerified(PortalError):
    """An admin-consent answer without a state this session stored: nothing is recorded (C13)."""

    status = 400
    code = "admin_consent_not_verified"
    title = "This consent answer could not be verified"
    message = (
        "The answer from Microsoft's admin consent page does not belong to a Grant for "
        "organization or Approve started in this browser, so nothing was recorded. Start again "
        "from the admin console."
    )


class LinkRefused(ValueError):
    """A link cannot be created as asked; the message says why, for the form or the CLI."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field  # the form field at fault, which the form marks beside its input


class GraphUnavailable(Exception):
    """Graph did not answer, or refused the admin's token (tenant readiness)."""


class UnknownKey(ConnectionDamaged):
    """A sealed cache names a key id this process was not given (C39)."""

    status = 500
    code = "unknown_key"
    title = "Encryption key missing"
    message = (
        "This connection was sealed with an encryption key the portal does not have. "
        "The operator must restore that key in PORTAL_ENCRYPTION_KEYS."
    )
