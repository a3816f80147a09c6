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

from .constants import FACE_ALIGN, FACE_DISPLAY_SIZE, FACE_INPUT_SIZE, FACE_MARGIN, FACE_MIN_PROB, MIN_FACE_SIZE
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


def face_input_from_crop(crop_rgb: np.ndarray) -> np.ndarray:
    """A colour face crop -> the face model's 48x48 greyscale input in [0, 1]."""
    im = Image.fromarray(crop_rgb).convert("L").resize((FACE_INPUT_SIZE, FACE_INPUT_SIZE), Image.BILINEAR)
    return np.asarray(im, dtype=np.float32) / 255.0


def crop_face(frame: np.ndarray, box: np.ndarray, landmarks: np.ndarray | None,
              margin: float = FACE_MARGIN, align: bool = FACE_ALIGN, size: int = FACE_DISPLAY_SIZE) -> np.ndarray:
    """Square crop around ``box`` enlarged by ``margin`` per side; eyes levelled if ``align``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    im = Image.fromarray(frame)
    if align and landmarks is not None:
        (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
        angle = float(np.degrees(np.arctan2(ry - ly, rx - lx)))
        if abs(angle) > 1.0:
            im = im.rotate(angle, resample=Image.BILINEAR, center=(cx, cy))
    half = side / 2
    crop = im.crop((int(round(cx - half)), int(round(cy - half)), int(round(cx + half)), int(round(cy + half))))
    return np.asarray(crop.resize((size, size), Image.BILINEAR))


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
                                          face_input_from_crop(crop))
            buf.clear()

        for fr in frames:
            buf.append(fr)
            if len(buf) >= batch_size:
                yield from flush()
        if buf:
            yield from flush()
