"""The console's plots, as plotly figures (JSON for plotly.js in the page).

Where people would rather look than read: allocations per hour and occupancy over the last day,
and how long parcels wait for their customers. plotly.js itself is served from the plotly
package (`cloud.ops.pages`), so the console needs nothing from the internet.
"""

from __future__ import annotations

from datetime import datetime

import plotly.graph_objects as go

_LAYOUT = {
    "margin": {"l": 40, "r": 10, "t": 36, "b": 40},
    "height": 260,
    "autosize": True,
    "font": {"size": 12},
}


_HOUR_MS = 3_600_000


def allocations_per_hour(series: list[tuple[datetime, int]]) -> str:
    figure = go.Figure(
        go.Bar(
            x=[hour for hour, _ in series],
            y=[n for _, n in series],
            name="allocations",
            # Each bar spans its hour (offset to start at it), whatever the number of bars.
            width=[_HOUR_MS * 0.9] * len(series),
            offset=0,
        ),
        layout={**_LAYOUT, "title": {"text": "Allocations per hour (24 h, UTC)"}},
    )
    figure.update_xaxes(type="date", dtick=3 * _HOUR_MS, tickformat="%H:%M")
    figure.update_yaxes(rangemode="tozero", title_text="allocations")
    return str(figure.to_json())


def occupancy(series: list[tuple[datetime, int]], doors: int) -> str:
    figure = go.Figure(
        go.Scatter(
            x=[hour for hour, _ in series],
            y=[n for _, n in series],
            mode="lines+markers",
            line={"shape": "hv"},
            name="doors with a parcel",
        ),
        layout={**_LAYOUT, "title": {"text": "Doors with a parcel (24 h, UTC)"}},
    )
    figure.update_xaxes(type="date", dtick=3 * _HOUR_MS, tickformat="%H:%M")
    figure.update_yaxes(range=[0, max(doors, 1)], title_text=f"of {doors} doors")
    return str(figure.to_json())


def dwell_time(hours: list[float]) -> str:
    figure = go.Figure(
        go.Histogram(x=hours, nbinsx=24, name="parcels"),
        layout={**_LAYOUT, "title": {"text": "Hours from deposit to pickup (30 days)"}},
    )
    figure.update_xaxes(title_text="hours", rangemode="tozero")
    figure.update_yaxes(title_text="parcels", rangemode="tozero")
    if not hours:
        figure.add_annotation(
            text="No parcel picked up here in 30 days",
            showarrow=False,
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
        )
        figure.update_xaxes(visible=False)
        figure.update_yaxes(visible=False)
    return str(figure.to_json())
