"""The diagnosis catalogue, the error-text parser and the support block."""

from __future__ import annotations

import json
import string
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from app.diagnosis import catalogue
from app.diagnosis import explain
from app.diagnosis.catalogue import Actor
from app.diagnosis.catalogue import Diagnosis
from app.diagnosis.explain import diagnose
from app.diagnosis.explain import format_support_details
from app.diagnosis.explain import support_details
from app.diagnosis.paste import ParsedError
from app.diagnosis.paste import parse_error_text
from app.version import __version__

USER = Actor.USER
ADMIN = Actor.TENANT_ADMIN
OPS = Actor.OPERATOR

TRACE = "e0ea6353-40e5-4496-8bd5-294facea2e00"
CORRELATION = "2ba27739-7daf-49e7-949c-2e16e3c42079"
STAMP = "2025-02-11 13:06:36Z"

# Every code of entra-protocol.md §5, copied from the table rather than from the module.
SECTION_5_CODES = (
    65001, 65004, 90094, 90095, 90093, 90008, 50105, 7000112, 700016, 50011, 500113, 900971,
    7000215, 7000222, 7000218, 70008, 54005, 700082, 50173, 70043, 50076, 50079, 53003, 50058,
    50126, 50034, 50020, 500208, 9002332, 50194, 90002, 70011, 28002, 28003, 28000, 700022,
    501481, 700005, 65005, 650056, 650057, 650052, 500011, 9002313,
)  # fmt: skip

# code -> (primary actor, route, phrases that must appear in the title, summary or steps)
EXPECTED: dict[int, tuple[Actor, str, tuple[str, ...]]] = {
    65001: (USER, "admin_approval", ("approve", "Grant for organization")),
    65004: (USER, "retry", ("Cancel", "Accept")),
    90094: (ADMIN, "admin_approval", ("Need admin approval", "Global Administrator")),
    90095: (ADMIN, "admin_approval", ("Approval required", "Admin consent requests")),
    90093: (ADMIN, "admin_approval", ("only be granted by an administrator",)),
    90008: (OPS, "diagnosis", ("User.Read", "Sign in and read user profile")),
    50105: (ADMIN, "diagnosis", ("User assignment required", "Users and groups", "Properties")),
    7000112: (ADMIN, "diagnosis", ("Enabled for users to sign-in?", "Properties")),
    700016: (OPS, "diagnosis", ("client ID",)),
    50011: (OPS, "diagnosis", ("redirect URI", "/auth/callback")),
    500113: (OPS, "diagnosis", ("no redirect URI",)),
    900971: (OPS, "diagnosis", ("no redirect URI",)),
    7000215: (OPS, "diagnosis", ("client secret", "Secret ID")),
    7000222: (OPS, "diagnosis", ("expired",)),
    7000218: (OPS, "diagnosis", ("no client secret",)),
    70008: (USER, "reconnect", ("Reconnect SharePoint",)),
    54005: (USER, "retry", ("already",)),
    700082: (USER, "reconnect", ("90 days", "Reconnect SharePoint")),
    50173: (USER, "reconnect", ("revoked", "Reconnect SharePoint")),
    70043: (USER, "reconnect", ("sign in again", "sign-in frequency")),
    50076: (USER, "reconnect", ("multi-factor",)),
    50079: (USER, "reconnect", ("register a multi-factor",)),
    53003: (ADMIN, "diagnosis", ("Conditional Access", "correlation ID")),
    50058: (USER, "retry", ("no active session",)),
    50126: (USER, "retry", ("password",)),
    50034: (USER, "diagnosis", ("does not exist",)),
    50020: (ADMIN, "diagnosis", ("guest", "personal Microsoft account")),
    500208: (USER, "diagnosis", ("work or school",)),
    9002332: (OPS, "diagnosis", ("/consumers",)),
    50194: (OPS, "diagnosis", ("/common",)),
    90002: (OPS, "diagnosis", ("tenant",)),
    70011: (OPS, "diagnosis", ("scope", "work or school")),
    28002: (OPS, "diagnosis", ("scope",)),
    28003: (OPS, "diagnosis", ("empty scope",)),
    28000: (OPS, "diagnosis", ("Internal sign-in error", "several resources")),
    700022: (OPS, "diagnosis", ("Internal sign-in error", "several resources")),
    501481: (OPS, "diagnosis", ("Internal sign-in error", "PKCE")),
    700005: (OPS, "diagnosis", ("Internal sign-in error", "another organization")),
    65005: (OPS, "diagnosis", ("API permissions",)),
    650056: (OPS, "diagnosis", ("API permissions",)),
    650057: (OPS, "diagnosis", ("API permissions",)),
    650052: (ADMIN, "diagnosis", ("isn't available", "SharePoint Online")),
    500011: (ADMIN, "diagnosis", ("isn't available",)),
    9002313: (USER, "reconnect", ("Reconnect SharePoint",)),
}


