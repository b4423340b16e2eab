"""The chair-utilisation heatmap: weekdays top to bottom Monday first, hours left to right in clock order,
whatever order the sites' opening hours put the cells in."""

from __future__ import annotations

import pandas as pd

from infusion.charts.trends import utilisation_figure
from infusion.reads.trends.utilisation import UTILISATION_COLUMNS, WEEKDAY_NAMES


def test_hours_open_only_at_a_later_site_are_drawn_in_clock_order() -> None:
    # Northside 08-10 Monday; Riverside 07-11 Tuesday: the read lists Monday's hours first
    cells = [(0, 8, 0.5), (0, 9, 1.0), (1, 7, 0.25), (1, 8, 0.0), (1, 9, 0.75), (1, 10, 1.0)]
    frame = pd.DataFrame(
        [(w, WEEKDAY_NAMES[w], h, 1.0, share, share) for w, h, share in cells], columns=list(UTILISATION_COLUMNS)
    )
    heatmap = utilisation_figure(frame).data[0]
    assert list(heatmap.x) == ["07:00", "08:00", "09:00", "10:00"]
    assert list(heatmap.y) == ["Mon", "Tue"]
    z = pd.DataFrame(heatmap.z, index=heatmap.y, columns=heatmap.x)
    assert z.loc["Tue", "07:00"] == 0.25 and z.loc["Mon", "09:00"] == 1.0
    assert pd.isna(z.loc["Mon", "07:00"]) and pd.isna(z.loc["Mon", "10:00"])  # closed: blank, not 0 %
