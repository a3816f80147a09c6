"""The Analyse page's view of a long recording: the emotion map over time, the share of time per
emotion, the sustained stretches and the face/voice disagreements, each a button that moves the
explanation panels there. All numbers come from ``AnalysisResult.summary`` (``emotion_core.session``)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from emotion_core.analysis import AnalysisResult
from emotion_core.charts import emotion_map_figure
from emotion_core.constants import EMOTIONS
from emotion_core.session import MIN_SEGMENT_S, SMOOTHING_S, SOURCES
from pages.ui.widgets import progress_columns

MAX_LISTED = 30
"""Stretches listed as buttons per list; the rest are in the downloads."""


def point_panels_at(res: AnalysisResult, start: float, end: float) -> None:
    """Move both explanation panels to a stretch: its most confident face frame and most voiced window."""
    if (j := res.best_frame(start, end)) is not None:
        st.session_state["face_moment"] = j
    if (k := res.main_voice_window(start, end)) is not None:
        st.session_state["lime_w"] = k


def session_section(res: AnalysisResult) -> None:
    """A long recording at a glance: the emotion map, time per emotion, sustained stretches and the
    moments where face and voice disagree; a click on a stretch moves the explanation panels there."""
    st.subheader("The session")
    left, right = st.columns([3, 1])
    source = right.radio("Reading", SOURCES, key="map_source", horizontal=True,
                         help="fused: face and voice together; or either branch alone")
    smoothing = right.slider("Smoothing (seconds)", 0, 60, int(SMOOTHING_S), step=2, key="map_smoothing",
                             help="Moving average over the 4-s windows before the map and the stretches are read")
    min_s = right.slider("Sustained: at least (seconds)", 4, 120, int(MIN_SEGMENT_S), step=2, key="min_segment")
    left.plotly_chart(emotion_map_figure(res.timeline, source, smoothing), width="stretch", key="emotion_map")
    summary = res.summary(smoothing, min_s)
    shares, lists = st.columns([3, 2])
    shares.markdown("**Share of the time**")
    shares.dataframe(pd.DataFrame({"emotion": list(EMOTIONS)} | {s: [summary.time_share[s][e] for e in EMOTIONS]
                                                                for s in SOURCES}),
                     hide_index=True, column_config=progress_columns(list(SOURCES)), width="stretch", key="time_shares")
    shares.caption("Of the time each could be read: " + ", ".join(f"{s} {summary.seconds_read[s]:.0f} s"
                                                                  for s in SOURCES))
    with lists:
        st.markdown(f"**Sustained: one emotion for at least {min_s} s** (click to explain)")
        for i, g in enumerate(summary.segments[:MAX_LISTED]):
            st.button(f"{g.start:.0f}–{g.end:.0f} s · {g.emotion} ({g.mean_probability:.0%})", key=f"segment_{i}",
                      on_click=point_panels_at, args=(res, g.start, g.end))
        if not summary.segments:
            st.caption("No emotion held that long; try less smoothing or a shorter span.")
        st.markdown("**Face and voice disagree** (click to explain)")
        for i, d in enumerate(summary.disagreements[:MAX_LISTED]):
            st.button(f"{d.start:.0f}–{d.end:.0f} s · face {d.face}, voice {d.voice}", key=f"disagree_{i}",
                      on_click=point_panels_at, args=(res, d.start, d.end))
        if not summary.disagreements:
            st.caption("Face and voice never confidently disagree.")
        hidden = max(0, len(summary.segments) - MAX_LISTED) + max(0, len(summary.disagreements) - MAX_LISTED)
        if hidden:
            st.caption(f"{hidden} more in the downloads (JSON, HTML report).")
