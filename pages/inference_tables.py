"""Computed per-emotion tables: where the face maps look, where LIME listens in the voice, what sets each
emotion apart from the others, and how faithful the explanations are (deletion and insertion curves)."""

from __future__ import annotations

import json

import pandas as pd
import plotly.express as px
import streamlit as st

from emotion_core.registry import REPORTS_DIR
from pages.ui.navigation import ensure_app_navigation

ensure_app_navigation()

st.title("Inference tables")
st.caption("Data-driven versions of the hand-written tables of the original work: averaged explanations of "
           "the shipped models over held-out data, per emotion.")

REGIONS = ("Each row sums to 100%. Regions come from each face's five MTCNN landmarks (eyes and brows, nose, mouth, "
           "in units of the distance between the eyes), or a fixed template where MTCNN found no face; maps of the "
           "true emotion on the app's aligned crops of held-out FER2013 PrivateTest faces.")

for fname, title, reading in (
    ("face_regions_occlusion.json", "Face: share of the occlusion map per facial region (the app's default map)",
     REGIONS + " Occlusion: how far the emotion's probability falls when each 8-pixel square of the face is "
     "blurred."),
    ("face_regions.json", "Face: share of LayerCAM attention per facial region",
     REGIONS + " LayerCAM reads an inner layer of the network (8x8 cells); it passes the deletion test less often "
     "than occlusion (below)."),
    ("voice_bands.json", "Voice: share of positive LIME weight per frequency band",
     "Each row sums to 100%. Bands group the 80 mel bins; low bands carry pitch, higher ones timbre and breath. "
     "Reading: fearful, angry and disgust lean on the highest band (breath, friction, tension), sad and surprised "
     "on the pitch range, calm on the first-formant band."),
):
    st.subheader(title)
    path = REPORTS_DIR / fname
    if not path.exists():
        st.info(f"Not computed yet for this installation (reports/{fname}); "
                "`python -m emotion_core tables --data DIR` computes it.")
        continue
    table = json.loads(path.read_text())
    df = pd.DataFrame(table["mean"]).T
    fig = px.imshow(df, text_auto=".0%", color_continuous_scale="Blues", aspect="auto")
    fig.update_layout(height=380, margin={"t": 10})
    st.plotly_chart(fig, width="stretch")
    st.caption(reading + f" {table.get('n', '?')} inputs; command: `{table.get('command', '')}`")
    if "difference" in table:
        st.markdown("**What moves with the emotion**: each emotion's share minus the mean over emotions "
                    "(points). Red: this emotion leans on the region or band more than the others do.")
        diff = pd.DataFrame(table["difference"]).T * 100
        lim = float(max(5.0, diff.abs().to_numpy().max()))
        fig = px.imshow(diff, text_auto="+.1f", color_continuous_scale="RdBu_r", zmin=-lim, zmax=lim, aspect="auto")
        fig.update_layout(height=380, margin={"t": 10})
        st.plotly_chart(fig, width="stretch")
    if "std" in table:
        with st.expander("Spread (standard deviation over the inputs)"):
            st.dataframe(pd.DataFrame(table["std"]).T.style.format("{:.0%}"), width="stretch")


st.subheader("Are the explanations faithful?")
st.caption("Deletion: the explained emotion's probability as the most important parts are removed first (the face: "
           "pixels replaced by the blurred face; the voice: LIME cells set to silence). A faithful explanation makes "
           "it fall faster than a random order does (smaller area). Insertion: starting from the blurred face or "
           "silence, the important parts are put back first; faithful means it rises faster (larger area).")
path = REPORTS_DIR / "faithfulness.json"
DATA_OF = {"face": "FER2013 PrivateTest (held out), LayerCAM", "face_occlusion": "FER2013 PrivateTest (held out), "
           "occlusion (the app's default)", "voice": "RAVDESS actors 01-20 (heard in training)"}
if not path.exists():
    st.info("Not computed yet (reports/faithfulness.json); `python -m emotion_core tables --data DIR` computes it.")
else:
    faith = json.loads(path.read_text())
    rows = []
    for modality, f in faith.items():
        c = f.get("curves")
        rows.append({"modality": modality, "inputs": f["n"], "data": f.get("clips", DATA_OF.get(modality, "")),
                     "drop, important 20 %" if modality.startswith("face") else "drop, top 5 cells": f["drop_important_mean"],
                     "drop, random": f["drop_random_mean"], "important beats random": f["important_beats_random"],
                     "deletion AUC important / random": None if c is None else
                     f"{c['auc']['deletion_important']:.3f} / {c['auc']['deletion_random']:.3f}",
                     "insertion AUC important / random": None if c is None else
                     f"{c['auc']['insertion_important']:.3f} / {c['auc']['insertion_random']:.3f}",
                     "randomised model, rank corr.": f["randomised_model_spearman_mean"]})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    for modality, f in faith.items():
        c = f.get("curves")
        if c is None:
            continue
        curves = pd.DataFrame([{"fraction removed or restored": x, "probability": y, "curve": k.replace("_", ", ")}
                               for k, ys in c["mean_curve"].items() for x, y in zip(c["steps"], ys, strict=True)])
        fig = px.line(curves, x="fraction removed or restored", y="probability", color="curve", markers=True,
                      title=f"{modality}: mean curves over {c['n']} inputs")
        fig.update_layout(height=320, margin={"t": 40})
        st.plotly_chart(fig, width="stretch", key=f"curves_{modality}")
    st.caption("The randomisation check: maps from a model with random weights should not resemble the real ones "
               "(rank correlation near 0). Command: `python -m emotion_core tables --data DIR`.")
