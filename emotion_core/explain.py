"""Explanations from the very models that predicted: Grad-CAM on face crops, LIME on the log-mel.

Face: pytorch-grad-cam on the face model, at the end of its stride-16 stage (8x8 cells over the
face at the model's 128-pixel working size; the last stage's 4x4 map is too coarse to separate
eyes from mouth). Alternatives the library provides are offered (Grad-CAM++, HiResCAM, LayerCAM).

Voice: LIME (lime's LimeBase, i.e. its weighted local linear model) over a time x frequency-band
grid of the log-mel spectrogram, not image superpixels: explaining by frequency range and by part
of the utterance is more stable for speech than arbitrary patches. A hidden segment is set to the
clip's silence floor. Perturbations are predicted in batches and the masks are seeded, so the
same clip always gives the same explanation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .constants import EMOTIONS, FACE_EMOTIONS, N_MELS, SAMPLE_RATE
from .devices import batching_for, module_device
from .features import log_mel
from .inference import model_lock, predict_faces, voice_logits
from .registry import LoadedModel

# ---------------------------------------------------------------------------------------------
# Grad-CAM
# ---------------------------------------------------------------------------------------------
CAM_METHODS = ("gradcam", "gradcam++", "hirescam", "layercam")
FACE_CAM_LAYER = 10
"""Index in FaceNet._blocks of the last block of the 112-channel, stride-16 stage."""


def _cam_class(method: str):
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM

    return {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "hirescam": HiResCAM, "layercam": LayerCAM}[method]


def face_class_index(emotion: str) -> int:
    """Index in the face model's output for an emotion; calm has none (ValueError)."""
    if emotion not in FACE_EMOTIONS:
        raise ValueError("the face model has no 'calm' class: calm is decided by the voice")
    return FACE_EMOTIONS.index(emotion)


