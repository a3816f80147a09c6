"""Plotly figures shared by the app and the HTML report, so both draw a recording the same way."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .constants import EMOTIONS
from .session import Source, TimelineWindow, emotion_map


def emotion_map_figure(timeline: list[TimelineWindow], source: Source = "fused", smoothing_s: float = 0.0
                       ) -> go.Figure:
    """Emotions by time, colour = probability (the ``source`` reading, smoothed over ``smoothing_s``);
    a range slider under it zooms into the recording."""
    times, p = emotion_map(timeline, source, smoothing_s)
    ends = np.append(times[1:], timeline[-1].end) if len(times) else times
    fig = go.Figure(go.Heatmap(z=p, x=(times + ends) / 2, y=list(EMOTIONS), zmin=0, zmax=1, colorscale="Blues",
                               colorbar={"title": "p", "tickformat": ".0%"},
                               hovertemplate="%{y} at %{x:.0f} s: %{z:.0%}<extra></extra>"))
    fig.update_layout(height=330, margin={"t": 10, "b": 10}, xaxis={"title": "seconds", "rangeslider": {"visible": True}},
                      yaxis={"autorange": "reversed"})
    return fig
