"""Live chair board for the charge nurse: refreshes itself every 30 s without disturbing anything else."""

from __future__ import annotations

import streamlit as st

from infusion.clock import format_local, utcnow
from infusion.reads import board
from infusion.services.setup import get_clinic, list_chairs
from ui import common as ui

db = ui.get_db()
viewer = ui.page_guard("board")
clinic = get_clinic(db)

LARGE_CSS = """<style>
[data-testid="stMainBlockContainer"] {background: #111; color: #eee;}
[data-testid="stMainBlockContainer"] p, [data-testid="stMainBlockContainer"] h2 {font-size: 1.5rem; color: #eee;}
</style>"""

top = st.columns([3, 1], vertical_alignment="center")
top[0].header("Chair board")
large = top[1].toggle("Wall display (large, dark)", key="board_large")
if large:
    st.markdown(LARGE_CSS, unsafe_allow_html=True)


@st.fragment(run_every=30)
def live_board() -> None:
    """Only this fragment reruns on the timer: forms elsewhere on the page keep what is typed."""
    now = utcnow()
    frame = board.board_frame(db, viewer, now)
    chairs = [c.name for c in list_chairs(db) if c.kind == "chair"]
    st.caption(
        f"Updated {format_local(now, clinic.timezone, '%H:%M:%S')} · refreshes every 30 s · "
        "outline = planned, solid = actual; red = reaction open"
    )
    if not chairs:
        st.info("No chairs yet: an administrator adds them on the Administration page.")
        return
    if frame.empty:
        st.info("No sessions on the board today.")
    st.plotly_chart(
        board.board_figure(frame, chairs, now, large=large), width="stretch", config={"displayModeBar": False}
    )
    attention = frame[frame["badges"] != ""] if not frame.empty else frame
    if not attention.empty:
        st.markdown("**Needs attention**")
        st.dataframe(
            attention[["chair", "patient", "therapy", "status", "_alerts"]].rename(columns={"_alerts": "why"}),
            hide_index=True,
            width="stretch",
        )
    visits = board.home_visits(db, viewer, now)
    if not visits.empty:
        st.markdown(f"**🏠 Home visits today ({len(visits)})**")
        st.dataframe(visits, hide_index=True, width="stretch")
    if not frame.empty:
        st.download_button(
            "Board as CSV",
            frame[board.BOARD_COLUMNS].to_csv(index=False).encode("utf-8-sig"),
            file_name="chair_board.csv",
            mime="text/csv",
            key=f"board_csv_{now.timestamp():.0f}",
        )


live_board()
