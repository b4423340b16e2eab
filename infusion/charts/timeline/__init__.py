"""One session on one time axis: phases, rate, vitals, reactions.

The figure is built from the same point list as `timeline_frame`, so the CSV
beside the figure holds exactly what is drawn. One figure with subplots and
SVG `go.Scatter` traces (plotly's guidance: SVG for small traces): a session has tens of points, and
WebGL contexts are limited per page. No Streamlit here; pages only draw.

Rows, top to bottom: phases (bands) with reaction markers above them; infusion
rate (actual step line, planned steps dashed, forecast dotted); BP; pulse;
temperature (clinic unit); SpO2; respiration. SpO2 and respiration get a row
each, not one shared row, because their scales (90–100 %
vs 10–30 /min) and thresholds differ. Corrected and entered-in-error entries
are drawn as hollow grey markers, never dropped; colour is never the only
signal (labels, symbols and hover text carry the same information).

Modules: `style` (the visual language), `forecast` (plan and forecast of one
session), `points` (the point list), `frame` (the CSV), `canvas` (the figure
being built), one module per group of rows (`phases`, `rate`, `vitals`) and
`figure` (`session_timeline`, which lays them out).
"""

from infusion.charts.palette import GRADE_COLOURS, GRADE_WORDS, STATUS_COLOURS
from infusion.charts.timeline.figure import session_timeline
from infusion.charts.timeline.forecast import session_forecast, session_plan
from infusion.charts.timeline.frame import FRAME_COLUMNS, timeline_frame
from infusion.charts.timeline.style import (
    FLAG_RED,
    INACTIVE_GREY,
    INACTIVE_LABELS,
    INACTIVE_SYMBOLS,
    LIGHT_PHASES,
    PHASE_COLOURS,
    REACTION_Y,
    ROW_HEIGHTS,
    ROWS,
    THRESHOLD_FILL,
    VITAL_SERIES,
)

__all__ = [
    "FLAG_RED",
    "FRAME_COLUMNS",
    "GRADE_COLOURS",
    "GRADE_WORDS",
    "INACTIVE_GREY",
    "INACTIVE_LABELS",
    "INACTIVE_SYMBOLS",
    "LIGHT_PHASES",
    "PHASE_COLOURS",
    "REACTION_Y",
    "ROWS",
    "ROW_HEIGHTS",
    "STATUS_COLOURS",
    "THRESHOLD_FILL",
    "VITAL_SERIES",
    "session_forecast",
    "session_plan",
    "session_timeline",
    "timeline_frame",
]
