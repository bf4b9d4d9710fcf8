"""AADSTS errors: the catalogue of texts and the three ways Entra shows them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

# code -> (OAuth error value, message). Texts follow the reference-error-codes page and field
# reports; {name} placeholders are filled from the EntraError's fields.
CATALOGUE: dict[int, tuple[str, str]] = {
    28000: (
        "invalid_scope",
        "Provided value for the input parameter scope is not valid because it contains more "
        "than one resource. Scope {scope} is not valid.",
    ),
    28003: (
        "invalid_scope",
        "Provided value for the input parameter scope cannot be empty when requesting an "
        "access token using the provided authorization code. Please specify a valid scope.",
    ),
    50011: (
        "invalid_request",
        "The redirect URI '{redirect_uri}' specified in the request does not match the redirect "
        "URIs configured for the application '{client_id}'. Make sure the redirect URI sent in "
        "the request matches one added to your application in the Azure portal.",
    ),
    50020: (
        "invalid_request",
        "User account '{username}' from identity provider '{idp}' does not exist in tenant "
        "'{tenant}' and cannot access the application '{client_id}' in that tenant.",
    ),
    50034: ("invalid_request", "The user account {username} does not exist in the directory."),
    50055: ("invalid_grant", "The password is expired."),
    50057: ("invalid_grant", "The user account is disabled."),
    50058: ("login_required", "A silent sign-in request was sent but no user is signed in."),
    50059: (
        "invalid_request",
        "No tenant-identifying information found in either the request or implied by any "
        "provided credentials.",
    ),
    50076: (
        "invalid_grant",
        "Due to a configuration change made by your administrator, or because you moved to a "
        "new location, you must use multi-factor authentication to access '{resource}'.",
    ),
    50079: (
        "invalid_grant",
        "Due to a configuration change made by your administrator, or because you moved to a "
        "new location, you are required to enroll in multi-factor authentication to access "
        "'{resource}'.",
    ),
    50105: (
        "access_denied",
        "Your administrator has configured the application {app_name} ('{client_id}') to block "
        "users unless they are specifically granted ('assigned') access to the application. "
        "The signed in user '{username}' is blocked because they are not a direct member of a "
        "group with access, nor had access directly assigned by an administrator.",
    ),
    50126: ("invalid_grant", "Error validating credentials due to invalid username or password."),
    50173: (
        "invalid_grant",
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. "
        "The user might have changed or reset their password.",
    ),
    53003: (
        "interaction_required",
        "Access has been blocked by Conditional Access policies. The access policy does not "
        "allow token issuance.",
    ),
    54005: (
        "invalid_grant",
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or "
        "use an existing refresh token.",
    ),
    65001: (
        "invalid_grant",
        "The user or administrator has not consented to use the application with ID "
        "'{client_id}' named '{app_name}'. Send an interactive authorization request for this "
        "user and resource.",
    ),
    65004: ("access_denied", "User declined to consent to access the app."),
    70000: ("invalid_grant", "The provided value for the 'code' parameter is not valid."),
    70003: ("unsupported_grant_type", "The app requested an unsupported grant type '{grant}'."),
    70043: (
        "invalid_grant",
        "The refresh token has expired or is invalid due to sign-in frequency checks by "
        "conditional access. The token was issued on {issued} and the maximum allowed lifetime "
        "for this request is {lifetime}.",
    ),
    70008: (
        "invalid_grant",
        "The provided authorization code or refresh token has expired due to inactivity. Send "
        "a new interactive authorization request for this user and resource.",
    ),
    70011: (
        "invalid_scope",
        "The provided request must include a 'scope' input parameter. The provided value for "
        "the input parameter 'scope' is not valid. The scope {scope} is not valid.",
    ),
    90002: (
        "invalid_tenant",
        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud.",
    ),
    90033: ("temporarily_unavailable", "A transient error has occurred. Please try again."),
    90093: (
        "access_denied",
        "Calling principal cannot consent due to lack of permissions.",
    ),
    90094: ("access_denied", "The grant requires admin permission."),
    90095: (
        "access_denied",
        "Admin consent is required for the permissions requested by this application. An "
        "admin consent request may be sent to the admin.",
    ),
    90130: (
        "invalid_request",
        "Application '{client_id}' is not supported over the /common or /consumers endpoints. "
        "Please use the /organizations or tenant-specific endpoint.",
    ),
    500011: (
        "invalid_resource",
        "The resource principal named {resource} was not found in the tenant named {tenant}.",
    ),
    500113: ("invalid_request", "No reply address is registered for the application."),
    500208: (
        "invalid_request",
        "The domain is not a valid login domain for the account type. You can't sign in here "
        "with a personal account. Use your work or school account instead.",
    ),
    501481: (
        "invalid_grant",
        "The Code_Verifier does not match the code_challenge supplied in the authorization "
        "request.",
    ),
    700005: (
        "invalid_grant",
        "Provided Authorization Code is intended to use against other tenant, thus rejected.",
    ),
    700016: (
        "unauthorized_client",
        "Application with identifier '{client_id}' was not found in the directory '{tenant}'. "
        "This can happen if the application has not been installed by the administrator of "
        "the tenant or consented to by any user in the tenant. You might have sent your "
        "authentication request to the wrong tenant.",
    ),
    700027: ("invalid_client", "Client assertion failed signature validation. {reason}"),
    700054: (
        "unsupported_response_type",
        "response_type '{response_type}' is not enabled for the application.",
    ),
    700082: (
        "invalid_grant",
        "The refresh token has expired due to inactivity. The token was issued on {issued} and "
        "was inactive for {inactive}.",
    ),
    900144: (
        "invalid_request",
        "The request body must contain the following parameter: '{parameter}'.",
    ),
    900561: ("invalid_request", "The endpoint only accepts POST requests. Received a GET request."),
    900971: ("invalid_request", "No reply address provided."),
    1002012: (
        "invalid_scope",
        "The provided value for scope {scope} is not valid. Client credential flows must have a "
        "scope value with /.default suffixed to the resource identifier (application ID URI).",
    ),
    7000112: (
        "unauthorized_client",
        "Application '{client_id}'({app_name}) is disabled.",
    ),
    7000215: (
        "invalid_client",
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        "client secret value, not the client secret ID, for a secret added to app "
        "'{client_id}'.",
    ),
    7000218: (
        "invalid_client",
        "The request body must contain the following parameter: 'client_assertion' or "
        "'client_secret'.",
    ),
    7000222: (
        "invalid_client",
        "The provided client secret keys for app '{client_id}' are expired. Visit the Azure "
        "portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider "
        "using certificate credentials for added security: https://aka.ms/certCreds.",
    ),
    9002313: ("invalid_request", "Invalid request. Request is malformed or invalid."),
}
# Page headings for codes shown at the emulator instead of redirected.
PAGE_TITLES = {
    50105: "Your administrator has not given you access to this application",
    7000112: "This application is disabled",
    90093: "Need admin approval",
    500208: "You can't sign in here with a personal account",
}


def utc_stamp(now: dt.datetime | None = None) -> str:
    """Return Entra's timestamp format, e.g. 2025-11-29 05:17:47Z."""
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M:%SZ")


