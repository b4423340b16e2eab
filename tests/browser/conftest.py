"""Shared real-browser fixtures: one `streamlit run dashboard.py` and one Chromium per test module.

The app runs against a database of its own for the module (a copy of the migrated
SQLite template, or a fresh PostgreSQL schema when CHAIRSIDE_TEST_POSTGRES_URL is
set). Each test builds its own sessions with the service functions, then signs in
in a fresh browser context at the tablet's 1024×768.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from benchmarks import browser as bench_browser
from db.engine import Database, make_engine
from db.migrate import upgrade_to_head
from infusion.accounts import auth
from infusion.accounts.actor import Actor
from infusion.services.setup import bootstrap
from tests.conftest import BACKENDS, PG_URL

CHROMIUM = bench_browser.CHROMIUM  # Debian's, never a downloaded browser
PASSWORD = "tablet-at-chair-4"
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TABLET = {"width": 1024, "height": 768}


@pytest.fixture(scope="module", params=BACKENDS)
def module_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[str]:
    """A migrated database for one module's app server (its own PostgreSQL schema, not the shared one)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("browser") / "chairside.sqlite"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    assert PG_URL is not None
    schema = f"chairside_browser_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass
class ClinicApp:
    url: str
    db: Database
    nurse: Actor
    username: str
    backend: str


@pytest.fixture(scope="module")
def clinic_app(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClinicApp]:
    """The real app (`streamlit run dashboard.py`) on a free port, with a nurse account."""
    database = Database(make_engine(module_db_url))
    bootstrap(database)
    admin = Actor(None, "Setup", "admin")
    user = auth.add_user(database, admin, username="maria", display_name="Maria Gomez", role="nurse", password=PASSWORD)
    nurse = Actor(user.id, user.display_name, "nurse")
    with app_server(module_db_url, tmp_path_factory.mktemp("streamlit")) as url:
        try:
            yield ClinicApp(
                url, database, nurse, "maria", "postgresql" if module_db_url.startswith("postgresql") else "sqlite"
            )
        finally:
            database.engine.dispose()


@contextmanager
def app_server(db_url: str, log_dir: Path) -> Iterator[str]:
    """`streamlit run dashboard.py` on a free port against `db_url` (`benchmarks.browser.app_server`);
    yields its address, stops it after; a server that does not start fails the test with its log."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(
                bench_browser.app_server(db_url, log_dir / f"streamlit-{uuid.uuid4().hex[:8]}.log")
            )
        except bench_browser.AppDidNotStart as error:
            pytest.fail(str(error))
        yield url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, launched once per module (never a downloaded browser)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    pw = sync_api.sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()
        pw.stop()


def settle(page: Any, timeout: float = 30000) -> None:
    """Wait until the app has finished every rerun the last action started (twice idle, 300 ms apart,
    with no element left over from an interrupted run)."""
    deadline = time.time() + timeout / 1000
    idle = "[data-testid='stApp'][data-test-script-state='notRunning']"
    quiet = 0
    page.wait_for_timeout(300)
    while quiet < 2:
        if time.time() > deadline:
            raise AssertionError("the app did not settle")
        if page.locator(idle).count() and not page.locator("[data-stale='true']").count():  # no leftover of a run
            quiet += 1
        else:
            quiet = 0
        page.wait_for_timeout(300)


@pytest.fixture
def tablet(request: pytest.FixtureRequest, chromium: Any, clinic_app: ClinicApp) -> Iterator[Any]:
    """`page = tablet()`: a nurse signed in on the Chairside page, in a fresh browser context at 1024×768
    (`tablet("username")`: another account of the module's app, signed in with the same password).

    Call it after building the test's data: the page lists what the database holds at sign-in.
    """
    context = chromium.new_context(viewport=TABLET)
    context.set_default_timeout(20000)
    page = context.new_page()

    def sign_in(username: str | None = None) -> Any:
        page.goto(clinic_app.url)
        settle(page)
        page.locator("input[aria-label='User name']").fill(username or clinic_app.username)
        page.locator("input[aria-label='Password']").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        settle(page)
        page.get_by_text("Pick a session on the left, or add a walk-in.").wait_for()
        return page

    try:
        yield sign_in
        assert page.locator("[data-testid='stException']").count() == 0, "a traceback was shown"
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed and page.url.startswith("http"):
            shots = Path(os.environ.get("CHAIRSIDE_SCREENSHOT_DIR", "/tmp"))
            name = "".join(c if c.isalnum() else "-" for c in request.node.name)
            page.screenshot(path=str(shots / f"failed-{name}.png"))  # what the tablet showed
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, so a fixture can tell the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
