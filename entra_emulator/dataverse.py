"""Dataverse Web API: WhoAmI and entity sets with $select, $filter and server-driven paging."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote
from urllib.parse import unquote
from urllib.parse import urlencode

from flask import jsonify
from flask import request
from werkzeug.wrappers import Response

from entra_emulator.dataset import EntitySet
from entra_emulator.resources import TokenProblem
from entra_emulator.resources import authenticate_header
from entra_emulator.resources import bearer
from entra_emulator.resources import has_scope
from entra_emulator.resources import user_of
from entra_emulator.runtime import current
from entra_emulator.world import stable_id

WHOAMI_TYPE = "Microsoft.Dynamics.CRM.WhoAmIResponse"
MAX_PAGE = 5000  # page-results: "Max page size requests larger than 5,000 are ignored"
FILTER = re.compile(r"(\w+)\s+eq\s+(?:'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?)|(true|false))", re.I)
PAGING = re.compile(r'pagingcookie="([^"]*)"')
LAST = re.compile(r'last="\{([0-9A-Fa-f-]{36})\}"')
THROTTLED = "Number of requests exceeded the limit of 6000 over time window of 300 seconds."


class DataverseError(Exception):
    """A request Dataverse answers with its error JSON."""

    def __init__(self, status: int, code: str, message: str) -> None:
        """Keep the HTTP status, the hexadecimal error code and the message."""
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> Response:
    """Return Dataverse's error JSON; a 401 carries the WWW-Authenticate challenge."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    if status == 401:
        resource = f"https://{request.view_args.get('org', '') if request.view_args else ''}"
        response.headers["WWW-Authenticate"] = authenticate_header("common", resource)
    return response


def fault_response(status: int) -> Response:
    """Return the answer of an injected fault: service protection (429), token, outage."""
    if status == 429:
        return error_response(429, "0x80072322", THROTTLED)
    if status == 401:
        return error_response(
            401, "0x80072560", "Lifetime validation failed, the token is expired."
        )
    return error_response(status, "0x80040216", "An unexpected error occurred.")


def _caller(org: str) -> dict[str, Any]:
    """Return the token's claims if its user may use this organisation; raise otherwise."""
    try:
        claims = bearer([f"https://{org}"])
    except TokenProblem as problem:
        raise DataverseError(401, "0x80072560", str(problem)) from None
    user = user_of(claims)
    if not has_scope(claims, "user_impersonation") or user is None or org not in user.dynamics_orgs:
        raise DataverseError(403, "0x80072560", "The user is not a member of the organization.")
    return claims


def dynamics_whoami(org: str) -> Response:
    """Answer WhoAmI for a user with a security role in that environment."""
    org = org.lower()
    try:
        claims = _caller(org)
    except DataverseError as error:
        return error_response(error.status, error.code, error.message)
    user = user_of(claims)
    return jsonify(
        {
            "@odata.context": f"https://{org}/api/data/v9.2/$metadata#{WHOAMI_TYPE}",
            "BusinessUnitId": stable_id("bu", org),
            "UserId": stable_id("systemuser", org, user.username if user else ""),
            "OrganizationId": stable_id("org", org),
        }
    )


def row_id(org: str, table: EntitySet, index: int) -> str:
    """Return a row's primary key: a GUID whose last 12 hex digits are the row's index."""
    return stable_id("row", org, table.name)[:24] + f"{index:012x}"


def row(org: str, table: EntitySet, index: int) -> dict[str, Any]:
    """Return row number index (1-based) of a table."""
    values = {c.name: c.value(index) for c in table.columns}
    return {"@odata.etag": f'W/"{1000000 + index}"', table.key: row_id(org, table, index), **values}


def entity_set(org: str, name: str) -> Response:
    """Answer GET <entity set>[(<id>)] with $select, $filter, $top, $count and paging."""
    org = org.lower()
    try:
        _caller(org)
        return _read(org, name)
    except DataverseError as error:
        return error_response(error.status, error.code, error.message)


def _read(org: str, name: str) -> Response:
    """Return a row or a page of rows."""
    keyed = re.fullmatch(r"(\w+)\(([0-9a-fA-F-]{36})\)", name)
    table = current().state.world.data.entity_set(keyed.group(1) if keyed else name)
    if table is None:
        raise DataverseError(404, "0x80060888", f"Resource not found for the segment '{name}'.")
    columns = _select(table)
    context = f"https://{org}/api/data/v9.2/$metadata#{table.name}"
    context += f"({','.join(columns)})" if columns else ""
    if keyed:
        index = int(keyed.group(2)[-12:], 16)
        if not 1 <= index <= table.rows or row_id(org, table, index) != keyed.group(2).lower():
            raise DataverseError(
                404, "0x80040217", f"{table.entity} With Id = {keyed.group(2)} Does Not Exist"
            )  # noqa: E501
        return _json(
            {"@odata.context": context + "/$entity", **_project(org, table, index, columns)}
        )
    return _page(org, table, columns, context)


