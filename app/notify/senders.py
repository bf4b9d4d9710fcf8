"""How one notification leaves: a Standard Webhooks POST or an SMTP mail; with timeouts."""

from __future__ import annotations

import base64
import binascii
import json
import smtplib
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from email.message import EmailMessage
from html import escape
from typing import Any
from typing import Protocol
from urllib.parse import unquote
from urllib.parse import urlsplit

import requests
from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = (24, 64)  # the Standard Webhooks spec's range for a symmetric secret


@dataclass(frozen=True)
class Mail:
    """One e-mail: recipient, subject, plain text and HTML."""

    to: str
    subject: str
    text: str
    html: str

    @classmethod
    def of(cls, to: str, subject: str, paragraphs: Sequence[str], link: str, label: str) -> Mail:
        """Return one e-mail with the same words in text and HTML: escaped paragraphs, a link."""
        text = "\n\n".join([*paragraphs, f"{label}: {link}"]) + "\n"
        body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
        link_html = f'<p><a href="{escape(link)}">{escape(label)}</a></p>'
        return cls(to, subject, text, f"<html><body>{body}{link_html}</body></html>")


class Settings(Protocol):
    """What sending needs from the notifier's settings."""

    @property
    def webhook_secret(self) -> str: ...

    @property
    def smtp_url(self) -> str: ...

    @property
    def mail_from(self) -> str: ...

    @property
    def timeout(self) -> float: ...


def check_secret(secret: str) -> None:
    """Refuse a webhook secret that is not whsec_ and base64 of 24 to 64 random bytes."""
    if not secret:
        return
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not secret.startswith(SECRET_PREFIX) or not SECRET_BYTES[0] <= len(key) <= SECRET_BYTES[1]:
        raise ValueError(
            "PORTAL_WEBHOOK_SECRET must be a Standard Webhooks secret: whsec_ followed by the "
            "base64 of 24 to 64 random bytes, shared with each receiver. Make one with: "
            "python3 -c \"import base64, os; print('whsec_' + base64.b64encode(os.urandom(32))"
            '.decode())"'
        )


def webhook_headers(
    secret: str, delivery: str, body: bytes, now: datetime | None = None
) -> dict[str, str]:
    """Return the Standard Webhooks headers: the delivery's id, this attempt's time, the signature.

    The id stays the same on every retry (receivers drop duplicates by it); the timestamp is
    signed with the body, so a receiver refuses a delivery replayed after its tolerance.
    """
    moment = now or datetime.now(UTC)
    headers = {"webhook-id": delivery, "webhook-timestamp": str(int(moment.timestamp()))}
    if secret:
        headers["webhook-signature"] = Webhook(secret).sign(delivery, moment, body)
    return headers


def post_webhook(url: str, event: str, payload: Mapping[str, Any], settings: Settings) -> None:
    """POST the event as JSON, signed as Standard Webhooks specifies; raise unless 2xx."""
    body = json.dumps(dict(payload), separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "connector-consent-portal",
        "X-Portal-Event": event,  # for routing only: the signed copy is the body's "event"
        **webhook_headers(settings.webhook_secret, str(payload.get("delivery", "")), body),
    }
    response = requests.post(url, data=body, headers=headers, timeout=settings.timeout)
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"HTTP {response.status_code}")


def send_mail(payload: Mapping[str, Any], settings: Settings) -> None:
    """Send one e-mail over SMTP (smtp://, smtp://...?starttls, or smtps://)."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = str(payload["to"])
    message["Subject"] = str(payload["subject"])
    message.set_content(str(payload["text"]))
    message.add_alternative(str(payload["html"]), subtype="html")
    url = urlsplit(settings.smtp_url)
    host, timeout = url.hostname or "localhost", settings.timeout
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, url.port or 465, timeout=timeout)
    else:
        client = smtplib.SMTP(host, url.port or 25, timeout=timeout)
    with client:
        if url.scheme == "smtp" and "starttls" in url.query:
            client.starttls()
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(message)
