"""The Analyse page's larger sections, one function each: the baseline chooser, the timeline and
the two explanation panels. They lay out what an ``AnalysisResult`` already knows."""

from __future__ import annotations

import numpy as np
import streamlit as st

from emotion_core.analysis import AnalysisResult
from emotion_core.constants import EMOTIONS, FACE_EMOTIONS
from emotion_core.explain import CAM_METHODS, LIME_SAMPLES, TOP_CELLS, region_shares
from pages.ui.common import FORMATS_HELP, BaselineChoice, Upload, face_overlay, voice_lime, window_audio
from pages.ui.widgets import lime_figure, timeline_figure, timeline_table

NO_BASELINE, OTHER_RECORDING, STRETCH = "None", "A separate recording of this person", "A stretch of this recording"


def baseline_chooser(plain: AnalysisResult) -> BaselineChoice | None:
    """The optional personal baseline: a separate recording or a stretch of this one."""
    expanded = st.session_state.get("bl_mode", NO_BASELINE) != NO_BASELINE
    with st.expander("Personal baseline (optional)", expanded=expanded):
        st.caption("People differ in how they usually sound. Give a stretch of this person speaking in their usual, "
                   "calm way (half a minute is plenty) and the voice is read relative to it. Measured on RAVDESS "
                   "actors: +0.8 points accuracy. On a language it never heard (acted Turkish words) it over-corrects: "
                   "it read 85 % of a speaker's other calm words as calm (9 % without), but only 23 % of their "
                   "emotional words right (51 % without). See the model card. The face is read as before.")
        mode = st.radio("Baseline", [NO_BASELINE, OTHER_RECORDING, STRETCH], key="bl_mode", horizontal=True)
        if mode == OTHER_RECORDING:
            b = st.file_uploader("Baseline recording (audio or video of the same person)", key="baseline_upload",
                                 help=FORMATS_HELP)
            return BaselineChoice(recording=Upload(b.getvalue(), b.name)) if b is not None else None
        if mode == STRETCH and (plain.kind == "image" or not plain.duration):
            st.caption("A photo has no voice to take a baseline from.")
        elif mode == STRETCH:
            dur = float(plain.duration)
            span = st.slider("Baseline stretch (seconds)", 0.0, dur, (0.0, min(dur, 10.0)), step=0.5, key="bl_span")
            return BaselineChoice(span=(float(span[0]), float(span[1])))
    return None


NO_PROFILE, SESSION_PROFILE, PROFILE_FILE = "None (the shipped model)", "Built on the 'Your data' page", "A profile file"


def profile_chooser() -> bytes | None:
    """The optional voice profile: the one built in this session on 'Your data', or an uploaded file."""
    built = st.session_state.get("voice_profile")
    with st.expander("Voice profile (optional)", expanded=st.session_state.get("profile_mode", NO_PROFILE) != NO_PROFILE):
        st.caption("A profile adapts the voice model to your group's own recordings (made on the 'Your data' page or "
                   "with `python -m emotion_core adapt`). It only re-weighs the emotions it was fitted on.")
        modes = [NO_PROFILE, *([SESSION_PROFILE] if built else []), PROFILE_FILE]
        mode = st.radio("Profile", modes, key="profile_mode", horizontal=True)
        if mode == SESSION_PROFILE:
            st.caption(f"{built['info']['name']}: fitted on {built['info']['clips']}.")
            return built["bytes"]
        if mode == PROFILE_FILE:
            f = st.file_uploader("Profile file", key="profile_upload")
            return f.getvalue() if f is not None else None
    return None


def timeline_section(res: AnalysisResult) -> None:
    """The recording through time; choosing a moment points both explanation panels at it."""
    st.subheader("Through the recording")
    first_face = [res.face.frames[0].face_label] if res.face and res.face.frames else []
    show = st.multiselect("Emotions to plot", list(EMOTIONS), default=list(dict.fromkeys([res.label, *first_face]))[:3])
    st.plotly_chart(timeline_figure(res, show), width="stretch")
    st.dataframe(timeline_table(res), hide_index=True, width="stretch")

    def go_to_moment() -> None:
        w = res.timeline[st.session_state["moment"]]
        if (j := res.best_frame(w.start, w.end)) is not None:
            st.session_state["face_moment"] = j
        if (k := res.voice_window_at(w.start)) is not None:
            st.session_state["lime_w"] = k

    st.selectbox("Explain this moment", range(len(res.timeline)), key="moment", on_change=go_to_moment,
                 format_func=lambda j: f"{res.timeline[j].start:.1f}–{res.timeline[j].end:.1f} s: "
                                       f"{res.timeline[j].label or 'no answer'}",
                 help="Sets the face frame (the most confident one in this window) and the voice window below.")


