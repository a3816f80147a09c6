"""What the pages share: the cached models, the cached analyses of an upload, its explanations.

Uploads are analysed from a temporary file in memory-backed storage (/dev/shm where available)
that is deleted as soon as the analysis returns; results live only in the bounded in-memory
caches below and in the session.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from emotion_core.analysis import AnalysisResult, Analyzer, Progress, release_memory
from emotion_core.baseline import VoiceBaseline
from emotion_core.constants import MAX_DURATION_S, MAX_FILE_MB, MEDIA_EXTENSIONS, SAMPLE_RATE
from emotion_core.devices import device_from_env
from emotion_core.explain import VoiceExplanation, explain_voice, face_cams, overlay
from emotion_core.profile import VoiceProfile
from pages.ui.result_store import Results

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("EMOTION_DATA_DIR", ROOT.parent / "shared" / "data"))
LIMITS_TEXT = (f"Files up to {MAX_FILE_MB:.0f} MB and {MAX_DURATION_S / 60:.0f} minutes; frames are "
               "downscaled to 640 pixels before face detection.")
FORMATS_HELP = ("Any format ffmpeg reads, recognised by its content: for example "
                + ", ".join(sorted(e.lstrip(".") for e in MEDIA_EXTENSIONS)) + ".")


@dataclass(frozen=True)
class Upload:
    """One uploaded (or recorded) file: what an analysis is cached by."""

    data: bytes
    name: str


@dataclass(frozen=True)
class BaselineChoice:
    """The person's baseline: a separate recording, or a stretch (seconds) of the upload itself."""

    recording: Upload | None = None
    span: tuple[float, float] | None = None


@st.cache_resource(show_spinner="Loading the models (first visit only)…")
def get_analyzer() -> Analyzer:
    """The models, once per server, on the device EMOTION_DEVICE names (auto: a GPU when there is one)."""
    return Analyzer(device=device_from_env())


def memory_dir() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


@contextmanager
def _transient_copy(up: Upload) -> Iterator[Path]:
    """The bytes as a file in memory-backed storage, deleted on exit (the decoders need a path)."""
    safe = re.sub(r"[^\w.\- ]", "_", Path(up.name).name)[-120:] or "upload.bin"
    with tempfile.TemporaryDirectory(prefix="emotion-", dir=memory_dir()) as d:
        path = Path(d) / safe
        path.write_bytes(up.data)
        yield path


@st.cache_resource
def results() -> Results:
    return Results()


def upload_key(up: Upload) -> str:
    return hashlib.sha256(up.data).hexdigest() + up.name


def analyze_upload(up: Upload, progress: Progress | None = None) -> AnalysisResult:
    """Analyse an upload, once per content; the temporary copy is gone when this returns, also when the
    analysis is cancelled (then nothing is stored)."""
    key = upload_key(up)
    if (res := results().get(key)) is None:
        with _transient_copy(up) as path:  # analyze hands its freed heap back itself
            res = get_analyzer().analyze(path, keep_audio=True, display_name=up.name, progress=progress)
        results().put(key, res)
    return res


@st.cache_data(max_entries=16, ttl=3600, show_spinner=False)
def baseline_recording(up: Upload) -> VoiceBaseline:
    """A person's voice baseline from an uploaded recording; MediaError (a human message) if unusable."""
    with _transient_copy(up) as path:
        return get_analyzer().load_baseline(path, [up.name])


@st.cache_data(max_entries=16, ttl=3600, show_spinner=False)
def with_baseline(up: Upload, choice: BaselineChoice, profile: bytes | None = None) -> AnalysisResult:
    """The upload's analysis with the voice read again, relative to the baseline and through the voice
    profile (either may be absent): only the voice branch and the fusion run again. MediaError (a human
    message) when the baseline or the profile cannot serve."""
    baseline = baseline_recording(choice.recording) if choice.recording else None
    analyzer = get_analyzer().with_profile(None if profile is None else VoiceProfile.from_bytes(profile))
    return analyzer.with_baseline(analyze_upload(up), baseline, choice.span)


@st.cache_data(max_entries=64, ttl=3600, show_spinner=False)
def face_overlay(crop_rgb: np.ndarray, face_input: np.ndarray, target: str, method: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(overlay image, cam) for one face crop and its model input."""
    cam = face_cams(get_analyzer().models.face, face_input[None], [target], method)[0]
    return overlay(crop_rgb, cam), cam


@st.cache_data(max_entries=32, ttl=3600, show_spinner=False)
def voice_lime(audio: np.ndarray, start: float, targets: tuple[str, ...], n_samples: int,
               baseline: np.ndarray | None = None, profile: bytes | None = None) -> VoiceExplanation:
    """LIME for one voice window (``audio`` holds its samples, ``start`` its time in the recording),
    explaining the model as it ran: with the person's baseline features and the voice profile, if given."""
    analyzer = get_analyzer().with_profile(None if profile is None else VoiceProfile.from_bytes(profile))
    ex = explain_voice(analyzer.voice_model, audio, 0.0, None, list(targets) or None, n_samples,
                       baseline=baseline)
    release_memory()
    return dataclasses.replace(ex, start=start, end=start + len(audio) / SAMPLE_RATE)


def window_audio(res: AnalysisResult, index: int) -> tuple[np.ndarray, float]:
    """The samples of voice window ``index`` of an analysis, and its start time."""
    w = res.voice_windows[index]
    return res.audio[int(w.start * SAMPLE_RATE): int(w.end * SAMPLE_RATE)], w.start


def clear_results() -> None:
    results().clear()
    for cached in (baseline_recording, with_baseline, face_overlay, voice_lime):
        cached.clear()
    for k in list(st.session_state):
        del st.session_state[k]
