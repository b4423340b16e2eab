"""The Export page across a clinic network: the site picker, the pseudonymous-site option, and a preview
that follows the de-identify switch at once (it used to wait for the Preview button)."""

from __future__ import annotations

from typing import Any

import pytest

from db.engine import Database
from infusion.accounts.actor import Actor
from infusion.accounts.auth import add_user
from infusion.exports.deidentify import ENV_SECRET
from tests.app.helpers import run_app
from tests.db.test_export_sites import ADMIN, Network, build_network
from tests.helpers import form_key


@pytest.fixture
def network(db: Database) -> Network:
    return build_network(db)


def _open(make_app: Any, actor: Actor) -> Any:
    at = make_app()
    at.session_state["actor"] = actor
    run_app(at, no_errors=True)
    return run_app(at.switch_page("pages/export.py"), no_errors=True)


def _quality(network: Network) -> Actor:
    user = add_user(network.db, ADMIN, username="quality.page", display_name="Page Quality", role="quality")
    return Actor(user.id, user.display_name, "quality")


def test_deidentify_refreshes_the_preview_and_offers_a_pseudonymous_site(
    network: Network, make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_SECRET, "a-test-secret-of-32-characters!!")
    at = _open(make_app, _quality(network))
    assert "site" in at.dataframe[0].value.columns
    assert not [c for c in at.checkbox if c.label == "Replace site with a pseudonymous code"]
    at.toggle(key=form_key(at, "export_filters", "deid")).set_value(True)
    run_app(at, no_errors=True)  # no Preview click: the switch alone refreshes
    frame = at.dataframe[0].value
    assert "patient_key" in frame.columns and "mrn" not in frame.columns
    assert set(frame["site"]) == {"BUF", "HNL"}
    assert any("not a Safe Harbor identifier" in c.value for c in at.caption)
    next(c for c in at.checkbox if c.label == "Replace site with a pseudonymous code").check()
    run_app(at, no_errors=True)
    frame = at.dataframe[0].value
    assert "site" not in frame.columns and frame["site_key"].str.startswith("S-").all()
    assert frame["site_key"].nunique() == 2
    at.toggle(key=form_key(at, "export_filters", "deid")).set_value(False)
    run_app(at, no_errors=True)
    assert "mrn" in at.dataframe[0].value.columns and "site_key" not in at.dataframe[0].value.columns


def test_the_site_picker_filters_the_preview(network: Network, make_app: Any) -> None:
    at = _open(make_app, _quality(network))
    picker = at.multiselect(key=form_key(at, "export_filters", "site"))
    assert sorted(picker.value) == sorted([network.buf, network.hnl])
    picker.set_value([network.hnl])
    next(b for b in at.button if b.label == "Preview").click()
    run_app(at, no_errors=True)
    assert set(at.dataframe[0].value["site"]) == {"HNL"}
    assert any("**2 rows** match" in str(m.value) for m in at.markdown)
