"""Domain augmentation of training speech: rooms, channels, noise and microphones, made on the fly.

Why: the voice model first learned from one studio; the people it is used on speak in offices,
over phones and video calls, with air conditioning and other voices in the room. Each family
below simulates one of those differences with a library built for it, so a training clip can be
heard as if recorded elsewhere:

- ``room``: reverberation of a simulated shoebox room (pyroomacoustics' image-source method;
  rooms 3-10 m, RT60 0.2-0.9 s, talker 0.5-3 m from the microphone).
- ``channel``: telephone (AMR-NB at 4.75-12.2 kbit/s, 8 kHz), video call (Opus 6-16 kbit/s) or a
  compressed recording (MP3 16-32 kbit/s), encoded and decoded by ffmpeg (imageio-ffmpeg's binary),
  with the telephone's 300-3400 Hz band.
- ``noise``: coloured noise (white to brown, audiomentations) or babble made of other training
  clips, at 5-25 dB signal-to-noise ratio.
- ``mic``: loudness (-18 to +6 dB), a seven-band parametric EQ and a low or high shelf
  (audiomentations), the colouring of a cheap or distant microphone.

``augment(y, family, rng)`` applies one family; ``FAMILIES`` names them. Training only: none of
this is imported by the app.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import numpy as np

from ..constants import SAMPLE_RATE

FAMILIES = ("room", "channel", "noise", "mic")


def ffmpeg_exe() -> str:
    """imageio-ffmpeg's bundled ffmpeg (no system ffmpeg needed)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def codec_roundtrip(y: np.ndarray, codec: str, bitrate: str, rate: int, fmt: str) -> np.ndarray:
    """Encode ``y`` (16 kHz float) with ffmpeg's ``codec`` at ``bitrate`` and decode it back to 16 kHz."""
    pcm = (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()
    enc = subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "pipe:0",
                          "-ar", str(rate), "-c:a", codec, "-b:a", bitrate, "-f", fmt, "pipe:1"],
                         input=pcm, capture_output=True, check=True).stdout
    dec = subprocess.run([ffmpeg_exe(), "-v", "error", "-f", fmt, "-i", "pipe:0", "-ar", str(SAMPLE_RATE), "-ac", "1",
                          "-f", "s16le", "pipe:1"], input=enc, capture_output=True, check=True).stdout
    out = np.frombuffer(dec, "<i2").astype(np.float32) / 32768
    out = out[: len(y)]
    return np.pad(out, (0, len(y) - len(out)))


def random_rir(rng: np.random.Generator) -> np.ndarray:
    """The impulse response from a talker to a microphone in a random shoebox room (image-source method)."""
    import pyroomacoustics as pra

    dims = rng.uniform([3, 3, 2.4], [10, 8, 3.5])
    rt60 = rng.uniform(0.2, 0.9)
    try:
        absorption, max_order = pra.inverse_sabine(rt60, dims)
    except ValueError:  # RT60 impossible for this room: a drier one
        absorption, max_order = 0.5, 10
    r = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=min(max_order, 12))
    src = rng.uniform([0.5, 0.5, 1.2], dims - [0.5, 0.5, 0.8])
    direction = rng.normal(size=3) * [1, 1, 0.2]
    mic = np.clip(src + direction / np.linalg.norm(direction) * rng.uniform(0.5, 3.0), 0.3, dims - 0.3)
    r.add_source(src)
    r.add_microphone(mic)
    r.compute_rir()
    return np.asarray(r.rir[0][0], dtype=np.float32)


def rir_bank(n: int, seed: int = 0, max_s: float = 0.8) -> np.ndarray:
    """(n, samples) impulse responses of ``n`` random rooms, each starting at its direct path and cut at
    ``max_s`` seconds (by then the longest reverberation, RT60 0.9 s, has decayed by 53 dB): the bank that
    the GPU trainer convolves batches with."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, int(max_s * SAMPLE_RATE)), np.float32)
    for i in range(n):
        h = random_rir(rng)
        h = h[np.argmax(np.abs(h)):][: out.shape[1]]
        out[i, : len(h)] = h / np.max(np.abs(h))
    return out


def room(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``y`` as heard in a random shoebox room (image-source method)."""
    from scipy.signal import fftconvolve

    rir = random_rir(rng)
    out = fftconvolve(y, rir)[np.argmax(np.abs(rir)):][: len(y)]
    return _match_peak(out, y)


