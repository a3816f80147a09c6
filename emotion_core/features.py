"""Voice features: the Whisper-style log-mel spectrogram, loudness and voice-window selection.

The log-mel front end is Whisper's (80 bands, 25 ms window, 10 ms hop, log10, 8-decade floor,
scaled to roughly [-1, 1]; librosa's mel filterbank, torch's STFT), so the pretrained encoder sees what it was
trained on and the LIME panels show exactly what the model saw.
"""

from __future__ import annotations

from functools import lru_cache

import librosa
import numpy as np
import torch

from .constants import (
    HOP_LENGTH,
    MIN_VOICE_S,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    SILENCE_DBFS,
    VOICE_HOP_S,
    VOICE_WINDOW_S,
)


@lru_cache(maxsize=4)
def _mel_basis(device: str) -> torch.Tensor:
    fb = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)
    return torch.from_numpy(fb.astype(np.float32)).to(device)


def log_mel_torch(audio: torch.Tensor) -> torch.Tensor:
    """(batch, samples) -> (batch, N_MELS, samples // HOP_LENGTH) Whisper-normalised log-mel.

    Batched and device-agnostic, so training computes on the GPU exactly what inference
    computes on the CPU. Zero padding at the end of an item does not change its frames.
    """
    window = torch.hann_window(N_FFT, device=audio.device)
    stft = torch.stft(audio.float(), N_FFT, HOP_LENGTH, window=window, center=True,
                      pad_mode="reflect", return_complex=True)
    power = stft[..., :-1].abs() ** 2
    mel = _mel_basis(str(audio.device)) @ power
    logm = torch.log10(torch.clamp(mel, min=1e-10))
    logm = torch.maximum(logm, logm.amax(dim=(1, 2), keepdim=True) - 8.0)
    return (logm + 4.0) / 4.0


def log_mel(audio: np.ndarray) -> np.ndarray:
    """(N_MELS, frames) float32 log-mel of 16 kHz mono audio (Whisper's front end)."""
    audio = np.asarray(audio, dtype=np.float32)
    if len(audio) < N_FFT:
        audio = np.pad(audio, (0, N_FFT - len(audio)))
    with torch.no_grad():
        return log_mel_torch(torch.from_numpy(audio)[None])[0].numpy()


def frame_dbfs(audio: np.ndarray, frame_s: float = 0.05) -> np.ndarray:
    """RMS level in dBFS of consecutive ``frame_s`` frames."""
    n = max(1, int(frame_s * SAMPLE_RATE))
    usable = len(audio) // n * n
    if usable == 0:
        return np.full(1, -120.0)
    frames = audio[:usable].reshape(-1, n).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-6))


def voice_activity(audio: np.ndarray, frame_s: float = 0.05) -> np.ndarray:
    """Boolean per ``frame_s`` frame: loud enough to hold voice.

    Relative threshold (30 dB under the clip's loud frames) with an absolute floor, so a quiet
    but clean recording still counts and digital silence never does.
    """
    db = frame_dbfs(audio, frame_s)
    ref = np.percentile(db, 95)
    return db > max(SILENCE_DBFS, ref - 30.0)


def window_grid(duration: float, window_s: float = VOICE_WINDOW_S, hop_s: float = VOICE_HOP_S
                ) -> list[tuple[float, float]]:
    """Overlapping (start, end) windows covering ``duration`` seconds; the last one ends at the end.

    A recording no longer than one window is one window.
    """
    if duration <= window_s:
        return [(0.0, float(duration))]
    starts = list(np.arange(0.0, duration - window_s + 1e-6, hop_s))
    if starts[-1] + window_s < duration - 1e-6:
        starts.append(duration - window_s)
    return [(float(s), float(s + window_s)) for s in starts]


def voice_windows(audio: np.ndarray, grid: list[tuple[float, float]] | None = None
                  ) -> list[tuple[float, float, float]]:
    """Windows (start s, end s, share of voiced frames) that contain enough voice to classify.

    ``grid`` defaults to ``window_grid`` of the audio; windows are clipped to the audio's end.
    """
    duration = len(audio) / SAMPLE_RATE
    active = voice_activity(audio)
    frame_s = 0.05
    out = []
    for s, e in grid if grid is not None else window_grid(duration):
        e = min(duration, e)
        if e - s < MIN_VOICE_S:
            continue
        seg = active[int(s / frame_s): max(int(s / frame_s) + 1, int(e / frame_s))]
        if seg.sum() * frame_s >= MIN_VOICE_S:
            out.append((float(s), float(e), float(seg.mean())))
    return out
