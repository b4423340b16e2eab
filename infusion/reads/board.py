"""The live chair board: one row per chair, today's sessions as planned and actual bars with badges.

Built on `views.today_sessions` so the board and the Chairside list always agree
on what is overdue or open.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import plotly.graph_objects as go

from db.engine import Database
from infusion.accounts.actor import Actor
from infusion.accounts.permissions import BOARD_VIEW, require_role
from infusion.accounts.sites import working_context
from infusion.charts.palette import STATUS_COLOURS
from infusion.clinical.states import ACTIVE_STATUSES, CLOSED_STATUSES, STATUS_LABELS, SessionStatus
from infusion.clock import utcnow
from infusion.reads.sessions import SessionCard, today_sessions
from infusion.services.setup import list_chairs

REACTION_COLOUR = STATUS_COLOURS["reaction"]
BOARD_COLUMNS = [
    "chair",
    "session_id",
    "patient",
    "therapy",
    "status",
    "planned_start",
    "planned_end",
    "actual_start",
    "actual_end",
    "badges",
]


def board_frame(db: Database, actor: Actor, now: datetime | None = None, *, initials: bool = False) -> pd.DataFrame:
    """One row per session on today's board (clinic local times), chairs in clinic order.

    `initials=True` (a wall display) names patients by initials only: a wall
    screen is read by passers-by as well as staff.
    """
    require_role(actor, BOARD_VIEW, "see the chair board")
    now = now or utcnow()
    with db.reading() as s:
        clinic = working_context(s, actor)[0]
    tz = ZoneInfo(clinic.timezone)
    chairs = [c for c in list_chairs(db, clinic.id) if c.kind == "chair"]
    order = {c.id: i for i, c in enumerate(chairs)}
    rows = []
    cards = [c for c in today_sessions(db, actor, now) if c.chair_id in order]  # home visits: listed apart
    # a cancelled booking never takes its chair: drawn, it would look like one that does
    cards = [c for c in cards if c.status != SessionStatus.CANCELLED]
    double = _double_booked(cards, now, initials)
    for card in cards:
        planned_start = card.scheduled_at
        actual_start = card.checked_in_at
        actual_end = card.ended_at or (now if actual_start else None)
        alerts = (*card.alerts, *double.get(card.id, ()))
        rows.append(
            {
                "chair": card.chair,
                "session_id": card.id,
                "patient": _initials(card.patient) if initials else _short_name(card.patient),
                "therapy": f"{card.therapy} #{card.infusion_number}",
                "status": card.status,
                "planned_start": planned_start.astimezone(tz),
                "planned_end": (planned_start + timedelta(minutes=card.planned_minutes)).astimezone(tz),
                "actual_start": actual_start.astimezone(tz) if actual_start else None,
                "actual_end": actual_end.astimezone(tz) if actual_end else None,
                "badges": " ".join(a.split(" ")[0] for a in alerts),
                "_alerts": "; ".join(alerts),
                "_order": order[card.chair_id],
                "_reaction": card.open_reactions > 0,
            }
        )
    frame = pd.DataFrame.from_records(rows, columns=[*BOARD_COLUMNS, "_alerts", "_order", "_reaction"])
    return frame.sort_values(["_order", "planned_start"]).reset_index(drop=True) if not frame.empty else frame


def _holds_chair(card: SessionCard, now: datetime) -> tuple[datetime, datetime] | None:
    """When a session still holds its chair today, as a half-open span: a booking its planned chair time
    from its booked time, a session in the chair its planned chair time from check-in, or until now if
    later; a closed session none. (`reads.sessions.chair_clashes` asks before a move or booking with the
    same spans, and also counts a booking that starts at the very minute an overrunning patient is still
    there; the board sees that one at its next refresh.)"""
    planned = timedelta(minutes=card.planned_minutes)
    if card.status == SessionStatus.SCHEDULED:
        return card.scheduled_at, card.scheduled_at + planned
    if card.status in ACTIVE_STATUSES:
        since = card.checked_in_at or card.scheduled_at
        return since, max(now, since + planned)
    return None


def _double_booked(cards: list[SessionCard], now: datetime, initials: bool) -> dict[int, list[str]]:
    """An alert for each session whose chair another open session holds at the same time: two bookings at
    21:15 in one chair draw one on top of the other, so the board says so in words."""
    alerts: dict[int, list[str]] = {}
    held = [(c, span) for c in cards if (span := _holds_chair(c, now)) is not None]
    for i, (a, (a0, a1)) in enumerate(held):
        for b, (b0, b1) in held[i + 1 :]:
            if a.chair_id == b.chair_id and a0 < b1 and b0 < a1:
                for one, other in ((a, b), (b, a)):
                    name = _initials(other.patient) if initials else _short_name(other.patient)
                    alerts.setdefault(one.id, []).append(f"🪑 Double-booked: {name} has this chair at the same time")
    return alerts


def _initials(name: str) -> str:
    """'Lee, Ann' → 'A.L.': all a wall screen shows of a patient."""
    family, _, given = name.partition(", ")
    return "".join(f"{part[:1].upper()}." for part in (given, family) if part)


def _short_name(name: str) -> str:
    """'Lee, Ann' → 'Lee, A.' — enough for staff at a wall screen, less for passers-by."""
    family, _, given = name.partition(", ")
    return f"{family}, {given[:1]}." if given else family


#: statuses the legend explains, in the order a session passes through them
LEGEND = ("scheduled", "checked_in", "infusing", "paused", "observation", "discharged")
DARK = {"paper": "#0b1220", "plot": "#0b1220", "grid": "#263244", "text": "#e5e7eb"}


LABEL_PLACES = ("top right", "bottom right")
#: pixels a wall display gives the chair rows: a 1080-line screen less the header, caption and legend
WALL_ROWS_PX = 760


def _alone(frame: pd.DataFrame, chair: str) -> bool:
    return int((frame["chair"] == chair).sum()) == 1


def legend() -> list[tuple[str, str]]:
    """(label, colour) of every colour the board uses, so colour is never a guess."""
    items = [(STATUS_LABELS[s], STATUS_COLOURS[s]) for s in LEGEND]
    return [*items, ("Reaction open", REACTION_COLOUR)]


def board_figure(frame: pd.DataFrame, chairs: list[str], now: datetime, *, large: bool = False) -> go.Figure:
    """Chairs as rows, the day as the axis: a pale planned bar and a solid actual bar per session.

    Every chair has its row even when empty (a new chair shows at once), and each
    session's label is a text mark of one fixed size at its start, so a short
    running bar reads as well as a long finished one.
    """
    figure = go.Figure()
    # a wall screen cannot scroll: its rows share what a 1080-line screen leaves under the header and legend
    row_px = min(90, max(40, WALL_ROWS_PX // max(len(chairs), 1))) if large else 60
    text_size = min(22, max(12, row_px // 3)) if large else 13
    label_x, label_y, labels, label_colours, label_places = [], [], [], [], []
    seen_on_chair: dict[str, int] = {}
    for _, row in frame.iterrows():
        if row["status"] not in CLOSED_STATUSES:  # a closed session's plan no longer holds the chair
            figure.add_trace(
                go.Bar(
                    y=[row["chair"]],
                    x=[(row["planned_end"] - row["planned_start"]).total_seconds() * 1000],
                    base=[row["planned_start"]],
                    orientation="h",
                    width=0.8,
                    marker={"color": "rgba(0,0,0,0)", "line": {"color": STATUS_COLOURS[row["status"]], "width": 2}},
                    hovertemplate=f"Planned: {row['patient']} · {row['therapy']}<extra></extra>",
                    showlegend=False,
                )
            )
        started = pd.notna(row["actual_start"])  # a missing start is NaT in the frame, not None
        if started:
            colour = REACTION_COLOUR if row["_reaction"] else STATUS_COLOURS[row["status"]]
            figure.add_trace(
                go.Bar(
                    y=[row["chair"]],
                    x=[(row["actual_end"] - row["actual_start"]).total_seconds() * 1000],
                    base=[row["actual_start"]],
                    orientation="h",
                    width=0.5,
                    marker={"color": colour},
                    hovertemplate=(
                        f"{row['patient']} · {row['therapy']}<br>{row['status'].replace('_', ' ')}"
                        f"<br>{row['_alerts']}<extra></extra>"
                    ),
                    showlegend=False,
                )
            )
        label_x.append(row["actual_start"] if started else row["planned_start"])
        label_y.append(row["chair"])
        status = STATUS_LABELS.get(row["status"], row["status"])
        labels.append(f"  {row['patient']} · {row['therapy']} · {status} {row['badges']}".rstrip())
        label_colours.append(DARK["text"] if large else "#111827")
        # two sessions on one chair: their labels sit above and below the row, never on top of each other
        nth = seen_on_chair.get(row["chair"], 0)
        seen_on_chair[row["chair"]] = nth + 1
        label_places.append("middle right" if nth == 0 and _alone(frame, row["chair"]) else LABEL_PLACES[nth % 2])
    if labels:
        figure.add_trace(
            go.Scatter(
                x=label_x,
                y=label_y,
                text=labels,
                mode="text",
                textposition=label_places,
                textfont={"size": text_size, "color": label_colours},
                hoverinfo="skip",
                showlegend=False,
                cliponaxis=False,
            )
        )
    tz = frame["planned_start"].iloc[0].tzinfo if not frame.empty else None
    local_now = now.astimezone(tz) if tz is not None else now
    # every chair gets its row, with or without sessions today
    figure.add_trace(
        go.Scatter(x=[local_now] * len(chairs), y=chairs, mode="markers", opacity=0, hoverinfo="skip", showlegend=False)
    )
    figure.add_vline(x=local_now, line_dash="dot", line_color="#f87171" if large else "#d32f2f", line_width=2)
    layout: dict = dict(
        barmode="overlay",
        height=max(260, row_px * max(len(chairs), 1) + 60),
        margin={"l": 10, "r": 10, "t": 10, "b": 30},
        font={"size": text_size},
        xaxis={"type": "date", "tickformat": "%H:%M"},
        yaxis={"categoryorder": "array", "categoryarray": list(reversed(chairs)), "automargin": True},
    )
    if large:
        layout.update(
            paper_bgcolor=DARK["paper"],
            plot_bgcolor=DARK["plot"],
            font={"size": text_size, "color": DARK["text"]},
            xaxis={**layout["xaxis"], "gridcolor": DARK["grid"], "color": DARK["text"]},
            yaxis={**layout["yaxis"], "gridcolor": DARK["grid"], "color": DARK["text"]},
        )
    figure.update_layout(**layout)
    return figure


def home_visits(db: Database, actor: Actor, now: datetime | None = None, *, initials: bool = False) -> pd.DataFrame:
    """Today's home infusions with their status: the board shows clinic chairs only."""
    require_role(actor, BOARD_VIEW, "see the chair board")
    now = now or utcnow()
    with db.reading() as s:
        site = working_context(s, actor)[0]
    tz = ZoneInfo(site.timezone)
    homes = {c.id for c in list_chairs(db, site.id) if c.kind == "home"}
    rows = [
        {
            "patient": _initials(c.patient) if initials else _short_name(c.patient),
            "therapy": f"{c.therapy} #{c.infusion_number}",
            "status": c.status_label,
            "booked": c.scheduled_at.astimezone(tz).strftime("%H:%M"),
            "attention": "; ".join(c.alerts),
        }
        for c in today_sessions(db, actor, now)
        if c.chair_id in homes and c.status != SessionStatus.CANCELLED  # as on the board: not a visit
    ]
    return pd.DataFrame.from_records(rows, columns=["patient", "therapy", "status", "booked", "attention"])
