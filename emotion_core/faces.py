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


def _box_square(box: np.ndarray, margin: float) -> tuple[int, int, int, int]:
    """The square around ``box`` enlarged by ``margin`` per side, in whole pixels."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half = max(x2 - x1, y2 - y1) * (1 + 2 * margin) / 2
    return int(round(cx - half)), int(round(cy - half)), int(round(cx + half)), int(round(cy + half))


def _aligned(landmarks: np.ndarray | None, align: bool) -> np.ndarray | None:
    """The landmarks as a (5, 2) float array when alignment applies to them, else None."""
    if not align or landmarks is None:
        return None
    pts = np.asarray(landmarks, dtype=float).reshape(-1, 2)
    return pts if len(pts) == 5 and np.isfinite(pts).all() and np.ptp(pts[:, 0]) > 1 else None


def _transform(box: np.ndarray, landmarks: np.ndarray | None, margin: float, align: bool, size: int
               ) -> tuple[np.ndarray, bool]:
    pts = _aligned(landmarks, align)
    if pts is not None:
        from skimage.transform import SimilarityTransform

        t = SimilarityTransform.from_estimate(pts, np.asarray(FACE_TEMPLATE, dtype=float) * size)
        if t:  # a failed estimate (degenerate points) falls back to the box
            return np.asarray(t.params, dtype=float), True
    x0, y0, x1, y1 = _box_square(box, margin)
    sx, sy = size / max(x1 - x0, 1), size / max(y1 - y0, 1)
    return np.array([[sx, 0, -sx * x0], [0, sy, -sy * y0], [0, 0, 1]]), False


def crop_transform(box: np.ndarray, landmarks: np.ndarray | None, margin: float = FACE_MARGIN,
                   align: bool = FACE_ALIGN, size: int = FACE_DISPLAY_SIZE) -> np.ndarray:
    """3x3 matrix taking frame pixels to crop pixels.

    Aligned: the similarity (rotation, one scale, shift) that puts the five MTCNN landmarks closest
    to ``FACE_TEMPLATE`` (least squares), so eyes are level and every face has the same scale and
    position, in training and in the app alike. Otherwise: the square box enlarged by ``margin``.
    """
    return _transform(box, landmarks, margin, align, size)[0]


def crop_face(frame: np.ndarray, box: np.ndarray, landmarks: np.ndarray | None,
              margin: float = FACE_MARGIN, align: bool = FACE_ALIGN, size: int = FACE_DISPLAY_SIZE) -> np.ndarray:
    """The face as a ``size`` x ``size`` colour crop (see ``crop_transform``); outside the frame is black."""
    im = Image.fromarray(frame)
    m, aligned = _transform(box, landmarks, margin, align, size)
    if not aligned:  # the box: a plain crop and resize
        return np.asarray(im.crop(_box_square(box, margin)).resize((size, size), Image.Resampling.BILINEAR))
    inv = np.linalg.inv(m)
    return np.asarray(im.transform((size, size), Image.Transform.AFFINE, tuple(inv[:2].ravel()),
                                   Image.Resampling.BILINEAR))


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


def bordered(image: np.ndarray, scale: int = 1, pad: int = 0, mode: str = "constant") -> np.ndarray:
    """An RGB frame for MTCNN from a photo that is already a tight face crop (FER2013, SFEW): enlarged ``scale``
    times and given a ``pad``-pixel border (numpy.pad ``mode``), so the face is whole and not at the edge."""
    im = Image.fromarray(image)
    if scale != 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.BICUBIC)
    arr = np.asarray(im.convert("RGB"))
    return np.pad(arr, ((pad, pad), (pad, pad), (0, 0)), mode=mode)


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

    def main_faces(self, frames: list[np.ndarray], pad: int = 0) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Per frame, (box, landmarks) of the largest face centred inside it less a ``pad`` border, or None."""
        out = []
        for frame, (b, _, pt) in zip(frames, self.detect(frames), strict=True):
            h, w = frame.shape[:2]
            cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
            inside = (cx > pad) & (cx < w - pad) & (cy > pad) & (cy < h - pad)
            if not inside.any():
                out.append(None)
                continue
            k = int(np.argmax(np.where(inside, (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), -1)))
            out.append((b[k], pt[k]))
        return out

    def crop_still(self, image: np.ndarray, scale: int = 1, pad: int = 0, mode: str = "constant"
                   ) -> tuple[np.ndarray, np.ndarray]:
        """A photo that is already a face crop, cropped as video frames are (``bordered`` for MTCNN, then
        ``crop_face``): (colour crop, model input). Where no face is found, the photo itself."""
        frame = bordered(image, scale, pad, mode)
        found = self.main_faces([frame], pad)[0]
        if found is None:
            crop = np.asarray(Image.fromarray(image).convert("RGB").resize((FACE_DISPLAY_SIZE,) * 2))
        else:
            crop = crop_face(frame, found[0], found[1], self.margin, self.align)
        return crop, face_input_from_crop(crop)

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
