"""AppTest: the role × page × site matrix (issue 13). Each role, held at site A only, opens every page
its role allows — by the menu's URL — and nothing of site B reaches the screen: not its patients, its
chairs, its sessions' MRNs, nor its name in a picker. A network-wide holder of the same role sees
both. The services refuse site B in tests/db/test_site_scope_services.py; this is what the pages do
with that. Runs on both databases (the `db` fixture)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher

from infusion.accounts import auth
from infusion.accounts.actor import Actor
from infusion.clock import utcnow
from infusion.errors import ValidationError
from infusion.services import sessions, setup
from tests.app.helpers import run_app
from tests.helpers import ADMIN, therapy_id, walk
from ui.registry import PAGES

#: the roles a person can hold at some sites only (an administrator sets up the whole network)
SITE_ROLES = ("nurse", "charge_nurse", "manager", "quality")
#: what only site B has: its name, its chair, its patients (name and MRN)
SITE_B_MARKS = ("Riverside", "River chair", "Brook", "MRN-R")


@pytest.fixture(autouse=True)
def _fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _screen(at) -> str:  # type: ignore[no-untyped-def]
    """Everything a person could read on the page: text, tables, chart data and the pickers' options."""
    parts: list[Any] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success"):
        parts += [e.value for e in getattr(at, kind)]
    parts += [df.value.to_csv() for df in at.dataframe]
    parts += [t.value.to_csv() if hasattr(t.value, "to_csv") else t.value for t in at.table]
    parts += [chart.proto.spec for chart in at.get("plotly_chart")]
    for kind in ("selectbox", "multiselect", "radio"):
        for widget in getattr(at, kind):
            parts += [str(o) for o in widget.options]
    return "\n".join(str(p) for p in parts)


@pytest.fixture
def network(db) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Two sites; at each a patient with an infusion given 30 days ago, one discharged yesterday and
    one checked in now, so every page (Chairside, board, due list, follow-up, record, Trends,
    exports, audit) has something of each site to show."""
    site_a = setup.update_clinic(
        db, ADMIN, name="Northside", code="NTH", timezone="UTC", temperature_unit="C", weight_unit="kg"
    )
    site_b = setup.add_site(db, ADMIN, "Riverside", "RIV", "America/Los_Angeles", "C", "kg")
    natalizumab = therapy_id(db, "natalizumab")
    for site, tag, family in ((site_a, "North", "Ashby"), (site_b, "River", "Brook")):
        chairs = [setup.add_chair(db, ADMIN, f"{tag} chair {i}", site_id=site.id).id for i in (1, 2, 3)]
        for n, (days, status) in enumerate(((30, "discharged"), (1, "discharged"), (0, "checked_in"))):
            mrn = f"MRN-{tag[0]}{n}"
            pid = setup.add_patient(db, ADMIN, mrn=mrn, given_name="Pat", family_name=f"{family}{n}").id
            sid = sessions.create_session(db, ADMIN, patient_id=pid, therapy_id=natalizumab, chair_id=chairs[n]).id
            walk(db, ADMIN, sid, status, t0=utcnow() - timedelta(days=days, hours=3))
    return {"a": site_a.id, "b": site_b.id}


def _held_at(db, role: str, sites: list[int] | None) -> Actor:  # type: ignore[no-untyped-def]
    user = setup.add_staff(db, ADMIN, f"The {role} {len(sites or [])}", role, network_wide=sites is None, sites=sites)
    return Actor(user.id, user.display_name, role)


@pytest.mark.parametrize("role", SITE_ROLES)
def test_a_role_held_at_site_a_never_sees_site_b(db, make_app, network, role):  # type: ignore[no-untyped-def]
    actor = _held_at(db, role, [network["a"]])
    at = make_app()
    at.session_state["actor"] = actor
    run_app(at)
    allowed = [page for page in PAGES if role in page.roles]
    assert allowed
    for page in allowed:
        run_app(at.switch_page(page.file))
        screen = _screen(at)
        leaked = [mark for mark in SITE_B_MARKS if mark in screen]
        assert leaked == [], (
            f"{role} sees site B ({leaked}) on {page.key}: "
            + "|".join(t for t in screen.splitlines() if any(m in t for m in leaked))[:600]
        )
    if role in ("nurse", "charge_nurse"):  # the Chairside list is the site's
        run_app(at.switch_page("pages/chairside.py"))
        assert "Ashby2" in _screen(at)


def test_an_administrator_is_never_held_at_some_sites_only(db, network):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="network-wide"):
        setup.add_staff(db, ADMIN, "Site Admin", "admin", network_wide=False, sites=[network["a"]])


@pytest.mark.parametrize("role", ("charge_nurse", "manager", "quality"))
def test_a_network_wide_holder_reaches_both_sites(db, make_app, network, role):  # type: ignore[no-untyped-def]
    actor = _held_at(db, role, None)
    at = make_app()
    at.session_state["actor"] = actor
    run_app(at)
    pages = {page.key: page for page in PAGES if role in page.roles}
    if "trends" in pages:  # the network's figures: both sites offered and compared
        run_app(at.switch_page(pages["trends"].file))
        screen = _screen(at)
        assert "Riverside" in screen and "Northside" in screen
    if "board" in pages:  # the picker offers both sites
        run_app(at.switch_page(pages["board"].file))
        screen = _screen(at)
        assert "Riverside" in screen and "Northside" in screen