def everything(found: Diagnosis) -> str:
    """Return all the words of a diagnosis, for phrase checks."""
    return " ".join([found.title, found.summary, *(step.text for step in found.steps)])


def test_the_table_covers_section_5() -> None:
    assert set(EXPECTED) == set(SECTION_5_CODES)


@pytest.mark.parametrize("code", SECTION_5_CODES)
def test_every_section_5_code_is_catalogued(code: int) -> None:
    assert code in catalogue.BY_CODE
    assert diagnose(codes=[code]).known


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_catalogued_code_names_actor_route_and_phrases(code: int) -> None:
    primary, route, phrases = EXPECTED[code]
    found = diagnose(codes=[code], connector="SharePoint")
    assert found.code == code
    assert found.primary == primary
    assert found.route == route
    words = everything(found)
    for phrase in phrases:
        assert phrase in words, f"{code}: {phrase!r} missing"


@pytest.mark.parametrize("key", sorted(catalogue.CATALOGUE))
def test_every_entry_is_complete(key: str) -> None:
    entry = catalogue.CATALOGUE[key]
    assert entry.title.strip() and entry.summary.strip()
    assert entry.steps and all(step.text.strip() for step in entry.steps)
    assert entry.actors == tuple(dict.fromkeys(step.actor for step in entry.steps))
    assert entry.doc_url.startswith("https://learn.microsoft.com/")
    assert entry.route in ("admin_approval", "diagnosis", "reconnect", "retry")
    assert entry.known


@pytest.mark.parametrize("key", sorted(catalogue.CATALOGUE))
def test_connector_placeholder_is_filled(key: str) -> None:
    entry = catalogue.CATALOGUE[key]
    at_refresh = entry in catalogue.AT_REFRESH.values()  # a connection's refresh, not a sign-in
    codes = [entry.code] if entry.code else []
    found = diagnose(codes=codes, connector="Dynamics 365", at_refresh=at_refresh)
    if entry.code is None:  # error-only and context entries: fill them directly
        found = explain._finish(entry, None, "Dynamics 365")
    assert "{" not in everything(found) and "}" not in everything(found)
    if "{connector}" in everything(entry):
        assert "Dynamics 365" in everything(found)


def test_missing_connector_reads_as_the_connector() -> None:
    found = diagnose(codes=[650052])
    assert found.title == "The connector isn't available in your organization"


def test_consent_blocked_codes_go_to_admin_approval() -> None:
    for code in (65001, 90093, 90094, 90095):
        assert diagnose(codes=[code]).route == "admin_approval"


def test_65004_cancelled_differs_from_declined() -> None:
    description = "AADSTS65004: User declined to consent to access the app."
    cancelled = diagnose("access_denied", description, subcode="cancel")
    declined = diagnose("access_denied", description)
    assert (cancelled.key, cancelled.route) == ("consent_cancelled", "admin_approval")
    assert (declined.key, declined.route) == ("consent_declined", "retry")
    assert cancelled.code == declined.code == 65004
    assert cancelled.summary.startswith(
        "The connector needs an approval from your IT administrator"
    )
    assert cancelled.summary != declined.summary


def test_cancel_without_a_code_is_still_the_cancelled_65004() -> None:
    found = diagnose("access_denied", subcode="Cancel")
    assert (found.key, found.code) == ("consent_cancelled", 65004)


@pytest.mark.parametrize("code", [None, 65001, 65004, 90095])
def test_failed_admin_consent_is_declined_never_another_request(code: int | None) -> None:
    codes = [] if code is None else [code]
    found = diagnose("access_denied", codes=codes, subcode="cancel", admin_consent=True)
    assert found.key == "admin_consent_declined"
    assert found.route != "admin_approval"
    assert found.primary == ADMIN
    assert found.code == (65004 if code is None else code)


@pytest.mark.parametrize("code", [90093, 90094])
def test_admin_consent_by_a_non_admin_names_the_roles(code: int) -> None:
    found = diagnose("access_denied", codes=[code], admin_consent=True)
    assert found.key == "admin_consent_not_permitted"
    assert found.route == "diagnosis"
    assert "Cloud Application Administrator" in everything(found)


