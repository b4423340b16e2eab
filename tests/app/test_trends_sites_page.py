"""AppTest (issue 13): the Trends page of a clinic network — the site picker, the zone each figure uses,
and the "Sites compared" section (funnel plot, its table and CSV), shown with two sites and hidden with one."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from db.models import AppUser, Clinic, UserSite
from infusion.accounts.actor import Actor
from infusion.settings import ClinicSettings
from tests.app.helpers import run_app
from tests.helpers import ADMIN, ago, form_key, new_session, walk

pytestmark = pytest.mark.usefixtures("fresh_page_caches")

MANAGER = Actor(None, "Network manager", "manager")


def _open(make_app: Any, actor: Actor) -> Any:
    at = make_app()
    at.session_state["actor"] = actor
    run_app(at, no_errors=True)
    return run_app(at.switch_page("pages/trends.py"), no_errors=True)


def _two_sites(db: Any) -> tuple[int, int]:
    """Boston (the first site) and Honolulu, each with one chair and three discharged Tysabri visits."""
    from infusion.services.setup import add_chair

    with db.writing() as w:
        boston = w.scalars(select(Clinic).order_by(Clinic.id)).first()
        boston.name, boston.code, boston.timezone = "Boston", "BOS", "America/New_York"
        honolulu = Clinic(
            name="Honolulu",
            code="HNL",
            timezone="Pacific/Honolulu",
            temperature_unit="C",
            weight_unit="kg",
            settings=ClinicSettings().model_dump(),
        )
        w.add(honolulu)
        w.flush()
        ids = (boston.id, honolulu.id)
    nurse = Actor(None, "Network nurse", "charge_nurse")
    for site in ids:
        chair = add_chair(db, ADMIN, "Chair 1", site_id=site).id
        for day in range(3):
            sid = new_session(db, nurse, "natalizumab", chair_id=chair)
            walk(db, nurse, sid, "discharged", t0=ago(60 * 24 * (day + 2)))
    return ids


def _texts(elements: Any) -> list[str]:
    return [str(e.value) for e in elements]


def test_two_sites_show_the_sites_compared_section(db: Any, make_app: Any) -> None:
    _two_sites(db)
    at = _open(make_app, MANAGER)
    assert "Sites compared" in _texts(at.subheader)
    picker = at.multiselect(key=form_key(at, "trend_filters", "site"))
    assert len(picker.value) == 2
    assert any("each site's local day" in c for c in _texts(at.caption)), _texts(at.caption)
    assert any("Pacific/Honolulu" in c for c in _texts(at.caption))
    therapy = at.selectbox(key="funnel_therapy")
    assert therapy.value == "Tysabri"
    funnel = next(d.value for d in at.dataframe if "signal" in d.value.columns)
    assert sorted(funnel["site"]) == ["Boston", "Honolulu"]
    assert funnel["completed sessions"].tolist() == [3, 3]
    assert any("Each site" in m for m in _texts(at.markdown))


def test_one_site_picked_hides_the_comparison_and_names_its_zone(db: Any, make_app: Any) -> None:
    boston, _ = _two_sites(db)
    at = _open(make_app, MANAGER)
    at.multiselect(key=form_key(at, "trend_filters", "site")).set_value([boston])
    next(b for b in at.button if b.label == "Apply filters").click()
    run_app(at, no_errors=True)
    assert "Sites compared" not in _texts(at.subheader)
    assert any("Boston's local time (America/New_York)" in c for c in _texts(at.caption)), _texts(at.caption)
    assert not any("Each site" in m for m in _texts(at.markdown))
    numbers = [e for e in at.expander if e.label == "Numbers"]
    assert int(numbers[0].dataframe[0].value["completed sessions"].sum()) == 3


def test_a_manager_of_one_site_sees_no_comparison_and_no_site_picker(db: Any, make_app: Any) -> None:
    from infusion.services.setup import add_staff

    boston, _ = _two_sites(db)
    user = add_staff(db, ADMIN, "Regional Manager", role="manager")
    with db.writing() as w:
        w.execute(update(AppUser).where(AppUser.id == user.id).values(network_wide=False))
        w.add(UserSite(user_id=user.id, site_id=boston))
    at = _open(make_app, Actor(user.id, user.display_name, "manager"))
    assert "Sites compared" not in _texts(at.subheader)
    assert not [m for m in at.multiselect if m.label == "Sites"]
    numbers = [e for e in at.expander if e.label == "Numbers"]
    assert int(numbers[0].dataframe[0].value["completed sessions"].sum()) == 3  # Boston's three only
