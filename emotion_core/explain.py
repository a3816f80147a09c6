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

import os
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .constants import EMOTIONS, FACE_EMOTIONS, FACE_INPUT_SIZE, N_MELS, SAMPLE_RATE
from .devices import batching_for, module_device
from .features import log_mel
from .inference import model_lock, predict_faces, voice_logits
from .registry import LoadedModel

# ---------------------------------------------------------------------------------------------
# Grad-CAM
# ---------------------------------------------------------------------------------------------
CAM_METHODS = ("occlusion", "layercam", "gradcam", "gradcam++", "hirescam")
"""The face-map methods offered; the first is the app's default (``FACE_MAP_METHOD``). "occlusion" is not a CAM
but a perturbation map (``face_occlusion``); the others are the Grad-CAM family of pytorch-grad-cam."""
OCCLUSION_PATCH, OCCLUSION_STRIDE = 8, 4
"""Occlusion maps: squares of 8 pixels of the 48-pixel input, every 4 pixels (121 positions, 12x12 cells)."""
FACE_CAM_LAYER = 10
"""Index in FaceNet._blocks of the layer the maps come from: the last block of the 112-channel, stride-16 stage
(8x8 cells on the 128-pixel internal face). Chosen with the method on FER2013 PublicTest faces by the deletion
test (``tables``; reports/faithfulness.json, "cam_study"): LayerCAM there beat random blobs on 75 % of faces,
at the finer block 4 (16x16 cells) on 69 %, Grad-CAM at block 10 on 60 %. An index into Lite0's blocks
(``FaceNet.stage_ends[4]``); a face model on another backbone would need its own (``stage_ends``)."""
FACE_CAM_METHOD = "layercam"
"""The best CAM on the PublicTest deletion test: LayerCAM weighs each cell by its own positive gradient, which
keeps an early layer's detail (Jiang et al. 2021)."""
FACE_MAP_METHOD = CAM_METHODS[0]
"""What the app, ``explain`` and the misclassifications page show by default: occlusion maps, because they pass
the deletion test on 94 % of held-out faces where the best CAM passes on 71 % (reports/faithfulness.json), at
about a second a frame on 2 cores instead of a few hundredths; the CAMs stay one choice away."""


def _cam_class(method: str):
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM

    return {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "hirescam": HiResCAM, "layercam": LayerCAM}[method]


def face_class_index(emotion: str) -> int:
    """Index in the face model's output for an emotion; calm has none (ValueError)."""
    if emotion not in FACE_EMOTIONS:
        raise ValueError("the face model has no 'calm' class: calm is decided by the voice")
    return FACE_EMOTIONS.index(emotion)


def cam_grid(model: LoadedModel, layer: int = FACE_CAM_LAYER) -> int:
    """Side of the feature map at ``layer`` (cells per row of a CAM before upsampling)."""
    net = model.model
    size = net.cfg.internal_size
    for b in net._blocks[: layer + 1]:
        size = (size + 1) // 2 if b._depthwise_conv.stride[0] == 2 else size
    return (size + 1) // 2  # the stem halves it first


def map_grid(model: LoadedModel, method: str = FACE_CAM_METHOD, layer: int = FACE_CAM_LAYER) -> int:
    """Cells per row of a face map made with ``method`` (the smoothness of the deletion test's random maps)."""
    return FACE_INPUT_SIZE // OCCLUSION_STRIDE if method == "occlusion" else cam_grid(model, layer)


