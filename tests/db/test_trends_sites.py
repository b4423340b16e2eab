"""Trends across a clinic network (issue 13): two sites in two time zones, on SQLite and PostgreSQL.

Boston (America/New_York, UTC−5 in January) and Honolulu (Pacific/Honolulu, UTC−10). Period:
Mon 6 – Fri 10 January 2025, each site's own local days. Every time below is the site's local time;
visits as in tests/db/test_metrics.py (IV start +20 min, 60 min infusion, discharge 60 min later).

  id     site      therapy  check-in (local)     UTC               reaction   in the period?
  a1     Boston    Tysabri  Mon 6 Jan 09:00      6 Jan 14:00       grade 2    yes
  a2     Boston    Tysabri  Tue 7 Jan 09:00      7 Jan 14:00       —          yes
  a3     Boston    Tysabri  Wed 8 Jan 09:00      8 Jan 14:00       —          yes
  a4     Boston    Ocrevus  Thu 9 Jan 08:00      9 Jan 13:00       grade 1    yes (160 min infusion)
  a_out  Boston    Tysabri  Sun 5 Jan 20:00      6 Jan 01:00       grade 2    no: Boston's 5 Jan
  b1     Honolulu  Tysabri  Mon 6 Jan 09:00      6 Jan 19:00       grade 1    yes
  b2     Honolulu  Tysabri  Fri 10 Jan 20:00     11 Jan 06:00      grade 3    yes: Honolulu's 10 Jan
  b3     Honolulu  Ocrevus  Tue 7 Jan 09:00      7 Jan 19:00       —          yes (160 min infusion)
  b_out  Honolulu  Tysabri  Sun 5 Jan 20:00      6 Jan 06:00       —          no: Honolulu's 5 Jan

Read in Boston's zone alone, b_out would fall on 6 Jan (in) and b2 on 11 Jan (out): Honolulu's
Tysabri would read 1 of 2 instead of 2 of 2. By hand, completed / with a reaction:

  Boston    Tysabri 3 / 1   Ocrevus 1 / 1
  Honolulu  Tysabri 2 / 2   Ocrevus 1 / 0
  network   Tysabri 5 / 3   Ocrevus 2 / 1
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import and_, func, or_, select, update

from db.engine import Database
from db.models import AppUser, Chair, Clinic, InfusionSession, Reaction, UserSite
from infusion.accounts.actor import SYSTEM, Actor
from infusion.errors import PermissionDenied, ValidationError
from infusion.reads import trends as metrics
from infusion.reads.trends import TrendFilters, raw, utc_bounds
from infusion.reads.trends import service as trend_service
from infusion.reads.trends.funnel import FUNNEL_COLUMNS
from infusion.services.setup import add_chair, add_patient, add_staff, update_settings
from infusion.settings import ClinicSettings, load_settings
from tests.db.test_metrics import _therapy, visit

BOSTON = ZoneInfo("America/New_York")
HONOLULU = ZoneInfo("Pacific/Honolulu")
WEEK = TrendFilters(date(2025, 1, 6), date(2025, 1, 10))
_n = itertools.count(1)


@dataclass
class Network:
    db: Database
    boston: int
    honolulu: int
    tysabri: int
    ocrevus: int
    s: dict[str, int]

    def filters(self, **kw: object) -> TrendFilters:
        return TrendFilters(**{"start": WEEK.start, "end": WEEK.end, **kw})  # type: ignore[arg-type]


def at(zone: ZoneInfo, day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=zone)


def build_network(db: Database) -> Network:
    """The two sites and the nine visits of the module docstring."""
    with db.writing() as w:
        boston = w.scalars(select(Clinic).order_by(Clinic.id)).first()
        assert boston is not None
        boston.name, boston.code, boston.timezone = "Boston", "BOS", "America/New_York"
        honolulu = Clinic(
            name="Honolulu",
            code="HNL",
            timezone="Pacific/Honolulu",
            temperature_unit="C",
            weight_unit="kg",
            settings=ClinicSettings().model_dump(),
        )
        w.add(honolulu)
        w.flush()
        ids = (boston.id, honolulu.id)
    tysabri, ocrevus = _therapy(db, "natalizumab"), _therapy(db, "ocrelizumab_iv")
    nurse = Actor(None, "Network nurse", "charge_nurse")
    chair = {
        "a": add_chair(db, SYSTEM, "Chair 1", site_id=ids[0]).id,
        "b": add_chair(db, SYSTEM, "Chair 1", site_id=ids[1]).id,
    }
    plan = {  # id: (site, therapy, zone, day, time, reactions, infusion minutes)
        "a1": ("a", tysabri, BOSTON, "2025-01-06", "09:00", ((20, 2),), 60),
        "a2": ("a", tysabri, BOSTON, "2025-01-07", "09:00", (), 60),
        "a3": ("a", tysabri, BOSTON, "2025-01-08", "09:00", (), 60),
        "a4": ("a", ocrevus, BOSTON, "2025-01-09", "08:00", ((30, 1),), 160),
        "a_out": ("a", tysabri, BOSTON, "2025-01-05", "20:00", ((20, 2),), 60),
        "b1": ("b", tysabri, HONOLULU, "2025-01-06", "09:00", ((20, 1),), 60),
        "b2": ("b", tysabri, HONOLULU, "2025-01-10", "20:00", ((20, 3),), 60),
        "b3": ("b", ocrevus, HONOLULU, "2025-01-07", "09:00", (), 160),
        "b_out": ("b", tysabri, HONOLULU, "2025-01-05", "20:00", (), 60),
    }
    s: dict[str, int] = {}
    for key, (site, therapy, zone, day, hhmm, reactions, minutes) in plan.items():
        n = next(_n)
        patient = add_patient(db, SYSTEM, mrn=f"NET{n:05d}", given_name="Pat", family_name=f"Net{n}").id
        s[key] = visit(
            db,
            nurse,
            patient=patient,
            therapy=therapy,
            chair=chair[site],
            checkin=at(zone, day, hhmm),
            infusion=minutes,
            reactions=reactions,
        )
    return Network(db, ids[0], ids[1], tysabri, ocrevus, s)


@pytest.fixture
def network(db: Database) -> Network:
    return build_network(db)


def _counts(frame: pd.DataFrame, net: Network, key: str = "with_reaction") -> dict[tuple[str, ...], tuple[int, int]]:
    therapy = {net.tysabri: "Tysabri", net.ocrevus: "Ocrevus"}
    site = {net.boston: "Boston", net.honolulu: "Honolulu"}
    out = {}
    for row in frame.to_dict("records"):
        name = (site[row["site_id"]],) if "site_id" in row else ()
        out[(*name, therapy[row["therapy_id"]])] = (int(row.get("completed", row.get("sessions"))), int(row[key]))
    return out


def test_reaction_rates_per_site_and_network_by_hand(network: Network) -> None:
    net = network
    per_site = metrics.reaction_rates(net.db, WEEK, by_site=True)
    assert _counts(per_site, net) == {
        ("Boston", "Tysabri"): (3, 1),
        ("Boston", "Ocrevus"): (1, 1),
        ("Honolulu", "Tysabri"): (2, 2),
        ("Honolulu", "Ocrevus"): (1, 0),
    }
    assert list(per_site.columns[:2]) == ["site_id", "site"]
    expected_network = {("Tysabri",): (5, 3), ("Ocrevus",): (2, 1)}
    assert _counts(metrics.reaction_rates(net.db, WEEK), net) == expected_network
    assert _counts(raw.reaction_rates(net.db, WEEK), net) == expected_network  # the raw rows, each site's days
    for site, expected in ((net.boston, {("Tysabri",): (3, 1), ("Ocrevus",): (1, 1)}),
                           (net.honolulu, {("Tysabri",): (2, 2), ("Ocrevus",): (1, 0)})):  # fmt: skip
        one = net.filters(site_ids=(site,))
        assert _counts(metrics.reaction_rates(net.db, one), net) == expected
        assert _counts(raw.reaction_rates(net.db, one), net) == expected
    tysabri = metrics.reaction_rates(net.db, WEEK).set_index("therapy").loc["Tysabri"]
    assert tysabri["rate_per_100"] == pytest.approx(60.0)
    # the p-chart pools both sites' January: 7 completed, 4 with a reaction
    chart = metrics.monthly_reaction_pchart(net.db, WEEK)
    assert list(chart["n"]) == [7] and list(chart["x"]) == [4]
    assert raw.monthly_reaction_pchart(net.db, WEEK)[["n", "x"]].values.tolist() == [[7, 4]]


def test_each_site_keeps_its_own_local_day(network: Network) -> None:
    """Honolulu's Sunday evening visit is Monday in Boston: it is out of a Monday-to-Friday week."""
    net = network
    sunday = net.filters(start=date(2025, 1, 5), end=date(2025, 1, 5))
    assert _counts(metrics.reaction_rates(net.db, sunday, by_site=True), net) == {
        ("Boston", "Tysabri"): (1, 1),
        ("Honolulu", "Tysabri"): (1, 0),
    }
    saturday = net.filters(start=date(2025, 1, 11), end=date(2025, 1, 11))  # b2 is 11 Jan in UTC and in Boston
    assert metrics.reaction_rates(net.db, saturday).empty
    assert raw.reaction_rates(net.db, saturday).empty


