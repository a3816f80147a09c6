"""Analyse page: upload or record, then the fused emotion, the per-modality tables, and why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from emotion_core.constants import EMOTIONS
from emotion_core.errors import MediaError
from emotion_core.html_report import render_html
from emotion_core.session import SESSION_VIEW_S
from emotion_core.tiers import eaf_text, result_tiers, textgrid_text
from pages.ui.analysis_job import analysis_of
from pages.ui.common import (
    FORMATS_HELP,
    LIMITS_TEXT,
    BaselineChoice,
    Upload,
    clear_results,
    get_analyzer,
    memory_dir,
    with_baseline,
)
from pages.ui.navigation import ensure_app_navigation
from pages.ui.sections import baseline_chooser, face_panel, profile_chooser, timeline_section, voice_panel
from pages.ui.session_view import session_section
from pages.ui.widgets import AGREEMENT_TEXT, EMOJI, branch_chart, probability_table, progress_columns

ensure_app_navigation()

st.title("Analyse a recording")
st.caption("Upload a short video, an audio file or a photo of one person, or record your voice. " + LIMITS_TEXT)
left, right = st.columns([3, 2])
upload = left.file_uploader("Video, audio or photo", key="upload", help=FORMATS_HELP)
recording = right.audio_input("…or record speech", key="recording")
if right.button("Clear my results", help="Forget every upload and result of this session"):
    clear_results()
    st.rerun()
source = upload or recording
if source is None:
    st.info("Nothing analysed yet. Results are computed on this server and kept in memory only.")
    st.stop()
up = Upload(source.getvalue(), getattr(source, "name", None) or "recording.wav")
get_analyzer()  # load the models before the analysis starts
plain = analysis_of(up)
if plain is None:  # still running (its progress is shown) or cancelled
    st.stop()
if plain.error:
    st.error(plain.error)
    st.stop()

# --- personal baseline (optional): only the voice is read again ---------------------------------
choice, profile = baseline_chooser(plain), profile_chooser()
res = plain
if choice is not None or profile is not None:
    try:
        with st.spinner("Reading the voice again…"):
            res = with_baseline(up, choice or BaselineChoice(), profile)
    except MediaError as e:
        st.error(f"{e} Showing the analysis without a baseline{' or profile' if profile is not None else ''}.")
if res.profile is not None:
    st.caption(f"Voice read through the profile '{res.profile['name']}' (fitted on {res.profile['clips']}).")
for w in res.warnings:
    st.warning(w)
if res.probs is None:
    st.stop()

# --- headline, tables and chart ----------------------------------------------------------------
c1, c2, c3 = st.columns(3)
c1.metric("Expressed emotion", f"{EMOJI[res.label]} {res.label}")
c2.metric("Confidence (calibrated)", f"{res.probs.max():.0%}")
c3.metric("Face / voice", AGREEMENT_TEXT[res.agreement])
if res.agreement == "disagree":
    st.info("Face and voice each point confidently to a different emotion. This can be clinically "
            "interesting (masking, incongruent affect), so the two are shown separately below.")
if res.probs.max() < 0.4:
    st.caption("Low confidence: several emotions are about equally likely.")
if res.baseline is not None and res.voice is not None and plain.voice is not None:
    before, after = EMOTIONS[int(np.argmax(plain.voice.probs))], EMOTIONS[int(np.argmax(res.voice.probs))]
    st.caption(f"Voice read relative to the baseline ({res.baseline.source}, {res.baseline.voiced_seconds:.0f} s of "
               f"speech): {after} {res.voice.probs.max():.0%}; without the baseline: {before} "
               f"{plain.voice.probs.max():.0%}.")
table = probability_table(res)
tcol, ccol = st.columns([1, 1])
tcol.subheader("Per emotion")
tcol.dataframe(table, hide_index=True, column_config=progress_columns(["Face", "Voice", "Fusion"]), width="stretch")
tcol.caption("The face model has no 'calm' class (its training data has none); calm comes from the voice. The voice "
             "model learned mostly from 20 North-American actors (its probe also from Urdu talk shows and Turkish "
             "actors): on other languages and settings it is much weaker and rarely says neutral for everyday talk "
             "(model card, 'Voice beyond RAVDESS'); a profile from 'Your data' adapts it.")
ccol.plotly_chart(branch_chart(table), width="stretch")

# --- a long recording as a session, a short one as a timeline; then the explanations --------------
if (res.duration or 0) > SESSION_VIEW_S and len(res.timeline) > 1:
    session_section(res, profile)
elif (res.duration or 0) > 2 and ((res.face and len(res.face.frames) > 1) or len(res.voice_windows) > 1):
    timeline_section(res)
st.subheader("Why: what the models looked at and listened to")
fcol, vcol = st.columns(2)
with fcol:
    cam_img, cam_caption = face_panel(res)
with vcol:
    voice_panel(res, profile)

# --- downloads (the report carries the face map shown above) -------------------------------------
st.subheader("Download")
d1, d2, d3, d4, d5 = st.columns(5)
d1.download_button("Results (JSON)", json.dumps(res.to_dict(), indent=2), file_name="emotion_result.json",
                   mime="application/json")
d2.download_button("Per-frame and per-window probabilities (CSV)",
                   pd.DataFrame(res.branch_rows()).to_csv(index=False), file_name="emotion_timeline.csv", mime="text/csv")
d3.download_button("Report (HTML)", render_html(res, cam_img, cam_caption or ""), file_name="emotion_report.html",
                   mime="text/html")
if res.kind != "image":  # the reading as tiers beside the recording, for ELAN and Praat (README, "Coding")
    tiers = result_tiers(res)
    d4.download_button("ELAN (.eaf)", eaf_text(tiers), file_name=f"{Path(up.name).stem}.eaf", mime="application/xml",
                       help="Tiers fused, face, voice and agreement (and, for a session, sustained and disagreement); "
                       "save it next to the recording and open it in ELAN.")
    d5.download_button("Praat (.TextGrid)", textgrid_text(tiers, memory_dir()), file_name=f"{Path(up.name).stem}.TextGrid",
                       mime="text/plain", help="The same tiers for Praat; overlapping windows end where the next begins.")
