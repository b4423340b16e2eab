"""The numbers behind a figure, shown beside it and offered as a spreadsheet-safe CSV."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from infusion.reads.trends import TrendFilters
from ui import common as ui


def numbers(frame: pd.DataFrame, name: str, key: str, filters: TrendFilters) -> None:
    with st.expander("Numbers"):
        st.dataframe(frame, hide_index=True, width="stretch")
        ui.csv_download("Download CSV", frame, file_name=f"chairside_{name}_{filters.start}_{filters.end}.csv", key=key)