def test_summaries_equal_raw_rows_across_two_zones(network: Network) -> None:
    from tests.db.test_trend_summaries import assert_in_step

    net = network
    assert_in_step(
        net.db,
        [
            WEEK,
            net.filters(site_ids=(net.boston,)),
            net.filters(site_ids=(net.honolulu,)),
            net.filters(site_ids=(net.boston, net.honolulu), infusion="first"),
            net.filters(start=date(2025, 1, 5), end=date(2025, 1, 11)),
            net.filters(site_ids=()),
        ],
    )


def test_by_site_figures_are_the_one_site_figures(network: Network) -> None:
    net = network
    durations = metrics.duration_summary(net.db, WEEK, by_site=True)
    lost = metrics.reaction_time_lost(net.db, WEEK, by_site=True)
    counts = metrics.completeness_by_site(net.db, WEEK)
    use = metrics.chair_utilisation(net.db, WEEK, by_site=True)
    for site in (net.boston, net.honolulu):
        one = net.filters(site_ids=(site,))
        pd.testing.assert_frame_equal(
            durations[durations["site_id"] == site].drop(columns=["site_id", "site"]).reset_index(drop=True),
            metrics.duration_summary(net.db, one),
        )
        pd.testing.assert_frame_equal(
            lost[lost["site_id"] == site].drop(columns=["site_id", "site"]).reset_index(drop=True),
            metrics.reaction_time_lost(net.db, one),
        )
        assert (
            counts[counts["site_id"] == site]["checked"].tolist()
            == metrics.completeness(net.db, one).counts["checked"].tolist()
        )
    # Boston 5 visits checked in over the week and Sunday … each site counts its own: 4 + 3 in the week
    assert counts.groupby("site")["checked"].max().to_dict() == {"Boston": 4, "Honolulu": 3}
    network_use = metrics.chair_utilisation(net.db, WEEK)
    summed = use.groupby(["weekday", "hour"], sort=False)[["chair_hours_available", "chair_hours_occupied"]].sum()
    assert summed["chair_hours_available"].tolist() == pytest.approx(network_use["chair_hours_available"].tolist())
    assert summed["chair_hours_occupied"].tolist() == pytest.approx(network_use["chair_hours_occupied"].tolist())
    # 5 weekdays × 12 h × 1 chair at each site; Honolulu's b2 (20:00) is outside opening hours
    assert use.groupby("site")["chair_hours_available"].sum().to_dict() == {"Boston": 60.0, "Honolulu": 60.0}
    monday_9 = use[(use["weekday"] == 0) & (use["hour"] == 9)].set_index("site")["chair_hours_occupied"]
    assert monday_9.to_dict() == {"Boston": 1.0, "Honolulu": 1.0}  # each at 09:00 local, not at the same instant