class EntraError(Exception):
    """An AADSTS error; surface says whether it is JSON, a page or a redirect."""

    def __init__(
        self,
        code: int,
        *,
        error: str | None = None,
        status: int = 400,
        suberror: str | None = None,
        surface: str = "json",
        **fields: Any,
    ) -> None:
        """Fill the catalogue's message for code from fields."""
        default_error, template = CATALOGUE[code]
        self.code = code
        self.error = error or default_error
        self.status = status
        self.suberror = suberror
        self.surface = surface
        self.message = template.format_map(_Blank(fields))
        self.trace_id = str(uuid.uuid4())
        self.correlation_id = str(uuid.uuid4())
        self.timestamp = utc_stamp()
        self.headers: dict[str, str] = {}
        self.redirect_uri = ""
        self.response_mode = "query"
        self.params: dict[str, str] = {}
        super().__init__(f"AADSTS{code}: {self.message}")

    def description(self) -> str:
        """Return error_description in Entra's four-line form."""
        return (
            f"AADSTS{self.code}: {self.message}\r\nTrace ID: {self.trace_id}\r\n"
            f"Correlation ID: {self.correlation_id}\r\nTimestamp: {self.timestamp}"
        )

    def body(self, error_uri_base: str) -> dict[str, Any]:
        """Return the token-endpoint JSON body."""
        out: dict[str, Any] = {
            "error": self.error,
            "error_description": self.description(),
            "error_codes": [self.code],
            "timestamp": self.timestamp,
            "trace_id": self.trace_id,
            "correlation_id": self.correlation_id,
            "error_uri": f"{error_uri_base}/error?code={self.code}",
        }
        if self.suberror:
            out["suberror"] = self.suberror
        return out

    def page(self) -> EntraError:
        """Return this error marked to be shown as a page."""
        self.surface = "page"
        return self

    def redirect(
        self, redirect_uri: str, state: str | None, response_mode: str = "query", **extra: str
    ) -> EntraError:
        """Return this error marked to be sent back to the app's redirect URI."""
        self.surface = "redirect"
        self.redirect_uri = redirect_uri
        self.response_mode = response_mode
        params = dict(extra)
        params |= {"error": self.error, "error_description": self.description()}
        if state is not None:
            params["state"] = state
        self.params = params
        return self


class _Blank(dict[str, Any]):
    """A format map that leaves unknown placeholders empty."""

    def __missing__(self, key: str) -> str:
        """Return an empty string for a placeholder the error does not fill."""
        return ""


def lookup_text(code: int) -> str | None:
    """Return the catalogue's message for a code, without placeholders."""
    entry = CATALOGUE.get(code)
    return entry[1].format_map(_Blank()) if entry else None