def channel(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``y`` through a telephone, a video call or a low-bitrate recording."""
    from audiomentations import BandPassFilter

    kind = rng.choice(["phone", "call", "mp3"])
    if kind == "phone":
        _seed_library(rng)
        y = BandPassFilter(min_center_freq=1000, max_center_freq=1100, min_bandwidth_fraction=1.5,
                           max_bandwidth_fraction=1.8, p=1.0)(y.astype(np.float32), SAMPLE_RATE)
        rate = str(rng.choice(["4.75k", "7.4k", "12.2k"]))
        return codec_roundtrip(y, "libopencore_amrnb", rate, 8000, "amr")
    if kind == "call":
        return codec_roundtrip(y, "libopus", f"{int(rng.integers(6, 17))}k", 16000, "ogg")
    return codec_roundtrip(y, "libmp3lame", str(rng.choice(["16k", "24k", "32k"])), 16000, "mp3")


def noise(y: np.ndarray, rng: np.random.Generator, others: list[np.ndarray] | None = None) -> np.ndarray:
    """``y`` with coloured noise or, when ``others`` are given, babble of other speakers, at 5-25 dB SNR."""
    from audiomentations import AddColorNoise

    snr = rng.uniform(5, 25)
    if others and rng.random() < 0.5:
        n_talkers = int(rng.integers(2, 5))
        babble = np.zeros_like(y)
        for i in rng.choice(len(others), size=min(n_talkers, len(others)), replace=False):
            o = np.resize(others[i], len(y)) if len(others[i]) else np.zeros_like(y)
            babble += o / (np.sqrt(np.mean(o**2)) + 1e-8)
        return _mix(y, babble, snr)
    _seed_library(rng)
    return AddColorNoise(min_snr_db=snr, max_snr_db=snr, p=1.0)(y.astype(np.float32), SAMPLE_RATE)


def mic(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``y`` through another microphone and gain: parametric EQ, a shelf, a loudness change."""
    from audiomentations import Compose, Gain, HighShelfFilter, LowShelfFilter, OneOf, SevenBandParametricEQ

    chain = Compose([SevenBandParametricEQ(min_gain_db=-8, max_gain_db=8, p=1.0),
                     OneOf([LowShelfFilter(p=1.0), HighShelfFilter(p=1.0)], p=0.7),
                     Gain(min_gain_db=-18, max_gain_db=6, p=1.0)])
    _seed_library(rng)
    return np.clip(chain(y.astype(np.float32), SAMPLE_RATE), -1, 1)


AUGMENTERS: dict[str, Callable[..., np.ndarray]] = {"room": room, "channel": channel, "noise": noise, "mic": mic}


def augment(y: np.ndarray, family: str, rng: np.random.Generator, others: list[np.ndarray] | None = None
            ) -> np.ndarray:
    """One augmentation ``family`` applied to ``y`` (16 kHz mono float); ``all`` chains them in random order."""
    families = list(rng.permutation(FAMILIES)) if family == "all" else [family]
    for f in families:
        y = noise(y, rng, others) if f == "noise" else AUGMENTERS[f](y, rng)
    return np.asarray(y, dtype=np.float32)


def _seed_library(rng: np.random.Generator) -> None:
    """audiomentations draws from the global ``random`` and ``numpy.random``: seed them from ``rng``."""
    import random

    seed = int(rng.integers(2**31))
    random.seed(seed)
    np.random.seed(seed)


def _mix(y: np.ndarray, n: np.ndarray, snr_db: float) -> np.ndarray:
    p_y, p_n = np.mean(y**2), np.mean(n**2) + 1e-12
    return (y + n * np.sqrt(p_y / (p_n * 10 ** (snr_db / 10)))).astype(np.float32)


def _match_peak(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return (out * (np.max(np.abs(ref)) / (np.max(np.abs(out)) + 1e-9))).astype(np.float32)
