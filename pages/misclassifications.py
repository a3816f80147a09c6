"""Explore misclassifications of the committed held-out predictions of each model."""

from __future__ import annotations

import librosa
import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st
from PIL import Image

from emotion_core.constants import EMOTIONS, FACE_DISPLAY_SIZE, FER_TO_EMOTION, SAMPLE_RATE, STILL_FRAMING
from emotion_core.explain import FACE_MAP_METHOD, LIME_SAMPLES, explain_voice, face_cams, overlay
from emotion_core.faces import face_input_from_crop
from emotion_core.metrics import summarize
from emotion_core.registry import REPORTS_DIR, VOICE_OOF
from pages.ui.common import DATA_DIR, get_analyzer
from pages.ui.navigation import ensure_app_navigation
from pages.ui.widgets import lime_figure, progress_columns

ensure_app_navigation()

SOURCES = {
    "Voice: RAVDESS actors 01-20, out-of-fold (5-fold, actors held out)": (VOICE_OOF, "ravdess-speech-16k"),
    "Voice with the RAVDESS-only probe shipped until 2026-11-26 (same protocol)": ("voice_ensemble_oof.csv",
                                                                                   "ravdess-speech-16k"),
    "Voice, fine-tuned member alone (same protocol)": ("voice_oof.csv", "ravdess-speech-16k"),
    "Face: FER2013 PrivateTest, labelled by the majority of ten annotators (FER+)": ("face_private_ferplus.csv",
                                                                                     "fer2013"),
    "Face: FER2013 PrivateTest, FER2013's own single-rater labels": ("face_private.csv", "fer2013"),
    "Face: SFEW Val (films never trained on)": ("face_sfew_val.csv", "sfew"),
}


@st.cache_data(max_entries=64, show_spinner=False)
def face_error_cam(path: str, source: str, target: str) -> np.ndarray:
    """The face as the model read it (re-cropped by MTCNN like a video frame when the model was trained on such
    crops, else the file's own crop) with its class-activation map for ``target``."""
    rgb = np.asarray(Image.open(path).convert("RGB"))
    analyzer = get_analyzer()
    if analyzer.detector.align:
        crop, x = analyzer.detector.crop_still(rgb, *STILL_FRAMING[source][:2], STILL_FRAMING[source][3])
    else:
        crop = np.asarray(Image.fromarray(rgb).resize((FACE_DISPLAY_SIZE, FACE_DISPLAY_SIZE)))
        x = face_input_from_crop(rgb)
    cam = face_cams(analyzer.models.face, x[None], [target], FACE_MAP_METHOD)[0]
    return overlay(crop, cam)


@st.cache_data(max_entries=32, show_spinner=False)
def voice_error_lime(path: str, target: str):
    y, _ = librosa.load(path, sr=SAMPLE_RATE)
    return explain_voice(get_analyzer().models.voice, y, targets=[target], n_samples=LIME_SAMPLES)


@st.cache_data
def load(name: str) -> pd.DataFrame:
    df = pd.read_csv(REPORTS_DIR / name)
    df["true"] = df["true"].replace(FER_TO_EMOTION)
    df["confidence"] = df[list(EMOTIONS)].max(axis=1)
    return df


st.title("Explore misclassifications")
choice = st.radio("Evaluation set", list(SOURCES), horizontal=True)
fname, data_sub = SOURCES[choice]
if not (REPORTS_DIR / fname).exists():
    st.error(f"The evaluation file reports/{fname} is missing from this installation.")
    st.stop()
df = load(fname)
classes = [e for e in EMOTIONS if e in set(df["true"])]

with st.sidebar:
    st.header("Filters")
    f_true = st.multiselect("True emotion", classes, default=classes)
    f_pred = st.multiselect("Predicted emotion", classes, default=classes)
    conf = st.slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.05)
    if "actor" in df:
        actors = sorted(df["actor"].unique())
        f_actor = st.multiselect("Actor", actors, default=actors)
        f_int = st.multiselect("Intensity", [1, 2], default=[1, 2], format_func={1: "normal", 2: "strong"}.get)
