"""Layout pieces the pages share: tables, charts and column formats (no analysis here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from emotion_core.analysis import AnalysisResult
from emotion_core.constants import EMOTIONS
from emotion_core.explain import BAND_EDGES, BAND_NAMES, VoiceExplanation

EMOJI = {"neutral": "😐", "calm": "😌", "happy": "😊", "sad": "😢", "angry": "😠", "fearful": "😨",
         "disgust": "🤢", "surprised": "😮"}
BRANCH_COLOURS = {"Face": "#8FB8C9", "Voice": "#C9A98F", "Fusion": "#4C7A8C"}
AGREEMENT_TEXT = {"agree": "agree", "disagree": "disagree", "uncertain": "unsure", None: "one modality"}


def lime_figure(ex: VoiceExplanation, emotion: str) -> go.Figure:
    """The log-mel in grey with the LIME weights of ``emotion`` over it (red raises, blue lowers)."""
    heat = ex.heatmap(emotion)
    lim = float(np.abs(heat).max()) or 1.0
    t_axis = ex.start + np.arange(ex.mel.shape[1]) / 100
    fig = go.Figure()
    fig.add_heatmap(z=ex.mel, x=t_axis, colorscale="Greys", showscale=False)
    fig.add_heatmap(z=heat, x=t_axis, colorscale="RdBu_r", zmin=-lim, zmax=lim, opacity=0.55, colorbar={"title": "LIME"})
    fig.update_layout(height=260, margin={"t": 10, "b": 10}, xaxis_title="seconds",
                      yaxis={"title": "mel band", "tickvals": list(BAND_EDGES[:-1]), "ticktext": list(BAND_NAMES)})
    return fig


def probability_table(res: AnalysisResult) -> pd.DataFrame:
    """Per emotion: the face's, the voice's and the fused probability (NaN for a missing branch)."""
    cols = {"Face": None if res.face is None else res.face.probs,
            "Voice": None if res.voice is None else res.voice.probs,
            "Fusion": res.probs}
    df = pd.DataFrame({"Emotion": [f"{EMOJI[e]} {e}" for e in EMOTIONS]})
    for k, v in cols.items():
        df[k] = np.asarray(v, dtype=float) if v is not None else np.nan
    return df


def branch_chart(table: pd.DataFrame) -> go.Figure:
    """Grouped bars of ``probability_table``."""
    fig = go.Figure()
    for col, color in BRANCH_COLOURS.items():
        if table[col].notna().any():
            fig.add_bar(name=col, x=list(EMOTIONS), y=table[col], marker_color=color)
    fig.update_layout(barmode="group", yaxis_tickformat=".0%", height=320, margin={"t": 10, "b": 10},
                      legend={"orientation": "h"})
    return fig


def timeline_figure(res: AnalysisResult, emotions: list[str]) -> go.Figure:
    """Fused (per window), face (per frame) and voice (per window) probability of each emotion over time."""
    frames, windows = (res.face.frames if res.face else []), res.voice_windows
    fused = [w for w in res.timeline if w.probs is not None]
    fig = go.Figure()
    for e in emotions:
        k = EMOTIONS.index(e)
        if fused:
            fig.add_scatter(x=[(w.start + w.end) / 2 for w in fused], y=[w.probs[k] for w in fused],
                            mode="lines+markers", line={"width": 3}, name=f"fused · {e}")
        if frames:
            fig.add_scatter(x=[f.t for f in frames], y=[f.probs[k] for f in frames], mode="lines",
                            line={"width": 1}, name=f"face · {e}")
        if windows:
            fig.add_scatter(x=[(w.start + w.end) / 2 for w in windows], y=[w.probs[k] for w in windows],
                            mode="lines+markers", line={"dash": "dot"}, name=f"voice · {e}")
    fig.update_layout(height=300, yaxis_tickformat=".0%", xaxis_title="seconds", margin={"t": 10})
    return fig


def timeline_table(res: AnalysisResult) -> pd.DataFrame:
    """One row per timeline window: what fusion, face and voice say there."""
    def top(p: np.ndarray | None) -> str:
        return "—" if p is None else EMOTIONS[int(np.argmax(p))]

    return pd.DataFrame([{"window": f"{w.start:.1f}–{w.end:.1f} s", "fused": w.label or "—", "face": top(w.face),
                          "voice": top(w.voice), "agreement": w.agreement or "—", "notes": ", ".join(w.notes)}
                         for w in res.timeline])


def progress_columns(columns: list[str]) -> dict:
    return {c: st.column_config.ProgressColumn(c, min_value=0.0, max_value=1.0, format="percent") for c in columns}
