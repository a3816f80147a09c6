"""Media loading: probe a file, decode its audio to 16 kHz mono, stream sampled video frames.

Decoding goes through the ffmpeg binary that ships with imageio-ffmpeg (moviepy's own), piped to
memory: no temporary files, no system ffmpeg. Frames are sampled and downscaled inside ffmpeg, so a
long video is streamed a frame at a time instead of being held in memory.
"""

from __future__ import annotations

import queue
import re
import subprocess
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import imageio_ffmpeg
import numpy as np
from PIL import Image, ImageOps

from .constants import (
    DETECT_MAX_SIDE,
    FRAME_RATE,
    LONG_FRAME_RATE,
    LONG_RECORDING_S,
    MAX_DURATION_S,
    MAX_FILE_MB,
    MAX_FRAME_RATE,
    MAX_IMAGE_PIXELS,
    MEDIA_EXTENSIONS,
    MIN_FRAME_RATE,
    SAMPLE_RATE,
)
from .errors import MediaError

T = TypeVar("T")

_FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class Limits:
    """What one analysis accepts; the app and the command line state these to the user."""

    max_file_mb: float = MAX_FILE_MB
    max_duration_s: float = MAX_DURATION_S
    max_image_pixels: int = MAX_IMAGE_PIXELS


@dataclass(frozen=True)
class MediaInfo:
    """What a file holds, read from its header before anything is decoded."""

    path: Path
    kind: str  # "video" | "audio" | "image"
    duration: float | None
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None


@dataclass(frozen=True)
class Frame:
    """One sampled video frame (RGB uint8, downscaled) and its time in seconds."""

    t: float
    rgb: np.ndarray


def is_media_file(path: Path) -> bool:
    return path.suffix.lower() in MEDIA_EXTENSIONS


def expand_inputs(paths: list[str]) -> list[Path]:
    """Files as given, directories replaced by every media file under them (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and is_media_file(f))
        else:
            out.append(p)
    return out


def probe(path: str | Path, limits: Limits = Limits()) -> MediaInfo:
    """Check that ``path`` is a readable media file within ``limits``; raise MediaError if not."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path.name}: the file does not exist.")
    if path.is_dir():
        raise MediaError(f"{path.name}: this is a folder, not a media file.")
    size = path.stat().st_size
    if size == 0:
        raise MediaError(f"{path.name}: the file is empty (0 bytes).")
    if size > limits.max_file_mb * 1e6:
        raise MediaError(
            f"{path.name}: the file is {size / 1e6:.0f} MB, over the {limits.max_file_mb:.0f} MB limit."
        )
    image = _probe_image(path, limits)
    if image is not None:
        return image
    from moviepy.video.io.ffmpeg_reader import ffmpeg_parse_infos

    try:
        infos = ffmpeg_parse_infos(str(path), check_duration=True)
    except Exception:  # moviepy raises OSError, KeyError, TypeError... on damaged files
        if size < 4096:
            raise MediaError(f"{path.name}: the file is too small ({size} bytes) to hold any audio or video; it may "
                             "be empty, cut short, or not a media file.") from None
        raise MediaError(
            f"{path.name}: this file could not be read as audio, video or a photo. It may be damaged or "
            "truncated, or hold something else (any format ffmpeg can decode is accepted, whatever its name)."
        ) from None
    has_video = bool(infos.get("video_found"))
    has_audio = bool(infos.get("audio_found"))
    duration = infos.get("duration") or infos.get("video_duration")
    if not has_video and not has_audio:
        raise MediaError(f"{path.name}: the file contains neither a video nor an audio track.")
    if not duration or duration <= 0:
        raise MediaError(f"{path.name}: the file has no playable content (zero length).")
    if duration > limits.max_duration_s:
        raise MediaError(
            f"{path.name}: the recording lasts {duration / 60:.1f} min, over the "
            f"{limits.max_duration_s / 60:.0f} min limit. Trim it or split it into parts."
        )
    if has_video:
        w, h = infos.get("video_size") or (0, 0)
        if (infos.get("video_rotation") or _display_rotation(path)) in (90, 270, -90, -270):
            w, h = h, w  # ffmpeg applies the rotation when decoding: frames come out turned
        if not w or not h:
            raise MediaError(f"{path.name}: the video track has no readable picture size.")
        return MediaInfo(path, "video", float(duration), True, has_audio, int(w), int(h),
                         float(infos.get("video_fps") or 0) or None)
    return MediaInfo(path, "audio", float(duration), False, True)