def face_cams(model: LoadedModel, faces: np.ndarray, targets: list[str], method: str = "gradcam") -> np.ndarray:
    """(n, 48, 48) class-activation maps in [0, 1] for face inputs ``faces`` (n, 48, 48)."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    net = model.model
    x = torch.from_numpy(np.ascontiguousarray(faces, dtype=np.float32))[:, None].to(module_device(net))
    targets_ = [ClassifierOutputTarget(face_class_index(t)) for t in targets]
    with model_lock(net), _cam_class(method)(model=net, target_layers=[net._blocks[FACE_CAM_LAYER]]) as cam:
        maps = cam(input_tensor=x, targets=targets_)
    return np.nan_to_num(maps.astype(np.float32))


def overlay(rgb: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Heat map ``cam`` (any size, [0, 1]) blended over colour image ``rgb`` (uint8)."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    h, w = rgb.shape[:2]
    heat = np.asarray(Image.fromarray((cam * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)) / 255.0
    return show_cam_on_image(rgb.astype(np.float32) / 255.0, heat.astype(np.float32), use_rgb=True, image_weight=1 - alpha)


# Regions of a face crop (fractions of height, then width), a documented template: the crop is
# the bare MTCNN box (FACE_MARGIN = 0), which spans brows to chin, so eyes and brows fall in rows
# 0.10-0.45, the nose in 0.45-0.65 and the mouth in 0.65-0.92. FER2013's tight crops are similar.
REGIONS = {"eyes_brows": (0.10, 0.45, 0.05, 0.95), "nose": (0.45, 0.65, 0.3, 0.7), "mouth": (0.65, 0.92, 0.2, 0.8)}


def region_shares(cam: np.ndarray) -> dict[str, float]:
    """Share of the total attention that falls on eyes/brows, nose, mouth and the rest."""
    h, w = cam.shape
    total = float(cam.sum()) or 1.0
    out, used = {}, np.zeros_like(cam, dtype=bool)
    for name, (r0, r1, c0, c1) in REGIONS.items():
        m = np.zeros_like(used)
        m[int(r0 * h): int(r1 * h), int(c0 * w): int(c1 * w)] = True
        m &= ~used
        out[name] = float(cam[m].sum() / total)
        used |= m
    out["rest"] = float(cam[~used].sum() / total)
    return out


# ---------------------------------------------------------------------------------------------
# LIME on the spectrogram
# ---------------------------------------------------------------------------------------------
BAND_EDGES = (0, 12, 24, 40, 56, N_MELS)
"""Mel-bin edges of the frequency bands (roughly 0-0.4, 0.4-0.8, 0.8-1.7, 1.7-3.2, 3.2-8 kHz)."""
BAND_NAMES = ("0-0.4 kHz", "0.4-0.8 kHz", "0.8-1.7 kHz", "1.7-3.2 kHz", "3.2-8 kHz")
N_TIME_SEGMENTS = 8


def grid_segments(n_frames: int, n_time: int = N_TIME_SEGMENTS, band_edges: tuple[int, ...] = BAND_EDGES) -> np.ndarray:
    """(N_MELS, n_frames) int map: segment id = time slice * n_bands + band."""
    n_bands = len(band_edges) - 1
    seg = np.zeros((N_MELS, n_frames), dtype=int)
    t_edges = np.linspace(0, n_frames, n_time + 1).round().astype(int)
    for ti in range(n_time):
        for bi in range(n_bands):
            seg[band_edges[bi]: band_edges[bi + 1], t_edges[ti]: t_edges[ti + 1]] = ti * n_bands + bi
    return seg


@dataclass
class VoiceExplanation:
    mel: np.ndarray  # (N_MELS, frames) the spectrogram explained
    segments: np.ndarray  # (N_MELS, frames) segment ids
    weights: dict[str, np.ndarray]  # emotion -> (n_segments,) LIME weights
    probs: np.ndarray  # (8,) the model's prediction on the unperturbed window
    start: float
    end: float
    score: dict[str, float]  # emotion -> R^2 of the local linear model
    baseline: np.ndarray | None = None  # the personal baseline the model ran with, if any

    def heatmap(self, emotion: str) -> np.ndarray:
        """(N_MELS, frames) LIME weight of each time-frequency cell for ``emotion``."""
        return self.weights[emotion][self.segments]

    def band_shares(self, emotion: str) -> dict[str, float]:
        """Positive LIME weight per frequency band, as shares."""
        w = np.clip(self.weights[emotion], 0, None).reshape(N_TIME_SEGMENTS, -1).sum(0)
        return {b: float(v / (w.sum() or 1)) for b, v in zip(BAND_NAMES, w, strict=True)}

    def time_shares(self, emotion: str) -> list[float]:
        """Positive LIME weight per time slice (beginning to end of the window), as shares."""
        w = np.clip(self.weights[emotion], 0, None).reshape(N_TIME_SEGMENTS, -1).sum(1)
        return [float(v / (w.sum() or 1)) for v in w]


def fast_cpu_dtype() -> torch.dtype | None:
    """bfloat16 where the CPU computes it natively (AVX512-BF16 / AMX), else None (stay in float32)."""
    native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    return torch.bfloat16 if native else None


def fast_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced precision LIME's many perturbed inputs run in on ``device`` (None: float32)."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return fast_cpu_dtype() if device.type == "cpu" else None


def predict_mels(model: LoadedModel, mels: np.ndarray | torch.Tensor, batch_size: int | None = None,
                 baseline: np.ndarray | None = None, fast: bool = False) -> np.ndarray:
    """(n, N_MELS, frames) spectrograms of one length -> (n, 8) probabilities, in batches on the model's device.

    ``fast`` runs the network in bfloat16 where the device supports it natively (on 2 CPU cores 1.7-3x
    faster, depending on the CPU; probabilities within 0.01 of float32): used for LIME's many perturbed inputs.
    """
    device = module_device(model.model)
    batch_size = batch_size or batching_for(device).lime
    dtype = fast_dtype(device) if fast else None
    mels = torch.as_tensor(mels)
    out = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        for i in range(0, len(mels), batch_size):
            x = mels[i: i + batch_size].to(device, torch.float32)
            n = torch.full((len(x),), x.shape[-1], device=device)
            logits = voice_logits(model, x, n, baseline).float()
            out.append(torch.softmax(logits / model.temperature, -1).cpu().numpy())
    return np.concatenate(out)


def explain_voice(model: LoadedModel, audio: np.ndarray, start: float = 0.0, end: float | None = None,
                  targets: list[str] | None = None, n_samples: int = 1000, seed: int = 0,
                  batch_size: int | None = None, baseline: np.ndarray | None = None, fast: bool = True
                  ) -> VoiceExplanation:
    """LIME over one voice window of ``audio``; ``targets`` default to the predicted emotion.

    ``baseline``: explain the model as it ran with the person's baseline (see ``baseline``)."""
    from lime.lime_base import LimeBase
    from sklearn.metrics import pairwise_distances

    end = len(audio) / SAMPLE_RATE if end is None else end
    mel = log_mel(audio[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)])
    seg = grid_segments(mel.shape[1])
    n_seg = int(seg.max()) + 1
    floor = float(mel.min())
    rng = np.random.RandomState(seed)
    masks = rng.randint(0, 2, (n_samples, n_seg))
    masks[0] = 1  # the unperturbed input first, as lime does
    device = module_device(model.model)
    batch_size = batch_size or batching_for(device).lime
    mel_t, seg_t, masks_t = (torch.from_numpy(a).to(device) for a in (mel.astype(np.float32), seg, masks))
    probs = np.concatenate([  # perturbed spectrograms are built on the device, batch by batch to bound memory
        predict_mels(model, torch.where(masks_t[i: i + batch_size][:, seg_t] == 1, mel_t, floor), batch_size,
                     baseline, fast)
        for i in range(0, n_samples, batch_size)])
    distances = pairwise_distances(masks, masks[:1], metric="cosine").ravel()
    base = LimeBase(lambda d: np.sqrt(np.exp(-(d**2) / 0.25**2)), random_state=seed)
    targets = targets or [EMOTIONS[int(probs[0].argmax())]]
    weights, scores = {}, {}
    for emo in targets:
        k = EMOTIONS.index(emo)
        _, exp, score, _ = base.explain_instance_with_data(masks, probs, distances, k, n_seg,
                                                           feature_selection="none")
        w = np.zeros(n_seg)
        for i, v in exp:
            w[i] = v
        weights[emo], scores[emo] = w, float(score)
    return VoiceExplanation(mel, seg, weights, probs[0], start, end, scores, baseline)


