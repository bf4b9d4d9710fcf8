"""The data the resource APIs serve: lists, files, mail, table rows, all derived from an index.

Nothing here is stored row by row: an item's values are a function of its position, so a list
of 12,000 items or a mailbox of 100,000 messages costs nothing until a page of it is read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from dataclasses import field
from typing import Any

COLUMN_TYPES = ("text", "choice", "number", "currency", "dateTime", "boolean", "email", "phone")
EPOCH = dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.UTC)  # dateTime columns count from here
MAIL_ANCHOR = dt.datetime(2025, 11, 28, 9, 0, tzinfo=dt.UTC)  # the newest message
MAIL_STEP = dt.timedelta(seconds=8220)  # 2 h 17 min between two messages
SENDERS = [
    ("Megan Bowen", "megan@northwind.example"),
    ("Alex Wilber", "alex@fabrikam.example"),
    ("Lynne Robbins", "lynne@contoso.example"),
    ("Notifications", "noreply@service.example"),
]
TOPICS = ["Weekly report", "Invoice", "Meeting notes", "Build failed", "Lunch on Friday?",
          "Quarterly numbers", "Travel request", "Welcome aboard"]  # fmt: skip


def iso(moment: dt.datetime) -> str:
    """Return the UTC timestamp as Graph and Dataverse write it (seconds, Z)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp(*parts: str) -> dt.datetime:
    """Return a fixed moment in 2025 derived from names (creation and modification times)."""
    digest = int(hashlib.sha256("/".join(parts).encode()).hexdigest()[:8], 16)
    return EPOCH + dt.timedelta(seconds=digest % (300 * 86400))


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # one of COLUMN_TYPES
    prefix: str = ""  # text and email: the value before the index
    choices: tuple[str, ...] = ()

    def value(self, index: int) -> Any:
        """Return this column's value for item number index (1-based)."""
        if self.type == "choice":
            return self.choices[(index - 1) % len(self.choices)]
        if self.type == "number":
            return (index * 37) % 1000
        if self.type == "currency":
            return round((index * 7919) % 100000 / 100, 2)
        if self.type == "dateTime":
            return iso(EPOCH + dt.timedelta(hours=7 * index))
        if self.type == "boolean":
            return index % 2 == 0
        if self.type == "email":
            return f"{self.prefix or 'person'}{index}@example.test"
        if self.type == "phone":
            return f"+1 555 {index // 10000 % 1000:03d} {index % 10000:04d}"
        return f"{self.prefix or self.name} {index}"


@dataclass
class ItemList:
    """A SharePoint list on each work tenant's team site."""

    name: str
    items: int
    columns: list[Column]
    title_prefix: str = ""

    def fields(self, index: int) -> dict[str, Any]:
        """Return the typed fields of item number index (1-based); Title first."""
        values: dict[str, Any] = {"Title": f"{self.title_prefix or self.name} {index}"}
        values.update({c.name: c.value(index) for c in self.columns})
        return values


@dataclass(frozen=True)
class FileEntry:
    """A file (or, with a trailing "/", an empty folder) in a drive or a container."""

    path: str
    size: int | None  # None: the big file, sized by Data.big_file_bytes


@dataclass(frozen=True)
class Node:
    """A drive item: a folder or a file, addressed by its path from the root ("" is the root)."""

    path: str
    folder: bool
    size: int

    @property
    def name(self) -> str:
        """Return the last segment of the path."""
        return self.path.rsplit("/", 1)[-1] if self.path else "root"

    @property
    def parent(self) -> str:
        """Return the parent folder's path."""
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""


@dataclass
class EntitySet:
    """A Dataverse table served as an entity set (accounts, contacts, ...)."""

    name: str  # the entity set, e.g. accounts
    entity: str  # the logical name, e.g. account
    rows: int
    columns: list[Column]

    @property
    def key(self) -> str:
        """Return the primary key column (accountid for account)."""
        return f"{self.entity}id"


@dataclass
class Data:
    """Sizes and shapes of the served data; the control plane changes them at run time."""

    big_file_bytes: int = 4 * 1024 * 1024
    messages: int = 300
    lists: list[ItemList] = field(default_factory=list)
    drive: list[FileEntry] = field(default_factory=list)
    library: list[FileEntry] = field(default_factory=list)
    entity_sets: list[EntitySet] = field(default_factory=list)
    blobs: dict[str, list[FileEntry]] = field(default_factory=dict)  # "account/container"
    generated_blobs: dict[str, int] = field(default_factory=dict)  # "account/container" -> n
    page_sizes: dict[str, int] = field(default_factory=dict)
    content_redirect: bool = False  # Graph /content answers 302 to the download URL

    def list_named(self, name: str) -> ItemList | None:
        """Return the list with this name (case-insensitive)."""
        return next((x for x in self.lists if x.name.lower() == name.lower()), None)

    def entity_set(self, name: str) -> EntitySet | None:
        """Return the entity set with this name (case-sensitive, as Dataverse)."""
        return next((e for e in self.entity_sets if e.name == name), None)


def tree(entries: list[FileEntry], big_size: int) -> dict[str, Node]:
    """Return every node of a drive by lower-cased path, folders implied by file paths."""
    nodes: dict[str, Node] = {"": Node("", True, 0)}
    for entry in entries:
        path = entry.path.strip("/")
        parts = path.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            nodes.setdefault(folder.lower(), Node(folder, True, 0))
        if entry.path.endswith("/"):
            nodes.setdefault(path.lower(), Node(path, True, 0))
        else:
            size = big_size if entry.size is None else entry.size
            nodes[path.lower()] = Node(path, False, size)
    sizes = {key: 0 for key in nodes}
    for node in nodes.values():
        if not node.folder:
            parent = node.path.lower()
            while parent:
                parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
                sizes[parent] += node.size
    return {k: Node(n.path, True, sizes[k]) if n.folder else n for k, n in nodes.items()}


def children(nodes: dict[str, Node], folder: Node) -> list[Node]:
    """Return the nodes directly inside a folder, sorted by name."""
    inside = [n for n in nodes.values() if n.path and n.parent.lower() == folder.path.lower()]
    return sorted(inside, key=lambda n: n.name.lower())


def message_time(index: int) -> dt.datetime:
    """Return receivedDateTime of message index (0 is the newest)."""
    return MAIL_ANCHOR - index * MAIL_STEP


def message_fields(index: int) -> dict[str, Any]:
    """Return the content of message index (0 is the newest); the same for every mailbox."""
    number = index + 1
    name, address = SENDERS[index % len(SENDERS)]
    topic = TOPICS[index % len(TOPICS)]
    return {
        "subject": f"{topic} #{number}",
        "bodyPreview": f"Message {number}: {topic.lower()}.",
        "from": {"emailAddress": {"name": name, "address": address}},
        "importance": "high" if number % 17 == 0 else "normal",
        "hasAttachments": number % 5 == 0,
        "isRead": number % 3 != 0,
    }