def test_admin_consent_keeps_other_diagnoses() -> None:
    found = diagnose("access_denied", codes=[50105], admin_consent=True)
    assert found.key == "user_not_assigned"


@pytest.mark.parametrize("code", [65001, 65004, 90093, 90094, 90095])
def test_personal_account_has_no_admin_consent(code: int) -> None:
    found = diagnose(codes=[code], subcode="cancel", account_type="personal")
    assert found.route == "diagnosis"
    assert found.key == "personal_account_consent"
    assert found.code == code
    assert "personal Microsoft account" in found.summary
    assert "work or school account" in everything(found)


def test_personal_account_on_a_work_only_connector() -> None:
    found = diagnose(
        "invalid_scope", codes=[70011], connector="SharePoint", account_type="personal"
    )
    assert found.title == "SharePoint needs a work or school account"


def test_work_account_keeps_admin_approval() -> None:
    assert diagnose(codes=[65001], account_type="work").route == "admin_approval"


def test_consent_required_suberror_on_invalid_grant_is_65001() -> None:
    found = diagnose("invalid_grant", suberror="consent_required")
    assert (found.code, found.key) == (65001, "consent_required")


def test_codes_win_over_the_description() -> None:
    found = diagnose("invalid_grant", "AADSTS70008: expired", codes=[50173])
    assert found.code == 50173


def test_description_is_read_when_there_are_no_codes() -> None:
    text = "AADSTS50105: Your administrator has configured the application to block users"
    assert diagnose("access_denied", text).key == "user_not_assigned"


@pytest.mark.parametrize(
    ("error", "key", "route"),
    [
        ("access_denied", "access_denied", "retry"),
        ("consent_required", "consent_required", "admin_approval"),
        ("interaction_required", "interaction_required", "reconnect"),
        ("login_required", "no_session", "retry"),
        ("invalid_grant", "invalid_grant", "reconnect"),
        ("invalid_client", "invalid_client", "diagnosis"),
        ("unauthorized_client", "unauthorized_client", "diagnosis"),
        ("invalid_request", "invalid_request", "diagnosis"),
        ("invalid_scope", "invalid_scope", "diagnosis"),
        ("invalid_resource", "invalid_resource", "diagnosis"),
        ("temporarily_unavailable", "temporarily_unavailable", "retry"),
        ("SERVER_ERROR", "server_error", "retry"),
    ],
)
def test_oauth_error_alone(error: str, key: str, route: str) -> None:
    found = diagnose(error, "no code in here")
    assert (found.key, found.route, found.known) == (key, route, True)


def test_unknown_code_is_honest() -> None:
    found = diagnose("invalid_request", "AADSTS12345: something new", connector="OneDrive")
    assert not found.known
    assert found.code == 12345
    assert "AADSTS12345" in found.title and "AADSTS12345" in found.summary
    assert "helpdesk" in found.steps_for(USER)[0]
    assert Actor.HELPDESK in found.actors


def test_unknown_error_shows_it_without_markup() -> None:
    found = diagnose("<b>brand_new</b>")
    assert not found.known
    assert "bbrand_newb" in found.summary and "<" not in found.summary


def test_absurdly_long_code_is_not_a_code() -> None:
    found = diagnose("invalid_grant", "AADSTS" + "9" * 5_000 + ": x")
    assert (found.key, found.code) == ("invalid_grant", None)


def test_nothing_at_all_is_unknown() -> None:
    found = diagnose()
    assert (found.known, found.code, found.route) == (False, None, "diagnosis")


@pytest.mark.parametrize("codes", [[True], [-1], [10**12], ["65001"]])
def test_implausible_codes_are_ignored(codes: list[object]) -> None:
    found = diagnose("invalid_grant", codes=codes)  # type: ignore[arg-type]
    assert found.key == "invalid_grant"


def test_steps_by_actor_groups_in_actor_order() -> None:
    found = diagnose(codes=[50105])
    groups = found.steps_by_actor()
    assert [actor for actor, _ in groups] == [ADMIN, USER]
    assert any("Users and groups" in text for text in groups[0][1])
    assert ADMIN.label == "What your administrator must do"


# --- parse_error_text ----------------------------------------------------------------------

