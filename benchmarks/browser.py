"""Every page each demo role opens, in Debian's Chromium against the real app: time until the app is idle.

The rows of the other groups time the reads a screen is built from; a page also runs whatever else its
script draws. At 1 M sessions two of those were far slower than any row showed, and only a browser found
them: the Chairside page's walk-in form read its patient picker with a NOT IN over every session (over 30 s
on PostgreSQL, on every rerun), and Follow-up calls drew a form per discharge (537 of them: 49 s). So this
group signs in as one demo account of each role (`infusion.demo.people.STAFF`), clicks every link of the
top navigation in turn, and times each click until the page's script has finished and nothing on it is
stale (the `data-test-script-state` Streamlit sets, as tests/browser waits for it).

- **first visit**: the page's first run in this browser session (its own caches empty; the app server
  and the database warm from the pages before it);
- **again**: the same link clicked once more (what a nurse meets going back to a page).

Browser time is in the figure: drawing a 300-chair board or a 500-row list is part of what the nurse
waits for. The issue sets no target per page; the rows say how long each page takes at this size.
Needs `/usr/bin/chromium` (Debian's) and playwright; never downloads a browser.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.database import ROOT
from infusion.demo.people import DEMO_PASSWORD, STAFF

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
#: one demo account per role, in the order a clinic day meets them
ACCOUNTS = [next(user for user, _, role in STAFF if role == r) for r in ("nurse", "charge_nurse", "manager", "quality")]
PAGE_LIMIT_S = 120.0


def available() -> str | None:
    """Why the group cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    return None


class AppDidNotStart(RuntimeError):
    """streamlit run ended or stayed silent for a minute (the log's tail says why)."""


@contextmanager
def app_server(url: str, log: Path) -> Iterator[str]:
    """`streamlit run dashboard.py` on a free port against `url`; its address, stopped after (the
    browser tests start theirs here too)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"), "--server.port", str(port)]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    command += ["--server.fileWatcherType", "none"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, "CHAIRSIDE_DATABASE_URL": url}, stdout=out, stderr=subprocess.STDOUT
        )
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{address}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise AppDidNotStart(
                        f"streamlit did not start:\n{log.read_text(errors='replace')[-3000:]}"
                    ) from None
                time.sleep(0.2)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _idle_after(page: Any, action: Any) -> float:
    """Seconds from `action` until the app is idle (checked every 50 ms, after a first 100 ms)."""
    started = time.perf_counter()
    action()
    page.wait_for_timeout(100)
    while time.perf_counter() - started < PAGE_LIMIT_S:
        if page.locator(IDLE).count() and not page.locator("[data-stale='true']").count():
            return time.perf_counter() - started
        page.wait_for_timeout(50)
    raise RuntimeError(f"the page was still running after {PAGE_LIMIT_S:.0f} s")


def measure(url: str, log: Path) -> list[tuple[str, str, float, float]]:
    """(account, page, first visit s, again s) for every page of every account in `ACCOUNTS`."""
    from playwright.sync_api import sync_playwright

    out: list[tuple[str, str, float, float]] = []
    with app_server(url, log) as address, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for user in ACCOUNTS:
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.set_default_timeout(60_000)
                page = context.new_page()
                page.goto(address)
                page.locator("input[aria-label='User name']").fill(user)
                page.locator("input[aria-label='Password']").fill(DEMO_PASSWORD)
                _idle_after(page, lambda p=page: p.get_by_role("button", name="Sign in").click())
                nav = page.locator("[data-testid='stTopNavLink'], [data-testid='stNavLink']")
                nav.first.wait_for()
                names = [n.split("\n")[-1].strip() for n in nav.all_inner_texts()]
                for name in names:
                    link = page.get_by_role("link", name=name).first
                    first = _idle_after(page, link.click)
                    again = _idle_after(page, link.click)
                    if page.locator("[data-testid='stException']").count():
                        raise RuntimeError(f"{name} ({user}) showed a traceback")
                    out.append((user, name, first, again))
                context.close()
        finally:
            browser.close()
    return out
