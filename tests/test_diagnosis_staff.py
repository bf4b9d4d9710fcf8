"""The troubleshooter's staff view of a diagnosis (issue 14): written for the helpdesk."""

from __future__ import annotations

import pytest

from app.diagnosis import explain
from app.diagnosis import staff
from app.diagnosis.catalogue import BY_CODE
from app.diagnosis.catalogue import Actor


def sections(code: int) -> dict[str, tuple[str, ...]]:
    """Return the staff view of a code's diagnosis, by heading."""
    found = explain.diagnose(codes=[code], connector="OneDrive")
    return {section.label: section.steps for section in staff.for_staff(found)}


@pytest.mark.parametrize("code", sorted(BY_CODE))
def test_no_staff_step_points_at_details_below_or_speaks_of_this_page(code: int) -> None:
    for steps in sections(code).values():
        for text in steps:
            assert "below" not in text and "this page" not in text, (code, text)
            assert "your helpdesk" not in text.lower(), (code, text)


def test_the_headings_are_for_the_helpdesk() -> None:
    view = sections(50105)
    assert list(view)[:2] == ["What to ask their administrator", "What to tell the user"]
    assert Actor.USER.label == "What you can do"  # the end-user pages keep their own heading
    tell = view["What to tell the user"]
    assert tell == (
        "Ask your administrator to assign your account to the Connector Consent Portal, "
        "then connect OneDrive again.",
    )
    assert "Entra sign-in logs" in view["What you can do"][0]  # the dropped sentence's job


def test_a_setup_problem_tells_the_user_it_is_not_their_account() -> None:
    found = explain.diagnose(codes=[50011], connector="OneDrive")
    view = {s.actor: s.steps for s in staff.for_staff(found)}
    assert view[Actor.USER] == ("This is a setup problem in the portal, not in your account.",)
    assert view[Actor.OPERATOR]


def test_the_end_user_text_is_left_as_it_was() -> None:
    found = explain.diagnose(codes=[50011], connector="OneDrive")
    assert any("support details below" in text for text in found.steps_for(Actor.USER))


def test_an_unknown_code_gets_the_helpdesks_own_steps_once() -> None:
    view = sections(99999)
    assert list(view) == ["What you can do"]
    assert len(view["What you can do"]) == 1
