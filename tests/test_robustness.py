"""A corpus of awkward inputs, generated here (no committed media): each gets its expected outcome,
and nothing is left behind in temporary storage."""

import os
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile as sf
from conftest import SR, face_frame, voiced_signal, write_video
from PIL import Image

from emotion_core.analysis import Analyzer
from emotion_core.media import Limits

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def ff(*args: str) -> None:
    subprocess.run([FFMPEG, "-y", "-v", "error", *args], check=True)


@pytest.fixture(scope="module")
def corpus(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("awkward")
    src = str(media_dir / "talking.mp4")
    ff("-i", src, "-c:v", "libx265", "-x265-params", "log-level=none", "-c:a", "copy", str(d / "hevc.mp4"))
    ff("-i", src, "-vf", "transpose=1", "-c:a", "copy", str(d / "sideways.mp4"))
    ff("-display_rotation", "90", "-i", str(d / "sideways.mp4"), "-c", "copy", str(d / "phone_portrait.mp4"))
    ff("-i", src, "-vf", "select='not(mod(n\\,3))+eq(n\\,1)',setpts=N/FRAME_RATE/TB*1.0", "-fps_mode", "vfr",
       "-c:a", "copy", str(d / "vfr.mp4"))
    ff("-i", src, "-af", "atrim=0:1.2", "-c:v", "copy", str(d / "audio_shorter.mp4"))
    sf.write(d / "long_voice.wav", voiced_signal(6.0, seed=7), SR)
    ff("-i", src, "-i", str(d / "long_voice.wav"), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac",
       str(d / "audio_longer.mp4"))
    ff("-i", src, "-c:v", "libvpx-vp9", "-b:v", "200k", "-c:a", "libopus", str(d / "clip.webm"))
    ff("-i", src, "-c", "copy", str(d / "clip.mkv"))
    ff("-i", src, "-c:v", "libx264", "-c:a", "aac", str(d / "clip.mov"))
    voice = voiced_signal(3.0, seed=5)
    sf.write(d / "voice_8k.wav", voice[::2], 8000)
    sf.write(d / "stereo_44k.wav", np.stack([voice, voice * 0.5], 1).repeat(2, 0)[: len(voice) * 2], 32000)
    sf.write(d / "clipped.wav", np.clip(voice * 20, -1, 1), SR)
    ff("-i", str(d / "clipped.wav"), "-c:a", "libmp3lame", str(d / "voice.mp3"))
    ff("-i", str(d / "clipped.wav"), "-c:a", "aac", str(d / "voice.m4a"))
    ff("-i", str(d / "clipped.wav"), "-c:a", "libvorbis", str(d / "voice.ogg"))
    two = np.concatenate([face_frame(), face_frame()], axis=1)
    write_video(d / "two_faces.mp4", [two] * 10, fps=10, audio=voice[: SR])
    small = Image.fromarray(face_frame()).resize((128, 72))
    canvas = Image.new("RGB", (640, 360), (120, 125, 130))
    canvas.paste(small, (300, 150))
    write_video(d / "tiny_face.mp4", [np.asarray(canvas)] * 10, fps=10, audio=voice[: SR])
    gone = [face_frame() if i < 10 or i >= 20 else np.full((360, 640, 3), 90, np.uint8) for i in range(30)]
    write_video(d / "face_leaves.mp4", gone, fps=10, audio=voiced_signal(3.0, seed=6))
    big = Image.fromarray(face_frame()).resize((3840, 2160))
    big.save(d / "frame_4k.jpg", quality=80)
    write_video(d / "video_4k.mp4", [np.asarray(big)] * 5, fps=5, audio=voice[: SR])
    rgba = Image.fromarray(face_frame()).convert("RGBA")
    rgba.putalpha(200)
    rgba.save(d / "alpha.png")
    Image.fromarray(face_frame()).convert("L").save(d / "grey.jpg")
    (d / "text.wav").write_text("RIFF but really just text\n" * 400)
    (d / "random.wav").write_bytes(np.random.default_rng(1).bytes(50_000))
    return d


LEFT_IN_TEMP: dict[str, set[str]] = {}
"""What the analyses of ``results`` left in temporary storage (test_nothing_left_in_temporary_storage)."""


@pytest.fixture(scope="module")
def results(corpus: Path, analyzer: Analyzer) -> dict:
    from streamlit.testing.v1 import AppTest  # noqa: F401 - its import makes a folder of its own in /tmp

    before = _listing()
    out = {p.name: analyzer.analyze(p) for p in sorted(corpus.iterdir())}
    LEFT_IN_TEMP["analyses"] = _listing() - before
    return out


BOTH = ["hevc.mp4", "phone_portrait.mp4", "vfr.mp4", "clip.webm", "clip.mkv", "clip.mov", "two_faces.mp4",
        "face_leaves.mp4", "video_4k.mp4"]
VOICE_ONLY = ["voice_8k.wav", "stereo_44k.wav", "clipped.wav", "voice.mp3", "voice.m4a", "voice.ogg"]
FACE_ONLY = ["frame_4k.jpg", "alpha.png", "grey.jpg"]


@pytest.mark.parametrize("name", BOTH)
def test_videos_with_face_and_voice(results: dict, name: str) -> None:
    r = results[name]
    assert r.error is None and r.face is not None and r.voice is not None, (r.error, r.warnings)
    assert abs(r.probs.sum() - 1) < 1e-6


def test_phone_rotation_is_applied(results: dict) -> None:
    r = results["phone_portrait.mp4"]
    assert r.face.frames_used >= 0.8 * r.face.frames_sampled  # upright after rotation, so faces are found


def test_sideways_video_without_rotation_flag_loses_the_face(results: dict) -> None:
    r = results["sideways.mp4"]  # truly sideways pixels: MTCNN misses most frames, the voice still answers
    assert r.voice is not None and r.error is None


@pytest.mark.parametrize("name", VOICE_ONLY)
def test_audio_variants(results: dict, name: str) -> None:
    r = results[name]
    assert r.error is None and r.voice is not None and r.face is None, (r.error, r.warnings)


@pytest.mark.parametrize("name", FACE_ONLY)
def test_image_variants(results: dict, name: str) -> None:
    r = results[name]
    assert r.error is None and r.face is not None and r.face.frames_used == 1, (r.error, r.warnings)


def test_audio_shorter_than_video(results: dict) -> None:
    r = results["audio_shorter.mp4"]
    assert r.face is not None and r.timeline[-1].end == pytest.approx(r.duration, abs=0.2)


def test_audio_longer_than_video(results: dict) -> None:
    r = results["audio_longer.mp4"]
    assert r.duration == pytest.approx(6.0, abs=0.2) and r.voice is not None and r.face is not None
    assert r.timeline[-1].end == pytest.approx(r.duration, abs=0.1)
    assert max(f.t for f in r.face.frames) < 3.1 and r.voice.windows[-1].end == pytest.approx(6.0, abs=0.1)


def test_two_faces_warns(results: dict) -> None:
    assert any("more than one face" in w for w in results["two_faces.mp4"].warnings)


def test_tiny_face_is_reported_not_guessed(results: dict) -> None:
    r = results["tiny_face.mp4"]
    assert r.face is None and any("no face" in w for w in r.warnings) and r.voice is not None


def test_face_that_leaves_and_returns(results: dict) -> None:
    r = results["face_leaves.mp4"]
    ts = [f.t for f in r.face.frames]
    assert min(ts) < 1.0 and max(ts) > 2.0 and not any(1.1 < t < 1.9 for t in ts)


@pytest.mark.parametrize("name", ["text.wav", "random.wav"])
def test_garbage_audio_is_an_error(results: dict, name: str) -> None:
    assert results[name].error and results[name].probs is None


def test_limits(corpus: Path) -> None:
    a = Analyzer(limits=Limits(max_file_mb=0.01))
    assert "MB limit" in a.analyze(corpus / "hevc.mp4").error
    a = Analyzer(limits=Limits(max_duration_s=1.0))
    assert "min limit" in a.analyze(corpus / "hevc.mp4").error


def test_the_command_gives_the_same_outcomes(corpus: Path, results: dict) -> None:
    import json
    import sys

    root = Path(__file__).resolve().parent.parent
    p = subprocess.run([sys.executable, "-m", "emotion_core", "analyze", str(corpus), "--json"], capture_output=True,
                       text=True, cwd=root, timeout=900)
    assert p.returncode == 2 and "Traceback" not in p.stderr  # the corpus holds rejected files
    lines = {Path(d["file"]).name: d for d in map(json.loads, p.stdout.splitlines())}
    assert set(lines) == set(results)
    for name, r in results.items():
        d = lines[name]
        assert (d["error"] is None) == (r.error is None), name
        assert (d["modalities"]["face"] is None) == (r.face is None), name
        assert (d["modalities"]["voice"] is None) == (r.voice is None), name


def test_cancelled_analysis_leaves_nothing(corpus: Path, analyzer: Analyzer) -> None:
    """A user who stops an analysis half-way (here: an exception from the progress callback) leaves
    no decoder running and nothing in temporary storage."""
    from streamlit.testing.v1 import AppTest  # noqa: F401 - its import makes a folder of its own in /tmp

    before = _listing()

    def cancel(fraction: float, stage: str) -> None:
        if fraction > 0.3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        analyzer.analyze(corpus / "face_leaves.mp4", progress=cancel)
    assert _listing() - before == set()
    ffmpegs = subprocess.run(["pgrep", "-f", f"{FFMPEG}.*face_leaves"], capture_output=True, text=True).stdout
    assert ffmpegs.strip() == ""


@pytest.mark.parametrize(("name", "outcome"), [
    ("random.wav", "error"), ("text.wav", "error"), ("voice_8k.wav", "voice only"), ("alpha.png", "face only"),
    ("phone_portrait.mp4", "both"), ("tiny_face.mp4", "voice only"),
])
def test_the_app_gives_the_same_outcomes(corpus: Path, results: dict, name: str, outcome: str) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=240).run()
    at.file_uploader(key="upload").set_value((name, (corpus / name).read_bytes(), "application/octet-stream"))
    at.run()
    assert not at.exception
    if outcome == "error":
        assert at.error and at.error[0].value == results[name].error
        return
    table = at.dataframe[0].value
    assert table["Face"].isna().all() == (outcome == "voice only")
    assert table["Voice"].isna().all() == (outcome == "face only")
    assert {m.label: m.value for m in at.metric}["Expressed emotion"].split()[-1] == results[name].label


def _listing() -> set[str]:
    out = set(os.listdir(tempfile.gettempdir()))
    if Path("/dev/shm").is_dir():
        out |= {f"shm/{n}" for n in os.listdir("/dev/shm")}
    return out


def test_nothing_left_in_temporary_storage(corpus: Path, results: dict) -> None:
    """Every file of the corpus analysed (by the ``results`` fixture, which lists temporary storage around it),
    then two through the app."""
    from streamlit.testing.v1 import AppTest  # (its import makes a folder of its own in /tmp, removed at exit)

    assert LEFT_IN_TEMP["analyses"] == set()
    before = _listing()
    root = Path(__file__).resolve().parent.parent
    for name in ("hevc.mp4", "text.wav"):
        at = AppTest.from_file(str(root / "app.py"), default_timeout=240).run()
        at.file_uploader(key="upload").set_value((name, (corpus / name).read_bytes(), "application/octet-stream"))
        at.run()
        assert not at.exception
    assert _listing() - before == set()