def _display_rotation(path: Path) -> int:
    """Rotation stored as a display matrix (phone videos), which moviepy's parser does not read."""
    proc = subprocess.run([_FFMPEG, "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, text=True,
                          check=False)
    m = re.search(r"rotation of (-?\d+(?:\.\d+)?) degrees", proc.stderr)
    return int(round(float(m.group(1)))) % 360 if m else 0


def _probe_image(path: Path, limits: Limits) -> MediaInfo | None:
    """The file as a still photo when its content is one (by its bytes, not its name); else None."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            still = im.format in STILL_FORMATS
    except Image.DecompressionBombError:  # a photo, far too large: say so rather than try it as a video
        raise MediaError(f"{path.name}: the image is over the limit of {limits.max_image_pixels / 1e6:.0f} "
                         "megapixels.") from None
    except Exception:
        return None
    if not still:
        return None
    if w * h > limits.max_image_pixels:
        raise MediaError(
            f"{path.name}: the image is {w}x{h} pixels, over the limit of "
            f"{limits.max_image_pixels / 1e6:.0f} megapixels."
        )
    return MediaInfo(path, "image", None, True, False, w, h)


STILL_FORMATS = frozenset({"JPEG", "PNG", "BMP", "WEBP", "TIFF", "GIF", "MPO", "PPM", "TGA", "ICO", "JPEG2000"})
"""Pillow formats read as a photo (the first frame of an animated GIF or WebP)."""


def load_image(info: MediaInfo, max_side: int = DETECT_MAX_SIDE * 2) -> np.ndarray:
    """Decode an image to RGB uint8, upright (EXIF), alpha flattened on white, downscaled."""
    try:
        with Image.open(info.path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            im = im.convert("RGB")
            im.thumbnail((max_side, max_side))
            return np.asarray(im).copy()
    except MediaError:
        raise
    except Exception:
        raise MediaError(f"{info.path.name}: the image is damaged and could not be decoded.") from None


def load_audio(info: MediaInfo) -> np.ndarray | None:
    """The audio track as float32 mono at SAMPLE_RATE, or None when the file has none."""
    if not info.has_audio:
        return None
    cmd = [_FFMPEG, "-nostdin", "-v", "error", "-i", str(info.path), "-vn", "-map", "0:a:0",
           "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    audio = np.frombuffer(proc.stdout, dtype=np.float32)
    if proc.returncode != 0 and audio.size == 0:
        if info.kind == "audio":
            raise MediaError(f"{info.path.name}: the audio could not be decoded; the file may be damaged.")
        return None
    return np.nan_to_num(audio).copy()


def output_size(info: MediaInfo, max_side: int = DETECT_MAX_SIDE) -> tuple[int, int]:
    """Frame size after downscaling so the longer side is at most ``max_side`` (even numbers)."""
    assert info.width and info.height
    scale = min(1.0, max_side / max(info.width, info.height))
    w = max(2, int(round(info.width * scale / 2)) * 2)
    h = max(2, int(round(info.height * scale / 2)) * 2)
    return w, h


def check_frame_rate(fps: float) -> float:
    """``fps`` if it lies within MIN_FRAME_RATE-MAX_FRAME_RATE, else ValueError with a human message."""
    if not MIN_FRAME_RATE <= fps <= MAX_FRAME_RATE:
        raise ValueError(f"frame rate {fps:g} is outside {MIN_FRAME_RATE:g}-{MAX_FRAME_RATE:g} frames per second")
    return fps


def frame_rate_for(duration: float | None, chosen: float | None = None) -> float:
    """The frames per second to read: ``chosen`` if given, else FRAME_RATE, or LONG_FRAME_RATE for a
    video longer than LONG_RECORDING_S."""
    if chosen is not None:
        return chosen
    return LONG_FRAME_RATE if (duration or 0.0) > LONG_RECORDING_S else FRAME_RATE


def prefetch(items: Iterable[T], depth: int) -> Iterator[T]:
    """``items`` read ahead by up to ``depth`` in a thread (0: as they come), so that decoding goes on
    while the caller computes: on a GPU, the next frames are decoded while a batch is detected."""
    if depth <= 0:
        yield from items
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        it = iter(items)
        try:
            for item in it:
                if not put(item):
                    return
            put(done)
        except BaseException as e:  # handed to the consumer, raised there
            put(e)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()  # a generator's clean-up (ffmpeg's process) runs in this thread

    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join(timeout=5)


def iter_frames(info: MediaInfo, fps: float = FRAME_RATE, max_side: int = DETECT_MAX_SIDE) -> Iterator[Frame]:
    """Stream frames sampled at ``fps`` (timestamps from the clip start), downscaled in ffmpeg.

    ffmpeg applies the rotation stored in phone videos, so portrait clips come out upright.
    """
    w, h = output_size(info, max_side)
    cmd = [_FFMPEG, "-nostdin", "-v", "error", "-i", str(info.path), "-map", "0:v:0", "-an",
           "-vf", f"fps={fps},scale={w}:{h}:flags=area", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    n_bytes = w * h * 3
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    try:
        i = 0
        while True:
            buf = proc.stdout.read(n_bytes)
            if len(buf) < n_bytes:
                break
            yield Frame(t=i / fps, rgb=np.frombuffer(buf, np.uint8).reshape(h, w, 3))
            i += 1
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()
