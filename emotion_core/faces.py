"""Face detection (facenet-pytorch MTCNN, weights shipped in the package), tracking of the main
face through a clip, and conversion of each detection into the face model's input.

The face model was trained on FER2013 (48x48 greyscale, roughly face-centred), so every MTCNN
crop goes through the same conversion: square box with a margin, optional rotation so the eyes
are level, greyscale, 48x48. ``face_input_from_crop`` is that conversion's one definition.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .constants import FACE_ALIGN, FACE_DISPLAY_SIZE, FACE_INPUT_SIZE, FACE_MARGIN, FACE_MIN_PROB, FACE_TEMPLATE, MIN_FACE_SIZE
from .media import Frame


@dataclass
class FaceObservation:
    """The main face in one frame."""

    t: float
    box: np.ndarray  # (4,) x1, y1, x2, y2 in frame pixels
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose, mouth left, mouth right
    prob: float
    n_faces: int
    crop_rgb: np.ndarray  # (FACE_DISPLAY_SIZE, FACE_DISPLAY_SIZE, 3) uint8, what the model saw, in colour
    face_input: np.ndarray  # (FACE_INPUT_SIZE, FACE_INPUT_SIZE) float32 in [0, 1]
    crop_landmarks: np.ndarray | None = None  # (5, 2) the landmarks in crop_rgb's pixels (None: not detected)


def face_input_from_crop(crop_rgb: np.ndarray) -> np.ndarray:
    """A colour face crop -> the face model's 48x48 greyscale input in [0, 1]."""
    im = Image.fromarray(crop_rgb).convert("L").resize((FACE_INPUT_SIZE, FACE_INPUT_SIZE), Image.BILINEAR)
    return np.asarray(im, dtype=np.float32) / 255.0


def crop_transform(box: np.ndarray, landmarks: np.ndarray | None, margin: float = FACE_MARGIN,
                   align: bool = FACE_ALIGN, size: int = FACE_DISPLAY_SIZE) -> np.ndarray:
    """3x3 matrix taking frame pixels to crop pixels.

    Aligned: the similarity (rotation, one scale, shift) that puts the five MTCNN landmarks closest
    to ``FACE_TEMPLATE`` (least squares), so eyes are level and every face has the same scale and
    position, in training and in the app alike. Otherwise: the square box enlarged by ``margin``.
    """
    landmarks = None if landmarks is None else np.asarray(landmarks, dtype=float).reshape(-1, 2)
    if align and landmarks is not None and len(landmarks) == 5 and np.isfinite(landmarks).all() and \
            np.ptp(landmarks[:, 0]) > 1:
        from skimage.transform import SimilarityTransform

        dst = np.asarray(FACE_TEMPLATE, dtype=float) * size
        t = SimilarityTransform.from_estimate(landmarks, dst)
        if t:  # a failed estimate (degenerate points) falls back to the box
            return np.asarray(t.params, dtype=float)
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(max(x2 - x1, y2 - y1) * (1 + 2 * margin), 1.0)
    s = size / side
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy], [0, 0, 1]])


def crop_face(frame: np.ndarray, box: np.ndarray, landmarks: np.ndarray | None,
              margin: float = FACE_MARGIN, align: bool = FACE_ALIGN, size: int = FACE_DISPLAY_SIZE) -> np.ndarray:
    """The face as a ``size`` x ``size`` colour crop (see ``crop_transform``); outside the frame is black."""
    inv = np.linalg.inv(crop_transform(box, landmarks, margin, align, size))
    im = Image.fromarray(frame).transform((size, size), Image.Transform.AFFINE, tuple(inv[:2].ravel()),
                                                        Image.Resampling.BILINEAR)
    return np.asarray(im)


def landmarks_in_crop(box: np.ndarray, landmarks: np.ndarray, margin: float = FACE_MARGIN, align: bool = FACE_ALIGN,
                      size: int = FACE_DISPLAY_SIZE) -> np.ndarray:
    """The five landmarks in the crop's pixel coordinates (for region shares that follow the face)."""
    m = crop_transform(box, landmarks, margin, align, size)
    pts = np.c_[np.asarray(landmarks, dtype=float), np.ones(len(landmarks))]
    return (pts @ m.T)[:, :2]


def crop_settings(meta: dict) -> dict:
    """How a face checkpoint wants its faces cropped (``meta["crop"]``, written by ``train face-wild``):
    ``align`` and ``margin`` for FaceDetector. A checkpoint without it was trained on FER2013's own crops,
    read best through the bare, unaligned box. A template other than ``FACE_TEMPLATE`` is refused."""
    crop = meta.get("crop")
    if crop is None:
        return {"align": False, "margin": 0.0}
    if "template" in crop and not np.allclose(np.asarray(crop["template"]), np.asarray(FACE_TEMPLATE), atol=1e-6):
        raise ValueError("the face model was trained with another alignment template than FACE_TEMPLATE")
    return {"align": bool(crop["align"]), "margin": float(crop.get("margin", 0.0))}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class FaceDetector:
    """MTCNN over batches of frames, following one main face.

    The main face is the largest confident face at first sight; after that, the detection that
    overlaps most with where it was last seen, so a second person entering does not steal it.
    """

    def __init__(self, min_face_size: int = MIN_FACE_SIZE, min_prob: float = FACE_MIN_PROB,
                 margin: float = FACE_MARGIN, align: bool = FACE_ALIGN, device: torch.device | str = "cpu"):
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, device=torch.device(device), post_process=False)
        self.min_prob = min_prob
        self.margin = margin
        self.align = align

    def detect(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per image: boxes (n, 4), probs (n,), landmarks (n, 5, 2) of faces above ``min_prob``."""
        out = []
        if not images:
            return out
        same = all(im.shape == images[0].shape for im in images)
        batches = [np.stack(images)] if same else [im[None] for im in images]
        with torch.inference_mode():
            for batch in batches:
                boxes, probs, points = self.mtcnn.detect(batch, landmarks=True)
                for b, p, pt in zip(boxes, probs, points, strict=True):
                    if b is None:
                        out.append((np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))))
                        continue
                    keep = np.asarray(p, dtype=float) >= self.min_prob
                    out.append((np.asarray(b)[keep], np.asarray(p, dtype=float)[keep], np.asarray(pt)[keep]))
        return out

    def track(self, frames: Iterable[Frame], batch_size: int = 8) -> Iterator[tuple[Frame, FaceObservation | None]]:
        """Yield every frame with its main-face observation (None where no face is found)."""
        last: np.ndarray | None = None
        buf: list[Frame] = []

        def flush() -> Iterator[tuple[Frame, FaceObservation | None]]:
            nonlocal last
            for fr, (boxes, probs, pts) in zip(buf, self.detect([f.rgb for f in buf]), strict=True):
                if len(boxes) == 0:
                    yield fr, None
                    continue
                areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
                i = int(np.argmax(areas))
                if last is not None:
                    ious = np.array([_iou(b, last) for b in boxes])
                    if ious.max() > 0.1:
                        i = int(np.argmax(ious))
                last = boxes[i]
                crop = crop_face(fr.rgb, boxes[i], pts[i], self.margin, self.align)
                yield fr, FaceObservation(fr.t, boxes[i], pts[i], float(probs[i]), len(boxes), crop,
                                          face_input_from_crop(crop),
                                          landmarks_in_crop(boxes[i], pts[i], self.margin, self.align))
            buf.clear()

        for fr in frames:
            buf.append(fr)
            if len(buf) >= batch_size:
                yield from flush()
        if buf:
            yield from flush()