ENTRA_MESSAGE = (
    "AADSTS50105: Your administrator has configured the application Connector Consent Portal "
    "to block users unless they are specifically granted ('assigned') access to the "
    f"application.\r\nTrace ID: {TRACE}\r\nCorrelation ID: {CORRELATION}\r\nTimestamp: {STAMP}"
)


@pytest.mark.parametrize("text", ["50105", "AADSTS50105", " aadsts50105\n", "AADSTS: 50105"])
def test_parse_bare_code(text: str) -> None:
    assert parse_error_text(text).code == 50105


def test_parse_whole_entra_message() -> None:
    parsed = parse_error_text(ENTRA_MESSAGE)
    assert parsed.code == 50105
    assert (parsed.trace_id, parsed.correlation_id, parsed.timestamp) == (TRACE, CORRELATION, STAMP)
    assert parsed.description and parsed.description.startswith("AADSTS50105: Your administrator")
    assert parsed.diagnose().key == "user_not_assigned"


def test_parse_entra_troubleshooting_details() -> None:
    text = (
        f"Request Id: {TRACE}\nCorrelation Id: {CORRELATION}\nTimestamp: 2025-02-11T13:06:36.123Z"
        "\nMessage: AADSTS7000112: Application 'x' is disabled.\n"
    )
    parsed = parse_error_text(text)
    assert (parsed.code, parsed.trace_id, parsed.request_id) == (7000112, TRACE, None)
    assert parsed.timestamp == "2025-02-11T13:06:36.123Z"


def test_parse_redirect_url() -> None:
    query = urlencode(
        {
            "error": "access_denied",
            "error_subcode": "cancel",
            "error_description": "AADSTS65004: User declined to consent to access the app."
            f"\r\nTrace ID: {TRACE}\r\nCorrelation ID: {CORRELATION}\r\nTimestamp: {STAMP}",
            "state": "s",
        }
    )
    parsed = parse_error_text(f"see http://127.0.0.1:5000/auth/callback?{query} thanks")
    assert (parsed.code, parsed.error, parsed.subcode) == (65004, "access_denied", "cancel")
    assert (parsed.trace_id, parsed.correlation_id, parsed.timestamp) == (TRACE, CORRELATION, STAMP)
    assert parsed.diagnose().key == "consent_cancelled"


def test_parse_admin_consent_query_string() -> None:
    text = (
        "admin_consent=True&tenant=contoso.test&error=access_denied&error_description=AADSTS65004"
    )
    parsed = parse_error_text(text)
    assert (parsed.admin_consent, parsed.tenant, parsed.code) == (True, "contoso.test", 65004)
    assert parsed.diagnose().key == "admin_consent_declined"


def test_parse_token_error_json() -> None:
    body = {
        "error": "invalid_grant",
        "error_description": f"AADSTS65001: The user or administrator has not consented.\r\n"
        f"Trace ID: {TRACE}",
        "error_codes": [65001],
        "timestamp": STAMP,
        "trace_id": TRACE,
        "correlation_id": CORRELATION,
        "suberror": "consent_required",
    }
    parsed = parse_error_text(json.dumps(body, indent=2))
    assert (parsed.code, parsed.error, parsed.suberror) == (
        65001,
        "invalid_grant",
        "consent_required",
    )
    assert (parsed.trace_id, parsed.correlation_id, parsed.timestamp) == (TRACE, CORRELATION, STAMP)


def test_parse_json_without_codes_uses_suberror() -> None:
    parsed = parse_error_text('{"error": "invalid_grant", "suberror": "consent_required"}')
    assert parsed.code is None
    assert parsed.diagnose().code == 65001


def test_parse_python_repr_of_an_msal_result() -> None:
    text = (
        "{'error': 'invalid_grant', 'error_description': 'AADSTS70008: x', 'error_codes': [70008]}"
    )
    parsed = parse_error_text(text)
    assert (parsed.error, parsed.code) == ("invalid_grant", 70008)


def test_support_block_round_trips() -> None:
    pairs = support_details(
        connector="SharePoint",
        tenant="contoso.test",
        code=50105,
        error="access_denied",
        trace_id=TRACE,
        correlation_id=CORRELATION,
        request_id="r-42",
        when=datetime(2025, 2, 11, 13, 6, 36, tzinfo=UTC),
        version="1.2.3",
    )
    parsed = parse_error_text(format_support_details(pairs))
    assert parsed == ParsedError(
        code=50105,
        error="access_denied",
        trace_id=TRACE,
        correlation_id=CORRELATION,
        timestamp=STAMP,
        connector="SharePoint",
        tenant="contoso.test",
        request_id="r-42",
        portal_version="1.2.3",
    )
    assert parsed.diagnose().title == "Your account is not assigned to the Connector Consent Portal"


