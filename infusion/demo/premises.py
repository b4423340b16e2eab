"""What exists before any session: the clinic row, chairs, staff and the therapy catalog.

Also the load's bookends on the database side: the table lock taken before ids
are handed out, the PostgreSQL sequences moved past the new rows, and the one
audit event that records the whole load. None of this draws random numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select, text, update

from db.models import ACTIVE_STATUSES, Clinic, InfusionSession, Therapy, UserSite
from infusion.accounts.auth import hash_password
from infusion.accounts.sites import NETWORK_ROLES
from infusion.demo.options import MIN_CHAIRS, SESSIONS_PER_CHAIR_DAY
from infusion.demo.people import CHAIR_COUNT, CLINIC, DEMO_PASSWORD, HOME_CHAIR, STAFF
from infusion.demo.reactions import REACTIONS
from infusion.demo.therapies import TherapyInfo
from infusion.demo.writer import AUDIT_TABLE, CHAIR_TABLE, CLINIC_TABLE, ID_TABLES, USER_TABLE, Ids, table_of
from infusion.settings import ClinicSettings, load_settings


@dataclass
class Premises:
    """The clinic as the load found or set it up: identity, local day, chairs and who works there."""

    clinic_id: int
    clinic_before: dict[str, Any]
    tz: ZoneInfo
    temperature_unit: str
    settings: ClinicSettings
    today: date
    chair_ids: list[int]
    home_id: int | None  # None: a network site without the home-infusion team
    nurse_ids: list[int]
    charge_id: int
    busy_chairs: set[int]

    def chair_id(self, index: int) -> int:
        """The id of chair `index` (wrapping round), or of the home-visit location for -1."""
        if index >= 0:
            return self.chair_ids[index % len(self.chair_ids)]
        if self.home_id is None:
            raise RuntimeError(f"site {self.clinic_id} has no home-visit location")
        return self.home_id


def prepare_premises(conn: Connection, ids: Ids, now_min: int, fresh: bool) -> Premises:
    """Set the clinic identity on a fresh database (with --force an existing clinic is left alone),
    then make sure chairs 1–8, a home-visit location and the staff exist; existing ones (same name) are reused."""
    clinic = conn.execute(select(CLINIC_TABLE).order_by(Clinic.id).limit(1)).mappings().one()
    clinic_before = {k: clinic[k] for k in CLINIC}
    if fresh:
        # demo_mode makes the sign-in page list the demo accounts (DEMO_PASSWORD)
        demo_settings = {**(clinic["settings"] or {}), "demo_mode": True}
        conn.execute(
            update(CLINIC_TABLE)
            .where(Clinic.id == clinic["id"])
            .values(**CLINIC, settings=demo_settings, version=CLINIC_TABLE.c.version + 1)
        )
        clinic = conn.execute(select(CLINIC_TABLE).where(Clinic.id == clinic["id"])).mappings().one()
    tz = ZoneInfo(clinic["timezone"])

    names = [f"Chair {i}" for i in range(1, CHAIR_COUNT + 1)] + [HOME_CHAIR]
    site = clinic["id"]
    existing = dict(
        conn.execute(
            select(CHAIR_TABLE.c.name, CHAIR_TABLE.c.id).where(
                CHAIR_TABLE.c.name.in_(names), CHAIR_TABLE.c.site_id == site
            )
        ).all()
    )
    new_chairs = [
        {
            "id": ids.take(CHAIR_TABLE),
            "site_id": site,
            "name": n,
            "kind": "home" if n == HOME_CHAIR else "chair",
            "active": True,
        }
        for n in names
        if n not in existing
    ]
    if new_chairs:
        conn.execute(CHAIR_TABLE.insert(), new_chairs)
        existing.update({c["name"]: c["id"] for c in new_chairs})
    users = dict(
        conn.execute(
            select(USER_TABLE.c.username, USER_TABLE.c.id).where(USER_TABLE.c.username.in_([s[0] for s in STAFF]))
        ).all()
    )
    joined = datetime.fromtimestamp((now_min - 400 * 1440) * 60, UTC)
    demo_hash = hash_password(DEMO_PASSWORD)  # one hash for all: Argon2 is slow on purpose
    new_users = [
        {
            "id": ids.take(USER_TABLE),
            "username": u,
            "display_name": d,
            "role": r,
            "active": True,
            "password_hash": demo_hash,
            "created_at": joined,
            "failed_attempts": 0,
            "network_wide": r in NETWORK_ROLES,
        }
        for u, d, r in STAFF
        if u not in users
    ]
    if new_users:
        conn.execute(USER_TABLE.insert(), new_users)
        users.update({u["username"]: u["id"] for u in new_users})
        at_site = [{"user_id": u["id"], "site_id": site} for u in new_users if not u["network_wide"]]
        if at_site:
            conn.execute(table_of(UserSite).insert(), at_site)
    busy = select(InfusionSession.chair_id).where(InfusionSession.status.in_(ACTIVE_STATUSES))
    return Premises(
        clinic_id=clinic["id"],
        clinic_before=clinic_before,
        tz=tz,
        temperature_unit=clinic["temperature_unit"],
        settings=load_settings(clinic["settings"]),
        today=datetime.fromtimestamp(now_min * 60, tz).date(),
        chair_ids=[existing[n] for n in names[:-1]],
        home_id=existing[HOME_CHAIR],
        nurse_ids=[users[u] for u, _, r in STAFF if r == "nurse"],
        charge_id=users["karen.miller"],
        busy_chairs=set(conn.execute(busy).scalars()),
    )


def chairs_for(by_day: Mapping[date, Sequence[Any]]) -> int:
    """Chairs the planned volume needs: the busiest 3 % of clinic days at SESSIONS_PER_CHAIR_DAY
    visits a chair (home visits and cancellations sit in no chair), at least MIN_CHAIRS.

    So midday chair utilisation stays below 100 % whatever the size (a product choice, see
    infusion/demo/options.py); the live board needs the first 8."""
    seated = sorted(sum(1 for p in plans if not p.home and p.kind != "cancelled") for plans in by_day.values())
    if not seated:
        return MIN_CHAIRS
    busy = seated[min(len(seated) - 1, int(len(seated) * 0.97))]
    return max(MIN_CHAIRS, math.ceil(busy / SESSIONS_PER_CHAIR_DAY))


def add_chairs(conn: Connection, ids: Ids, premises: Premises, count: int) -> None:
    """Make sure chairs 1…`count` exist (existing ones, same name, are reused) and seat sessions in them."""
    names = [f"Chair {i}" for i in range(len(premises.chair_ids) + 1, count + 1)]
    if not names:
        return
    site = premises.clinic_id
    existing = dict(
        conn.execute(
            select(CHAIR_TABLE.c.name, CHAIR_TABLE.c.id).where(
                CHAIR_TABLE.c.name.in_(names), CHAIR_TABLE.c.site_id == site
            )
        ).all()
    )
    new = [
        {"id": ids.take(CHAIR_TABLE), "site_id": site, "name": n, "kind": "chair", "active": True}
        for n in names
        if n not in existing
    ]
    if new:
        conn.execute(CHAIR_TABLE.insert(), new)
        existing.update({c["name"]: c["id"] for c in new})
    premises.chair_ids.extend(existing[n] for n in names)


def load_therapies(conn: Connection) -> dict[str, TherapyInfo]:
    """The active catalog therapies the demo has a reaction profile for, by code."""
    rows = conn.execute(select(Therapy.__table__).where(Therapy.active.is_(True))).mappings().all()
    found = {}
    for r in rows:
        if r["code"] in REACTIONS:
            found[r["code"]] = TherapyInfo(
                id=r["id"],
                code=r["code"],
                dose_unit=r["dose_unit"],
                default_dose=r["default_dose"],
                route=r["route"],
                program=r["program"],
                premedication_required=r["premedication_required"],
                schedule=r["vitals_schedule"] or {},
                duration_windows=r["duration_windows"] or [],
                observation_rules=r["observation_rules"] or [],
                rate_plan=r["rate_plan"] or [],
                dosing_interval_days=r["dosing_interval_days"],
                profile=REACTIONS[r["code"]],
            )
    if not found:
        raise RuntimeError("No demo therapies are active in the catalog; nothing to load.")
    return found


def lock_tables(conn: Connection) -> None:
    """Keep other writers out while ids are assigned from max(id) + 1 (SQLite: BEGIN IMMEDIATE already)."""
    if conn.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in (*ID_TABLES, CLINIC_TABLE, AUDIT_TABLE))
        conn.execute(text(f"LOCK TABLE {names} IN SHARE ROW EXCLUSIVE MODE"))


def fix_sequences(conn: Connection) -> None:
    """PostgreSQL serial sequences do not see explicit ids: move them past the new rows."""
    if conn.dialect.name != "postgresql":
        return
    for table in ID_TABLES:
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f'(SELECT COALESCE(MAX(id), 0) + 1 FROM "{table.name}"), false)'
            )
        )


def write_audit(conn: Connection, premises: Premises, now_min: int, fresh: bool, after: dict[str, Any]) -> None:
    """One audit event for the whole load, not one per row."""
    conn.execute(
        AUDIT_TABLE.insert(),
        [
            {
                "at": datetime.fromtimestamp(now_min * 60, UTC),
                "user_id": None,
                "user_name": "system",
                "action": "demo_load",
                "entity": "clinic",
                "entity_id": premises.clinic_id,
                # a site's own event is filed under that site, as services.audit.event_site files one
                "site_id": premises.clinic_id,
                "session_id": None,
                "patient_id": None,
                "before": {"clinic": premises.clinic_before} if fresh else None,
                "after": {**after, "clinic": CLINIC if fresh else None},
                "reason": "Demo data loaded with python -m infusion.demo",
            }
        ],
    )
