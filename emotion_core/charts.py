"""Plotly figures shared by the app and the HTML report, so both draw a recording the same way."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .constants import EMOTIONS
from .session import Source, TimelineWindow, emotion_map

CodedRow = tuple[float, float, str, bool | None]
"""A coded segment drawn above the map: (start s, end s, the coder's label, whether the model agreed; None: no reading)."""
AGREE_COLOURS = {True: "#2ca02c", False: "#d62728", None: "#9e9e9e"}


def emotion_map_figure(timeline: list[TimelineWindow], source: Source = "fused", smoothing_s: float = 0.0,
                       coded: Sequence[CodedRow] | None = None) -> go.Figure:
    """Emotions by time, colour = probability (the ``source`` reading, smoothed over ``smoothing_s``);
    a range slider under it zooms into the recording. ``coded``: a researcher's coded segments as a row
    above the map, green where the model's reading agrees, red where not."""
    times, p = emotion_map(timeline, source, smoothing_s)
    ends = np.append(times[1:], timeline[-1].end) if len(times) else times
    heat = go.Heatmap(z=p, x=(times + ends) / 2, y=list(EMOTIONS), zmin=0, zmax=1, colorscale="Blues",
                      colorbar={"title": "p", "tickformat": ".0%"},
                      hovertemplate="%{y} at %{x:.0f} s: %{z:.0%}<extra></extra>")
    if not coded:
        fig = go.Figure(heat)
        fig.update_layout(height=330, margin={"t": 10, "b": 10},
                          xaxis={"title": "seconds", "rangeslider": {"visible": True}}, yaxis={"autorange": "reversed"})
        return fig
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.16, 0.84], vertical_spacing=0.03)
    verdict = {True: "agrees", False: "disagrees", None: "no reading"}
    fig.add_trace(go.Bar(x=[e - s for s, e, _, _ in coded], base=[s for s, _, _, _ in coded], y=["coded"] * len(coded),
                         orientation="h", text=[label for _, _, label, _ in coded], textposition="inside",
                         marker={"color": [AGREE_COLOURS[a] for *_, a in coded]}, showlegend=False,
                         customdata=[[s, e, verdict[a]] for s, e, _, a in coded],
                         hovertemplate="%{text} %{customdata[0]:.1f}–%{customdata[1]:.1f} s: the model "
                         "%{customdata[2]}<extra></extra>"), row=1, col=1)
    fig.add_trace(heat, row=2, col=1)
    fig.update_layout(height=380, margin={"t": 10, "b": 10}, bargap=0.1)
    fig.update_yaxes(autorange="reversed", row=2, col=1)
    fig.update_xaxes(title="seconds", rangeslider={"visible": True, "thickness": 0.06}, row=2, col=1)
    return fig
