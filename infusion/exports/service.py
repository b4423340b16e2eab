"""Exports as the Export page uses them: role-checked and themselves audited.

`infusion.exports.datasets` writes the files; this module decides who may ask and records
who exported what (dataset, filters, de-identified or not, rows), as HIPAA's
audit controls expect of any disclosure of patient data. A person exports the sites
where they hold their role (`infusion.accounts.sites.held_sites`, read from the
database on every call): no sites named means all of those, and a site they do not
hold is refused.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from sqlalchemy import select

from db.engine import Database
from db.models import Clinic, InfusionSession
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import AUDIT, EXPORTS, require_role
from infusion.accounts.sites import held_sites, require_site, site_of_session
from infusion.errors import NotFoundError
from infusion.exports import datasets as export
from infusion.exports import fhir
from infusion.services.audit import record

#: Above this many rows the page points to the command line, which streams to a file.
PAGE_ROW_LIMIT = 250_000


@dataclass(frozen=True)
class SiteChoice:
    """A site the person may export, for the page's picker."""

    id: int
    code: str
    name: str
    active: bool

    @property
    def label(self) -> str:
        return f"{self.name} ({self.code})" + ("" if self.active else ", closed")


def _allowed(db: Database, actor: Actor, dataset: str) -> frozenset[int] | None:
    """The role check; returns the sites the actor holds (None: every site)."""
    require_role(actor, AUDIT if dataset == "audit" else EXPORTS, f"export {dataset}")
    with db.reading() as s:
        return held_sites(s, actor)


def export_sites(db: Database, actor: Actor) -> list[SiteChoice]:
    """The sites the actor may export (closed ones too: their history stays exportable), open ones first."""
    require_role(actor, EXPORTS, "export")
    with db.reading() as s:
        held = held_sites(s, actor)
        q = select(Clinic.id, Clinic.code, Clinic.name, Clinic.active).order_by(
            Clinic.active.desc(), Clinic.name, Clinic.id
        )
        if held is not None:
            q = q.where(Clinic.id.in_(held))
        return [SiteChoice(r.id, r.code, r.name, bool(r.active)) for r in s.execute(q)]


def preview(
    db: Database, actor: Actor, dataset: str, filters: export.ExportFilters, *, deidentify: bool = False, n: int = 20
) -> tuple[pd.DataFrame, int]:
    held = _allowed(db, actor, dataset)
    return export.preview(db, dataset, filters, deidentify, n, actor_role=actor.role, held_sites=held)


def csv_file(
    db: Database, actor: Actor, dataset: str, filters: export.ExportFilters, *, deidentify: bool = False
) -> tuple[bytes, int]:
    """The CSV bytes for a download and the row count; the export is recorded in the audit trail."""
    held = _allowed(db, actor, dataset)
    with tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024) as out:
        rows = export.write_csv(db, dataset, filters, out, deidentify, actor_role=actor.role, held_sites=held)
        out.seek(0)
        data = out.read()
    _record(
        db, actor, "export_csv", {"dataset": dataset, "deidentified": deidentify, "rows": rows, **_filters(filters)}
    )
    return data, rows


def fhir_bundle(db: Database, actor: Actor, session_id: int, *, deidentify: bool = False) -> bytes:
    """A FHIR R4 Bundle of one session as JSON; recorded in the audit trail."""
    require_role(actor, EXPORTS, "export FHIR bundles")
    with db.reading() as s:
        row = s.get(InfusionSession, session_id)
        if row is None:
            raise NotFoundError(f"Session {session_id} not found.")
        require_site(s, actor, site_of_session(s, row), "export its sessions")
    bundle = fhir.build_bundle(db, session_id, deidentify=deidentify)
    _record(db, actor, "export_fhir", {"session_id": session_id, "deidentified": deidentify}, session_id=session_id)
    return fhir.bundle_json(bundle).encode("utf-8")


def _filters(filters: export.ExportFilters) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in asdict(filters).items()}


def _record(db: Database, actor: Actor, action: str, after: dict[str, Any], session_id: int | None = None) -> None:
    with db.writing() as s:
        record(s, actor, action, "export", None, session_id=session_id, after=after)
