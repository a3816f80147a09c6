"""The personal baseline: how a person usually sounds, as the frozen probe's mean features.

A baseline is a recording (or a stretch of one) of the person speaking in their usual way; the
voice ensemble's baseline head then reads each window relative to it (``voice_ensemble.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .constants import SAMPLE_RATE
from .errors import MediaError
from .features import log_mel, voice_windows
from .voice_ensemble import VoiceEnsemble, VoiceProbe

MIN_BASELINE_VOICED_S = 1.0
"""Less voiced speech than this is too little to stand for how a person usually sounds."""
SHORT_BASELINE_S = 5.0
"""Below this a baseline is used, with a warning."""


@dataclass
class VoiceBaseline:
    """A person's baseline: the probe's mean features over their baseline speech."""

    features: np.ndarray
    source: str
    voiced_seconds: float

    def to_dict(self) -> dict:
        return {"source": self.source, "voiced_seconds": round(self.voiced_seconds, 2)}

    @property
    def warning(self) -> str | None:
        if self.voiced_seconds < SHORT_BASELINE_S:
            return (f"baseline: only {self.voiced_seconds:.1f} s of speech in the baseline; a longer one (half a "
                    "minute of ordinary talk) describes the person's usual voice better.")
        return None

    def checked(self) -> VoiceBaseline:
        if self.voiced_seconds < MIN_BASELINE_VOICED_S:
            raise MediaError(f"baseline: {self.source} holds {self.voiced_seconds:.1f} s of speech; at least "
                             f"{MIN_BASELINE_VOICED_S:g} s of the person speaking in their usual way is needed.")
        return self

    @staticmethod
    def combine(parts: list[VoiceBaseline]) -> VoiceBaseline:
        """Several baseline recordings of one person as one (weighted by their speech)."""
        w = np.array([p.voiced_seconds for p in parts])
        names = [p.source for p in parts]
        source = ", ".join(names) if len(names) <= 3 else f"{len(names)} recordings ({names[0]}, ...)"
        return VoiceBaseline(np.average(np.stack([p.features for p in parts]), axis=0, weights=w), source,
                             float(w.sum()))


def voice_baseline(ensemble: nn.Module, audio: np.ndarray | None, source: str, check: bool = True) -> VoiceBaseline:
    """The baseline of one recording (or stretch of a recording); MediaError when it cannot serve."""
    if not isinstance(ensemble, VoiceEnsemble):
        raise MediaError("baseline: the installed voice model has no baseline head (weights/voice_probe.pt).")
    if audio is None or len(audio) == 0:
        raise MediaError(f"baseline: {source} has no audio; a baseline is a recording of the person speaking.")
    windows = voice_windows(audio)
    if not windows:
        raise MediaError(f"baseline: no speech was found in {source}.")
    voiced = float(sum((e - s) * a for s, e, a in windows))
    out = VoiceBaseline(recording_features(ensemble.probe, audio, windows), source, voiced)
    return out.checked() if check else out


@torch.no_grad()
def window_features(probe: VoiceProbe, audio: np.ndarray, windows: list[tuple[float, float, float]]) -> np.ndarray:
    """(n windows, d) the probe's features of each (start s, end s, voiced share) window of 16 kHz mono audio."""
    device = next(probe.parameters()).device
    feats = [probe.features(torch.from_numpy(log_mel(audio[int(s * SAMPLE_RATE): int(e * SAMPLE_RATE)]))[None]
                            .to(device))[0] for s, e, _ in windows]
    return torch.stack(feats).cpu().numpy()


def recording_features(probe: VoiceProbe, audio: np.ndarray,
                       windows: list[tuple[float, float, float]] | None = None) -> np.ndarray | None:
    """Voice-activity-weighted mean of the probe's window features over a recording (16 kHz mono);
    None when it holds no voice. This is both a training clip's feature and a person's baseline."""
    windows = voice_windows(audio) if windows is None else windows
    if not windows:
        return None
    return np.average(window_features(probe, audio, windows), axis=0, weights=[a for *_, a in windows])
