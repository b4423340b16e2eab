"""Exports as the Export page uses them: role-checked and themselves audited.

`infusion.exports.datasets` writes the files; this module decides who may ask and records
who exported what (dataset, filters, de-identified or not, rows), as HIPAA's
audit controls expect of any disclosure of patient data.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from typing import Any

import pandas as pd

from db.engine import Database
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import AUDIT, EXPORTS, require_role
from infusion.exports import datasets as export
from infusion.exports import fhir
from infusion.services.audit import record

#: Above this many rows the page points to the command line, which streams to a file.
PAGE_ROW_LIMIT = 250_000


def _allowed(actor: Actor, dataset: str) -> None:
    require_role(actor, AUDIT if dataset == "audit" else EXPORTS, f"export {dataset}")


def preview(
    db: Database, actor: Actor, dataset: str, filters: export.ExportFilters, *, deidentify: bool = False, n: int = 20
) -> tuple[pd.DataFrame, int]:
    _allowed(actor, dataset)
    return export.preview(db, dataset, filters, deidentify, n, actor_role=actor.role)


def csv_file(
    db: Database, actor: Actor, dataset: str, filters: export.ExportFilters, *, deidentify: bool = False
) -> tuple[bytes, int]:
    """The CSV bytes for a download and the row count; the export is recorded in the audit trail."""
    _allowed(actor, dataset)
    with tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024) as out:
        rows = export.write_csv(db, dataset, filters, out, deidentify, actor_role=actor.role)
        out.seek(0)
        data = out.read()
    _record(
        db, actor, "export_csv", {"dataset": dataset, "deidentified": deidentify, "rows": rows, **_filters(filters)}
    )
    return data, rows


def fhir_bundle(db: Database, actor: Actor, session_id: int, *, deidentify: bool = False) -> bytes:
    """A FHIR R4 Bundle of one session as JSON; recorded in the audit trail."""
    require_role(actor, EXPORTS, "export FHIR bundles")
    bundle = fhir.build_bundle(db, session_id, deidentify=deidentify)
    _record(db, actor, "export_fhir", {"session_id": session_id, "deidentified": deidentify}, session_id=session_id)
    return fhir.bundle_json(bundle).encode("utf-8")


def _filters(filters: export.ExportFilters) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in asdict(filters).items()}


def _record(db: Database, actor: Actor, action: str, after: dict[str, Any], session_id: int | None = None) -> None:
    with db.writing() as s:
        record(s, actor, action, "export", None, session_id=session_id, after=after)
