"""Shared fixtures. Every media fixture is generated here, so the suite runs without ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TQDM_DISABLE", "1")
# The app's LIME budget in this suite (emotion_core.explain.LIME_ENV; the browser tests' server inherits it): the
# pages' tests check what the app shows and does, and 500 samples cost ~45 s a window on a 2-core AVX2 CPU. LIME's
# own behaviour is tested with explicit budgets (test_explain.py).
os.environ.setdefault("EMOTION_LIME_SAMPLES", "64")

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EMOTION_SHARED", ROOT.parent / "shared" / "data"))
MEDIA = SHARED / "media"
SR = 16_000


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SHARED.exists():
        return
    skip = pytest.mark.skip(reason=f"needs the shared data folder {SHARED}")
    for item in items:
        if "shared" in item.keywords:
            item.add_marker(skip)


def voiced_signal(seconds: float = 3.0, f0: float = 140.0, seed: int = 0, sr: int = SR) -> np.ndarray:
    """A speech-like signal: harmonic source with vibrato and jitter, syllable-rate envelope,
    formant-ish spectral tilt and a little breath noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t) + 0.01 * rng.standard_normal(len(t)).cumsum() / 300)
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    src = sum(np.sin(k * phase) / k**1.2 for k in range(1, 25))
    env = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 0.6
    env *= np.minimum(1, np.minimum(t, t[-1] - t) / 0.2)
    y = 0.25 * src * env + 0.003 * rng.standard_normal(len(t))
    return (y / np.abs(y).max() * 0.5).astype(np.float32)


def face_frame(shift: int = 0, size: tuple[int, int] = (360, 640)) -> np.ndarray:
    """A 640x360 frame holding scikit-image's astronaut portrait (a real face) on a grey wall."""
    from PIL import Image
    from skimage import data

    face = Image.fromarray(data.astronaut()).resize((300, 300))
    frame = Image.new("RGB", (size[1], size[0]), (120, 125, 130))
    frame.paste(face, (170 + shift, 30))
    return np.asarray(frame)


def write_video(path: Path, frames: list[np.ndarray], fps: float, audio: np.ndarray | None = None,
                audio_sr: int = 44_100, codec: str = "libx264") -> Path:
    from moviepy import AudioArrayClip, ImageSequenceClip

    clip = ImageSequenceClip(frames, fps=fps)
    if audio is not None:
        import librosa

        a = librosa.resample(audio, orig_sr=SR, target_sr=audio_sr) if audio_sr != SR else audio
        clip = clip.with_audio(AudioArrayClip(np.stack([a, a], 1), fps=audio_sr))
    clip.write_videofile(str(path), codec=codec, audio_codec="aac" if audio is not None else None,
                         audio=audio is not None, logger=None, ffmpeg_params=["-pix_fmt", "yuv420p"])
    return path


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated clips and files used across the suite."""
    import soundfile as sf

    d = tmp_path_factory.mktemp("media")
    voice = voiced_signal(3.0)
    frames = [face_frame(shift=(i % 5) * 4) for i in range(30)]
    write_video(d / "talking.mp4", frames, fps=10, audio=voice)
    write_video(d / "silent_audio.mp4", frames[:20], fps=10, audio=np.zeros(2 * SR, np.float32))
    write_video(d / "no_audio.mp4", frames[:20], fps=10)
    blank = [np.full((360, 640, 3), 90, np.uint8) for _ in range(20)]
    write_video(d / "no_face.mp4", blank, fps=10, audio=voiced_signal(2.0, seed=1))
    sf.write(d / "voice.wav", voice, SR)
    sf.write(d / "silence.wav", np.zeros(SR * 2, np.float32), SR)
    sf.write(d / "empty_audio.wav", np.zeros(0, np.float32), SR)
    from PIL import Image

    Image.fromarray(face_frame()).save(d / "face.jpg")
    (d / "empty.mp4").write_bytes(b"")
    (d / "random.mp4").write_bytes(np.random.default_rng(0).bytes(20_000))
    (d / "text.mp4").write_text("this is not a video\n" * 300)
    data = (d / "talking.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    return d


@pytest.fixture(scope="session")
def four_uploads(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four different files for sessions analysed at the same time: face and voice, face only, voice
    only (no face in the video), and a second voice."""
    import soundfile as sf

    other = tmp_path_factory.mktemp("uploads") / "other_voice.wav"
    sf.write(other, voiced_signal(3.0, f0=220, seed=9), SR)
    return [media_dir / "talking.mp4", media_dir / "face.jpg", media_dir / "no_face.mp4", other]


