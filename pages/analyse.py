"""Analyse page: upload or record, then the fused emotion, the per-modality tables, and why."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from emotion_core.constants import EMOTIONS, FACE_EMOTIONS
from emotion_core.errors import MediaError
from emotion_core.explain import CAM_METHODS, region_shares
from emotion_core.html_report import render_html
from pages.common import (
    AUDIO_VIDEO_TYPES,
    EMOJI,
    IMAGE_TYPES,
    LIMITS_TEXT,
    Upload,
    analyze_upload,
    baseline_upload,
    clear_results,
    face_overlay,
    get_analyzer,
    lime_figure,
    probability_table,
    progress_columns,
    voice_lime,
)

st.title("Analyse a recording")
st.caption("Upload a short video, an audio file or a photo of one person, or record your voice. "
           + LIMITS_TEXT)

left, right = st.columns([3, 2])
with left:
    upload = st.file_uploader("Video, audio or photo", key="upload", type=AUDIO_VIDEO_TYPES + IMAGE_TYPES)
with right:
    recording = st.audio_input("…or record speech", key="recording")
    if st.button("Clear my results", help="Forget every upload and result of this session"):
        clear_results()
        st.rerun()

source = upload or recording
if source is None:
    st.info("Nothing analysed yet. Results are computed on this server's CPU and kept in memory only.")
    st.stop()

data = source.getvalue()
name = getattr(source, "name", None) or "recording.wav"
get_analyzer()  # load the models outside the status box
with st.status("Analysing: decoding, finding the face, listening to the voice…", expanded=False) as status:
    plain_up: Upload = (data, name, None, "", None)
    plain = analyze_upload(*plain_up)
    status.update(label="Analysis complete" if not plain.error else "Could not analyse this file",
                  state="complete" if not plain.error else "error")

if plain.error:
    st.error(plain.error)
    st.stop()

# --- personal baseline (optional) ---------------------------------------------------------------
NO_BASELINE, OTHER_RECORDING, STRETCH = "None", "A separate recording of this person", "A stretch of this recording"
up = plain_up
with st.expander("Personal baseline (optional)", expanded=st.session_state.get("bl_mode", NO_BASELINE) != NO_BASELINE):
    st.caption("People differ in how they usually sound. Give a stretch of this person speaking in their usual, "
               "calm way (half a minute is plenty) and the voice is read relative to it. Measured on RAVDESS "
               "actors: +1.3 points accuracy (see the model card). The face is read as before.")
    mode = st.radio("Baseline", [NO_BASELINE, OTHER_RECORDING, STRETCH], key="bl_mode", horizontal=True)
    if mode == OTHER_RECORDING:
        b = st.file_uploader("Baseline recording (audio or video of the same person)", key="baseline_upload",
                             type=AUDIO_VIDEO_TYPES)
        if b is not None:
            try:
                baseline_upload(b.getvalue(), b.name)
                up = (data, name, b.getvalue(), b.name, None)
            except MediaError as e:
                st.error(f"{e} The recording is analysed without a baseline.")
    elif mode == STRETCH:
        if plain.kind == "image" or not plain.duration:
            st.caption("A photo has no voice to take a baseline from.")
        else:
            dur = float(plain.duration)
            span = st.slider("Baseline stretch (seconds)", 0.0, dur, (0.0, min(dur, 10.0)), step=0.5, key="bl_span")
            up = (data, name, None, "", (float(span[0]), float(span[1])))

res = plain
if up[2] is not None or up[4] is not None:
    with st.spinner("Reading the voice relative to the baseline…"):
        res = analyze_upload(*up)
    if res.error:
        st.error(f"{res.error} Showing the analysis without a baseline.")
        res, up = plain, plain_up
for w in res.warnings:
    st.warning(w)
if res.probs is None:
    st.stop()

# --- headline --------------------------------------------------------------------------------
conf = float(res.probs.max())
c1, c2, c3 = st.columns(3)
c1.metric("Expressed emotion", f"{EMOJI[res.label]} {res.label}")
c2.metric("Confidence (calibrated)", f"{conf:.0%}")
agreement_text = {"agree": "agree", "disagree": "disagree", "uncertain": "unsure", None: "one modality"}[res.agreement]
c3.metric("Face / voice", agreement_text)
if res.agreement == "disagree":
    st.info("Face and voice each point confidently to a different emotion. This can be clinically "
            "interesting (masking, incongruent affect), so the two are shown separately below.")
if conf < 0.4:
    st.caption("Low confidence: several emotions are about equally likely.")
if res.baseline is not None and res.voice is not None and plain.voice is not None:
    before, after = EMOTIONS[int(np.argmax(plain.voice.probs))], EMOTIONS[int(np.argmax(res.voice.probs))]
    st.caption(f"Voice read relative to the baseline ({res.baseline.source}, {res.baseline.voiced_seconds:.0f} s of "
               f"speech): {after} {res.voice.probs.max():.0%}; without the baseline: {before} "
               f"{plain.voice.probs.max():.0%}.")

# --- tables and chart ------------------------------------------------------------------------
table = probability_table(res)
tcol, ccol = st.columns([1, 1])
with tcol:
    st.subheader("Per emotion")
    st.dataframe(table, hide_index=True, column_config=progress_columns(["Face", "Voice", "Fusion"]),
                 width="stretch")
    st.caption("The face model has no 'calm' class (its training data has none); calm comes from the voice.")
with ccol:
    fig = go.Figure()
    for col, color in (("Face", "#8FB8C9"), ("Voice", "#C9A98F"), ("Fusion", "#4C7A8C")):
        if table[col].notna().any():
            fig.add_bar(name=col, x=list(EMOTIONS), y=table[col], marker_color=color)
    fig.update_layout(barmode="group", yaxis_tickformat=".0%", height=320, margin={"t": 10, "b": 10},
                      legend={"orientation": "h"})
    st.plotly_chart(fig, width="stretch")

# --- timeline ----------------------------------------------------------------------------------
face_frames = res.face.frames if res.face else []
voice_windows = res.voice.windows if res.voice else []
if (res.duration or 0) > 2 and (len(face_frames) > 1 or len(voice_windows) > 1):
    st.subheader("Through the recording")
    show = st.multiselect("Emotions to plot", list(EMOTIONS), default=list(dict.fromkeys(
        [res.label] + [EMOTIONS[int(np.argmax(f.probs))] for f in face_frames[:1]]))[:3])
    fig = go.Figure()
    for e in show:
        k = EMOTIONS.index(e)
        fused = [w for w in res.timeline if w.probs is not None]
        if fused:
            fig.add_scatter(x=[(w.start + w.end) / 2 for w in fused], y=[w.probs[k] for w in fused],
                            mode="lines+markers", line={"width": 3}, name=f"fused · {e}")
        if face_frames:
            fig.add_scatter(x=[f.t for f in face_frames], y=[f.probs[k] for f in face_frames], mode="lines",
                            line={"width": 1}, name=f"face · {e}")
        if voice_windows:
            fig.add_scatter(x=[(w.start + w.end) / 2 for w in voice_windows], y=[w.probs[k] for w in voice_windows],
                            mode="lines+markers", line={"dash": "dot"}, name=f"voice · {e}")
    fig.update_layout(height=300, yaxis_tickformat=".0%", xaxis_title="seconds", margin={"t": 10})
    st.plotly_chart(fig, width="stretch")
    st.dataframe(pd.DataFrame([{"window": f"{w.start:.1f}–{w.end:.1f} s", "fused": w.label or "—",
                                "face": EMOTIONS[int(np.argmax(w.face))] if w.face is not None else "—",
                                "voice": EMOTIONS[int(np.argmax(w.voice))] if w.voice is not None else "—",
                                "agreement": w.agreement or "—", "notes": ", ".join(w.notes)} for w in res.timeline]),
                 hide_index=True, width="stretch")

    def _go_to_moment() -> None:
        """Point both explanation panels at the chosen timeline window."""
        w = res.timeline[st.session_state["moment"]]
        kept_frames = [f for f in face_frames if f.crop_rgb is not None]
        inside = [j for j, f in enumerate(kept_frames) if w.start <= f.t <= w.end]
        if inside:
            st.session_state["face_moment"] = max(inside, key=lambda j: kept_frames[j].probs.max())
        same = [j for j, v in enumerate(voice_windows) if abs(v.start - w.start) < 1e-3]
        if same:
            st.session_state["lime_w"] = same[0]

    st.selectbox("Explain this moment", range(len(res.timeline)), key="moment", on_change=_go_to_moment,
                 format_func=lambda j: f"{res.timeline[j].start:.1f}–{res.timeline[j].end:.1f} s: "
                                       f"{res.timeline[j].label or 'no answer'}",
                 help="Sets the face frame (the most confident one in this window) and the voice window below.")

# --- explanations side by side -----------------------------------------------------------------
st.subheader("Why: what the models looked at and listened to")
fcol, vcol = st.columns(2)
with fcol:
    st.markdown("**Face — Grad-CAM**")
    kept = [f for f in face_frames if f.crop_rgb is not None]
    if not kept:
        st.caption("No face to explain.")
    else:
        best = int(np.argmax([f.probs.max() for f in kept]))
        if "face_moment" not in st.session_state:
            st.session_state["face_moment"] = best
        i = st.select_slider("Moment", options=list(range(len(kept))), format_func=lambda j: f"{kept[j].t:.1f} s",
                             key="face_moment") if len(kept) > 1 else 0
        face_pred = FACE_EMOTIONS[int(np.argmax(kept[i].probs[[EMOTIONS.index(e) for e in FACE_EMOTIONS]]))]
        target = st.selectbox("Explain the emotion", FACE_EMOTIONS, index=FACE_EMOTIONS.index(face_pred), key="cam_t")
        method = st.selectbox("Method", CAM_METHODS, key="cam_m")
        img, cam = face_overlay(up, i, target, method)
        st.image(img, caption=f"{method} for '{target}' at {kept[i].t:.1f} s (face says {face_pred})", width=320)
        shares = region_shares(cam)
        st.caption("Attention: " + ", ".join(f"{k.replace('_', ' & ')} {v:.0%}" for k, v in shares.items()))
with vcol:
    st.markdown("**Voice — LIME on the spectrogram**")
    if not voice_windows:
        st.caption("No voice to explain.")
    else:
        wi = st.selectbox("Window", range(len(voice_windows)), key="lime_w",
                          format_func=lambda j: f"{voice_windows[j].start:.1f}–{voice_windows[j].end:.1f} s") \
            if len(voice_windows) > 1 else 0
        voice_pred = EMOTIONS[int(np.argmax(voice_windows[wi].probs))]
        choice = st.selectbox("Explain the emotion", ["predicted", "all eight", *EMOTIONS], key="lime_t")
        n_samples = st.select_slider("LIME samples", options=[200, 500, 1000], value=200, key="lime_n",
                                     help="More samples: steadier explanation, longer wait (about 30 ms each on 2 cores)")
        targets = (voice_pred,) if choice == "predicted" else tuple(EMOTIONS) if choice == "all eight" else (choice,)
        with st.spinner("Perturbing the spectrogram and asking the voice model…"):
            ex = voice_lime(up, wi, targets, n_samples)
        tabs = st.tabs(list(targets)) if len(targets) > 1 else [st.container()]
        for tab, emo in zip(tabs, targets, strict=True):
            with tab:
                st.plotly_chart(lime_figure(ex, emo), width="stretch", key=f"lime_{emo}")
                st.caption(f"Red cells raise '{emo}', blue cells lower it (fit R² {ex.score[emo]:.2f}).")

# --- downloads ---------------------------------------------------------------------------------
st.subheader("Download")
rows = [{"modality": "face", "t": f.t, **dict(zip(EMOTIONS, f.probs, strict=True))} for f in face_frames]
rows += [{"modality": "voice", "t": w.start, "end": w.end, **dict(zip(EMOTIONS, w.probs, strict=True))}
         for w in voice_windows]
csv = io.StringIO()
pd.DataFrame(rows).to_csv(csv, index=False)
d1, d2, d3 = st.columns(3)
cam_img = cam_cap = None
if face_frames and any(f.crop_rgb is not None for f in face_frames):
    kept_all = [f for f in face_frames if f.crop_rgb is not None]
    j = int(np.argmax([f.probs.max() for f in kept_all]))
    t_emo = FACE_EMOTIONS[int(np.argmax(kept_all[j].probs[[EMOTIONS.index(e) for e in FACE_EMOTIONS]]))]
    cam_img, _ = face_overlay(up, j, t_emo, "gradcam")
    cam_cap = f"Grad-CAM for '{t_emo}' at {kept_all[j].t:.1f} s"
d3.download_button("Report (HTML)", render_html(res, cam_img, cam_cap or ""), file_name="emotion_report.html",
                   mime="text/html")
d1.download_button("Results (JSON)", json.dumps(res.to_dict(), indent=2), file_name="emotion_result.json",
                   mime="application/json")
d2.download_button("Per-frame and per-window probabilities (CSV)", csv.getvalue(), file_name="emotion_timeline.csv",
                   mime="text/csv")