def face_occlusion(model: LoadedModel, faces: np.ndarray, targets: list[str], patch: int = OCCLUSION_PATCH,
                   stride: int = OCCLUSION_STRIDE) -> np.ndarray:
    """(n, 48, 48) maps in [0, 1]: how far the target's probability falls when a square of the face is replaced
    by the blurred face (occlusion sensitivity, Zeiler & Fergus 2014), averaged over the squares covering each
    pixel. Slower than a CAM (121 model calls a face) but it measures the model's own reaction, at 4-pixel steps."""
    n, h, w = faces.shape
    blurred = _blurred(faces)
    pos = [(y, x) for y in range(0, h - patch + 1, stride) for x in range(0, w - patch + 1, stride)]
    cover = np.zeros((h, w))
    for y, x in pos:
        cover[y: y + patch, x: x + patch] += 1
    base = _face_target_prob(model, faces, targets)
    maps = np.zeros((n, h, w))
    for i in range(n):
        batch = np.repeat(faces[i][None], len(pos), 0)
        for k, (y, x) in enumerate(pos):
            batch[k, y: y + patch, x: x + patch] = blurred[i, y: y + patch, x: x + patch]
        drop = base[i] - _face_target_prob(model, batch, [targets[i]] * len(pos))
        for k, (y, x) in enumerate(pos):
            maps[i, y: y + patch, x: x + patch] += drop[k]
    maps = np.clip(maps / np.maximum(cover, 1), 0, None)
    return (maps / np.maximum(maps.reshape(n, -1).max(1), 1e-9)[:, None, None]).astype(np.float32)


def face_cams(model: LoadedModel, faces: np.ndarray, targets: list[str], method: str = FACE_CAM_METHOD,
              layer: int = FACE_CAM_LAYER) -> np.ndarray:
    """(n, 48, 48) class-activation maps in [0, 1] for face inputs ``faces`` (n, 48, 48); with method
    "occlusion" the occlusion map instead (``layer`` unused)."""
    if method == "occlusion":
        return face_occlusion(model, faces, targets)
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    net = model.model
    x = torch.from_numpy(np.ascontiguousarray(faces, dtype=np.float32))[:, None].to(module_device(net))
    targets_ = [ClassifierOutputTarget(face_class_index(t)) for t in targets]
    with model_lock(net), _cam_class(method)(model=net, target_layers=[net._blocks[layer]]) as cam:
        maps = cam(input_tensor=x, targets=targets_)
    return np.nan_to_num(maps.astype(np.float32))


