"""The Analyse page's view of a long recording: the emotion map over time, the share of time per
emotion, the sustained stretches and the face/voice disagreements, each a button that moves the
explanation panels there. All numbers come from ``AnalysisResult.summary`` (``emotion_core.session``).
A researcher's coding of the recording (ELAN, Praat or a segment CSV) is drawn as a row above the map
and scored segment by segment (``emotion_core.own_data.evaluate_result``)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from emotion_core.analysis import AnalysisResult
from emotion_core.charts import CodedRow, emotion_map_figure
from emotion_core.coding import read_coding_upload
from emotion_core.constants import EMOTIONS
from emotion_core.own_data import SEGMENT_VOICE, EvaluationReport, evaluate_result
from emotion_core.profile import VoiceProfile
from emotion_core.session import MIN_SEGMENT_S, SMOOTHING_S, SOURCES
from pages.ui.common import get_analyzer, memory_dir
from pages.ui.widgets import progress_columns

MAX_LISTED = 30
"""Stretches listed as buttons per list; the rest are in the downloads."""


def point_panels_at(res: AnalysisResult, start: float, end: float) -> None:
    """Move both explanation panels to a stretch: its most confident face frame and most voiced window."""
    if (j := res.best_frame(start, end)) is not None:
        st.session_state["face_moment"] = j
    if (k := res.main_voice_window(start, end)) is not None:
        st.session_state["lime_w"] = k


def session_section(res: AnalysisResult, profile: bytes | None = None) -> None:
    """A long recording at a glance: the emotion map, time per emotion, sustained stretches and the
    moments where face and voice disagree; a click on a stretch moves the explanation panels there."""
    st.subheader("The session")
    left, right = st.columns([3, 1])
    source = right.radio("Reading", SOURCES, key="map_source", horizontal=True,
                         help="fused: face and voice together; or either branch alone")
    smoothing = right.slider("Smoothing (seconds)", 0, 60, int(SMOOTHING_S), step=2, key="map_smoothing",
                             help="Moving average over the 4-s windows before the map and the stretches are read")
    min_s = right.slider("Sustained: at least (seconds)", 4, 120, int(MIN_SEGMENT_S), step=2, key="min_segment")
    report = coding_report(res, source, right, profile)
    rows: list[CodedRow] | None = None
    if report is not None:
        rows = [(s.item.start or 0.0, s.item.end or 0.0, s.item.label, None if r["predicted"] == "" else
                 r["predicted"] == s.item.label) for s, r in zip(report.items, report.rows(), strict=True)]
    left.plotly_chart(emotion_map_figure(res.timeline, source, smoothing, rows), width="stretch", key="emotion_map")
    if report is not None:
        coding_figures(report, source)
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


SEGMENT_VOICE_TEXT = {"span": "its own audio", "windows": "the map's 4-s windows"}


def coding_report(res: AnalysisResult, source: str, where: Any, profile: bytes | None = None
                  ) -> EvaluationReport | None:
    """The uploaded coding of this recording scored with ``source``'s reading; None without one (or with a
    message when the file cannot serve). The coding file is read in memory-backed storage and dropped.
    A segment's voice is read from its own audio (through ``profile``) unless the user picks the map's
    windows, or the voice was read relative to a baseline (its windows carry it)."""
    up = where.file_uploader("Your coding of this recording", type=["eaf", "textgrid", "csv"], key="coding_file",
                             help="An ELAN .eaf, a Praat .TextGrid or a CSV with start,end,label (seconds): each coded "
                             "segment is compared with the model's reading over exactly that span.")
    if up is None:
        return None
    tier = st.session_state.get("coding_tier")
    try:
        items, tiers = read_coding_upload(up.name, up.getvalue(), res.file, float(res.duration or 0), tier,
                                          tmp_dir=memory_dir())
    except ValueError as e:
        where.error(str(e))
        return None
    if len(tiers) > 1:
        where.selectbox("Coded tier", tiers, key="coding_tier", index=None, placeholder="choose the coded tier")
    if not items:
        return None
    mode = where.radio("A segment's voice", SEGMENT_VOICE, key="coding_voice", horizontal=True,
                       format_func=SEGMENT_VOICE_TEXT.get, disabled=res.baseline is not None or res.audio is None,
                       help="Its own audio: the voice model hears exactly the coded segment, as it would that clip "
                       "alone. The map's windows: the 4-s windows overlapping it, weighted by overlap (a short "
                       "segment then also hears its neighbours).")
    reader = None
    if mode == "span" and res.baseline is None and res.audio is not None:
        reader = get_analyzer().with_profile(None if profile is None else VoiceProfile.from_bytes(profile))
    return evaluate_result(res, items, source, span_reader=reader)


def coding_figures(report: EvaluationReport, source: str) -> None:
    """Agreement with the coding: the figures, and one row per coded segment."""
    doc = report.to_dict()
    st.markdown(f"**Your coding and the {source} reading** (predictions among the emotions you coded)")
    m1, m2, m3, m4, m5 = st.columns(5)
    m1.metric("Segments scored", doc["n"])
    m2.metric("Agreement", "–" if doc["accuracy"] is None else f"{doc['accuracy']:.0%}")
    m3.metric("Cohen's kappa", "–" if doc["kappa"] is None else f"{doc['kappa']:.2f}",
              help="Agreement beyond chance given how often you and the model use each code (1: perfect, 0: chance)")
    m4.metric("Unweighted average recall", "–" if doc["uar"] is None else f"{doc['uar']:.0%}")
    m5.metric("Not scored", len(doc["failed"]))
    table = pd.DataFrame([{"start": r["start"], "end": r["end"], "coded": r["label"], "model": r["predicted"] or "–",
                           "agrees": None if not r["predicted"] else r["predicted"] == r["label"],
                           "where": r["where"]} for r in report.rows()])
    st.dataframe(table, hide_index=True, width="stretch", key="coding_table",
                 column_config={"start": st.column_config.NumberColumn(format="%.1f s"),
                                "end": st.column_config.NumberColumn(format="%.1f s")})
    st.download_button("Per-segment comparison (CSV)", pd.DataFrame(report.rows()).to_csv(index=False),
                       file_name="coding_comparison.csv", mime="text/csv", key="coding_csv")
    st.caption("Each segment is read from this analysis: the face frames inside it and its voice (its own audio, "
               "or the 4-s windows overlapping it, weighted by how much of them lies inside; a segment shorter than "
               "a window then also hears the speech around it), fused as the timeline is.")
