"""The CSV beside the figure: the point list as a frame, in clinic time."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd

from infusion.charts.timeline.points import all_points
from infusion.clock import utcnow
from infusion.reads.sessions import SessionDetail

FRAME_COLUMNS = [
    "time",
    "end",
    "series",
    "value",
    "unit",
    "status",
    "flags",
    "late_entry",
    "correction",
    "entered_by",
    "entered_at",
    "detail",
]


def timeline_frame(detail: SessionDetail, now: datetime | None = None) -> pd.DataFrame:
    """Every plotted point (phases, rates, plan, forecast, vitals in display units, reactions) for the CSV.

    Times are in the clinic's time zone; corrected and entered-in-error rows
    are included with their status, as they are in the figure.
    """
    tz = ZoneInfo(detail.clinic.timezone)
    local = lambda t: t.astimezone(tz) if t is not None else None  # noqa: E731
    records = [
        {
            "time": local(p.time),
            "end": local(p.end),
            "series": p.series,
            "value": p.value,
            "unit": p.unit,
            "status": p.status,
            "flags": p.flags,
            "late_entry": p.late_entry,
            "correction": p.correction,
            "entered_by": p.entered_by,
            "entered_at": local(p.entered_at),
            "detail": p.detail,
        }
        for p in all_points(detail, now or utcnow())
    ]
    frame = pd.DataFrame.from_records(records, columns=FRAME_COLUMNS)
    for column in ("time", "end", "entered_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_convert(tz)
    frame["value"] = frame["value"].astype("float64")
    frame[["late_entry", "correction"]] = frame[["late_entry", "correction"]].astype(bool)
    return frame.sort_values(["series", "time"], kind="stable").reset_index(drop=True)
