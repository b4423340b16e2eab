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
from infusion.accounts.permissions import BOARD, CHARTING, require_role
from infusion.charts.palette import STATUS_COLOURS
from infusion.clock import utcnow
from infusion.reads.sessions import today_sessions
from infusion.services.setup import get_clinic, list_chairs

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


def board_frame(db: Database, actor: Actor, now: datetime | None = None) -> pd.DataFrame:
    """One row per session on today's board (clinic local times), chairs in clinic order."""
    require_role(actor, BOARD + CHARTING, "see the chair board")
    now = now or utcnow()
    clinic = get_clinic(db)
    tz = ZoneInfo(clinic.timezone)
    chairs = [c for c in list_chairs(db) if c.kind == "chair"]
    order = {c.id: i for i, c in enumerate(chairs)}
    rows = []
    for card in today_sessions(db, actor, now):
        if card.chair_id not in order:
            continue  # home visits are listed separately
        planned_start = card.scheduled_at
        actual_start = card.checked_in_at
        actual_end = card.ended_at or (now if actual_start else None)
        rows.append(
            {
                "chair": card.chair,
                "session_id": card.id,
                "patient": _short_name(card.patient),
                "therapy": f"{card.therapy} #{card.infusion_number}",
                "status": card.status,
                "planned_start": planned_start.astimezone(tz),
                "planned_end": (planned_start + timedelta(minutes=card.planned_minutes)).astimezone(tz),
                "actual_start": actual_start.astimezone(tz) if actual_start else None,
                "actual_end": actual_end.astimezone(tz) if actual_end else None,
                "badges": " ".join(a.split(" ")[0] for a in card.alerts),
                "_alerts": "; ".join(card.alerts),
                "_order": order[card.chair_id],
                "_reaction": card.open_reactions > 0,
            }
        )
    frame = pd.DataFrame.from_records(rows, columns=[*BOARD_COLUMNS, "_alerts", "_order", "_reaction"])
    return frame.sort_values(["_order", "planned_start"]).reset_index(drop=True) if not frame.empty else frame


def _short_name(name: str) -> str:
    """'Lee, Ann' → 'Lee, A.' — enough for staff at a wall screen, less for passers-by."""
    family, _, given = name.partition(", ")
    return f"{family}, {given[:1]}." if given else family


def board_figure(frame: pd.DataFrame, chairs: list[str], now: datetime, *, large: bool = False) -> go.Figure:
    """Chairs as rows, the day as the axis: a pale planned bar and a solid actual bar per session."""
    figure = go.Figure()
    for _, row in frame.iterrows():
        figure.add_trace(
            go.Bar(
                y=[row["chair"]],
                x=[(row["planned_end"] - row["planned_start"]).total_seconds() * 1000],
                base=[row["planned_start"]],
                orientation="h",
                width=0.8,
                marker={"color": "rgba(0,0,0,0)", "line": {"color": STATUS_COLOURS[row["status"]], "width": 2}},
                text=[
                    f"{row['patient']} · {row['therapy']} ({row['status'].replace('_', ' ')})"
                    if row["actual_start"] is None
                    else ""
                ],
                textposition="inside",
                insidetextanchor="start",
                textfont={"color": "#555"},
                hovertemplate=f"Planned: {row['patient']} · {row['therapy']}<extra></extra>",
                showlegend=False,
            )
        )
        if row["actual_start"] is not None:
            colour = REACTION_COLOUR if row["_reaction"] else STATUS_COLOURS[row["status"]]
            figure.add_trace(
                go.Bar(
                    y=[row["chair"]],
                    x=[(row["actual_end"] - row["actual_start"]).total_seconds() * 1000],
                    base=[row["actual_start"]],
                    orientation="h",
                    width=0.5,
                    marker={"color": colour},
                    text=[f"{row['patient']} · {row['therapy']} {row['badges']}"],
                    textposition="inside",
                    insidetextanchor="start",
                    hovertemplate=(
                        f"{row['patient']} · {row['therapy']}<br>{row['status'].replace('_', ' ')}"
                        f"<br>{row['_alerts']}<extra></extra>"
                    ),
                    showlegend=False,
                )
            )
    local_now = now.astimezone(frame["planned_start"].iloc[0].tzinfo) if not frame.empty else now
    figure.add_vline(x=local_now, line_dash="dot", line_color="#d32f2f")
    figure.update_layout(
        barmode="overlay",
        height=max(260, 70 * max(len(chairs), 1)) * (1.4 if large else 1),
        margin={"l": 10, "r": 10, "t": 10, "b": 30},
        font={"size": 20 if large else 13},
        template="plotly_dark" if large else "plotly_white",
        xaxis={"type": "date", "tickformat": "%H:%M"},
        yaxis={"categoryorder": "array", "categoryarray": list(reversed(chairs))},
    )
    return figure


def home_visits(db: Database, actor: Actor, now: datetime | None = None) -> pd.DataFrame:
    """Today's home infusions with their status: the board shows clinic chairs only."""
    require_role(actor, BOARD + CHARTING, "see the chair board")
    now = now or utcnow()
    tz = ZoneInfo(get_clinic(db).timezone)
    homes = {c.id for c in list_chairs(db) if c.kind == "home"}
    rows = [
        {
            "patient": _short_name(c.patient),
            "therapy": f"{c.therapy} #{c.infusion_number}",
            "status": c.status_label,
            "booked": c.scheduled_at.astimezone(tz).strftime("%H:%M"),
            "attention": "; ".join(c.alerts),
        }
        for c in today_sessions(db, actor, now)
        if c.chair_id in homes
    ]
    return pd.DataFrame.from_records(rows, columns=["patient", "therapy", "status", "booked", "attention"])