def _raw_funnel_counts(net: Network) -> dict[tuple[int, int], tuple[int, int]]:
    """Completed sessions and those with an active reaction per (site, therapy), straight from the raw rows,
    each site's week in its own zone."""
    S = InfusionSession
    reacted = select(Reaction.session_id.label("sid")).where(Reaction.status == "active").distinct().subquery()
    windows = []
    for site, zone in ((net.boston, "America/New_York"), (net.honolulu, "Pacific/Honolulu")):
        lo, hi = utc_bounds(WEEK.start, WEEK.end, zone)
        windows.append(and_(Chair.site_id == site, S.checked_in_at >= lo, S.checked_in_at < hi))
    q = (
        select(Chair.site_id, S.therapy_id, func.count(), func.count(reacted.c.sid))
        .select_from(S)
        .join(Chair, Chair.id == S.chair_id)
        .outerjoin(reacted, reacted.c.sid == S.id)
        .where(S.status == "discharged", or_(*windows))
        .group_by(Chair.site_id, S.therapy_id)
    )
    with net.db.reading() as s:
        return {(site, therapy): (int(n), int(x)) for site, therapy, n, x in s.execute(q)}


def test_funnel_read_counts_equal_a_raw_row_count(network: Network) -> None:
    net = network
    frame = metrics.reaction_funnel(net.db, WEEK)
    assert list(frame.columns) == list(FUNNEL_COLUMNS)
    got = {(r["site_id"], r["therapy_id"]): (r["sessions"], r["reacted"]) for r in frame.to_dict("records")}
    assert got == _raw_funnel_counts(net)
    assert got[(net.honolulu, net.tysabri)] == (2, 2)
    tysabri = frame[frame["therapy"] == "Tysabri"]
    assert tysabri["network_rate"].tolist() == pytest.approx([0.6, 0.6])
    assert set(tysabri["site"]) == {"Boston", "Honolulu"}
    # a chair filter reads trend_session instead of the rollup: every chair named, the same counts
    chair_filtered = metrics.reaction_funnel(
        net.db, net.filters(chair_ids=tuple(_chairs(net.db)), site_ids=(net.boston, net.honolulu))
    )
    pd.testing.assert_frame_equal(chair_filtered, frame)


