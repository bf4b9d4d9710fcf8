"""A diagnosis retold for helpdesk staff: what to tell the user, what to ask the admin.

The catalogue speaks to the person on the error page ("What you can do", "the support details
below"). The troubleshooter's reader is the helpdesk, who already holds those details, so the
same steps are regrouped under staff headings and the sentences about the user's own page are
dropped or reworded here, leaving the end-user text untouched for the end-user pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.diagnosis.catalogue import Actor
from app.diagnosis.catalogue import Diagnosis

STAFF_LABELS = {
    Actor.USER: "What to tell the user",
    Actor.TENANT_ADMIN: "What to ask their administrator",
    Actor.OPERATOR: "What to ask the portal's operator",
    Actor.HELPDESK: "What you can do",
}
# A sentence that sends the details to the helpdesk means nothing to the helpdesk itself.
_TO_HELPDESK = re.compile(r"support details|your helpdesk|your IT department", re.IGNORECASE)
# The user's page, as the end-user text calls it, and what the helpdesk should call it.
_THEIR_PAGE = (
    (re.compile(r"\bfrom this page\b"), "from the portal's Admin approval required page"),
    (re.compile(r"\bon this page\b"), "on the portal's page"),
    (re.compile(r"\bshows its status here\b"), "shows its status on its own page"),
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")
_FOLLOW_UP = (
    "If the steps above do not help, find the sign-in in the Entra sign-in logs by its "
    "correlation ID and pass the details you pasted to the portal's operator."
)


@dataclass(frozen=True)
class StaffSection:
    """One actor's steps, headed for the helpdesk."""

    actor: Actor
    label: str
    steps: tuple[str, ...]


def for_staff(diagnosis: Diagnosis) -> list[StaffSection]:
    """Return the diagnosis's steps regrouped and worded for helpdesk staff."""
    sections: dict[Actor, list[str]] = {actor: [] for actor in diagnosis.actors}
    dropped = False
    for step in diagnosis.steps:
        text = step.text
        if step.actor == Actor.USER:
            text, cut = _without_helpdesk_sentences(text)
            dropped = dropped or cut
        text = _their_page(text)
        if text:
            sections[step.actor].append(text)
    if dropped and not sections.get(Actor.HELPDESK):  # the helpdesk's own steps cover it
        sections.setdefault(Actor.HELPDESK, []).append(_FOLLOW_UP)
    return [
        StaffSection(actor, STAFF_LABELS[actor], tuple(steps))
        for actor, steps in sections.items()
        if steps
    ]


def _without_helpdesk_sentences(text: str) -> tuple[str, bool]:
    """Drop the sentences that tell the user to contact the helpdesk; say whether any went."""
    kept: list[str] = []
    cut = False
    for sentence in _SENTENCE.split(text):
        if not _TO_HELPDESK.search(sentence):
            kept.append(sentence)
            continue
        cut = True
        # "…not in your account: send the support details below…" keeps its first half.
        head, colon, _ = sentence.partition(": ")
        if colon and not _TO_HELPDESK.search(head):
            kept.append(head + ".")
    return " ".join(kept).strip(), cut


def _their_page(text: str) -> str:
    """Name the user's page where the end-user text says "this page"."""
    for pattern, words in _THEIR_PAGE:
        text = pattern.sub(words, text)
    return text
