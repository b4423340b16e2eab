"""Follow-up calls in a real browser at the tablet's 1024×768: a call form keeps what is typed.

The page draws a call form only for the patients the nurse opened (the first still to call opens by
itself), so a big clinic's list stays quick; inside an `st.form` what is typed reaches the server only
with a submit, so a form must never leave the page but through its own buttons (Save call, Close).
AppTest cannot see values typed and not yet submitted; the browser can:

1. typed into the first call (not saved), then "📞 Call" on the next patient: both forms are on the page
   and the first still holds what was typed;
2. the second call saved: its form closes with "Call recorded.", the first still holds its text, and
   saving it stores the typed note.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from db.models import FollowUp
from infusion.clock import from_local, utcnow
from infusion.services import sessions
from infusion.services.setup import add_patient, get_clinic
from tests.browser.conftest import CHROMIUM, ClinicApp, settle
from tests.helpers import new_session, walk

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed"),
]
expect = pytest.importorskip("playwright.sync_api").expect

NOTE = "Note (how they are, advice given)"


def _discharged_yesterday(app: ClinicApp, family: str, hhmm: str) -> int:
    tz = get_clinic(app.db).timezone
    yesterday = utcnow().astimezone(ZoneInfo(tz)).date() - timedelta(days=1)
    patient = add_patient(app.db, app.nurse, mrn=f"FU{uuid.uuid4().hex[:8]}", given_name="Pat", family_name=family)
    sid = new_session(app.db, app.nurse, "natalizumab", patient_id=patient.id)
    at = from_local(datetime.combine(yesterday, time.fromisoformat(hhmm)), tz)
    walk(app.db, app.nurse, sid, "observation", t0=at - timedelta(hours=3))
    sessions.discharge(app.db, app.nurse, sid, expected_version=None, at=at)
    return sid


def test_a_call_form_keeps_what_is_typed_while_another_call_is_opened_and_saved(
    clinic_app: ClinicApp, tablet: Any
) -> None:
    first = _discharged_yesterday(clinic_app, f"Morning{uuid.uuid4().hex[:4]}", "09:00")
    second = _discharged_yesterday(clinic_app, f"Evening{uuid.uuid4().hex[:4]}", "16:00")
    page = tablet()
    page.get_by_role("link", name="Follow-up calls").click()
    settle(page)
    forms = page.locator("[data-testid='stForm']")
    expect(forms).to_have_count(1)  # the first still to call opened by itself
    forms.nth(0).get_by_label(NOTE).fill("Feels well, slight headache")

    page.get_by_role("button", name="📞 Call").click()  # the other patient: a second form, the first stays
    settle(page)
    expect(forms).to_have_count(2)
    expect(forms.nth(0).get_by_label(NOTE)).to_have_value("Feels well, slight headache")

    forms.nth(1).get_by_text("Not reached").click()
    forms.nth(1).get_by_role("button", name="Save call").click()
    settle(page)
    expect(page.get_by_text("Call recorded.").first).to_be_visible()
    expect(forms).to_have_count(1)
    expect(forms.nth(0).get_by_label(NOTE)).to_have_value("Feels well, slight headache")

    forms.nth(0).get_by_text("Reached", exact=True).click()
    forms.nth(0).get_by_role("button", name="Save call").click()
    settle(page)
    with clinic_app.db.reading() as s:
        calls = {f.session_id: (f.outcome, f.note) for f in s.scalars(select(FollowUp))}
    assert calls[second][0] == "not_reached"
    assert calls[first][0] == "reached" and "Feels well, slight headache" in calls[first][1]