view = df[df["true"].isin(f_true) & df["pred"].isin(f_pred) & df["confidence"].between(*conf)]
if "actor" in df:
    view = view[view["actor"].isin(f_actor) & view["intensity"].isin(f_int)]
if view.empty:
    st.warning("No prediction matches these filters.")
    st.stop()

y = view["true"].map(classes.index).to_numpy()
p = view[classes].to_numpy()
s = summarize(y, p, classes)
m1, m2, m3 = st.columns(3)
m1.metric("Predictions shown", s["n"])
m2.metric("Accuracy", f"{s['accuracy']:.1%}")
m3.metric("Macro F1", f"{s['macro_f1']:.1%}")

c1, c2 = st.columns([3, 2])
with c1:
    cm = np.array(s["confusion"])
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig = px.imshow(norm, x=classes, y=classes, text_auto=".0%", color_continuous_scale="Blues",
                    labels={"x": "predicted", "y": "true", "color": "share of row"}, aspect="auto")
    fig.update_traces(customdata=cm, hovertemplate="true %{y}, predicted %{x}: %{customdata} (%{z:.0%})")
    fig.update_layout(height=430, margin={"t": 10})
    st.plotly_chart(fig, width="stretch")
with c2:
    per = pd.DataFrame({"emotion": classes, "recall": [s["recall"].get(c, np.nan) for c in classes]})
    tp = np.diag(cm)
    prec = tp / np.maximum(cm.sum(0), 1)
    per["F1"] = np.where(prec + per["recall"] > 0, 2 * prec * per["recall"] / np.maximum(prec + per["recall"], 1e-9), 0)
    st.dataframe(per, hide_index=True, column_config=progress_columns(["recall", "F1"]), width="stretch")

st.subheader("Errors")
errors = view[view["true"] != view["pred"]].sort_values("confidence", ascending=False)
st.caption(f"{len(errors)} errors, most confident first. Select a row to inspect it.")
cols = ["file", *[c for c in ("actor", "intensity") if c in errors], "true", "pred", "confidence", *classes]
sel = st.dataframe(errors[cols], hide_index=True, on_select="rerun", selection_mode="single-row",
                   column_config=progress_columns(["confidence", *classes]), width="stretch")
rows = sel.selection.rows if sel else []
if rows:
    row = errors.iloc[rows[0]]
    st.markdown(f"**{row['file']}**: true *{row['true']}*, predicted *{row['pred']}* ({row['confidence']:.0%})")
    root = DATA_DIR / data_sub
    path = next(iter(root.rglob(row["file"].split("/")[-1])), None) if root.exists() else None
    if path is None:
        st.info(f"The data set is not reachable at {root} (set EMOTION_DATA_DIR), so the input cannot be "
                "shown; the stored probabilities above are all there is.")
    elif path.suffix in (".jpg", ".png"):
        c1, c2 = st.columns(2)
        c1.image(str(path), width=192, caption="the face as published, enlarged")
        target = c2.selectbox("Class-activation map for", [row["pred"], row["true"]], format_func=lambda e: f"{e}")
        c2.image(face_error_cam(str(path), "fer" if data_sub == "fer2013" else "sfew", target), width=192,
                 caption=f"{FACE_MAP_METHOD} for '{target}' on the crop the model read")
    else:
        st.audio(str(path))
        target = st.selectbox("LIME for", [row["pred"], row["true"]])
        with st.spinner(f"Explaining the voice (LIME, {LIME_SAMPLES} samples)…"):
            ex = voice_error_lime(str(path), target)
        st.plotly_chart(lime_figure(ex, target), width="stretch")
        st.caption("Explained by the shipped model, which was trained on all twenty actors (the stored "
                   "probabilities above come from the fold model that never heard this actor).")