def overlay(rgb: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Heat map ``cam`` (any size, [0, 1]) blended over colour image ``rgb`` (uint8)."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    h, w = rgb.shape[:2]
    heat = np.asarray(Image.fromarray((cam * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)) / 255.0
    return show_cam_on_image(rgb.astype(np.float32) / 255.0, heat.astype(np.float32), use_rgb=True, image_weight=1 - alpha)


# Regions of a face crop without landmarks (fractions of height, then width), a documented template for the
# bare MTCNN box (brows to chin): eyes and brows in rows 0.10-0.45, the nose 0.45-0.65, the mouth 0.65-0.92.
REGIONS = {"eyes_brows": (0.10, 0.45, 0.05, 0.95), "nose": (0.45, 0.65, 0.3, 0.7), "mouth": (0.65, 0.92, 0.2, 0.8)}
REGION_NAMES = (*REGIONS, "rest")


def landmark_regions(landmarks: np.ndarray, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Masks of eyes and brows, nose and mouth built from the five MTCNN landmarks (pixel coordinates of a map of
    ``shape``), in units of the distance between the eyes ``d``, so a region means the same part of every face:
    eyes and brows from 0.6 d above the eyes to 0.3 d below, 0.55 d beyond each eye; the nose 0.35 d either side
    of its tip down to halfway to the mouth; the mouth from there to 0.45 d below the corners, 0.3 d beyond them."""
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = np.asarray(landmarks, dtype=float)
    d = max(float(np.hypot(rx - lx, ry - ly)), 1e-6)
    eye_y, mouth_y = (ly + ry) / 2, (mly + mry) / 2
    split = (ny + mouth_y) / 2
    rows, cols = np.mgrid[0: shape[0], 0: shape[1]] + 0.5
    eyes = (cols >= min(lx, rx) - 0.55 * d) & (cols <= max(lx, rx) + 0.55 * d) & (rows >= eye_y - 0.6 * d) & \
        (rows <= eye_y + 0.3 * d)
    nose = (np.abs(cols - nx) <= 0.35 * d) & (rows > eye_y + 0.3 * d) & (rows <= split) & ~eyes
    mouth = (cols >= min(mlx, mrx) - 0.3 * d) & (cols <= max(mlx, mrx) + 0.3 * d) & (rows > split) & \
        (rows <= mouth_y + 0.45 * d)
    return {"eyes_brows": eyes, "nose": nose, "mouth": mouth}


def template_regions(shape: tuple[int, int]) -> dict[str, np.ndarray]:
    h, w = shape
    out, used = {}, np.zeros(shape, dtype=bool)
    for name, (r0, r1, c0, c1) in REGIONS.items():
        m = np.zeros(shape, dtype=bool)
        m[int(r0 * h): int(r1 * h), int(c0 * w): int(c1 * w)] = True
        out[name] = m & ~used
        used |= m
    return out


def region_shares(cam: np.ndarray, landmarks: np.ndarray | None = None) -> dict[str, float]:
    """Share of the total attention on eyes and brows, nose, mouth and the rest: regions from the face's own
    landmarks (in ``cam``'s pixel coordinates) when given, else from the fixed template."""
    usable = landmarks is not None and np.isfinite(landmarks).all()
    masks = landmark_regions(landmarks, cam.shape) if usable else template_regions(cam.shape)
    total = float(cam.sum()) or 1.0
    out = {name: float(cam[m].sum() / total) for name, m in masks.items()}
    used = np.logical_or.reduce(list(masks.values()))
    out["rest"] = float(cam[~used].sum() / total)
    return out


def difference_from_mean(table: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Each emotion's shares minus the mean over emotions: which region or band moves with the emotion."""
    keys = list(next(iter(table.values())))
    mean = {k: float(np.mean([row[k] for row in table.values()])) for k in keys}
    return {emo: {k: row[k] - mean[k] for k in keys} for emo, row in table.items()}


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
    stability: dict[str, float] = field(default_factory=dict)
    """emotion -> how often the top cells survive resampling LIME's own samples (``bootstrap_stability``)."""

    def unstable(self, emotion: str) -> bool:
        """True when another run could well put other cells on top (see UNSTABLE_BELOW)."""
        return self.stability.get(emotion, 1.0) < UNSTABLE_BELOW

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


TOP_CELLS = 5
"""How many cells the stability measures compare: the ones a reader looks at first."""
LIME_ENV = "EMOTION_LIME_SAMPLES"


def _lime_budget(default: int = 500) -> int:
    """The app's default LIME budget; a host may lower it with ``EMOTION_LIME_SAMPLES`` (on a 2-core AVX2 CPU
    without native bfloat16, 500 samples take about 45 s a window), and the test suite does, since it checks the
    app's wiring, not LIME's stability (that is measured with explicit budgets)."""
    raw = os.environ.get(LIME_ENV, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 20:
        raise ValueError(f"{LIME_ENV}={raw!r}: give a whole number of LIME samples, at least 20")
    return int(raw)


LIME_SAMPLES = _lime_budget()
"""The app's LIME budget: 500 is the smallest measured budget whose top-5 cells agree between seeds on at least 70 %
of RAVDESS clips' cells (0.76 at 500, 0.70 at 300, 0.65 at 200; reports/lime_stability.json)."""
UNSTABLE_BELOW = 0.6
"""An explanation whose bootstrap stability is below this is flagged as unstable in the app."""


def bootstrap_stability(masks: np.ndarray, target: np.ndarray, sample_weight: np.ndarray, weights: np.ndarray,
                        rounds: int = 30, top: int = TOP_CELLS, seed: int = 0) -> float:
    """Mean share of the ``top`` cells of ``weights`` that a LIME fit on a bootstrap resample of the same
    perturbations also puts on top. Costs only refits of the small linear model (milliseconds), no model calls,
    so every explanation can say how much to trust its ranking; when it is low, another seed would likely
    show other cells (reports/lime_stability.json compares the two)."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(seed)
    best = set(np.argsort(-weights)[:top])
    shares = []
    for _ in range(rounds):
        idx = rng.integers(0, len(target), len(target))
        coef = Ridge(alpha=1.0).fit(masks[idx], target[idx], sample_weight=sample_weight[idx]).coef_
        shares.append(len(best & set(np.argsort(-coef)[:top])) / top)
    return float(np.mean(shares))


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
    faster, depending on the CPU; probabilities within about 0.015 of float32, tests/spread.py): used for LIME's
    many perturbed inputs.
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
                  targets: list[str] | None = None, n_samples: int = LIME_SAMPLES, seed: int = 0,
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
    kernel = lambda d: np.sqrt(np.exp(-(d**2) / 0.25**2))  # noqa: E731 (lime's default kernel, width 0.25)
    base = LimeBase(kernel, random_state=seed)
    targets = targets or [EMOTIONS[int(probs[0].argmax())]]
    weights, scores, stable = {}, {}, {}
    for emo in targets:
        k = EMOTIONS.index(emo)
        _, exp, score, _ = base.explain_instance_with_data(masks, probs, distances, k, n_seg,
                                                           feature_selection="none")
        w = np.zeros(n_seg)
        for i, v in exp:
            w[i] = v
        weights[emo], scores[emo] = w, float(score)
        stable[emo] = bootstrap_stability(masks, probs[:, k], kernel(distances), w, seed=seed)
    return VoiceExplanation(mel, seg, weights, probs[0], start, end, scores, baseline, stable)


# ---------------------------------------------------------------------------------------------
# Faithfulness
# ---------------------------------------------------------------------------------------------
def _random_order(n: int, side: int, grid: int, seed: int) -> np.ndarray:
    """(n, side*side) pixel orders from random maps as smooth as a CAM of ``grid`` x ``grid`` cells, so random
    deletion removes blobs like the CAM's, not scattered pixels, and differs only in where they fall."""
    rng = np.random.default_rng(seed)
    noise = torch.nn.functional.interpolate(torch.rand(n, 1, grid, grid, generator=torch.Generator().manual_seed(seed)),
                                            size=(side, side), mode="bilinear", align_corners=False)
    return np.argsort(-noise.numpy().reshape(n, -1) - 1e-6 * rng.random((n, side * side)), axis=1)


def _face_target_prob(model: LoadedModel, x: np.ndarray, targets: list[str]) -> np.ndarray:
    cols = np.array([EMOTIONS.index(t) for t in targets])
    return predict_faces(model, x, flip_tta=False, per_face=False)[np.arange(len(x)), cols]


def _blurred(faces: np.ndarray) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return np.stack([gaussian_filter(f, 3) for f in faces])


def face_deletion(model: LoadedModel, faces: np.ndarray, cams: np.ndarray, targets: list[str],
                  fraction: float = 0.2, seed: int = 0, grid: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Drop in the target's probability when the ``fraction`` most-attended pixels are replaced by
    the face's blurred version, versus as many pixels in a random order of the CAM's smoothness
    (``grid``: the CAM layer's resolution). Returns (important, random) drops."""
    n = len(faces)
    k = int(fraction * faces[0].size)
    blurred = _blurred(faces).reshape(n, -1)
    top = np.argsort(-cams.reshape(n, -1), axis=1)[:, :k]
    rnd = _random_order(n, faces.shape[-1], grid, seed)[:, :k]

    def delete(idx: np.ndarray) -> np.ndarray:
        out = faces.reshape(n, -1).copy()
        np.put_along_axis(out, idx, np.take_along_axis(blurred, idx, 1), 1)
        return out.reshape(faces.shape)

    base = _face_target_prob(model, faces, targets)
    return base - _face_target_prob(model, delete(top), targets), base - _face_target_prob(model, delete(rnd), targets)


CURVE_STEPS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
"""Fractions of the input deleted (or inserted) along the faithfulness curves."""


def _auc(curves: np.ndarray, steps: tuple[float, ...] = CURVE_STEPS) -> np.ndarray:
    """Area under each row's curve over ``steps`` (trapezoids), 0-1 like the probability."""
    return np.trapezoid(curves, np.asarray(steps), axis=-1)


def curve_summary(curves: dict[str, np.ndarray], steps: tuple[float, ...] = CURVE_STEPS) -> dict:
    """Mean curves, mean areas and per-item wins for deletion (lower area is better: the probability falls
    fast when the important parts go) and insertion (higher is better: it returns fast when they come back)."""
    areas = {k: _auc(v, steps) for k, v in curves.items()}
    return {"steps": list(steps), "mean_curve": {k: v.mean(0).round(4).tolist() for k, v in curves.items()},
            "auc": {k: float(v.mean()) for k, v in areas.items()},
            "deletion_beats_random": float((areas["deletion_important"] < areas["deletion_random"]).mean()),
            "insertion_beats_random": float((areas["insertion_important"] > areas["insertion_random"]).mean()),
            "n": int(len(next(iter(areas.values()))))}


def face_curves(model: LoadedModel, faces: np.ndarray, cams: np.ndarray, targets: list[str], grid: int = 8,
                seed: int = 0, steps: tuple[float, ...] = CURVE_STEPS) -> dict[str, np.ndarray]:
    """Deletion and insertion curves, (n, steps) each: the target's probability as the most-attended pixels
    (or, for the random curves, pixels in a random order of the CAM's smoothness) are replaced by the blurred
    face (deletion), or restored into the blurred face (insertion)."""
    n, size = len(faces), faces[0].size
    flat, blurred = faces.reshape(n, -1), _blurred(faces).reshape(n, -1)
    orders = {"important": np.argsort(-cams.reshape(n, -1), axis=1),
              "random": _random_order(n, faces.shape[-1], grid, seed)}
    out = {}
    for name, order in orders.items():
        for mode, start, fill in (("deletion", flat, blurred), ("insertion", blurred, flat)):
            cols = []
            for f in steps:
                x = start.copy()
                idx = order[:, : int(round(f * size))]
                np.put_along_axis(x, idx, np.take_along_axis(fill, idx, 1), 1)
                cols.append(_face_target_prob(model, x.reshape(faces.shape), targets))
            out[f"{mode}_{name}"] = np.stack(cols, 1)
    return out


def voice_curves(model: LoadedModel, ex: VoiceExplanation, emotion: str, seed: int = 0, random_orders: int = 3,
                 steps: tuple[float, ...] = CURVE_STEPS) -> dict[str, np.ndarray]:
    """The voice's deletion and insertion curves (1, steps) each over LIME's cells: the most positive cells
    first, against random cell orders (mean of ``random_orders``); deleted cells become silence (the
    spectrogram's floor), insertion starts from silence."""
    rng = np.random.default_rng(seed)
    floor = float(ex.mel.min())
    n_seg = len(ex.weights[emotion])
    j = EMOTIONS.index(emotion)
    orders = {"important": [np.argsort(-ex.weights[emotion])], "random": [rng.permutation(n_seg)
                                                                         for _ in range(random_orders)]}
    out = {}
    for name, ords in orders.items():
        for mode in ("deletion", "insertion"):
            mels = []
            for order in ords:
                for f in steps:
                    chosen = np.isin(ex.segments, order[: int(round(f * n_seg))])
                    keep = ~chosen if mode == "deletion" else chosen
                    mels.append(np.where(keep, ex.mel, floor).astype(np.float32))
            p = predict_mels(model, np.stack(mels), baseline=ex.baseline, fast=True)[:, j]
            out[f"{mode}_{name}"] = p.reshape(len(ords), len(steps)).mean(0, keepdims=True)
    return out


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