@pytest.fixture(scope="session")
def analyzer():
    from emotion_core.analysis import Analyzer

    return Analyzer()


def looped_video(base: Path, seconds: float, out: Path) -> Path:
    """``base`` repeated (stream copy, no re-encoding) to about ``seconds``: a long recording made fast."""
    import subprocess

    import imageio_ffmpeg

    from emotion_core.media import probe

    n = max(1, round(seconds / float(probe(base).duration or 10.0)))
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-stream_loop", str(n - 1), "-i", str(base),
                    "-c", "copy", str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def session_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 70-second talking-face recording with voice (over the app's one-minute session-view threshold):
    a 10-s clip, half with a higher, louder voice, looped."""
    d = tmp_path_factory.mktemp("session")
    voice = np.concatenate([voiced_signal(5.0, seed=3), 1.6 * voiced_signal(5.0, f0=230, seed=5)])
    base = write_video(d / "base.mp4", [face_frame(shift=(i % 10) * 3) for i in range(100)], 10, voice)
    return looped_video(base, 70.0, d / "session.mp4")


@pytest.fixture(scope="session")
def rec40(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-second recording of one speaker whose voice changes every 5 s (the coding tests' recording)."""
    import soundfile as sf

    d = tmp_path_factory.mktemp("coding")
    audio = np.concatenate([voiced_signal(5.0, f0=100 + 30 * (i % 5), seed=i) for i in range(8)])
    sf.write(d / "rec40.wav", audio, SR)
    return d / "rec40.wav"


@pytest.fixture(scope="session")
def labelled_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zip as a research group would upload it: a folder of labelled voices and its LABELS.csv."""
    import io
    import zipfile

    import soundfile as sf

    out = tmp_path_factory.mktemp("labelled") / "our_recordings.zip"
    rows = ["path,label,speaker"]
    with zipfile.ZipFile(out, "w") as z:
        for i in range(3):
            for label, f0 in (("sad", 95.0), ("happy", 260.0)):
                buf = io.BytesIO()
                sf.write(buf, voiced_signal(2.0, f0=f0 + 9 * i, seed=20 + i), SR, format="WAV")
                z.writestr(f"clips/{label}_{i}.wav", buf.getvalue())
                rows.append(f"clips/{label}_{i}.wav,{label},p{i % 2}")
        z.writestr("LABELS.csv", "\n".join(rows) + "\n")
    return out


SHARED_CLIPS = ["talking_face_speech.mp4", "single_face_speech.mp4", "WolfgangLanger_Pexels.mp4", "single_face.mp4",
                "no_face.mp4", "single_face.jpg"]
"""The real clips in ../shared/data/media that `analyze` is checked on (golden outputs, per-clip facts)."""


@pytest.fixture(scope="session")
def shared_clips_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, list[dict], Path]:
    """``python -m emotion_core analyze SHARED_CLIPS --json --csv FILE`` run once, as a process of its own, for
    every test that reads it: (exit status, one JSON object per clip, the timeline CSV)."""
    import json
    import subprocess
    import sys

    csv = tmp_path_factory.mktemp("shared_run") / "timeline.csv"
    p = subprocess.run([sys.executable, "-m", "emotion_core", "analyze", *(str(MEDIA / c) for c in SHARED_CLIPS),
                        "--json", "--csv", str(csv)], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
    return p.returncode, [json.loads(x) for x in p.stdout.splitlines() if x.strip()], csv

