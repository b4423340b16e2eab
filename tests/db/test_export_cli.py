"""`python -m infusion.exports`: the same files as the functions, clear errors and non-zero exits."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle

from db.engine import Database
from infusion.exports.cli import main
from infusion.exports.datasets import write_csv
from tests.db.test_export import Clinic, build_clinic

ROOT = Path(__file__).resolve().parents[2]
SECRET = "cli-test-secret-0123456789"


@pytest.fixture
def clinic(db: Database) -> Clinic:
    return build_clinic(db)


@pytest.fixture(autouse=True)
def _key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A generated de-identification key goes to the test's directory, never the runner's home."""
    path = tmp_path / "keys" / "deid.key"
    monkeypatch.setenv("CHAIRSIDE_DEID_KEY_FILE", str(path))
    return path


def url_of(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=False)


def args(clinic: Clinic, out: Path, *extra: str, dataset: str = "vitals") -> list[str]:
    return [
        "--dataset",
        dataset,
        "--from",
        clinic.filters.start.isoformat(),
        "--to",
        clinic.filters.end.isoformat(),
        "--database-url",
        url_of(clinic.db),
        "--out",
        str(out),
        *extra,
    ]


@pytest.mark.parametrize("dataset", ["sessions", "vitals", "reactions", "audit", "course_ends"])
def test_writes_the_same_file_as_the_function(
    clinic: Clinic, tmp_path: Path, dataset: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"{dataset}.csv"
    # the function's file first: the command line audits its own export, which a later audit export would hold
    expected = io.BytesIO()
    rows = write_csv(clinic.db, dataset, clinic.filters, expected, actor_role="admin")
    assert main(args(clinic, out, dataset=dataset)) == 0
    assert out.read_bytes() == expected.getvalue()
    assert f"Wrote {rows:,} {dataset} rows" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*.partial")), "no temporary file left behind"


def test_filters_and_deidentify(clinic: Clinic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAIRSIDE_DEID_SECRET", SECRET)
    out = tmp_path / "deid.csv"
    assert (
        main(
            args(
                clinic,
                out,
                "--therapy",
                "natalizumab",
                "--chair",
                "Chair 1",
                "--deidentify",
                "--include-entered-in-error",
                dataset="reactions",
            )
        )
        == 0
    )
    text = out.read_bytes().decode("utf-8-sig")
    assert text.startswith("session_key,patient_key,") and text.count("\r\n") == 3  # header + 2 reactions
    assert "Zebulon" not in text and "true" in text  # the entered-in-error row is flagged
    out2 = tmp_path / "nurse.csv"
    assert main(args(clinic, out2, "--nurse", "nell.second", dataset="sessions")) == 0
    assert out2.read_bytes().decode("utf-8-sig").count("\r\n") == 2  # header + session 2


def test_fhir_bundle(clinic: Clinic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "bundle.json"
    assert main(["--fhir", "--session", str(clinic.s1), "--database-url", url_of(clinic.db), "--out", str(out)]) == 0
    bundle = Bundle.model_validate_json(out.read_text(encoding="utf-8"))
    assert {e.resource.get_resource_type() for e in bundle.entry} >= {
        "Patient",
        "Encounter",
        "MedicationAdministration",
        "Observation",
    }
    monkeypatch.setenv("CHAIRSIDE_DEID_SECRET", SECRET)
    assert (
        main(
            [
                "--fhir",
                "--session",
                str(clinic.s1),
                "--deidentify",
                "--database-url",
                url_of(clinic.db),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "MRN-ZQ-4471" not in out.read_text() and json.loads(out.read_text())["resourceType"] == "Bundle"


@pytest.mark.parametrize(
    "bad, message",
    [
        (["--dataset", "patients"], "invalid choice: 'patients'"),
        (["--from", "2026-02-30"], "invalid date '2026-02-30'"),
        (["--to", "30/06/2026"], "invalid date '30/06/2026'"),
        (["--swap"], "is after --to"),
        (["--therapy", "natalizumab", "notatherapy"], "--therapy: unknown 'notatherapy'"),
        (["--chair", "Chair 99"], "--chair: unknown 'Chair 99'"),
        (["--nurse", "nobody"], "--nurse: unknown 'nobody'"),
        (["--deidentify"], "CHAIRSIDE_DEID_SECRET"),
        (["--out-dir-missing"], "No such file or directory"),
        (["--out-is-dir"], "it is a directory"),
        (["--session", "3"], "--session goes with --fhir"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    clinic: Clinic,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    bad: list[str],
    message: str,
) -> None:
    monkeypatch.delenv("CHAIRSIDE_DEID_SECRET", raising=False)
    out = tmp_path / "out.csv"
    argv = args(clinic, out)
    if bad == ["--swap"]:
        argv[argv.index("--from") + 1], argv[argv.index("--to") + 1] = (
            clinic.filters.end.isoformat(),
            clinic.filters.start.isoformat(),
        )
    elif bad == ["--out-dir-missing"]:
        argv[argv.index("--out") + 1] = str(tmp_path / "missing" / "out.csv")
    elif bad == ["--out-is-dir"]:
        argv[argv.index("--out") + 1] = str(tmp_path)
    elif bad == ["--deidentify"]:  # no variable, and no key can be made (its directory would be under a file)
        (tmp_path / "a-file").write_text("")
        monkeypatch.setenv("CHAIRSIDE_DEID_KEY_FILE", str(tmp_path / "a-file" / "deid.key"))
        argv += bad
    elif bad[0] in ("--dataset", "--from", "--to"):
        argv[argv.index(bad[0]) + 1] = bad[1]
    else:
        argv += bad
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "usage:" in err
    assert not out.exists() and not list(tmp_path.glob(".*.partial"))


def test_fhir_bad_arguments(clinic: Clinic, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b.json"
    base = ["--database-url", url_of(clinic.db), "--out", str(out)]
    assert main(["--fhir", *base]) == 2
    assert "--fhir needs --session" in capsys.readouterr().err
    assert main(["--fhir", "--session", "999999", *base]) == 2
    assert "Session 999999 not found" in capsys.readouterr().err
    assert main(["--fhir", "--session", "abc", *base]) == 2
    assert "invalid session id" in capsys.readouterr().err
    assert main(["--fhir", "--session", "1", "--from", "2026-01-01", *base]) == 2
    assert "apply to --dataset" in capsys.readouterr().err
    assert main(["--dataset", "vitals", "--fhir", *base]) == 2
    assert "not allowed with" in capsys.readouterr().err
    assert not out.exists()


def test_missing_database_and_required_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.csv"
    assert (
        main(
            [
                "--dataset",
                "vitals",
                "--from",
                "2026-01-01",
                "--to",
                "2026-01-02",
                "--database-url",
                f"sqlite:///{tmp_path / 'nope.sqlite'}",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "nope.sqlite").exists(), "an empty database file was not created"
    assert main(["--dataset", "vitals", "--out", str(out)]) == 2
    assert "--dataset needs --from and --to" in capsys.readouterr().err
    assert main(["--from", "2026-01-01"]) == 2
    assert "required" in capsys.readouterr().err


def test_python_dash_m_entry_point(clinic: Clinic, tmp_path: Path) -> None:
    """The real command line, in a subprocess: progress on stderr, the file, exit codes."""
    out = tmp_path / "vitals.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CHAIRSIDE_DEID_SECRET", None)
    env["CHAIRSIDE_DEID_KEY_FILE"] = str(tmp_path / "home" / ".chairside" / "deid.key")
    done = subprocess.run(
        [sys.executable, "-m", "infusion.exports", *args(clinic, out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Wrote 4 vitals rows" in done.stderr and out.read_bytes().startswith(b"\xef\xbb\xbf")
    failed = subprocess.run(
        [sys.executable, "-m", "infusion.exports", *args(clinic, out, "--deidentify")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 0, failed.stderr  # a key is generated on first use (README: quick start works)
    key_file = Path(env["CHAIRSIDE_DEID_KEY_FILE"])
    assert key_file.is_file() and (key_file.stat().st_mode & 0o777) == 0o600
    assert "MRN-ZQ-4471" not in out.read_text(encoding="utf-8-sig")