def _chairs(db: Database) -> list[int]:
    with db.reading() as s:
        return list(s.scalars(select(Chair.id)))


# --- who may see which site -------------------------------------------------------------------------------


def _regional_manager(net: Network) -> Actor:
    """A manager whose role holds at Boston only (not network-wide)."""
    user = add_staff(net.db, SYSTEM, "Regional Manager", role="manager")
    with net.db.writing() as w:
        w.execute(update(AppUser).where(AppUser.id == user.id).values(network_wide=False))
        w.add(UserSite(user_id=user.id, site_id=net.boston))
    return Actor(user.id, user.display_name, "manager")


def test_a_manager_of_one_site_sees_only_that_site(network: Network) -> None:
    net = network
    manager = _regional_manager(net)
    data = trend_service.load(net.db, manager, WEEK)
    assert _counts(data.rates, net) == {("Tysabri",): (3, 1), ("Ocrevus",): (1, 1)}
    assert data.sites["site"].tolist() == ["Boston"] and not data.compares_sites
    assert data.funnel.empty and data.rates_by_site.empty
    assert trend_service.scope(net.db, manager, WEEK).site_ids == (net.boston,)
    assert trend_service.site_options(net.db, manager) == {net.boston: "Boston (BOS)"}
    _, chairs, _ = trend_service.filter_options(net.db, manager)
    with net.db.reading() as s:
        boston_chairs = set(s.scalars(select(Chair.id).where(Chair.site_id == net.boston)))
    assert set(chairs) == boston_chairs
    for asked in ((net.honolulu,), (net.boston, net.honolulu)):
        with pytest.raises(PermissionDenied, match="Honolulu"):
            trend_service.load(net.db, manager, net.filters(site_ids=asked))
        with pytest.raises(PermissionDenied):
            trend_service.reaction_funnel(net.db, manager, net.filters(site_ids=asked))
    # a site the manager holds, asked by name, is fine
    assert _counts(trend_service.load(net.db, manager, net.filters(site_ids=(net.boston,))).rates, net) == {
        ("Tysabri",): (3, 1),
        ("Ocrevus",): (1, 1),
    }


