"""A demo clinic network (`--sites N`): the sites, their chairs and staff, and who is treated where.

Sites are the first N rows of `infusion.demo.people.SITES` (three US time zones, °F and lb, the
clinic's thresholds). The first site is the single-clinic demo's centre: it keeps that demo's staff
and holds the network's home-infusion team, which visits the patients of every site in its time
zone. Each site has its own chairs for its own volume (`chairs_for`), its own nurses and charge
nurse; one float nurse works at two sites, a regional manager holds three, and the network manager,
network quality and the administrator hold every site (`NETWORK_ROLES`).

Patients belong to the network (one MRN each) and most stay at their site. A few move part of their
history to a second site (`share_patients`), and the home visits of a site in the home team's zone
are the home team's, so those patients are seen at two sites and at home. Every time is stored in
UTC; each site's clinic hours and local day are its own zone's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select, update

from db.models import ACTIVE_STATUSES, Clinic, InfusionSession, UserSite
from infusion.accounts.auth import hash_password
from infusion.accounts.sites import NETWORK_ROLES
from infusion.demo.people import (
    CHAIR_COUNT,
    CLINIC,
    DEMO_PASSWORD,
    FAMILY,
    FLOAT_NURSE,
    GIVEN_F,
    GIVEN_M,
    HOME_CHAIR,
    REGIONAL_MANAGER,
    SITES,
    STAFF,
)
from infusion.demo.premises import Premises
from infusion.demo.therapies import PatientInfo, Plan
from infusion.demo.writer import CHAIR_TABLE, CLINIC_TABLE, USER_TABLE, Ids, table_of
from infusion.settings import load_settings

#: Share of a site's patients (with four or more past sessions) whose later sessions move to a second
#: site; at least one per site. A product choice for the demo (no public source).
SHARED_PATIENTS = 0.04
#: Nurses per chair at a network site (a nurse looks after about three chairs); at least NURSES_MIN.
CHAIRS_PER_NURSE, NURSES_MIN = 3, 3


def prepare_sites(conn: Connection, ids: Ids, now_min: int, fresh: bool, count: int) -> list[Premises]:
    """The first `count` sites with chairs 1–8 each and the home-visit location at the first site.

    On a fresh database the first clinic row becomes the first site; others are found by code or
    added. Staff come later (`add_staff`), when each site's chairs are known."""
    first = conn.execute(select(CLINIC_TABLE).order_by(Clinic.id).limit(1)).mappings().one()
    settings = {**(first["settings"] or {}), "demo_mode": True}
    before: dict[str, Any] = {}
    found = dict(conn.execute(select(Clinic.code, Clinic.id).where(Clinic.code.in_([s[0] for s in SITES]))).all())
    site_ids: list[int] = []
    for index, (code, name, zone, phone, _, _) in enumerate(SITES[:count]):
        identity = {
            "code": code,
            "name": name,
            "timezone": zone,
            "phone": phone,
            "temperature_unit": "F",
            "weight_unit": "lb",
        }
        if index == 0 and (fresh or code not in found):  # the first site: the clinic row already there
            site = found.get(code, first["id"])
            was = conn.execute(select(CLINIC_TABLE).where(Clinic.id == site)).mappings().one()
            before = {k: was[k] for k in (*CLINIC, "code")}
            if fresh:  # with --force an existing clinic is left alone, as for a single clinic
                conn.execute(
                    update(CLINIC_TABLE)
                    .where(Clinic.id == site)
                    .values(**identity, settings=settings, version=CLINIC_TABLE.c.version + 1)
                )
            site_ids.append(site)
        elif code in found:
            site_ids.append(found[code])
        else:
            inserted = conn.execute(
                CLINIC_TABLE.insert().values(**identity, active=True, settings=settings, version=1)
            ).inserted_primary_key
            assert inserted is not None
            site_ids.append(int(inserted[0]))
    rows = {r["id"]: r for r in conn.execute(select(CLINIC_TABLE).where(Clinic.id.in_(site_ids))).mappings()}
    wanted = [(site, f"Chair {i}", "chair") for site in site_ids for i in range(1, CHAIR_COUNT + 1)]
    wanted.append((site_ids[0], HOME_CHAIR, "home"))
    chairs = _ensure_chairs(conn, ids, wanted)
    premises = []
    for site in site_ids:
        tz = ZoneInfo(rows[site]["timezone"])
        premises.append(
            Premises(
                clinic_id=site,
                clinic_before=before if site == site_ids[0] else {},
                tz=tz,
                temperature_unit=rows[site]["temperature_unit"],
                settings=load_settings(rows[site]["settings"]),
                today=datetime.fromtimestamp(now_min * 60, tz).date(),
                chair_ids=[chairs[(site, f"Chair {i}")] for i in range(1, CHAIR_COUNT + 1)],
                home_id=chairs.get((site, HOME_CHAIR)),
                nurse_ids=[],
                charge_id=0,
                busy_chairs=set(),  # set once the load knows the chairs (`busy_chairs`)
            )
        )
    return premises


