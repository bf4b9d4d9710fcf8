"""A small Microsoft Graph: the route table, the token and scope checks, and the dispatcher."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import jsonify
from flask import request
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from entra_emulator import graph_applications as applications
from entra_emulator import graph_directory as directory
from entra_emulator import graph_download as downloads
from entra_emulator import graph_drive as drive
from entra_emulator import graph_mail as mail
from entra_emulator import graph_sites as sites
from entra_emulator.graph_common import GRAPH_APP_ID
from entra_emulator.graph_common import GraphError
from entra_emulator.graph_common import error_response
from entra_emulator.graph_common import stamp
from entra_emulator.resources import ClaimsChallenge
from entra_emulator.resources import TokenProblem
from entra_emulator.resources import bearer
from entra_emulator.resources import check_critical_events
from entra_emulator.resources import has_scope
from entra_emulator.runtime import current
from entra_emulator.scopes import GRAPH

Handler = Callable[[dict[str, Any], re.Match[str]], Any]
READ_DIRECTORY = ("Application.Read.All", "Directory.Read.All")
READ_POLICY = ("Policy.Read.All",)
READ_GRANTS = (
    "DelegatedPermissionGrant.Read.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
WRITE_GRANTS = ("DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All")
PROFILE = ("User.Read", "User.ReadBasic.All", "Directory.Read.All")
SITES = ("Sites.Read.All", "Sites.ReadWrite.All", "Sites.Manage.All", "Sites.FullControl.All")
FILES = ("Files.Read", "Files.Read.All", "Files.ReadWrite", "Files.ReadWrite.All", "Sites.Read.All")
MAIL = ("Mail.Read", "Mail.ReadBasic", "Mail.ReadWrite")
DENIED = "Authorization_RequestDenied"
SITE = r"v1\.0/sites/(?P<site>[^/:]+(?::/sites/[^/:]+:?)?)"
LIST = SITE + r"/lists/(?P<list>[^/]+)"
DRIVE = r"v1\.0/(?:me/drive|drives/(?P<drive>[^/]+)|sites/(?P<site>[^/:]+)/drive)"
ITEM = DRIVE + r"/(?:root(?::/(?P<path>[^:]+):?)?|items/(?P<item>[^/:]+))"
BY_PATH = DRIVE + r"/(?:root:/(?P<path>[^:]+):|(?:root|items/(?P<item>[^/:]+)))"
# path pattern -> (handler, scopes of which the token needs one, Graph's 403 code)
ROUTES: list[tuple[str, Handler, tuple[str, ...], str]] = [
    (r"v1\.0/me", directory.me, PROFILE, DENIED),
    (r"oidc/userinfo", directory.me, ("User.Read",), DENIED),
    (r"v1\.0/sites", sites.sites_search, SITES, "accessDenied"),
    (SITE, sites.site_get, SITES, "accessDenied"),
    (SITE + r"/lists", sites.lists, SITES, "accessDenied"),
    (LIST, sites.list_get, SITES, "accessDenied"),
    (LIST + r"/items", sites.list_items, SITES, "accessDenied"),
    (LIST + r"/items/(?P<item>\d+)", sites.list_item, SITES, "accessDenied"),
    (DRIVE, drive.drive_get, FILES, "accessDenied"),
    (ITEM, drive.item_get, FILES, "accessDenied"),
    (BY_PATH + r"/children", drive.item_children, FILES, "accessDenied"),
    (BY_PATH + r"/content", drive.item_content, FILES, "accessDenied"),
    (r"v1\.0/me/mailFolders", mail.folders, MAIL, "ErrorAccessDenied"),
    (r"v1\.0/me/mailFolders/(?P<folder>[^/]+)", mail.folder, MAIL, "ErrorAccessDenied"),
    (r"v1\.0/me/mailFolders/(?P<folder>[^/]+)/messages", mail.folder_messages, MAIL,
     "ErrorAccessDenied"),
    (r"v1\.0/me/messages", mail.messages, MAIL, "ErrorAccessDenied"),
    (r"v1\.0/me/messages/(?P<message>[^/]+)", mail.message, MAIL, "ErrorAccessDenied"),
    (applications.ALL, applications.applications, READ_DIRECTORY, DENIED),
    (applications.BY_APP_ID, applications.application, READ_DIRECTORY, DENIED),
    (r"v1\.0/servicePrincipals", directory.service_principals, READ_DIRECTORY, DENIED),
    (r"v1\.0/servicePrincipals/([0-9a-fA-F-]+)/appRoleAssignedTo", directory.assigned_to,
     READ_DIRECTORY, DENIED),
    (r"v1\.0/policies/authorizationPolicy", directory.authorization_policy, READ_POLICY, DENIED),
    (r"v1\.0/policies/adminConsentRequestPolicy", directory.consent_request_policy, READ_POLICY,
     DENIED),
    (r"v1\.0/oauth2PermissionGrants", directory.permission_grants, READ_GRANTS, DENIED),
    (r"v1\.0/oauth2PermissionGrants/(?P<grant>[0-9a-fA-F-]+)", directory.permission_grant,
     READ_GRANTS, DENIED),
]  # fmt: skip
# Routes that also change things: PATCH and DELETE need these scopes instead of the read ones.
WRITES: dict[Handler, tuple[str, ...]] = {directory.permission_grant: WRITE_GRANTS}


def graph(path: str) -> ResponseReturnValue:
    """Answer a Graph read with Graph's request-id headers, errors included."""
    try:
        return stamp(_answer(path.rstrip("/")))
    except GraphError as error:
        return error_response(error.status, error.code, error.message)


def _answer(path: str) -> Response:
    """Validate the bearer token and the scope, then run the route's handler."""
    if path.startswith("_download/"):  # pre-authenticated: the URL is the credential
        return downloads.download(path.removeprefix("_download/"))
    try:
        claims = bearer([GRAPH, GRAPH_APP_ID])
        check_critical_events(claims)  # Graph evaluates CAE events (SharePoint, Exchange too)
    except ClaimsChallenge as challenge:
        authorize = f"{current().browser_url}/common/oauth2/authorize"
        header = challenge.header(authorize, GRAPH_APP_ID)
        return error_response(401, "InvalidAuthenticationToken", str(challenge), header)
    except TokenProblem as problem:
        return error_response(401, "InvalidAuthenticationToken", str(problem))
    for pattern, handler, needed, denied in ROUTES:
        match = re.fullmatch(pattern, path)
        if match is None:
            continue
        if request.method != "GET":
            if handler not in WRITES:
                return error_response(405, "Request_BadRequest", "The method is not allowed.")
            needed = WRITES[handler]
        if not has_scope(claims, *needed):
            text = "Access is denied. Check credentials and try again."
            if denied == DENIED:
                text = "Insufficient privileges to complete the operation."
            return error_response(403, denied, text)
        body = handler(claims, match)
        if body is None:
            return error_response(404, "Request_ResourceNotFound", "Resource does not exist.")
        return body if isinstance(body, Response) else jsonify(body)
    segment = path.split("/")[-1]
    return error_response(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
