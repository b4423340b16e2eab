"""AppTest of the Audit log page across two sites: quality staff held at Northside search the trail and
see Northside's events only (no Riverside patient, MRN, nurse or account event in the table or the
Action choices), and are told so; network quality see both sites."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from infusion.accounts.actor import Actor
from infusion.accounts.auth import add_user
from infusion.reads import sessions as views
from infusion.services import sessions, setup
from tests.app.helpers import run_app
from tests.helpers import ADMIN, form_key, therapy_id


def _network(db) -> dict[str, Actor]:  # type: ignore[no-untyped-def]
    north = setup.update_clinic(
        db, ADMIN, name="Northside", code="NTH", timezone="UTC", temperature_unit="C", weight_unit="kg"
    )
    river = setup.add_site(db, ADMIN, "Riverside", "RIV", "America/Los_Angeles", "C", "kg")
    for site, family, nurse_name in ((north, "Ashby", "Nora North"), (river, "Brook", "Rita River")):
        chair = setup.add_chair(db, ADMIN, f"{family} chair", site_id=site.id).id
        staff = setup.add_staff(db, ADMIN, nurse_name, "nurse", sites=[site.id])
        nurse = Actor(staff.id, staff.display_name, "nurse", site_id=site.id)
        pid = setup.add_patient(db, nurse, mrn=f"MRN-{family}", given_name="Pat", family_name=family).id
        sid = sessions.create_session(
            db, nurse, patient_id=pid, therapy_id=therapy_id(db, "natalizumab"), chair_id=chair
        ).id
        views.session_detail(db, nurse, sid)
    local = add_user(
        db, ADMIN, username="q.north", display_name="Quinn North", role="quality", network_wide=False, sites=[north.id]
    )
    wide = add_user(db, ADMIN, username="q.all", display_name="Nia Network", role="quality")
    return {
        "local": Actor(local.id, local.display_name, "quality"),
        "wide": Actor(wide.id, wide.display_name, "quality"),
    }


def _search(make_app, actor: Actor) -> AppTest:  # type: ignore[no-untyped-def]
    at = make_app()
    at.session_state["actor"] = actor
    run_app(at)
    run_app(at.switch_page("pages/audit.py"))
    next(b for b in at.button if b.label == "Search").click()
    return run_app(at)


def test_quality_at_one_site_sees_that_sites_events_only(db, make_app) -> None:  # type: ignore[no-untyped-def]
    staff = _network(db)
    at = _search(make_app, staff["local"])
    captions = " ".join(c.value for c in at.caption)
    assert "You see the events about Northside only" in captions
    frame = at.dataframe[0].value
    assert set(frame["patient_mrn"].dropna()) == {"MRN-Ashby"}
    assert "Rita River" not in set(frame["user"]) and "app_user" not in set(frame["entity"])
    actions = at.selectbox(key=form_key(at, "audit_filters", "action")).options
    assert "search audit" not in actions and "create" in actions
    # the download is audit_log.to_csv of this frame (its bytes: tests/db/test_audit_sites.py)
    assert [b.proto.label for b in at.get("download_button")] == ["Download these events (CSV)"]


def test_network_quality_sees_both_sites(db, make_app) -> None:  # type: ignore[no-untyped-def]
    staff = _network(db)
    at = _search(make_app, staff["wide"])
    assert not any("You see the events about" in c.value for c in at.caption)
    frame = at.dataframe[0].value
    assert set(frame["patient_mrn"].dropna()) == {"MRN-Ashby", "MRN-Brook"}
    assert "Rita River" in set(frame["user"])