# ---------------------------------------------------------------------------------------------
# Faithfulness
# ---------------------------------------------------------------------------------------------
def face_deletion(model: LoadedModel, faces: np.ndarray, cams: np.ndarray, targets: list[str],
                  fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Drop in the target's probability when the ``fraction`` most-attended pixels are replaced by
    the face's blurred version, versus as many pixels chosen by a random map of the same smoothness
    (8x8 noise upsampled like a CAM), so both deletions remove blobs, not scattered pixels, and
    differ only in where they fall. Returns (important, random) drops."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    n, side = len(faces), faces.shape[-1]
    k = int(fraction * faces[0].size)
    blurred = np.stack([gaussian_filter(f, 3) for f in faces])
    top = np.argsort(-cams.reshape(n, -1), axis=1)[:, :k]
    noise = torch.nn.functional.interpolate(torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)),
                                            size=(side, side), mode="bilinear", align_corners=False)
    rnd = np.argsort(-noise.numpy().reshape(n, -1) - 1e-6 * rng.random((n, side * side)), axis=1)[:, :k]

    def delete(idx: np.ndarray) -> np.ndarray:
        out = faces.reshape(n, -1).copy()
        np.put_along_axis(out, idx, np.take_along_axis(blurred.reshape(n, -1), idx, 1), 1)
        return out.reshape(faces.shape)

    cols = np.array([EMOTIONS.index(t) for t in targets])

    def target_prob(x: np.ndarray) -> np.ndarray:
        return predict_faces(model, x, flip_tta=False)[np.arange(n), cols]

    base = target_prob(faces)
    return base - target_prob(delete(top)), base - target_prob(delete(rnd))


def voice_deletion(model: LoadedModel, ex: VoiceExplanation, emotion: str, k: int = 5, seed: int = 0
                   ) -> tuple[float, float]:
    """Drop in ``emotion``'s probability when the ``k`` segments with the highest LIME weight are
    set to silence, versus ``k`` random segments (mean of 5 random draws)."""
    rng = np.random.default_rng(seed)
    floor = float(ex.mel.min())
    n_seg = len(ex.weights[emotion])
    j = EMOTIONS.index(emotion)

    def prob_without(segs: np.ndarray) -> float:
        mel = np.where(np.isin(ex.segments, segs), floor, ex.mel).astype(np.float32)
        return float(predict_mels(model, mel[None], baseline=ex.baseline, fast=True)[0, j])

    base = float(ex.probs[j])
    important = base - prob_without(np.argsort(-ex.weights[emotion])[:k])
    random = float(np.mean([base - prob_without(rng.choice(n_seg, k, replace=False)) for _ in range(5)]))
    return important, random
