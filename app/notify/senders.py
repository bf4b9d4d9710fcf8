"""How one notification leaves: an HMAC-signed webhook POST or an SMTP mail; with timeouts."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from typing import Protocol
from urllib.parse import unquote
from urllib.parse import urlsplit

import requests


@dataclass(frozen=True)
class Mail:
    """One e-mail: recipient, subject, plain text and HTML."""

    to: str
    subject: str
    text: str
    html: str


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


def signature(secret: str, body: bytes) -> str:
    """Return the X-Portal-Signature value: sha256=<hex HMAC-SHA256 of the body>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_webhook(url: str, event: str, payload: Mapping[str, Any], settings: Settings) -> None:
    """POST the event as JSON with a timestamp and an HMAC signature; raise unless 2xx."""
    body = json.dumps(dict(payload), separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "connector-consent-portal",
        "X-Portal-Event": event,
        "X-Portal-Delivery": str(payload.get("delivery", "")),
        "X-Portal-Timestamp": str(int(time.time())),
    }
    if settings.webhook_secret:
        headers["X-Portal-Signature"] = signature(settings.webhook_secret, body)
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
