"""What the pages share: the cached models, the cached analysis of an upload, small layout helpers.

Uploads are analysed from a temporary file in memory-backed storage (/dev/shm where available)
that is deleted as soon as the analysis returns; results live only in the bounded in-memory
cache below and in the session.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from emotion_core.analysis import AnalysisResult, Analyzer, release_memory
from emotion_core.constants import EMOTIONS, MAX_DURATION_S, MAX_FILE_MB
from emotion_core.explain import BAND_EDGES, BAND_NAMES, VoiceExplanation, explain_voice, face_cams, overlay
from emotion_core.probe import VoiceBaseline

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("EMOTION_DATA_DIR", ROOT.parent / "shared" / "data"))
LIMITS_TEXT = (f"Files up to {MAX_FILE_MB:.0f} MB and {MAX_DURATION_S / 60:.0f} minutes; frames are "
               "downscaled to 640 pixels before face detection.")
AUDIO_VIDEO_TYPES = ["mp4", "mov", "avi", "mkv", "webm", "m4v", "wav", "flac", "mp3", "m4a", "ogg"]
IMAGE_TYPES = ["jpg", "jpeg", "png"]
EMOJI = {"neutral": "😐", "calm": "😌", "happy": "😊", "sad": "😢", "angry": "😠", "fearful": "😨",
         "disgust": "🤢", "surprised": "😮"}


@st.cache_resource(show_spinner="Loading the models (first visit only)…")
def get_analyzer() -> Analyzer:
    return Analyzer()


def _tmp_dir() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


Span = tuple[float, float] | None
Upload = tuple[bytes, str, bytes | None, str, Span]
"""What one analysis is cached by: the upload's bytes and name, and its baseline (a separate
recording's bytes and name, or a stretch of the upload itself, in seconds), if any."""


@contextmanager
def _transient_copy(data: bytes, name: str) -> Iterator[Path]:
    """The bytes as a file in memory-backed storage, deleted on exit (the decoders need a path)."""
    safe = re.sub(r"[^\w.\- ]", "_", Path(name).name)[-120:] or "upload.bin"
    with tempfile.TemporaryDirectory(prefix="emotion-", dir=_tmp_dir()) as d:
        path = Path(d) / safe
        path.write_bytes(data)
        yield path


@st.cache_data(max_entries=16, ttl=3600, show_spinner=False)
def baseline_upload(data: bytes, name: str) -> VoiceBaseline:
    """A person's voice baseline from an uploaded recording; MediaError (a human message) if unusable."""
    with _transient_copy(data, name) as path:
        return get_analyzer().load_baseline(path, [name])


@st.cache_data(max_entries=16, ttl=3600, show_spinner=False)
def analyze_upload(data: bytes, name: str, baseline_data: bytes | None = None, baseline_name: str = "",
                   span: Span = None) -> AnalysisResult:
    """Analyse uploaded bytes (cached by content); the temporary copy is gone when this returns."""
    baseline = baseline_upload(baseline_data, baseline_name) if baseline_data else None
    with _transient_copy(data, name) as path:  # analyze hands its freed heap back itself
        return get_analyzer().analyze(path, keep_audio=True, display_name=name, baseline=baseline, baseline_span=span)


@st.cache_data(max_entries=64, ttl=3600, show_spinner=False)
def face_overlay(up: Upload, frame_index: int, target: str, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(overlay image, cam) for one kept face frame of an analysed upload."""
    res = analyze_upload(*up)
    fr = [f for f in res.face.frames if f.crop_rgb is not None][frame_index]
    cam = face_cams(get_analyzer().models.face, fr.face_input[None], [target], method)[0]
    return overlay(fr.crop_rgb, cam), cam


@st.cache_data(max_entries=32, ttl=3600, show_spinner=False)
def voice_lime(up: Upload, window_index: int, targets: tuple[str, ...], n_samples: int) -> VoiceExplanation:
    """LIME for one voice window, explaining the model as it ran (with the baseline, if one was given)."""
    res = analyze_upload(*up)
    w = res.voice.windows[window_index]
    ex = explain_voice(get_analyzer().models.voice, res.audio, w.start, w.end, list(targets) or None, n_samples,
                       baseline=None if res.baseline is None else res.baseline.features)
    release_memory()
    return ex


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
    cols = {"Face": None if res.face is None else res.face.probs,
            "Voice": None if res.voice is None else res.voice.probs,
            "Fusion": res.probs}
    df = pd.DataFrame({"Emotion": [f"{EMOJI[e]} {e}" for e in EMOTIONS]})
    for k, v in cols.items():
        df[k] = np.asarray(v, dtype=float) if v is not None else np.nan
    return df


def progress_columns(columns: list[str]) -> dict:
    return {c: st.column_config.ProgressColumn(c, min_value=0.0, max_value=1.0, format="percent") for c in columns}


def clear_results() -> None:
    analyze_upload.clear()
    baseline_upload.clear()
    face_overlay.clear()
    voice_lime.clear()
    for k in list(st.session_state):
        del st.session_state[k]