def test_minimal_support_block_round_trips_without_inventing_values() -> None:
    pairs = support_details(when=datetime(2025, 2, 11, 13, 6, 36))
    parsed = parse_error_text(format_support_details(pairs))
    assert parsed == ParsedError(timestamp=STAMP, portal_version=__version__)
    assert not parsed.found


def test_parse_code_inside_free_text() -> None:
    parsed = parse_error_text("Hi, Power BI says AADSTS90094 when I connect SharePoint")
    assert parsed.code == 90094
    assert parsed.diagnose().route == "admin_approval"


def test_parse_keeps_only_oauth_values_as_error() -> None:
    parsed = parse_error_text("Error: AADSTS50105: Your administrator has configured it")
    assert (parsed.error, parsed.code) == (None, 50105)


def test_parse_text_without_an_error() -> None:
    parsed = parse_error_text("my report stopped refreshing, error: please help")
    assert parsed == ParsedError()
    assert not parsed.diagnose().known


def test_parse_truncates_huge_input_quickly() -> None:
    start = time.monotonic()
    parsed = parse_error_text("x" * 30_000 + " AADSTS50105: blocked")
    nasty = (
        "error=" * 9_000,
        " " * 50_000 + "1",
        "AADSTS" + "9" * 50_000 + ": x",
        '{"a":' + "[" * 50_000,
    )
    for text in nasty:
        parse_error_text(text)
    assert parsed.code is None  # the code sits past the 20 kB limit
    assert time.monotonic() - start < 2


# --- support_details -----------------------------------------------------------------------


def test_support_details_order_and_omissions() -> None:
    pairs = support_details(code=65001, connector=" Share\nPoint ", when=datetime(2025, 1, 2))
    assert [key for key, _ in pairs] == [
        "Time (UTC)",
        "Portal version",
        "Connector",
        "AADSTS code",
        "Request ID",
    ]
    values = dict(pairs)
    assert values["AADSTS code"] == "AADSTS65001"
    assert values["Connector"] == "Share Point"  # one line each, or the block breaks
    assert values["Request ID"] == "none"
    assert values["Portal version"] == __version__


def test_support_details_time_is_utc() -> None:
    when = datetime(2025, 2, 11, 15, 6, 36, tzinfo=timezone(timedelta(hours=2)))
    assert support_details(when=when)[0] == ("Time (UTC)", STAMP)


def test_support_details_time_defaults_to_now() -> None:
    value = dict(support_details())["Time (UTC)"]
    stamp = datetime.strptime(value, "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 5


def test_format_support_details() -> None:
    text = format_support_details([("Time (UTC)", STAMP), ("Request ID", "r-1")])
    assert text == f"Time (UTC): {STAMP}\nRequest ID: r-1"


# --- Never raise ---------------------------------------------------------------------------

pasted = st.one_of(
    st.text(),
    st.text(alphabet=string.printable),
    st.lists(
        st.sampled_from(
            [
                "AADSTS",
                "65004",
                "error=",
                "&",
                "?",
                "#",
                "%",
                "{",
                '"',
                ":",
                "\r\n",
                "Trace ID: ",
                "Request ID:",
                "Portal version: ",
                "error_codes",
                "[",
                "admin_consent=True",
                "9" * 20,
            ]
        )  # fmt: skip
    ).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(pasted)
def test_parse_error_text_never_raises(text: str) -> None:
    parsed = parse_error_text(text)
    found = parsed.diagnose(account_type="personal")
    assert found.title and found.steps


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.none(), st.text()),
    st.one_of(st.none(), st.text(), pasted),
    st.lists(st.integers(), max_size=3),
    st.one_of(st.none(), st.text()),
    st.booleans(),
    st.sampled_from([None, "work", "personal"]),
)
def test_diagnose_never_raises(
    error: str | None,
    description: str | None,
    codes: list[int],
    other: str | None,
    admin_consent: bool,
    account_type: str | None,
) -> None:
    found = diagnose(
        error,
        description,
        codes=codes,
        subcode=other,
        suberror=other,
        admin_consent=admin_consent,
        connector=other,
        account_type=account_type,  # type: ignore[arg-type]
    )
    assert found.title and found.summary and found.steps
    if admin_consent:
        assert found.route != "admin_approval"
