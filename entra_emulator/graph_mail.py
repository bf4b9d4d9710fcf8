"""Outlook mail through Graph: the signed-in user's mail folders and generated messages."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import math
import re
from typing import Any

from flask import request

from entra_emulator.dataset import MAIL_ANCHOR
from entra_emulator.dataset import MAIL_STEP
from entra_emulator.dataset import iso
from entra_emulator.dataset import message_fields
from entra_emulator.dataset import message_time
from entra_emulator.graph_common import GraphError
from entra_emulator.graph_common import collection
from entra_emulator.graph_common import data
from entra_emulator.graph_common import page
from entra_emulator.graph_common import project
from entra_emulator.graph_common import selected
from entra_emulator.resources import user_of
from entra_emulator.world import User

# Well-known folder name -> display name; every generated message is in the Inbox.
FOLDERS = {
    "inbox": "Inbox",
    "drafts": "Drafts",
    "sentitems": "Sent Items",
    "deleteditems": "Deleted Items",
    "archive": "Archive",
    "junkemail": "Junk Email",
}
COMPARISON = re.compile(r"receivedDateTime\s+(ge|gt|le|lt)\s+'?([0-9T:.+\-Z]+)'?", re.I)
ALWAYS = ("@odata.etag", "id")  # returned whatever $select says


def _user(claims: dict[str, Any]) -> User:
    """Return the mailbox owner: the signed-in user, never anyone else."""
    user = user_of(claims)
    if user is None:
        raise GraphError(
            404, "ErrorItemNotFound", "The specified object was not found in the store."
        )
    return user


def _folder_id(user: User, name: str) -> str:
    """Return a mail folder id, stable per mailbox."""
    digest = hashlib.sha256(f"{user.oid}/{name}".encode()).digest()
    return "AAMkA" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "AAA="


def _folder_json(user: User, name: str) -> dict[str, Any]:
    """Return a mailFolder resource."""
    count = data().messages if name == "inbox" else 0
    return {
        "id": _folder_id(user, name),
        "displayName": FOLDERS[name],
        "parentFolderId": _folder_id(user, "msgfolderroot"),
        "childFolderCount": 0,
        "unreadItemCount": count // 3,  # message_fields: every third is unread
        "totalItemCount": count,
        "sizeInBytes": count * 4096,
        "isHidden": False,
    }


def _find_folder(user: User, ref: str) -> str:
    """Return the well-known name of a folder named by id or well-known name."""
    for name in FOLDERS:
        if ref.lower() == name or ref == _folder_id(user, name):
            return name
    raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def folders(claims: dict[str, Any], _: re.Match[str]) -> Any:
    """Return a page of the mail folders under the root."""
    user = _user(claims)
    found = [_folder_json(user, name) for name in FOLDERS]
    span, next_link = page("mail_folders", len(found), style="skip")
    return collection(f"users('{user.oid}')/mailFolders", [found[i] for i in span], next_link)


def folder(claims: dict[str, Any], match: re.Match[str]) -> Any:
    """Return one mail folder."""
    user = _user(claims)
    return _folder_json(user, _find_folder(user, match["folder"]))


def message_id(user: User, index: int) -> str:
    """Return a message id that names its mailbox and position."""
    raw = f"{user.oid}:{index}".encode()
    return "AAMkAG" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def message_json(user: User, index: int) -> dict[str, Any]:
    """Return message index (0 is the newest) of a mailbox."""
    received = message_time(index)
    tag = hashlib.sha256(f"{user.oid}:{index}".encode()).hexdigest()
    sender = message_fields(index)["from"]
    preview = message_fields(index)["bodyPreview"]
    return {
        "@odata.etag": f'W/"CQAAABYAAAD{tag[:24]}"',
        "id": message_id(user, index),
        "createdDateTime": iso(received),
        "lastModifiedDateTime": iso(received),
        "changeKey": f"CQAAABYAAAD{tag[:24]}",
        "categories": [],
        "receivedDateTime": iso(received),
        "sentDateTime": iso(received - dt.timedelta(seconds=40)),
        "internetMessageId": f"<{tag[:32]}@mail.example>",
        "isDraft": False,
        "parentFolderId": _folder_id(user, "inbox"),
        "conversationId": f"AAQkAD{tag[32:56]}",
        "webLink": f"https://outlook.office365.com/owa/?ItemID={message_id(user, index)}",
        "body": {"contentType": "html", "content": f"<html><body><p>{preview}</p></body></html>"},
        "sender": sender,
        "toRecipients": [{"emailAddress": {"name": user.display_name, "address": user.username}}],
        "ccRecipients": [],
        "bccRecipients": [],
        "replyTo": [],
        "flag": {"flagStatus": "notFlagged"},
        "inferenceClassification": "focused",
        **message_fields(index),
    }


def _window(total: int) -> range:
    """Return the message indexes that $filter on receivedDateTime keeps (newest first)."""
    raw = (request.args.get("$filter") or request.args.get("filter") or "").strip()
    low, high = 0, total
    if not raw:
        return range(low, high)
    clauses = re.split(r"\s+and\s+", raw, flags=re.I)
    for clause in clauses:
        found = COMPARISON.fullmatch(clause.strip())
        if found is None:
            raise GraphError(
                400,
                "BadRequest",
                "Invalid filter clause: only receivedDateTime "
                "ge/gt/le/lt <DateTimeOffset>, joined by 'and', is emulated.",
            )
        try:
            moment = dt.datetime.fromisoformat(found.group(2))
        except ValueError:
            raise GraphError(
                400, "BadRequest", f"Invalid DateTimeOffset '{found.group(2)}'."
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        steps = (MAIL_ANCHOR - moment) / MAIL_STEP  # message i was received at ANCHOR - i*STEP
        operator = found.group(1).lower()
        if operator == "ge":
            high = min(high, math.floor(steps) + 1)
        elif operator == "gt":
            high = min(high, math.ceil(steps))
        elif operator == "le":
            low = max(low, math.ceil(steps))
        else:
            low = max(low, math.floor(steps) + 1)
    return range(max(0, low), max(0, min(high, total)))


def _listing(user: User, total: int, context: str) -> dict[str, Any]:
    """Return a page of messages: $filter, $orderby, $select, $top, $skip and $count."""
    allowed = set(message_json(user, 0))
    names = selected(allowed)
    window = _window(total)
    order = (request.args.get("$orderby") or "receivedDateTime desc").strip().lower()
    if order not in ("receiveddatetime desc", "receiveddatetime asc", "receiveddatetime"):
        raise GraphError(400, "BadRequest", "Only $orderby=receivedDateTime asc|desc is emulated.")
    if not order.endswith("desc"):
        window = window[::-1]
    span, next_link = page("messages", len(window), style="skip")
    value = [project(message_json(user, window[i]), names, ALWAYS) for i in span]
    body = collection(context + (f"({','.join(names)})" if names else ""), value, next_link)
    if (request.args.get("$count") or "").lower() == "true":
        body = {"@odata.context": body["@odata.context"], "@odata.count": len(window)} | body
    return body


def messages(claims: dict[str, Any], _: re.Match[str]) -> Any:
    """Return a page of the mailbox's messages (GET /me/messages)."""
    user = _user(claims)
    return _listing(user, data().messages, f"users('{user.oid}')/messages")


def folder_messages(claims: dict[str, Any], match: re.Match[str]) -> Any:
    """Return a page of one folder's messages; only the Inbox has any."""
    user = _user(claims)
    name = _find_folder(user, match["folder"])
    total = data().messages if name == "inbox" else 0
    context = f"users('{user.oid}')/mailFolders('{_folder_id(user, name)}')/messages"
    return _listing(user, total, context)


def message(claims: dict[str, Any], match: re.Match[str]) -> Any:
    """Return one message of the caller's own mailbox."""
    user = _user(claims)
    ref = match["message"]
    try:
        owner, _, index = base64.urlsafe_b64decode(ref[6:] + "==").decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        owner, index = "", ""
    if owner != user.oid or not index.isdigit() or int(index) >= data().messages:
        raise GraphError(
            404, "ErrorItemNotFound", "The specified object was not found in the store."
        )
    names = selected(set(message_json(user, 0)))
    return project(message_json(user, int(index)), names, ALWAYS)
