"""The live board: refreshed by a fragment every 30 s, large and dark on a wall display."""

from __future__ import annotations

import streamlit as st

from db.engine import Database
from db.models import Clinic
from infusion.accounts.actor import Actor
from infusion.clock import format_local, utcnow
from infusion.reads import board
from infusion.services.setup import list_chairs, network_security
from ui import common as ui
from ui import shell

WALL_CSS = """<style>
[data-testid="stApp"], [data-testid="stMainBlockContainer"], header[data-testid="stHeader"] {background: #0b1220;}
[data-testid="stMainBlockContainer"] * {color: #e5e7eb;}
[data-testid="stMainBlockContainer"] p, [data-testid="stMainBlockContainer"] li {font-size: 1.35rem;}
[data-testid="stMainBlockContainer"] h2 {font-size: 2.2rem;}
</style>"""


def legend(large: bool) -> None:
    """Every colour the board uses, named: colour is never the only signal."""
    size = "1.2rem" if large else "0.9rem"
    chips = " ".join(
        f'<span style="display:inline-block;margin-right:1.1em;font-size:{size}">'
        f'<span style="display:inline-block;width:0.9em;height:0.9em;border-radius:2px;background:{colour};'
        f'vertical-align:middle;margin-right:0.35em"></span>{label}</span>'
        for label, colour in board.legend()
    )
    outline = (
        f'<span style="font-size:{size}">▭ outline = planned · ▬ solid = actual · '
        "┆ dotted line = now · 🔴⏰⌛ badges = needs attention</span>"
    )
    st.html(f"<div>{chips}<br>{outline}</div>")


def live_board(db: Database, viewer: Actor, clinic: Clinic, *, large: bool, wall: bool) -> None:
    """Only this fragment reruns on the timer: forms elsewhere on the page keep what is typed."""

    @st.fragment(run_every=30)
    def refresh() -> None:
        now = utcnow()
        if wall:
            security = network_security(db)  # one read of every site's settings per refresh
            if not shell.wall_still_paired(db, security, now):
                shell.leave_stopped_wall(db, security)
        frame = board.board_frame(db, viewer, now, initials=wall)
        chairs = [c.name for c in list_chairs(db, clinic.id) if c.kind == "chair"]
        st.caption(f"Updated {format_local(now, clinic.timezone, '%H:%M:%S')} · refreshes every 30 s")
        legend(large)
        if not chairs:
            st.info("No chairs yet: an administrator adds them on the Administration page.")
            return
        if frame.empty:
            st.info("No sessions on the board today.")
        st.plotly_chart(
            board.board_figure(frame, chairs, now, large=large),
            width="stretch",
            config={"displayModeBar": False, "staticPlot": wall},
            theme=None if large else "streamlit",
            key="board_figure",
        )
        attention = frame[frame["badges"] != ""] if not frame.empty else frame
        if not attention.empty:
            st.markdown("**Needs attention**")
            st.dataframe(
                attention[["chair", "patient", "therapy", "status", "_alerts"]].rename(columns={"_alerts": "why"}),
                hide_index=True,
                width="stretch",
            )
        visits = board.home_visits(db, viewer, now, initials=wall)
        if not visits.empty:
            st.markdown(f"**🏠 Home visits today ({len(visits)})**")
            st.dataframe(visits, hide_index=True, width="stretch")
        if not frame.empty and not wall:
            ui.csv_download(
                "Board as CSV",
                frame[board.BOARD_COLUMNS],
                file_name="chair_board.csv",
                key=f"board_csv_{now.timestamp():.0f}",
            )

    refresh()