def _select(table: EntitySet) -> list[str]:
    """Return the $select columns, refusing unknown ones."""
    names = [n.strip() for n in request.args.get("$select", "").split(",") if n.strip()]
    known = {c.name for c in table.columns} | {table.key}
    for column in names:
        if column not in known:
            message = f"Could not find a property named '{column}' on type 'Microsoft.Dynamics.CRM.{table.entity}'."  # noqa: E501
            raise DataverseError(400, "0x80060888", message)
    return names


def _project(org: str, table: EntitySet, index: int, columns: list[str]) -> dict[str, Any]:
    """Return a row reduced to the selected columns (the key and etag always come)."""
    full = row(org, table, index)
    if not columns:
        return full
    return {k: v for k, v in full.items() if k in columns or k in ("@odata.etag", table.key)}


def _matcher(table: EntitySet) -> Any:
    """Return a predicate for $filter=<column> eq <literal> (the one form emulated)."""
    raw = request.args.get("$filter", "").strip()
    if not raw:
        return lambda _: True
    found = FILTER.fullmatch(raw)
    column = next((c for c in table.columns if found and c.name == found.group(1)), None)
    if found is None or column is None:
        message = f"The emulator supports only $filter=<column> eq <literal>, not {raw!r}."
        raise DataverseError(400, "0x80060888", message)
    text, number, boolean = found.group(2), found.group(3), found.group(4)
    wanted: Any = text.replace("''", "'") if text is not None else None
    if number is not None:
        wanted = float(number)
    if boolean is not None:
        wanted = boolean.lower() == "true"
    if isinstance(wanted, str):  # Dataverse compares strings without regard to case
        return lambda i: str(column.value(i)).lower() == wanted.lower()
    return lambda i: column.value(i) == wanted


def _page_size() -> tuple[int, bool]:
    """Return the page size and whether Prefer: odata.maxpagesize was applied."""
    default = current().state.world.data.page_sizes["dataverse"]
    found = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", request.headers.get("Prefer", ""))
    if found is None or not 1 <= int(found.group(1)) <= MAX_PAGE:
        return default, False
    return int(found.group(1)), True


def _cookie() -> tuple[int, int]:
    """Return (page number, index of the last row already sent) from $skiptoken."""
    token = request.args.get("$skiptoken")
    if not token:
        return 1, 0
    number = re.search(r'pagenumber="(\d+)"', token)
    paging = PAGING.search(token)
    last = LAST.search(unquote(paging.group(1))) if paging else None
    if number is None or last is None:
        raise DataverseError(400, "0x80060888", "The $skiptoken is not a valid paging cookie.")
    return int(number.group(1)), int(last.group(1)[-12:], 16)


def _next_link(org: str, table: EntitySet, number: int, first: int, last: int) -> str:
    """Return @odata.nextLink: the same query with a paging cookie after row last."""
    ids = [row_id(org, table, i).upper() for i in (last, first)]
    inner = (
        f'<cookie page="{number}"><{table.key} last="{{{ids[0]}}}" first="{{{ids[1]}}}" /></cookie>'  # noqa: E501
    )
    cookie = f'<cookie pagenumber="{number + 1}" pagingcookie="{quote(inner, safe="")}" istracking="False" />'  # noqa: E501
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "$skiptoken"]
    query = urlencode([*args, ("$skiptoken", cookie)], quote_via=quote, safe="$,()'")
    return f"{current().base_url}{request.path}?{query}"


def _page(org: str, table: EntitySet, columns: list[str], context: str) -> Response:
    """Return the rows after the paging cookie that $filter keeps, up to the page size."""
    keep = _matcher(table)
    size, applied = _page_size()
    top = request.args.get("$top")
    if top is not None and (not top.isdigit() or int(top) < 1):
        raise DataverseError(400, "0x80060888", f"Invalid value '{top}' for $top.")
    if top is not None:  # $top limits the whole result: no next page (inferred precedence)
        size, applied = min(int(top), MAX_PAGE), False
    number, after = _cookie()
    value: list[dict[str, Any]] = []
    index, first, last = after + 1, 0, after
    while index <= table.rows and len(value) < size:
        if keep(index):
            value.append(_project(org, table, index, columns))
            first, last = first or index, index
        index += 1
    body: dict[str, Any] = {"@odata.context": context}
    if request.args.get("$count", "").lower() == "true":
        total = sum(1 for i in range(1, table.rows + 1) if keep(i))
        body["@odata.count"] = min(total, MAX_PAGE)
        prefer = request.headers.get("Prefer", "")  # count-rows: only when asked for
        if "totalrecordcountlimitexceeded" in prefer or 'annotations="*"' in prefer:
            body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = total > MAX_PAGE
    body["value"] = value
    if top is None and any(keep(i) for i in range(index, table.rows + 1)):
        body["@odata.nextLink"] = _next_link(org, table, number, first, last)
    response = _json(body)
    if applied:
        response.headers["Preference-Applied"] = f"odata.maxpagesize={size}"
    return response


def _json(body: dict[str, Any]) -> Response:
    """Return an OData JSON answer with Dataverse's headers."""
    response = jsonify(body)
    response.headers["OData-Version"] = "4.0"
    response.content_type = "application/json; odata.metadata=minimal"
    return response
