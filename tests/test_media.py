from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emotion_core.constants import SAMPLE_RATE
from emotion_core.errors import MediaError
from emotion_core.media import Limits, iter_frames, load_audio, load_image, probe


def test_probe_video_with_audio(media_dir: Path) -> None:
    info = probe(media_dir / "talking.mp4")
    assert info.kind == "video" and info.has_video and info.has_audio
    assert info.width == 640 and info.height == 360
    assert info.duration == pytest.approx(3.0, abs=0.15)


def test_audio_is_16k_mono_and_full_length(media_dir: Path) -> None:
    audio = load_audio(probe(media_dir / "talking.mp4"))
    assert audio is not None and audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) / SAMPLE_RATE == pytest.approx(3.0, abs=0.1)
    assert np.abs(audio).max() > 0.1


def test_video_without_audio_track(media_dir: Path) -> None:
    info = probe(media_dir / "no_audio.mp4")
    assert info.has_video and not info.has_audio
    assert load_audio(info) is None


def test_frames_are_sampled_with_timestamps(media_dir: Path) -> None:
    frames = list(iter_frames(probe(media_dir / "talking.mp4"), fps=5))
    assert len(frames) == pytest.approx(15, abs=1)
    assert [f.t for f in frames[:3]] == [0.0, 0.2, 0.4]
    assert frames[0].rgb.shape == (360, 640, 3)


def test_frames_downscaled_to_limit(media_dir: Path) -> None:
    frames = list(iter_frames(probe(media_dir / "talking.mp4"), fps=2, max_side=320))
    assert frames[0].rgb.shape == (180, 320, 3)


def test_audio_file(media_dir: Path) -> None:
    info = probe(media_dir / "voice.wav")
    assert info.kind == "audio" and not info.has_video
    assert len(load_audio(info)) == pytest.approx(3 * SAMPLE_RATE, abs=200)


@pytest.mark.parametrize(("name", "words"), [
    ("empty.mp4", "empty"),
    ("random.mp4", "could not be read"),
    ("text.mp4", "could not be read"),
    ("missing.mp4", "does not exist"),
])
def test_bad_files_have_human_messages(media_dir: Path, name: str, words: str) -> None:
    with pytest.raises(MediaError, match=words):
        probe(media_dir / name)


def test_a_file_that_holds_no_media(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(MediaError, match=r"too small .* to hold any audio or video"):
        probe(p)


def test_size_and_duration_limits(media_dir: Path) -> None:
    with pytest.raises(MediaError, match="MB limit"):
        probe(media_dir / "talking.mp4", Limits(max_file_mb=0.001))
    with pytest.raises(MediaError, match="min limit"):
        probe(media_dir / "talking.mp4", Limits(max_duration_s=1.0))


def test_image_alpha_and_grey(tmp_path: Path) -> None:
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent -> white background
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(np.full((30, 30), 128, np.uint8), "L").save(tmp_path / "g.png")
    img = load_image(probe(tmp_path / "a.png"))
    assert img.shape == (40, 50, 3) and (img == 255).all()
    assert load_image(probe(tmp_path / "g.png")).shape == (30, 30, 3)


def test_huge_image_refused(tmp_path: Path) -> None:
    Image.new("L", (3000, 2000)).save(tmp_path / "big.png")
    with pytest.raises(MediaError, match="megapixels"):
        probe(tmp_path / "big.png", Limits(max_image_pixels=1_000_000))