def test_a_network_manager_compares_every_site(network: Network) -> None:
    net = network
    manager = Actor(None, "Network manager", "manager")
    data = trend_service.load(net.db, manager, WEEK)
    assert data.compares_sites and data.sites["timezone"].tolist() == ["America/New_York", "Pacific/Honolulu"]
    assert _counts(data.rates, net) == {("Tysabri",): (5, 3), ("Ocrevus",): (2, 1)}
    assert _counts(data.rates_by_site, net)[("Honolulu", "Tysabri")] == (2, 2)
    assert set(data.funnel["site"]) == {"Boston", "Honolulu"}
    assert set(data.duration_summary_by_site["site"]) == {"Boston", "Honolulu"}
    assert set(data.completeness_by_site["site"]) == {"Boston", "Honolulu"}
    with pytest.raises(PermissionDenied):
        trend_service.load(net.db, Actor(None, "A nurse", "nurse"), WEEK)


def test_each_site_counts_chair_hours_in_its_own_opening_hours(network: Network) -> None:
    """Honolulu opens 09:00–21:00 (Boston keeps the 07:00–19:00 default): its chairs are available and
    its evening visit b2 (Fri 20:00–22:20) is counted in its 20:00 hour; the network's cells run from
    Boston's 07:00 to Honolulu's 21:00, each site adding chair-hours only where it is open."""
    net = network
    with net.db.writing() as w:
        honolulu = w.get(Clinic, net.honolulu)
        assert honolulu is not None
        honolulu.settings = {**honolulu.settings, "opening_hour": 9, "closing_hour": 21}
    use = metrics.chair_utilisation(net.db, WEEK, by_site=True)
    hours = sorted(set(use["hour"]))
    assert hours == list(range(7, 21))
    per_site = use.groupby("site")["chair_hours_available"].sum().to_dict()
    assert per_site == {"Boston": 60.0, "Honolulu": 60.0}  # 5 weekdays × 12 h × 1 chair each
    cell = use.set_index(["site", "weekday", "hour"])
    assert cell.loc[("Honolulu", 4, 20), "chair_hours_occupied"] == pytest.approx(1.0)  # b2, Friday 20:00
    assert cell.loc[("Honolulu", 0, 7), "chair_hours_available"] == 0.0
    assert pd.isna(cell.loc[("Honolulu", 0, 7), "share"])  # closed: no share, not 0 %
    assert cell.loc[("Boston", 0, 20), "chair_hours_available"] == 0.0
    network_use = metrics.chair_utilisation(net.db, WEEK).set_index(["weekday", "hour"])
    assert network_use.loc[(0, 7), "chair_hours_available"] == 1.0  # Boston alone
    assert network_use.loc[(0, 10), "chair_hours_available"] == 2.0  # both
    assert network_use.loc[(4, 20), "chair_hours_occupied"] == pytest.approx(1.0)
    # The raw-row path and the summaries agree with the sites' own hours too
    summarised_use = metrics.chair_utilisation(net.db, WEEK, by_site=True)
    raw_use = raw.chair_utilisation(net.db, WEEK, by_site=True)
    pd.testing.assert_frame_equal(summarised_use, raw_use)
    # Hours given by the caller apply to every site
    given = metrics.chair_utilisation(net.db, WEEK, open_hour=0, close_hour=24, weekdays=range(7))
    assert len(given) == 7 * 24


def test_opening_hours_that_make_no_sense_are_refused_with_a_message(db: Database) -> None:
    for changes in (
        {"opening_hour": 19, "closing_hour": 7},
        {"opening_hour": 9, "closing_hour": 25},
        {"open_weekdays": [0, 9]},
        {"open_weekdays": []},
    ):
        with pytest.raises(ValidationError) as refused:
            update_settings(db, SYSTEM, changes)
        message = " ".join(refused.value.problems.values()).lower()
        assert "hour" in message or "day" in message, changes
    before = load_settings(db_settings(db))
    assert (before.opening_hour, before.closing_hour, before.open_weekdays) == (7, 19, [0, 1, 2, 3, 4])


def db_settings(db: Database) -> dict[str, object]:
    with db.reading() as s:
        clinic = s.scalars(select(Clinic).order_by(Clinic.id)).first()
        assert clinic is not None
        return dict(clinic.settings or {})


def test_new_opening_hours_reach_a_cached_trends_page_at_once(network: Network) -> None:
    """The page caches its figures on the summaries' data version: saving a site's hours moves it."""
    before = trend_service.data_version(network.db)
    update_settings(network.db, SYSTEM, {"opening_hour": 9}, site_id=network.honolulu)
    assert trend_service.data_version(network.db) > before
