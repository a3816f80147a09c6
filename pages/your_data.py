"""Your data: how well the model reads your own labelled recordings, and a voice profile fitted to them."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from emotion_core.errors import MediaError
from emotion_core.own_data import MODALITIES
from pages.ui.common import Upload
from pages.ui.labelled import build_profile, evaluate_uploads
from pages.ui.navigation import ensure_app_navigation

ensure_app_navigation()

BY_FILE = "By file: voice for audio, fused for video, face for photos"

st.title("Your data")
st.caption("Upload recordings with your coding, or one zip holding both: a LABELS.csv with one label per recording "
           "(columns path,label and optionally speaker) or per segment (path,start,end,label in seconds), or ELAN "
           "(.eaf) or Praat (.TextGrid) files beside their recordings (a TextGrid named like its recording). Labels "
           "are the eight emotions (neutral, calm, happy, sad, angry, fearful, disgust, surprised) or the usual "
           "synonyms (anger, joy, sadness, fear, surprise…). Each recording is analysed once, exactly as on the "
           "Analyse page; each coded segment is scored from that analysis. Files are kept in memory only and "
           "discarded when the run ends.")
files = st.file_uploader("Recordings and their coding (LABELS.csv, .eaf, .TextGrid), or a zip",
                         accept_multiple_files=True, key="own_files")
tier = st.text_input("Coded tier (ELAN / Praat files with several tiers)", key="own_tier",
                     placeholder="e.g. emotion").strip() or None
c1, c2 = st.columns(2)
choice = c1.selectbox("Score", [BY_FILE, *MODALITIES], key="own_modality")
use_profile = c2.checkbox("Read voices through this session's profile", key="own_use_profile",
                          help="The profile built below (or earlier in this session).")
if not files:
    st.info("Nothing uploaded yet. Predictions are taken among the emotions present in your labels.")
    st.stop()
uploads = tuple(Upload(f.getvalue(), f.name) for f in files)


def run_with_progress(label: str, work):
    """Run ``work(progress)`` inside a status box with a progress bar; None (and a message) on bad input."""
    with st.status(label, expanded=True) as status:
        bar = st.progress(0.0)
        try:
            out = work(lambda i, n, name: bar.progress(i / max(n, 1), text=f"{i} of {n} files · {name}"))
        except (ValueError, MediaError) as e:
            status.update(label=str(e), state="error")
            return None
        status.update(label=f"{label.rstrip('…')}: done", state="complete")
    return out


if st.button("Evaluate", type="primary", key="own_evaluate"):
    built = st.session_state.get("voice_profile")
    if use_profile and built is None:
        st.caption("No profile has been built in this session yet: the shipped model is used.")
    profile = built["bytes"] if (use_profile and built) else None
    modality = None if choice == BY_FILE else choice
    st.session_state["own_report"] = run_with_progress(
        "Analysing your recordings…", lambda p: evaluate_uploads(uploads, modality, profile, p, tier))

if (result := st.session_state.get("own_report")) is not None:
    rep = result["report"]
    st.subheader("How well the model reads your recordings")
    if rep["profile"]:
        st.caption(f"With the profile '{rep['profile']['name']}'.")
    m1, m2, m3, m4, m5 = st.columns(5)
    m1.metric("Segments scored" if result.get("segments") else "Files scored", rep["n"])
    m2.metric("Accuracy", "–" if rep["accuracy"] is None else f"{rep['accuracy']:.0%}")
    m3.metric("Unweighted average recall", "–" if rep["uar"] is None else f"{rep['uar']:.0%}")
    m4.metric("Cohen's kappa", "–" if rep.get("kappa") is None else f"{rep['kappa']:.2f}",
              help="Agreement with your labels beyond chance (1: perfect, 0: chance)")
    m5.metric("Calibration error", "–" if rep["ece"] is None else f"{rep['ece']:.2f}")
    st.caption(f"Predictions among {', '.join(rep['classes'])} (the emotions in your labels); {rep['modality']}.")
    left, right = st.columns(2)
    per = pd.DataFrame([{"emotion": e, **v} for e, v in rep["per_class"].items()])
    left.dataframe(per, hide_index=True, width="stretch")
    if rep["classes"]:
        fig = px.imshow(rep["confusion"], x=rep["classes"], y=rep["classes"], text_auto=True,
                        labels={"x": "predicted", "y": "label", "color": "files"}, color_continuous_scale="Blues")
        right.plotly_chart(fig, width="stretch")
    if rep.get("per_speaker"):
        st.dataframe(pd.DataFrame([{"speaker": s, **v} for s, v in rep["per_speaker"].items()]), hide_index=True)
    for f in rep["failed"]:
        st.warning(f"Not scored: {f['reason'] or f['path']}")
    d1, d2 = st.columns(2)
    d1.download_button("Per-file predictions (CSV)", pd.DataFrame(result["rows"]).to_csv(index=False),
                       file_name="predictions.csv", mime="text/csv")
    d2.download_button("Report (HTML)", result["html"], file_name="evaluation_report.html", mime="text/html")

st.subheader("Adapt the voice model to your recordings")
st.caption("A profile re-weighs only the emotions your labels contain, using the voices of these files; every other "
           "emotion keeps the probability the shipped model gives it. It takes seconds to minutes on a CPU; to see "
           "what it buys, evaluate it on recordings of *other* people than those it was fitted on. With 5 clips per "
           "emotion a profile did worse than none on average on talk-show speech the model never heard, and cost "
           "some speakers 30 points; 20 or more per emotion is what helped (model card, learning curve).")
name = st.text_input("Profile name", value="my-group", key="own_profile_name")
if st.button("Build a profile from these recordings", key="own_adapt"):
    made = run_with_progress("Fitting a profile…", lambda p: build_profile(uploads, name or "profile", p, tier))
    if made is not None:
        data, info, skipped = made
        st.session_state["voice_profile"] = {"bytes": data, "info": info, "skipped": skipped}
if (built := st.session_state.get("voice_profile")) is not None:
    for s in built.get("skipped", []):
        st.warning(f"Skipped when fitting: {s}")
    st.success(f"Profile '{built['info']['name']}' fitted on {built['info']['clips']}. Choose it on the Analyse page "
               "(Voice profile), or download it for `--profile`.")
    st.download_button("Download the profile", built["bytes"], file_name=f"{built['info']['name']}.profile",
                       mime="application/octet-stream")
