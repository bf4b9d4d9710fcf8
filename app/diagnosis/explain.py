"""Turn Entra sign-in failures into a diagnosis: what happened, who acts, what they do.

The catalogue is data (`app.diagnosis.catalogue`, one `Diagnosis` per AADSTS code); `diagnose`
is a small pure function that picks an entry from the error and its context. `support_details`
builds the "Copy details for support" block that `app.diagnosis.paste` reads back from a paste.
No Flask here: the pages and the tests call the same functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC
from datetime import datetime

from app.diagnosis.catalogue import ADMIN_DECLINED
from app.diagnosis.catalogue import ADMIN_NOT_PERMITTED
from app.diagnosis.catalogue import AT_REFRESH
from app.diagnosis.catalogue import BY_CODE
from app.diagnosis.catalogue import BY_ERROR
from app.diagnosis.catalogue import CONSENT_CANCELLED
from app.diagnosis.catalogue import CONSENT_DECLINED
from app.diagnosis.catalogue import PERSONAL_NO_ADMIN_CONSENT
from app.diagnosis.catalogue import PERSONAL_WORK_ONLY
from app.diagnosis.catalogue import AccountType
from app.diagnosis.catalogue import Diagnosis
from app.diagnosis.catalogue import Step
from app.diagnosis.catalogue import unknown
from app.version import __version__

# --- diagnose ------------------------------------------------------------------------------

_AADSTS = re.compile(r"AADSTS(\d+)", re.IGNORECASE)
_MAX_CODE_DIGITS = 10  # int() of thousands of digits raises; no AADSTS code is that long


def diagnose(
    error: str | None = None,
    description: str | None = None,
    *,
    codes: Sequence[int] = (),
    subcode: str | None = None,
    suberror: str | None = None,
    admin_consent: bool = False,
    connector: str | None = None,
    account_type: AccountType | None = None,
    at_refresh: bool = False,
) -> Diagnosis:
    """Return the diagnosis for an Entra error and the context it happened in.

    at_refresh: a stored connection's refresh failed, so the account and app once worked.
    """
    code = _first_code(codes)
    if code is None:
        code = find_code(description)
    entry = _lookup(code, oauth_token(error), oauth_token(subcode), oauth_token(suberror))
    if at_refresh and entry.code is not None:
        entry = AT_REFRESH.get(entry.code, entry)
    if admin_consent:
        entry = _for_admin_consent(entry)
    elif account_type == "personal":
        entry = _for_personal_account(entry)
    return _finish(entry, code, connector)


def find_code(text: str | None) -> int | None:
    """Return the first AADSTS code in a text, if any."""
    match = _AADSTS.search(text) if isinstance(text, str) else None
    return to_code(match.group(1)) if match else None


def _lookup(code: int | None, error: str, subcode: str, suberror: str) -> Diagnosis:
    """Pick the catalogue entry for a code, else for the OAuth error alone."""
    if code is None and suberror == "consent_required":
        code = 65001  # invalid_grant + suberror consent_required is 65001 (pitfall 20)
    if code is None and error == "access_denied" and subcode == "cancel":
        code = 65004
    if code == 65004:
        return CONSENT_CANCELLED if subcode == "cancel" else CONSENT_DECLINED
    if code is not None:
        return BY_CODE.get(code) or unknown(code)
    return BY_ERROR.get(error) or unknown(None, error)


def _for_admin_consent(entry: Diagnosis) -> Diagnosis:
    """Adjust an entry for a failed return from /adminconsent: never ask for approval again."""
    if entry.code in (90093, 90094):
        return ADMIN_NOT_PERMITTED
    if entry.route == "admin_approval" or entry.key in ("consent_declined", "access_denied"):
        return ADMIN_DECLINED
    return entry


def _for_personal_account(entry: Diagnosis) -> Diagnosis:
    """Adjust an entry for a personal Microsoft account, which has no admin consent."""
    if entry.route == "admin_approval" or entry.key == "consent_declined":
        return PERSONAL_NO_ADMIN_CONSENT
    if entry.key in ("scope_not_found", "invalid_scope"):
        return PERSONAL_WORK_ONLY
    return entry


def _finish(entry: Diagnosis, code: int | None, connector: str | None) -> Diagnosis:
    """Stamp the actual code on an entry and name the connector in its texts."""
    name = one_line(connector, limit=80) or "the connector"
    steps = tuple(Step(step.actor, _fill(step.text, name)) for step in entry.steps)
    return replace(
        entry,
        code=entry.code if code is None else code,
        title=_fill(entry.title, name),
        summary=_fill(entry.summary, name),
        steps=steps,
    )


def _fill(text: str, connector: str) -> str:
    """Put the connector's name into a text and start it with a capital."""
    text = text.replace("{connector}", connector)
    return text[:1].upper() + text[1:]


def _first_code(codes: Sequence[int]) -> int | None:
    """Return codes[0] when it is a plausible AADSTS code."""
    first = codes[0] if len(codes) else None
    if isinstance(first, int) and not isinstance(first, bool) and 0 <= first < 10**_MAX_CODE_DIGITS:
        return first
    return None


def to_code(digits: str) -> int | None:
    """Return digits as a code, or None when they are too long to be one."""
    return int(digits) if digits.isdigit() and len(digits) <= _MAX_CODE_DIGITS else None


def oauth_token(value: str | None) -> str:
    """Return an OAuth token (error, subcode) in lower case, or "" when absent."""
    return value.strip().lower()[:64] if isinstance(value, str) else ""


def one_line(value: object, limit: int = 200) -> str | None:
    """Return a value as one short line of text, or None when empty."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())[:limit]
    return text or None


# --- Support details -----------------------------------------------------------------------

SUPPORT_KEYS = (
    "Time (UTC)",
    "Portal version",
    "Connector",
    "Tenant",
    "AADSTS code",
    "Error",
    "Trace ID",
    "Correlation ID",
    "Request ID",
)
_NONE = "none"


def support_details(
    *,
    connector: str | None = None,
    tenant: str | None = None,
    code: int | None = None,
    error: str | None = None,
    trace_id: str | None = None,
    correlation_id: str | None = None,
    request_id: str | None = None,
    when: datetime | None = None,
    version: str | None = None,
) -> list[tuple[str, str]]:
    """Return the support block's fields in order, leaving out the empty optional ones."""
    values = (
        _utc(when),
        one_line(version) or __version__,
        one_line(connector),
        one_line(tenant),
        None if code is None else f"AADSTS{code}",
        one_line(error, limit=64),
        one_line(trace_id),
        one_line(correlation_id),
        one_line(request_id) or _NONE,
    )
    return [(key, value) for key, value in zip(SUPPORT_KEYS, values, strict=True) if value]


def format_support_details(pairs: Iterable[tuple[str, str]]) -> str:
    """Return the support block as copyable text, one "Key: value" line per field."""
    return "\n".join(f"{key}: {value}" for key, value in pairs)


def _utc(when: datetime | None) -> str:
    """Return a time in UTC the way Entra prints it ("2025-01-31 09:15:02Z")."""
    when = when or datetime.now(UTC)
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M:%SZ")
