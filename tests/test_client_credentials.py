"""The portal's own credentials: several at once, failover with one alert, expiry made visible."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from flask import Flask
from sqlalchemy import select

from app.errors import ConfigError
from app.identity import credentials
from app.models import AuditEvent
from app.models import Delivery
from app.platform import extensions
from app.platform import metrics
from entra_emulator import Emulator
from tests.signins import Web
from tests.signins import connect_account
from tests.signins import staff_id
from tests.test_keys import bearer
from tests.test_keys import self_signed

REDIRECTS = ["http://127.0.0.1/auth/callback"]
OPERATOR = "ops@example.test"
MAIL = {"OPERATOR_EMAILS": [OPERATOR], "SMTP_URL": "smtp://127.0.0.1:9", "NOTIFY_MODE": "manual"}


def register(entra: Emulator, **body: Any) -> dict[str, Any]:
    """Register an app at the emulator; return its id and secrets."""
    answer = entra.control("POST", "/_emulator/apps", json={"redirect_uris": REDIRECTS} | body)
    assert answer.status_code == 201, answer.text
    registered: dict[str, Any] = answer.json()
    return registered


def rows(portal: Flask, model: Any, **where: Any) -> list[Any]:
    """Return the rows of a table whose columns equal where."""
    with portal.app_context(), extensions.session_factory() as db:
        query = select(model).filter_by(**where)
        return list(db.scalars(query))


def refusals(credential: str, code: int) -> float:
    """Return the refusal counter of one credential and code in this process."""
    sample = metrics.REGISTRY.get_sample_value(
        "ccp_client_credential_refusals_total",
        {"credential": credential, "aadsts": f"AADSTS{code}"},
    )
    return sample or 0.0


def test_the_second_secret_takes_over_when_the_first_expires_and_one_alert_is_raised(
    make_portal: Callable[..., Flask], entra: Emulator
) -> None:
    app = register(entra, secrets=[{"display_name": "old"}, {"display_name": "new"}])
    old, new = app["client_secrets"]
    portal = make_portal(
        CLIENT_ID=app["client_id"], CLIENT_SECRET="", CLIENT_SECRETS=[old, new], **MAIL
    )
    entra.control("POST", "/_emulator/settings", json={"access_token_lifetime_seconds": 1})
    _, code = connect_account(portal, entra, "onedrive", "user@fabrikam.test")
    assert code is not None
    before = refusals("secret-1", 7000222)
    entra.control("POST", f"/_emulator/apps/{app['client_id']}/expiry", json={"secret": old})
    entra.control("DELETE", "/_emulator/requests")

    answer = portal.test_client().post("/api/v1/token", headers=bearer(code))
    assert answer.status_code == 200, answer.get_json()
    statuses = [r["status"] for r in entra.request_log(endpoint="token")]
    assert statuses == [401, 200]  # the expired secret, then the second one
    again = portal.test_client().post("/api/v1/token", headers=bearer(code), json={})
    assert again.status_code == 200
    assert 401 not in [r["status"] for r in entra.request_log(endpoint="token")][2:]

    assert refusals("secret-1", 7000222) == before + 1
    (event,) = rows(portal, AuditEvent, action="client_credential.refused")
    assert event.detail["aadsts"] == 7000222 and event.detail["credential"].startswith(
        f"client secret 1 ({old[:3]}"
    )
    assert old not in str(event.detail) and new not in str(event.detail)
    (mail,) = rows(portal, Delivery, event="client_credential.refused", channel="mail")
    assert mail.target == OPERATOR
    with portal.app_context():
        (first, second) = extensions.identity().credential_status(ask_graph=False)
    assert first["refused"] == 7000222 and second["in_use"]


def test_a_fresh_code_is_redeemed_with_the_next_secret_when_the_first_is_wrong(
    make_portal: Callable[..., Flask], entra: Emulator
) -> None:
    app = register(entra)
    portal = make_portal(
        CLIENT_ID=app["client_id"],
        CLIENT_SECRET=app["client_secret"],
        CLIENT_SECRETS=["a-secret-nobody-registered-123"],
        **MAIL,
    )
    connection_id, code = connect_account(portal, entra, "onedrive", "user@fabrikam.test")
    assert code is not None
    codes = [r["status"] for r in entra.request_log(endpoint="token")]
    assert codes == [401, 200]  # 7000215 with the first, the code still redeemed with the second
    (event,) = rows(portal, AuditEvent, action="client_credential.refused")
    assert event.detail["aadsts"] == 7000215


def test_with_one_secret_its_expiry_shows_on_the_admin_page_readyz_and_the_gauge(
    make_portal: Callable[..., Flask], entra: Emulator
) -> None:
    ends = (datetime.now(UTC) + timedelta(days=5)).replace(microsecond=0)
    admin = staff_id(entra, "admin@contoso.test")
    portal = make_portal(CLIENT_SECRET_EXPIRES=ends.isoformat(), ADMIN_USERS=[admin])
    client = portal.test_client()

    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"
    (warning,) = ready.get_json()["warnings"]
    assert warning.startswith("client secret 1 (dev") and f"{ends:%Y-%m-%d}" in warning

    scraped = client.get("/metrics").get_data(as_text=True)
    gauge = re.search(
        r'^ccp_client_credential_expiry_timestamp_seconds\{credential="secret-1",kind="secret",'
        r'source="setting"\} (\S+)$',
        scraped,
        re.MULTILINE,
    )
    assert gauge is not None and float(gauge.group(1)) == ends.timestamp()
    assert 'ccp_client_credential_in_use{credential="secret-1",kind="secret"} 1.0' in scraped

    web = Web.person(portal, entra, "admin@contoso.test")
    web.sign_in()
    assert "Portal credentials" in web.page("/admin")
    page = web.page("/admin/credentials")
    assert "client secret 1 (dev" in page and f"{ends:%Y-%m-%d %H:%M} UTC (in 4 days)" in page
    assert "Expires soon" in page and "PORTAL_CLIENT_SECRETS_EXPIRES" in page
    assert "dev-only-portal-secret" not in page  # the hint only, never the value


def test_a_tenant_admin_who_is_no_portal_admin_does_not_see_the_credentials(
    make_portal: Callable[..., Flask], entra: Emulator
) -> None:
    portal = make_portal()
    web = Web.person(portal, entra, "admin@contoso.test")
    web.sign_in()
    assert "Portal credentials" not in web.page("/admin")
    assert web.client.get("/admin/credentials").status_code == 403


def test_a_certificates_expiry_comes_from_its_pem(
    make_portal: Callable[..., Flask], entra: Emulator, tmp_path: Path
) -> None:
    cert_path, key_path, pem = self_signed(tmp_path)
    app = register(entra, certificates=[pem])
    portal = make_portal(
        CLIENT_ID=app["client_id"],
        CLIENT_SECRET="",
        CLIENT_CERTIFICATES=[str(cert_path)],
        CLIENT_CERTIFICATE_KEYS=[str(key_path)],
    )
    not_after = x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc
    with portal.app_context():
        (row,) = extensions.identity().credential_status()
    credential = row["credential"]
    assert credential.kind == "certificate" and credential.expiry_source == "certificate"
    assert credential.expires_at == not_after
    scraped = portal.test_client().get("/metrics").get_data(as_text=True)
    gauge = re.search(
        r'^ccp_client_credential_expiry_timestamp_seconds\{credential="certificate-1",'
        r'kind="certificate",source="certificate"\} (\S+)$',
        scraped,
        re.MULTILINE,
    )
    assert gauge is not None and float(gauge.group(1)) == not_after.timestamp()
    ready = portal.test_client().get("/readyz").get_json()
    assert ready["status"] == "ready" and "certificate 1 (CN=portal test" in ready["warnings"][0]
    connect_account(portal, entra, "onedrive", "user@fabrikam.test")  # and it signs people in


def test_a_secrets_expiry_comes_from_graph_with_application_read_all(
    make_portal: Callable[..., Flask], entra: Emulator
) -> None:
    app = register(
        entra,
        home_tenant="contoso.test",
        application_permissions=["Application.Read.All"],
        secrets=[{"expires_in": 10 * 86400}],
    )
    portal = make_portal(
        CLIENT_ID=app["client_id"], CLIENT_SECRET=app["client_secret"], APP_TENANT="contoso.test"
    )
    with portal.app_context():
        (row,) = extensions.identity().credential_status()
    credential = row["credential"]
    assert credential.expiry_source == "graph"
    assert credential.expires_at is not None
    left = credential.days_left(datetime.now(UTC))
    assert left is not None and 9.9 < left <= 10
    warnings = portal.test_client().get("/readyz").get_json()["warnings"]
    assert len(warnings) == 1 and "(in 9 days)" in warnings[0]


def test_operators_are_mailed_once_at_30_7_and_1_days(
    make_portal: Callable[..., Flask], entra: Emulator
) -> None:
    ends = datetime(2027, 3, 31, 12, tzinfo=UTC)
    portal = make_portal(CLIENT_SECRET_EXPIRES=ends.isoformat(), **MAIL)
    sent: list[list[str]] = []
    with portal.app_context():
        listed = [r["credential"] for r in extensions.identity().credential_status()]
        alerts = extensions.credential_alerts()
        for days in (40, 29, 28, 20, 6.5, 6, 0.5, 0.2, -1):
            sent.append(alerts.remind(extensions.db.session, listed, ends - timedelta(days=days)))
    assert [len(s) for s in sent] == [0, 1, 0, 0, 1, 0, 1, 0, 0]
    mails = rows(portal, Delivery, event="client_credential.expiring", channel="mail")
    assert [m.target for m in mails] == [OPERATOR] * 3
    assert [m.payload["subject"] for m in mails] == [
        "Portal credential expires on 2027-03-31 12:00 UTC: client secret 1 (dev…)"
    ] * 3
    events = rows(portal, AuditEvent, action="client_credential.expiring")
    assert [e.detail["days"] for e in events] == [30, 7, 1]


def test_the_credentials_job_lists_them_and_mails_what_is_due(
    make_portal: Callable[..., Flask],
) -> None:
    ends = datetime.now(UTC) + timedelta(days=3)
    portal = make_portal(CLIENT_SECRET_EXPIRES=f"{ends:%Y-%m-%d}", **MAIL)
    from app.cli.jobs import jobs_group

    first = portal.test_cli_runner().invoke(jobs_group, ["credentials"])
    assert first.exit_code == 0, first.output
    assert f"client secret 1 (dev…): expires {ends:%Y-%m-%d} (setting) in use" in first.output
    assert "warning: client secret 1 (dev…) expires on" in first.output
    assert "reminders queued 1" in first.output
    second = portal.test_cli_runner().invoke(jobs_group, ["credentials"])
    assert "reminders queued 0" in second.output


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"CLIENT_SECRET_EXPIRES": "31.03.2027"}, "PORTAL_CLIENT_SECRET_EXPIRES"),
        ({"CLIENT_SECRETS": ["a"], "CLIENT_SECRETS_EXPIRES": ["2027-01-01", "2027-02-01"]},
         "more dates"),
        ({"CLIENT_CERTIFICATES": ["/c.pem"]}, "PORTAL_CLIENT_CERTIFICATE_KEYS"),
    ],
)  # fmt: skip
def test_bad_credential_settings_stop_start_up(
    make_portal: Callable[..., Flask], settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_portal(**settings)


def test_the_order_tried_is_certificates_then_secrets_newest_first() -> None:
    loaded = credentials.load(["s2-new", "s1-old", "single"], ["2027-01-01", "", ""], [])
    assert [(c.kind, c.position, c.hint) for c in loaded] == [
        ("secret", 1, "s2-"),
        ("secret", 2, "s1-"),
        ("secret", 3, "sin"),
    ]
    assert loaded[0].expires_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert "s2-new" not in repr(loaded[0])
