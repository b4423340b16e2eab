"""Smoke test of the benchmark suite: `python -m benchmarks --sessions 1000 --quick` runs to the end
and prints a row for every figure, on SQLite (a temporary file) and on PostgreSQL when
CHAIRSIDE_TEST_POSTGRES_URL is set (a scratch database of its own, created and dropped by the
suite). No test asserts a time: timings on a shared machine are not pass/fail material."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from benchmarks.trends import FIGURES
from tests.helpers import ROOT

PG_URL = os.environ.get("CHAIRSIDE_TEST_POSTGRES_URL")

EXPECTED = [
    *(
        f"Trends {name} · {period} · {kind}"
        for name in FIGURES
        for period in ("year", "history")
        for kind in ("warm", "cold", "cold, connected")
    ),
    *(
        f"Trends trends.load (whole page data) · {period} · {kind}"
        for period in ("year", "history")
        for kind in ("warm", "cold", "cold, connected")
    ),
    "Trends page (AppTest) · cold",
    "Trends page (AppTest) · warm",
    "Due list (due_list + protocol_patients)",
    "Chair board (board_frame)",
    "Chairside list (today_sessions)",
    "One timeline (session_detail + session_timeline)",
    "Patient picker (search_patients, the site's first 500)",
    "One entry's history (entry_history)",
    "Save vitals (record_vitals) p50",
    "Save vitals (record_vitals) p95",
    *(
        f"Page {name} ({role}) · {visit}"
        for name, role in (("Chairside", "nurse"), ("Follow-up calls", "nurse"), ("Trends", "manager"))
        for visit in ("first visit", "again")
    ),
    "Vitals CSV, one year (write_csv) throughput",
    "Vitals CSV, one year (write_csv) peak RSS",
    "Demo build, ",
]


def _urls(tmp_path: Path) -> list[str]:
    urls = [f"sqlite:///{tmp_path / 'bench.sqlite'}"]
    if PG_URL:  # a URL without a database name: the suite creates and drops chairside_bench_<random>
        urls.append(make_url(PG_URL).set(database="", query={}).render_as_string(hide_password=False))
    return urls


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_quick_benchmark_runs_and_prints_every_figure(tmp_path: Path, backend: str) -> None:
    if backend == "postgresql" and not PG_URL:
        pytest.skip("CHAIRSIDE_TEST_POSTGRES_URL is not set")
    url = _urls(tmp_path)[0 if backend == "sqlite" else 1]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--sessions",
            "1000",
            "--quick",
            "--database-url",
            url,
            "--json",
            str(tmp_path / "result.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for name in EXPECTED:
        assert any(line.startswith(name) for line in lines), f"no row for {name!r}:\n{done.stdout}"
    assert not any("FAILED" in line for line in lines), done.stdout
    assert (tmp_path / "result.json").exists()