def _ensure_chairs(conn: Connection, ids: Ids, wanted: Sequence[tuple[int, str, str]]) -> dict[tuple[int, str], int]:
    """(site, name) → chair id for every wanted chair; existing ones (same site and name) are reused."""
    sites = sorted({site for site, _, _ in wanted})
    have = {
        (site, name): cid
        for site, name, cid in conn.execute(
            select(CHAIR_TABLE.c.site_id, CHAIR_TABLE.c.name, CHAIR_TABLE.c.id).where(CHAIR_TABLE.c.site_id.in_(sites))
        )
    }
    new = [
        {"id": ids.take(CHAIR_TABLE), "site_id": site, "name": name, "kind": kind, "active": True}
        for site, name, kind in wanted
        if (site, name) not in have
    ]
    if new:
        conn.execute(CHAIR_TABLE.insert(), new)
        have.update({(c["site_id"], c["name"]): c["id"] for c in new})
    return have


def add_chairs(conn: Connection, ids: Ids, premises: Premises, count: int) -> None:
    """Chairs 1…`count` at this site (the planned volume's, `chairs_for`)."""
    names = [f"Chair {i}" for i in range(len(premises.chair_ids) + 1, count + 1)]
    if names:
        chairs = _ensure_chairs(conn, ids, [(premises.clinic_id, n, "chair") for n in names])
        premises.chair_ids.extend(chairs[(premises.clinic_id, n)] for n in names)


def busy_chairs(conn: Connection, premises: Sequence[Premises]) -> None:
    """Chairs already holding an active session (a --force load onto a live database)."""
    busy = set(
        conn.execute(select(InfusionSession.chair_id).where(InfusionSession.status.in_(ACTIVE_STATUSES))).scalars()
    )
    for p in premises:
        p.busy_chairs = busy


def home_sites(premises: Sequence[Premises]) -> list[bool]:
    """Which sites the home-infusion team (at the first site) visits patients of: its time zone's."""
    zone = premises[0].tz.key
    return [p.tz.key == zone for p in premises]


