"""Running the two models: voice windows -> probabilities, face inputs -> probabilities.

Both branches return probabilities in the 8-class EMOTIONS space. The face model has no calm
class (FER2013 has none): its calm probability is 0 and fusion leaves calm to the voice.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .constants import EMOTIONS, FACE_EMOTIONS, SAMPLE_RATE
from .familiarity import Familiarity, FamiliarityReading
from .features import log_mel, voice_windows
from .registry import LoadedModel
from .voice_ensemble import VoiceEnsemble

FACE_INDEX = np.array([EMOTIONS.index(e) for e in FACE_EMOTIONS])
_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(net: torch.nn.Module) -> threading.RLock:
    """The lock of one network. Grad-CAM hangs hooks on a shared model: while they are on, another
    session's forward pass through the same model would feed them its activations, so forward
    passes of a model that can be explained take its lock (the app serves sessions in threads)."""
    with _LOCKS_GUARD:
        if net not in _LOCKS:
            _LOCKS[net] = threading.RLock()
        return _LOCKS[net]


def face_to_8(p7: np.ndarray) -> np.ndarray:
    """(..., 7) face probabilities -> (..., 8) with calm = 0."""
    p8 = np.zeros(p7.shape[:-1] + (len(EMOTIONS),), dtype=np.float64)
    p8[..., FACE_INDEX] = p7
    return p8


def softmax_t(logits: torch.Tensor, temperature: float | torch.Tensor = 1.0) -> np.ndarray:
    return torch.softmax(logits.float() / temperature, dim=-1).cpu().numpy().astype(np.float64)


def mel_batch(mels: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad log-mels to one length; returns (batch, n_mels, frames) and valid frame counts.

    Padding uses each clip's floor value (Whisper's silence level after normalisation).
    """
    n = max(m.shape[1] for m in mels)
    out = np.stack([np.pad(m, ((0, 0), (0, n - m.shape[1])), constant_values=float(m.min())) for m in mels])
    return torch.from_numpy(out), torch.tensor([m.shape[1] for m in mels])


def voice_logits(model: LoadedModel, mel: torch.Tensor, n_frames: torch.Tensor | None = None,
                 baseline: np.ndarray | None = None) -> torch.Tensor:
    """The voice model's logits, relative to a personal baseline when one is given."""
    if baseline is None:
        return model.model(mel, n_frames)
    if not getattr(model.model, "accepts_baseline", False):
        raise ValueError("this voice model has no baseline head (weights/voice_probe.pt is missing)")
    return model.model(mel, n_frames, baseline=torch.as_tensor(baseline, dtype=torch.float32, device=mel.device))


@dataclass
class VoiceWindow:
    start: float
    end: float
    activity: float
    probs: np.ndarray  # (8,)
    logits: np.ndarray | None = None  # (8,) before temperature, for calibration


@torch.inference_mode()
def predict_voice_windows(model: LoadedModel, audio: np.ndarray, windows: list[tuple[float, float, float]]
                          | None = None, batch_size: int = 16, baseline: np.ndarray | None = None,
                          progress: Callable[[float], None] | None = None) -> list[VoiceWindow]:
    """Voice probabilities for each voiced window of ``audio`` (16 kHz mono).

    ``baseline``: the person's baseline features (``baseline.voice_baseline``), or None for the plain path.
    """
    return read_voice(model, audio, windows, batch_size, baseline, progress)[0]


@torch.inference_mode()
def read_voice(model: LoadedModel, audio: np.ndarray, windows: list[tuple[float, float, float]] | None = None,
               batch_size: int = 16, baseline: np.ndarray | None = None,
               progress: Callable[[float], None] | None = None) -> tuple[list[VoiceWindow], FamiliarityReading | None]:
    """``predict_voice_windows`` and the recording's familiarity. When the voice model holds a familiarity
    model (``familiarity.py``), the window probabilities take the temperature the whole recording's
    familiarity gives (one per recording: how unlike the training data the voice is), not the fixed one."""
    windows = voice_windows(audio) if windows is None else windows
    net = model.model
    familiarity = net.probe.familiarity if isinstance(net, VoiceEnsemble) else None
    logits_all, feats = [], []
    for i in range(0, len(windows), batch_size):
        chunk = windows[i: i + batch_size]
        mels = [log_mel(audio[int(s * SAMPLE_RATE): int(e * SAMPLE_RATE)]) for s, e, _ in chunk]
        x, n = mel_batch(mels)
        device = next(net.parameters()).device
        if familiarity is not None:
            b = None if baseline is None else torch.as_tensor(baseline, dtype=torch.float32, device=device)
            logits, f = net.forward_with_features(x.to(device), n.to(device), b)
            feats.append(f.float().cpu())
        else:
            logits = voice_logits(model, x.to(device), n.to(device), baseline)
        logits_all.append(logits.float().cpu())
        if progress is not None:
            progress(min(i + batch_size, len(windows)) / len(windows))
    if not windows:
        return [], None
    logits = torch.cat(logits_all)
    reading = None
    temperature = model.temperature
    if familiarity is not None:
        activity = torch.tensor([a for *_, a in windows], dtype=torch.float64)
        pooled = (torch.cat(feats).double() * activity[:, None]).sum(0) / activity.sum()
        reading = familiarity.read(net.probe.head_input(pooled.float()).double())
        temperature = reading.temperature
    probs = softmax_t(logits, temperature)
    return [VoiceWindow(s, e, a, p, lg) for (s, e, a), p, lg in zip(windows, probs, logits.numpy(), strict=True)], reading


