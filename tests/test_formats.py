"""Any container and codec ffmpeg reads is accepted by its content, not its name (#14)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest
from PIL import Image

from emotion_core.errors import MediaError
from emotion_core.media import probe

FF = imageio_ffmpeg.get_ffmpeg_exe()
VIDEO_AUDIO = {  # name: ffmpeg output options (the source is the generated talking clip)
    "clip.flv": ["-c:v", "flv", "-c:a", "libmp3lame", "-ar", "44100"],
    "clip.3gp": ["-c:v", "h263", "-s", "352x288", "-c:a", "libopencore_amrnb", "-ar", "8000", "-ac", "1"],
    "clip.wmv": ["-c:v", "wmv2", "-c:a", "wmav2"],
    "clip.mpg": ["-r", "25", "-c:v", "mpeg1video", "-c:a", "mp2"],
    "clip.ts": ["-r", "25", "-c:v", "mpeg2video", "-c:a", "mp2", "-f", "mpegts"],
    "clip.m4v": ["-c:v", "libx264", "-c:a", "aac", "-f", "mp4"],
}
AUDIO = {
    "voice.opus": ["-c:a", "libopus", "-b:a", "32k"],
    "voice.aac": ["-c:a", "aac", "-f", "adts"],
    "voice.amr": ["-c:a", "libopencore_amrnb", "-ar", "8000", "-ac", "1"],
    "voice.wma": ["-c:a", "wmav2", "-f", "asf"],
}
IMAGES = ("face.webp", "face.bmp", "face.tiff")


@pytest.fixture(scope="module")
def formats(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("formats")
    for name, opts in VIDEO_AUDIO.items():
        subprocess.run([FF, "-v", "error", "-i", str(media_dir / "talking.mp4"), *opts, str(d / name)], check=True)
    for name, opts in AUDIO.items():
        subprocess.run([FF, "-v", "error", "-i", str(media_dir / "voice.wav"), *opts, str(d / name)], check=True)
    for name in IMAGES:
        Image.open(media_dir / "face.jpg").save(d / name)
    shutil.copy(media_dir / "talking.mp4", d / "recording.bin")  # a video under a name that says nothing
    shutil.copy(media_dir / "voice.wav", d / "interview")  # audio with no extension at all
    shutil.copy(media_dir / "face.jpg", d / "photo.dat")
    (d / "notes.mp4").write_text("minutes of the meeting\n" * 400)  # a text file dressed as a video
    return d


@pytest.mark.parametrize("name", [*VIDEO_AUDIO, "recording.bin"])
def test_video_containers_are_read_with_both_tracks(formats: Path, name: str) -> None:
    info = probe(formats / name)
    assert (info.kind, info.has_video, info.has_audio) == ("video", True, True)
    assert 2.5 < info.duration < 3.6 and info.width and info.height


@pytest.mark.parametrize("name", [*AUDIO, "interview"])
def test_audio_formats_are_read(formats: Path, name: str) -> None:
    info = probe(formats / name)
    assert (info.kind, info.has_audio) == ("audio", True) and 2.5 < info.duration < 3.6


@pytest.mark.parametrize("name", [*IMAGES, "photo.dat"])
def test_photos_are_read_by_their_bytes(formats: Path, name: str) -> None:
    assert probe(formats / name).kind == "image"


def test_what_holds_no_media_gets_a_clear_message(formats: Path) -> None:
    with pytest.raises(MediaError, match="could not be read as audio, video or a photo"):
        probe(formats / "notes.mp4")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["clip.flv", "clip.wmv", "clip.3gp", "voice.amr", "face.webp", "recording.bin"])
def test_other_formats_are_analysed_with_every_modality_they_hold(analyzer, formats: Path, name: str) -> None:
    res = analyzer.analyze(formats / name)
    assert res.error is None
    info = probe(formats / name)
    if info.has_audio:
        assert res.voice is not None and res.voice.windows
    if info.has_video:
        assert res.face is not None and res.face.frames, "no face read"


def test_a_giant_photo_is_refused_as_a_photo(tmp_path: Path) -> None:
    Image.new("1", (14_000, 14_000)).save(tmp_path / "poster.png")  # 196 megapixels: Pillow's bomb guard trips
    with pytest.raises(MediaError, match="over the limit of 50 megapixels"):
        probe(tmp_path / "poster.png")