def face_panel(res: AnalysisResult) -> tuple[np.ndarray | None, str]:
    """A class-activation map on a chosen face frame; returns the overlay shown and its caption (for the report)."""
    st.markdown("**Face — what the face model reacts to (occlusion map by default)**")
    kept = res.kept_frames
    if not kept:
        st.caption("No face to explain.")
        return None, ""
    st.session_state.setdefault("face_moment", res.best_frame())
    i = st.select_slider("Moment", options=list(range(len(kept))), format_func=lambda j: f"{kept[j].t:.1f} s",
                         key="face_moment") if len(kept) > 1 else 0
    fr = kept[i]
    target = st.selectbox("Explain the emotion", FACE_EMOTIONS, index=FACE_EMOTIONS.index(fr.face_label), key="cam_t")
    method = st.selectbox("Method", CAM_METHODS, key="cam_m",
                          help="'occlusion' blurs each 8-pixel square of the face in turn and shows how far the "
                               "emotion's probability falls (121 model calls, about a second). The others are "
                               "class-activation maps of the Grad-CAM family: instant, but they read the network's "
                               "inner layer (8x8 cells) and passed the deletion test on 71 % of held-out faces "
                               "against 94 % for occlusion (model card).")
    with st.spinner("Blurring each part of the face in turn…" if method == "occlusion" else "Reading the network…"):
        img, cam = face_overlay(fr.crop_rgb, fr.face_input, target, method)
    caption = f"{method} for '{target}' at {fr.t:.1f} s (face says {fr.face_label})"
    st.image(img, caption=caption, width=320)
    shares = region_shares(cam, fr.landmarks_at(cam.shape[0]))
    st.caption("Attention: " + ", ".join(f"{k.replace('_', ' & ')} {v:.0%}" for k, v in shares.items()) +
               (" (regions from this face's landmarks)" if fr.crop_landmarks is not None else " (template regions)"))
    return img, caption


def voice_panel(res: AnalysisResult, profile: bytes | None = None) -> None:
    """LIME on the spectrogram of a chosen voice window, for one emotion or all eight, explaining the voice
    model as it ran (with the person's baseline and the voice profile, when used)."""
    st.markdown("**Voice — LIME on the spectrogram**")
    windows = res.voice_windows
    if not windows:
        st.caption("No voice to explain.")
        return
    wi = st.selectbox("Window", range(len(windows)), key="lime_w",
                      format_func=lambda j: f"{windows[j].start:.1f}–{windows[j].end:.1f} s") if len(windows) > 1 else 0
    voice_pred = EMOTIONS[int(np.argmax(windows[wi].probs))]
    pick = st.selectbox("Explain the emotion", ["predicted", "all eight", *EMOTIONS], key="lime_t")
    n_samples = st.select_slider("LIME samples", options=sorted({200, LIME_SAMPLES, 1000, 2000}), value=LIME_SAMPLES,
                                 key="lime_n", help="More samples: steadier explanation, longer wait (about 20 ms each "
                                 "on 2 cores). At 500, two runs share 76 % of their top-5 cells on RAVDESS clips; at "
                                 "200 only 65 % (model card).")
    targets = (voice_pred,) if pick == "predicted" else tuple(EMOTIONS) if pick == "all eight" else (pick,)
    with st.spinner("Perturbing the spectrogram and asking the voice model…"):
        ex = voice_lime(*window_audio(res, wi), targets, n_samples, None if res.baseline is None else res.baseline.features,
                        profile if res.profile is not None else None)
    for tab, emo in zip(st.tabs(list(targets)) if len(targets) > 1 else [st.container()], targets, strict=True):
        tab.plotly_chart(lime_figure(ex, emo), width="stretch", key=f"lime_{emo}")
        tab.caption(f"Red cells raise '{emo}', blue cells lower it (fit R² {ex.score[emo]:.2f}; stability "
                    f"{ex.stability[emo]:.2f}: the share of the top-{TOP_CELLS} cells that stay on top when LIME's own "
                    "samples are resampled).")
        if ex.unstable(emo):
            tab.warning(f"This explanation of '{emo}' is unstable: another run could put other cells on top "
                        f"(stability {ex.stability[emo]:.2f}). Read only its broad pattern, or raise the number "
                        "of LIME samples.", icon="⚠️")
