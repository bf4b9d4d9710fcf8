"""Read what a person pastes into the troubleshooter: code, message, URL, JSON, support block."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from app.diagnosis.catalogue import OAUTH_ERRORS
from app.diagnosis.catalogue import AccountType
from app.diagnosis.catalogue import Diagnosis
from app.diagnosis.explain import diagnose
from app.diagnosis.explain import find_code
from app.diagnosis.explain import oauth_token
from app.diagnosis.explain import one_line
from app.diagnosis.explain import to_code

MAX_PASTE = 20_000


@dataclass(frozen=True)
class ParsedError:
    """What the troubleshooter could read from a pasted error or support block."""

    code: int | None = None
    error: str | None = None
    description: str | None = None
    subcode: str | None = None
    suberror: str | None = None
    admin_consent: bool = False
    trace_id: str | None = None
    correlation_id: str | None = None
    timestamp: str | None = None
    connector: str | None = None
    tenant: str | None = None
    request_id: str | None = None
    portal_version: str | None = None

    @property
    def found(self) -> bool:
        """Return whether there is anything to diagnose."""
        return self.code is not None or self.error is not None

    def diagnose(self, *, account_type: AccountType | None = None) -> Diagnosis:
        """Return the diagnosis for what was read."""
        return diagnose(
            self.error,
            self.description,
            codes=() if self.code is None else (self.code,),
            subcode=self.subcode,
            suberror=self.suberror,
            admin_consent=self.admin_consent,
            connector=self.connector,
            account_type=account_type,
        )


_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_PATTERNS = {
    "trace_id": re.compile(rf"(?i)trace[ _]id\W{{0,4}}({_GUID})"),
    "correlation_id": re.compile(rf"(?i)correlation[ _]id\W{{0,4}}({_GUID})"),
    "timestamp": re.compile(
        r"(?i)timestamp\W{0,4}(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d{1,7})?Z?)"
    ),
    "error": re.compile(r"(?i:\berror)[\"']?\s{0,3}[:=]\s{0,3}[\"']?([a-z_]{3,40})(?![\w])"),
}
_MESSAGE = re.compile(r"AADSTS\d+: *\S[^\r\n]*", re.IGNORECASE)
_BARE_CODE = re.compile(r"(?:AADSTS)?:?\s?(\d{1,10})", re.IGNORECASE)
_JSON_KEYS = {
    "error": "error",
    "error_description": "description",
    "suberror": "suberror",
    "trace_id": "trace_id",
    "correlation_id": "correlation_id",
    "timestamp": "timestamp",
}
_QUERY_KEYS = _JSON_KEYS | {
    "error_subcode": "subcode",
    "admin_consent": "admin_consent",
    "tenant": "tenant",
    "error_codes": "code",
}
# "Key: value" lines of a portal support block and of Entra's "Troubleshooting details".
_LINE_KEYS = {
    "time (utc)": "timestamp",
    "timestamp": "timestamp",
    "portal version": "portal_version",
    "connector": "connector",
    "tenant": "tenant",
    "aadsts code": "code",
    "error code": "code",
    "error": "error",
    "message": "description",
    "trace id": "trace_id",
    "correlation id": "correlation_id",
    "request id": "request_id",
}
_PLACEHOLDERS = {"", "-", "none", "n/a", "unknown"}


def parse_error_text(text: str) -> ParsedError:
    """Read a code, error and IDs from a pasted code, message, URL, JSON body or support block."""
    text = text[:MAX_PASTE] if isinstance(text, str) else ""
    fields: dict[str, str] = {}
    for found in (_from_json(text), _from_query(text), _from_lines(text), _from_message(text)):
        _merge(fields, found)
    _merge(fields, _from_patterns(fields.get("description", "")))
    _merge(fields, _from_patterns(text))
    return _parsed(fields, text)


def _parsed(fields: Mapping[str, str], text: str) -> ParsedError:
    """Build a ParsedError from the merged fields."""
    return ParsedError(
        code=_first_found(fields, text),
        error=_oauth_value(fields.get("error")),
        description=fields.get("description"),
        subcode=_oauth_value(fields.get("subcode")),
        suberror=_oauth_value(fields.get("suberror")),
        admin_consent=oauth_token(fields.get("admin_consent")) == "true",
        trace_id=fields.get("trace_id"),
        correlation_id=fields.get("correlation_id"),
        timestamp=fields.get("timestamp"),
        connector=fields.get("connector"),
        tenant=fields.get("tenant"),
        request_id=fields.get("request_id"),
        portal_version=fields.get("portal_version"),
    )


def _first_found(fields: Mapping[str, str], text: str) -> int | None:
    """Return the code of a code field, else of the description, else anywhere in the text."""
    for code in (
        _field_code(fields.get("code")),
        find_code(fields.get("description")),
        _bare_code(text),
        find_code(text),
    ):
        if code is not None:
            return code
    return None


def _oauth_value(value: str | None) -> str | None:
    """Return an OAuth value such as "access_denied" in lower case, or None if it is not one."""
    token = oauth_token(value)
    return token if re.fullmatch(r"[a-z0-9_]+", token) else None


def _merge(fields: dict[str, str], found: Mapping[str, object]) -> None:
    """Add found values to fields; values found earlier win."""
    for name, value in found.items():
        limit = 2_000 if name == "description" else 200
        text = one_line(value, limit) if name != "description" else _clean_block(value, limit)
        if text and text.lower() not in _PLACEHOLDERS:
            fields.setdefault(name, text)


def _clean_block(value: object, limit: int) -> str | None:
    """Return a multi-line value trimmed, or None when empty."""
    if not isinstance(value, str):
        return None
    return value.strip()[:limit] or None


def _field_code(value: str | None) -> int | None:
    """Return the code in a field such as "AADSTS50105", "50105" or "[50105]"."""
    if value is None:
        return None
    match = re.search(r"\d+", value)
    return to_code(match.group()) if match else None


def _bare_code(text: str) -> int | None:
    """Return the code when the whole text is one, like "50105" or "AADSTS50105"."""
    match = _BARE_CODE.fullmatch(text.strip())
    return to_code(match.group(1)) if match else None


def _from_json(text: str) -> dict[str, object]:
    """Read an Entra token error body ({"error": ..., "error_codes": [...], ...})."""
    body = text.strip()
    if not body.startswith("{"):
        return {}
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    found: dict[str, object] = {name: data.get(key) for key, name in _JSON_KEYS.items()}
    codes = data.get("error_codes")
    if isinstance(codes, list) and codes and isinstance(codes[0], int | str):
        found["code"] = str(codes[0])
    return found


def _from_query(text: str) -> dict[str, object]:
    """Read a redirect URL or query string (error=...&error_description=...)."""
    token = next((t for t in text.split() if _looks_like_query(t)), None)
    if token is None:
        return {}
    query = token.split("?", 1)[-1].replace("#", "&")
    pairs = parse_qsl(query, keep_blank_values=False)
    return {_QUERY_KEYS[k]: v for k, v in reversed(pairs) if k in _QUERY_KEYS}


def _looks_like_query(token: str) -> bool:
    """Return whether a whitespace-free token is a query string with an OAuth error."""
    return any(f"{key}=" in token for key in ("error", "error_description", "admin_consent"))


def _from_lines(text: str) -> dict[str, object]:
    """Read "Key: value" lines of a portal support block or Entra's troubleshooting details."""
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        name = _LINE_KEYS.get(key.strip().lower())
        if sep and name and name not in pairs:
            pairs[name] = value.strip()
    if "portal_version" not in pairs and "request_id" in pairs:
        # Entra's own "Troubleshooting details" call its trace ID "Request Id".
        pairs.setdefault("trace_id", pairs.pop("request_id"))
    return dict(pairs)


def _from_message(text: str) -> dict[str, object]:
    """Return the "AADSTS...: ..." line of an Entra message as its description."""
    match = _MESSAGE.search(text)
    return {"description": match.group()} if match else {}


def _from_patterns(text: str) -> dict[str, object]:
    """Find IDs, the timestamp and a known OAuth error anywhere in free text."""
    found: dict[str, object] = {}
    for name, pattern in _PATTERNS.items():
        match = pattern.search(text)
        if match and (name != "error" or match.group(1) in OAUTH_ERRORS):
            found[name] = match.group(1)
    return found