def share_patients(
    rng: Random,
    premises: Sequence[Premises],
    patients: Sequence[Sequence[PatientInfo]],
    plans: list[list[Plan]],
    live: Sequence[set[int]],
) -> int:
    """Move plans between sites in place: the home visits of sites the home team serves go to the home
    team's site, and a few patients (SHARED_PATIENTS) continue their treatment at a second site, in the
    same time zone where there is one, from the middle of their history on. Only days at least two days
    back move (every site's today is at or after them). Returns the patients moved to a second site."""
    home = home_sites(premises)
    for index in range(1, len(premises)):
        if home[index]:
            plans[0].extend(p for p in plans[index] if p.home)
            plans[index] = [p for p in plans[index] if not p.home]
    moved = 0
    for index, site in enumerate(premises):
        others = [j for j in range(len(premises)) if j != index]
        if not others:
            break
        near = [j for j in others if premises[j].tz.key == site.tz.key] or others
        latest = min(p.today for p in premises) - timedelta(days=2)
        own: dict[int, list[Plan]] = {}
        for plan in plans[index]:
            if not plan.home:
                own.setdefault(plan.patient.id, []).append(plan)
        eligible = []
        for patient in patients[index]:
            history = [p for p in own.get(patient.id, []) if p.day <= latest and p.course == 0]
            if patient.id not in live[index] and len(history) >= 4:
                eligible.append(history)
        if not eligible:
            continue
        for history in rng.sample(eligible, max(1, round(len(eligible) * SHARED_PATIENTS))):
            to = near[int(rng.random() * len(near))]
            since = history[len(history) // 2].day
            leaving = {id(p) for p in history if p.day >= since}
            plans[to].extend(p for p in plans[index] if id(p) in leaving)
            plans[index] = [p for p in plans[index] if id(p) not in leaving]
            moved += 1
    for site_plans in plans:
        site_plans.sort(key=lambda p: p.day)
    return moved


def _username(given: str, family: str) -> str:
    return re.sub(r"[^a-z.]", "", f"{given}.{family}".lower())


def _site_staff(premises: Sequence[Premises]) -> list[tuple[str, str, str, list[int]]]:
    """(username, display name, role, site ids) for every network account, the first site's STAFF first."""
    sites = [p.clinic_id for p in premises]
    east = [p.clinic_id for p in premises if p.tz.key == premises[0].tz.key]
    regional = (east if len(east) >= 3 else sites)[:3]
    partner = (east[1:] or sites[1:])[0]
    accounts = [(u, d, r, [] if r in NETWORK_ROLES else [sites[0]]) for u, d, r in STAFF]
    accounts.append((*REGIONAL_MANAGER, regional))
    accounts.append((*FLOAT_NURSE, [sites[0], partner]))
    taken = {a[0] for a in accounts}
    given = [g for pair in zip(GIVEN_F, GIVEN_M, strict=False) for g in pair]
    k = 0
    for p in premises[1:]:
        nurses = max(NURSES_MIN, math.ceil(len(p.chair_ids) / CHAIRS_PER_NURSE))
        for n in range(nurses + 1):
            while True:
                first, last = given[(k * 7 + 3) % len(given)], FAMILY[(k * 11 + 8) % len(FAMILY)]
                k += 1
                if _username(first, last) not in taken:
                    break
            taken.add(_username(first, last))
            charge = n == nurses
            role, suffix = ("charge_nurse", "RN (charge)") if charge else ("nurse", "RN")
            accounts.append((_username(first, last), f"{first} {last}, {suffix}", role, [p.clinic_id]))
    return accounts


def add_staff(conn: Connection, ids: Ids, premises: Sequence[Premises], now_min: int) -> None:
    """Every site's nurses and charge nurse, the float nurse, the regional manager and the network
    accounts; existing accounts (same user name) are reused with the sites they already hold."""
    accounts = _site_staff(premises)
    users = dict(
        conn.execute(
            select(USER_TABLE.c.username, USER_TABLE.c.id).where(USER_TABLE.c.username.in_([a[0] for a in accounts]))
        ).all()
    )
    joined = datetime.fromtimestamp((now_min - 400 * 1440) * 60, UTC)
    demo_hash = hash_password(DEMO_PASSWORD)
    new = [a for a in accounts if a[0] not in users]
    rows: list[dict[str, Any]] = []
    holds: list[dict[str, int]] = []
    for username, display, role, sites in new:
        uid = ids.take(USER_TABLE)
        users[username] = uid
        rows.append(
            {
                "id": uid,
                "username": username,
                "display_name": display,
                "role": role,
                "active": True,
                "password_hash": demo_hash,
                "created_at": joined,
                "failed_attempts": 0,
                "network_wide": not sites,
                "last_site_id": sites[0] if sites else None,
            }
        )
        holds.extend({"user_id": uid, "site_id": s} for s in sites)
    if rows:
        conn.execute(USER_TABLE.insert(), rows)
    if holds:
        conn.execute(table_of(UserSite).insert(), holds)
    by_site = {p.clinic_id: p for p in premises}
    for username, _, role, sites in accounts:
        for site in sites:
            if role == "nurse":
                by_site[site].nurse_ids.append(users[username])
            elif role == "charge_nurse":
                by_site[site].charge_id = users[username]


def first_days(premises: Sequence[Premises], span: int) -> list[date]:
    """Each site's first day of history: `span` days ending on its own today."""
    return [p.today - timedelta(days=max(1, span) - 1) for p in premises]
