"""Late fusion of the face and voice probabilities, and the face/voice agreement signal.

The rule (documented in the model card):
1. Calm: the face model has no calm class. Its neutral probability stands for "neutral or
   calm" and is split between the two in the proportion the voice gives them. Without a voice,
   calm stays 0 (the face alone cannot tell calm from neutral).
2. Weights: each branch's prior weight (voice 0.6, face 0.4: the voice model is measured on the
   same kind of data it meets; the face model is trained on web photos) is scaled by its
   evidence: face = min(1, usable frames / 5), voice = min(1, voiced seconds / 1.5). The priors
   can be refitted on real audio-visual pairs (``ravdess_av``): ``weights/fusion.json`` then
   holds the fitted voice prior (the face's is 1 minus it).
3. The fused distribution is the weighted mean; a missing branch gets weight 0.
4. Agreement: "agree" when both branches' top emotions are the same, "disagree" when both are
   confident (top probability >= 0.5) and differ, else "uncertain"; None with one branch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .constants import EMOTIONS

VOICE_PRIOR = 0.6
FACE_FULL_FRAMES = 5
VOICE_FULL_SECONDS = 1.5
CONFIDENT = 0.5

_N, _C = EMOTIONS.index("neutral"), EMOTIONS.index("calm")


FUSION_FILE = "fusion.json"


@dataclass(frozen=True)
class FusionConfig:
    """The fusion's one free parameter and where it came from."""

    voice_prior: float = VOICE_PRIOR
    source: str = "documented default (no real audio-visual pairs were available to fit it)"

    @classmethod
    def load(cls, weights_dir: str | Path) -> FusionConfig:
        """``weights_dir/fusion.json`` when present (written by ``ravdess-av --fit --install``), else the default."""
        path = Path(weights_dir) / FUSION_FILE
        if not path.exists():
            return cls()
        d = json.loads(path.read_text())
        cfg = cls(float(d["voice_prior"]), str(d.get("source", path.name)))
        if not 0.0 <= cfg.voice_prior <= 1.0:
            raise ValueError(f"{path}: voice_prior must lie in [0, 1], not {cfg.voice_prior}")
        return cfg

    def save(self, path: str | Path, **extra: object) -> None:
        Path(path).write_text(json.dumps(asdict(self) | extra, indent=2) + "\n")


@dataclass
class Fused:
    probs: np.ndarray
    face_weight: float
    voice_weight: float
    agreement: str | None


def split_calm(face: np.ndarray, voice: np.ndarray | None) -> np.ndarray:
    """Share the face's neutral mass between neutral and calm as the voice does."""
    out = face.copy()
    if voice is None:
        return out
    low = voice[_N] + voice[_C]
    share_calm = voice[_C] / low if low > 1e-9 else 0.5
    out[_C] = face[_N] * share_calm
    out[_N] = face[_N] * (1 - share_calm)
    return out


def agreement(face: np.ndarray | None, voice: np.ndarray | None) -> str | None:
    if face is None or voice is None:
        return None
    fi, vi = int(np.argmax(face)), int(np.argmax(voice))
    if fi == vi:
        return "agree"
    if face[fi] >= CONFIDENT and voice[vi] >= CONFIDENT:
        return "disagree"
    return "uncertain"


def fuse(face: np.ndarray | None, voice: np.ndarray | None, face_frames: int = 0,
         voiced_seconds: float = 0.0, voice_prior: float = VOICE_PRIOR) -> Fused:
    """Combine branch probabilities (8-class, face calm = 0); at least one must be present."""
    if face is None and voice is None:
        raise ValueError("fuse needs at least one modality")
    wf = (1.0 - voice_prior) * min(1.0, face_frames / FACE_FULL_FRAMES) if face is not None else 0.0
    wv = voice_prior * min(1.0, voiced_seconds / VOICE_FULL_SECONDS) if voice is not None else 0.0
    face_c = split_calm(face, voice) if face is not None else None
    if wf + wv <= 0:  # evidence too thin on both sides: fall back to equal weights
        wf, wv = float(face is not None), float(voice is not None)
    total = wf + wv
    p = np.zeros(len(EMOTIONS))
    if face_c is not None:
        p += wf / total * face_c
    if voice is not None:
        p += wv / total * voice
    p = p / p.sum()
    return Fused(p, wf / total, wv / total, agreement(face_c, voice))
