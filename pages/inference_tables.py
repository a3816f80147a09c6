"""Computed per-emotion tables: where Grad-CAM looks on faces, where LIME listens in the voice."""

from __future__ import annotations

import json

import pandas as pd
import plotly.express as px
import streamlit as st

from emotion_core.registry import REPORTS_DIR

st.title("Inference tables")
st.caption("Data-driven versions of the hand-written tables of the original work: averaged explanations of "
           "the shipped models over held-out data, per emotion.")

for fname, title, reading in (
    ("face_regions.json", "Face: share of Grad-CAM attention per facial region",
     "Each row sums to 100%. Regions come from a fixed template on the bare MTCNN box (eyes and brows: rows "
     "10-45% of the crop, nose 45-65%, mouth 65-92%). Reading: attention is spread over the whole face with a "
     "steady third on eyes and brows; the shares differ little between emotions (48x48 input, coarse 8x8 maps)."),
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
    if "std" in table:
        with st.expander("Spread (standard deviation over the inputs)"):
            st.dataframe(pd.DataFrame(table["std"]).T.style.format("{:.0%}"), width="stretch")