def pool_voice(windows: list[VoiceWindow], temperature: float | None = None, weights: np.ndarray | None = None
               ) -> np.ndarray:
    """Clip-level voice probabilities: windows weighted by how much of them is voiced (or by ``weights``,
    as a coded segment weighs the windows it overlaps).

    With ``temperature`` the window probabilities are recomputed from their logits (calibration).
    """
    w = np.array([vw.activity for vw in windows]) if weights is None else np.asarray(weights, float)
    p = np.stack([vw.probs if temperature is None else softmax_t(torch.from_numpy(vw.logits), temperature)
                  for vw in windows])
    return (w[:, None] * p).sum(0) / w.sum()


FACE_BATCH = 8
"""Faces per forward pass at inference. Measured on 2 cores (1503 faces): batches of 8 take 7.0 s and
add 50 MB of transient memory; batches of 32, 9.6 s and 230 MB (the 128x128 activations leave the cache)."""


@dataclass
class FaceReading:
    """Each face's probabilities and, where the face model holds a familiarity model, how unlike the faces it
    knows each face is (0-1) and the temperature that follows."""

    probs: np.ndarray  # (n, 8), calm = 0
    unfamiliarity: np.ndarray | None = None  # (n,)
    temperature: np.ndarray | None = None  # (n,)


@torch.inference_mode()
def face_outputs(model: LoadedModel, faces: np.ndarray, batch_size: int = FACE_BATCH, flip_tta: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(n, 48, 48) face inputs in [0, 1] -> (logits (n, 7), penultimate features (n, 1280)), before any
    temperature. With ``flip_tta`` both are the mean over the face and its mirror image (cheap, steadier on
    real video; the classifier is linear, so the mean features give the mean logits). A face network without
    ``embed`` (any other module that maps faces to logits) gives no features."""
    net = model.model
    device = next(net.parameters()).device
    split = hasattr(net, "embed") and hasattr(net, "classify")
    logits, feats = [], []
    for i in range(0, len(faces), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(faces[i: i + batch_size], dtype=np.float32))[:, None].to(device)
        with model_lock(net):
            h = net.embed(x) if split else net(x)
            if flip_tta:
                h = (h + (net.embed if split else net)(torch.flip(x, dims=[-1]))) / 2
            logits.append((net.classify(h) if split else h).float().cpu())
        if split:
            feats.append(h.float().cpu())
    if not logits:
        return torch.zeros(0, len(FACE_EMOTIONS)), None
    return torch.cat(logits), torch.cat(feats) if split else None


def per_face_softmax(familiarity: Familiarity, logits: torch.Tensor, feats: torch.Tensor
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 7) probabilities with each face at the temperature its familiarity gives, the faces' unfamiliarity
    and those temperatures (one computation for the app and for fitting the map)."""
    u = familiarity.unfamiliarity(familiarity.distances(feats.double()))
    t = familiarity.temperature(u)
    return softmax_t(logits, torch.from_numpy(t).float()[:, None]), u, t


def read_faces(model: LoadedModel, faces: np.ndarray, batch_size: int = FACE_BATCH, flip_tta: bool = True,
               per_face: bool = True) -> FaceReading:
    """Face inputs -> ``FaceReading``. With a familiarity model and ``per_face`` each face takes the temperature
    its familiarity gives (``training/face_familiarity.py``); otherwise the checkpoint's one temperature."""
    logits, feats = face_outputs(model, faces, batch_size, flip_tta)
    familiarity = getattr(model.model, "familiarity", None)
    if familiarity is None or feats is None or not per_face or not len(logits):
        return FaceReading(face_to_8(softmax_t(logits, model.temperature)))
    p7, u, t = per_face_softmax(familiarity, logits, feats)
    return FaceReading(face_to_8(p7), u, t)


def predict_faces(model: LoadedModel, faces: np.ndarray, batch_size: int = FACE_BATCH, flip_tta: bool = True,
                  per_face: bool = True) -> np.ndarray:
    """(n, 48, 48) face inputs in [0, 1] -> (n, 8) probabilities (calm = 0); ``read_faces``."""
    return read_faces(model, faces, batch_size, flip_tta, per_face).probs


def pool_faces(probs: np.ndarray, det_probs: np.ndarray) -> np.ndarray:
    """Clip-level face probabilities, robust to blurred, turned or mis-detected frames.

    Each frame counts by its detector confidence times its own certainty (1 - normalised
    entropy over the 7 face classes), so a blurred or side-on frame, whose prediction is flat,
    weighs little instead of dragging the average.
    """
    p7 = np.clip(probs[:, FACE_INDEX], 1e-9, 1)
    ent = -(p7 * np.log(p7)).sum(1) / np.log(len(FACE_INDEX))
    w = det_probs**2 * np.clip(1 - ent, 0.05, 1)
    return (w[:, None] * probs).sum(0) / w.sum()
