"""Chair board: the charge nurse's live view, and a read-only wall display for a named screen.

A wall display (paired by an administrator, `ui/board/pairing.py`) shows this page
only: large and dark, patients by initials, a legend, never signed out for
inactivity. The board refreshes itself every 30 s without disturbing anything else.
"""

from __future__ import annotations

import streamlit as st

from infusion.accounts.permissions import ADMIN
from ui import common as ui
from ui import shell
from ui.board.live import WALL_CSS, live_board
from ui.board.pairing import pair_here

db = ui.get_db()
viewer = ui.page_guard("board")
clinic = ui.working_site(db, viewer)  # a wall display: the site it was paired at
wall = shell.is_wall(viewer)

top = st.columns([3, 1], vertical_alignment="center")
top[0].header("Chair board")
large = wall or top[1].toggle("Wall display (large, dark)", key="board_large")
if large:
    st.markdown(WALL_CSS, unsafe_allow_html=True)
ui.show_flash()
live_board(db, viewer, clinic, large=large, wall=wall)
if viewer.role == ADMIN:
    pair_here(db, viewer, clinic.id)
