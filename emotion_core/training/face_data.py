"""Training faces cropped exactly as ``analyze`` crops faces from video.

FER2013 and SFEW arrive cropped by their authors, each in its own way; video frames are cropped by
MTCNN. So every training image goes through the app's own path: MTCNN finds the face and its five
landmarks (on the image enlarged and given a border, so that a face filling the picture is still
found), ``faces.crop_face`` aligns it to ``FACE_TEMPLATE`` and ``faces.face_input_from_crop``
turns it into the model's input. Where MTCNN finds nothing (about one FER image in eight, mostly
profiles and hands over faces) the author's crop is kept, resized, so no class loses its hard cases.

Detection is the slow part (about 6 ms an image on 2 cores, 4 minutes for all of FER2013 and SFEW),
so boxes and landmarks are cached in ``OUT/face_detections.npz``; crops are rebuilt from them in
seconds for any margin or alignment setting.

    python -m emotion_core train face-data --data ../shared/data --out runs/faces
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..constants import (
    FACE_ALIGN,
    FACE_DISPLAY_SIZE,
    FACE_EMOTIONS,
    FACE_INPUT_SIZE,
    FACE_MARGIN,
    FER_TO_EMOTION,
    STILL_FRAMING,
)
from ..devices import resolve_device
from ..faces import FaceDetector, bordered, crop_face, face_input_from_crop, landmarks_in_crop
from .datasets import load_fer

log = logging.getLogger(__name__)

SPLITS = ("fer_train", "fer_public", "fer_private", "sfew_train", "sfew_val")
DETECTIONS = "face_detections.npz"
WILD = "wild_train"
WILD_DETECTIONS = "face_detections_wild.npz"
"""The in-the-wild faces (github.com/muxspace/facial_expressions) are cached apart: optional, training only."""
WILD_TO_FACE = {"anger": "angry", "disgust": "disgust", "fear": "fearful", "happiness": "happy",
                "neutral": "neutral", "sadness": "sad", "surprise": "surprised"}
"""Its labels -> our face classes; its 9 contempt faces have none and are left out."""
WILD_SIZE = 144
SFEW_FOLDERS = {"sfew_train": "Train", "sfew_val": "Val"}
FRAMING = STILL_FRAMING


@dataclass
class FaceSet:
    """One split: the source images and where MTCNN found the face in each."""

    name: str
    images: np.ndarray  # FER (n, 48, 48) grey, SFEW (n, 181, 143, 3) colour, uint8
    labels: np.ndarray  # index into FACE_EMOTIONS
    files: list[str]
    groups: np.ndarray  # film for SFEW (split by it), "" for FER
    boxes: np.ndarray  # (n, 4) in detection-frame pixels, NaN where not found
    landmarks: np.ndarray  # (n, 5, 2) likewise

    @property
    def found(self) -> np.ndarray:
        return np.isfinite(self.boxes[:, 0])

    def subset(self, idx: np.ndarray) -> FaceSet:
        return FaceSet(self.name, self.images[idx], self.labels[idx], [self.files[i] for i in idx], self.groups[idx],
                       self.boxes[idx], self.landmarks[idx])


def sfew_film(name: str) -> str:
    """``AlexEmma_000548800_00000021.png`` -> ``AlexEmma``; titles may hold underscores (``50_50_...``)."""
    return Path(name).stem.rsplit("_", 2)[0]


def load_sfew(root: str | Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """SFEW ``Train`` or ``Val``: colour images (n, 181, 143, 3), labels, files, films."""
    images, labels, files, films = [], [], [], []
    folder = Path(root) / SFEW_FOLDERS[split]
    for cls_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        label = FACE_EMOTIONS.index(FER_TO_EMOTION[cls_dir.name.lower()])
        for p in sorted(cls_dir.glob("*.png")):
            with Image.open(p) as im:
                images.append(np.asarray(im.convert("RGB").resize((143, 181))))
            labels.append(label)
            files.append(f"{SFEW_FOLDERS[split]}/{cls_dir.name}/{p.name}")
            films.append(sfew_film(p.name))
    if not files:
        raise FileNotFoundError(f"no SFEW images under {folder}")
    return np.stack(images), np.array(labels), files, np.array(films)


def load_wild(root: str | Path) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """The faces of ``muxspace/facial_expressions`` (``data/legend.csv``, ``images/``): grey (n, 144, 144),
    labels, files and people (the name before the picture number, e.g. ``George_W_Bush``). An image listed
    twice keeps its first label; a label outside ``WILD_TO_FACE`` or a missing image is skipped."""
    root = Path(root)
    images, labels, files, people, seen = [], [], [], [], set()
    with open(root / "data" / "legend.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            name, emotion = row["image"], row["emotion"].strip().lower()
            path = root / "images" / name
            if name in seen or emotion not in WILD_TO_FACE or not path.exists():
                continue
            seen.add(name)
            with Image.open(path) as im:
                images.append(np.asarray(im.convert("L").resize((WILD_SIZE, WILD_SIZE), Image.Resampling.BICUBIC)))
            labels.append(FACE_EMOTIONS.index(WILD_TO_FACE[emotion]))
            files.append(f"images/{name}")
            people.append(Path(name).stem.rsplit("_", 1)[0])
    if not files:
        raise FileNotFoundError(f"no labelled faces under {root} (expected data/legend.csv and images/)")
    return np.stack(images), np.array(labels), files, np.array(people)


def detection_frame(image: np.ndarray, source: str) -> np.ndarray:
    """The RGB frame MTCNN sees for a training image (enlarged, with a border)."""
    scale, pad, _, mode = FRAMING[source]
    return bordered(image, scale, pad, mode)


def detect(images: np.ndarray, source: str, device: str = "cpu", batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (n, 4) and landmarks (n, 5, 2) of the largest confident face centred inside the image, not in its
    border (NaN where none): the sources hold one face each, filling most of the picture."""
    scale, pad, min_face, mode = FRAMING[source]
    det = FaceDetector(min_face_size=min_face, device=device)
    boxes = np.full((len(images), 4), np.nan)
    points = np.full((len(images), 5, 2), np.nan)
    for i in range(0, len(images), batch):
        frames = [bordered(im, scale, pad, mode) for im in images[i: i + batch]]
        for j, found in enumerate(det.main_faces(frames, pad)):
            if found is not None:
                boxes[i + j], points[i + j] = found
    return boxes, points


def detected_split(split: str, images: np.ndarray, labels: np.ndarray, files: list[str], groups: np.ndarray,
                   device: str = "cpu", limit: int | None = None) -> dict[str, np.ndarray]:
    """One split's cache entries (images, labels, files, groups, MTCNN boxes and landmarks), ``limit`` faces
    drawn at random (seeded) when given; the source's framing is the split name's first part."""
    t0 = time.time()
    if limit:
        keep = np.random.default_rng(0).permutation(len(files))[:limit]
        images, labels, groups, files = images[keep], labels[keep], groups[keep], [files[i] for i in keep]
    boxes, points = detect(images, split.split("_")[0], device)
    log.info("%s: %d images, MTCNN found %.1f %% (%.0f s)", split, len(files),
             100 * np.isfinite(boxes[:, 0]).mean(), time.time() - t0)
    return {f"{split}/images": images, f"{split}/labels": labels, f"{split}/files": np.array(files),
            f"{split}/groups": groups, f"{split}/boxes": boxes, f"{split}/landmarks": points}


def build_detections(data: str | Path, out: str | Path, device: str = "cpu", limit: int | None = None) -> Path:
    """Detect faces in every split once and cache images, labels and detections."""
    data, out = Path(data), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        if split.startswith("fer"):
            fer = load_fer(data / "fer2013", split.split("_")[1])
            loaded = fer.images, fer.labels, fer.files, np.array([""] * len(fer.files))
        else:
            loaded = load_sfew(data / "sfew", split)
        arrays |= detected_split(split, *loaded, device=device, limit=limit)
    path = out / DETECTIONS
    np.savez(path, **arrays)
    return path


def build_wild_detections(root: str | Path, out: str | Path, device: str = "cpu", limit: int | None = None) -> Path:
    """Detect the in-the-wild faces once, cached in ``OUT/face_detections_wild.npz``."""
    path = Path(out) / WILD_DETECTIONS
    np.savez(path, **detected_split(WILD, *load_wild(root), device=device, limit=limit))
    return path


def load_detections(out: str | Path, split: str) -> FaceSet:
    with np.load(Path(out) / (WILD_DETECTIONS if split == WILD else DETECTIONS)) as z:
        return FaceSet(split, z[f"{split}/images"], z[f"{split}/labels"], list(z[f"{split}/files"]),
                       z[f"{split}/groups"], z[f"{split}/boxes"], z[f"{split}/landmarks"])


def model_inputs(fs: FaceSet, align: bool = FACE_ALIGN, margin: float = FACE_MARGIN,
                 keep_unfound: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(n, 48, 48) uint8 model inputs cropped as the app crops them, and the landmarks in the 48-pixel crop
    (NaN where MTCNN found nothing: the author's crop, resized, stands in when ``keep_unfound``)."""
    source = fs.name.split("_")[0]
    out = np.zeros((len(fs.files), FACE_INPUT_SIZE, FACE_INPUT_SIZE), np.uint8)
    pts = np.full((len(fs.files), 5, 2), np.nan)
    for i, (img, box, lm) in enumerate(zip(fs.images, fs.boxes, fs.landmarks, strict=True)):
        if np.isfinite(box[0]):
            crop = crop_face(detection_frame(img, source), box, lm, margin, align, FACE_DISPLAY_SIZE)
            pts[i] = landmarks_in_crop(box, lm, margin, align, FACE_INPUT_SIZE)
        elif keep_unfound:
            crop = np.asarray(Image.fromarray(img).convert("RGB").resize((FACE_DISPLAY_SIZE,) * 2))
        else:
            continue
        out[i] = np.round(face_input_from_crop(crop) * 255).astype(np.uint8)
    return out, pts


def template_from_fer(fs: FaceSet) -> np.ndarray:
    """Mean landmark position of FER2013 faces, as fractions of FER's own 48-pixel crop: aligning to it keeps
    FER's framing (which the model learnt) while making it the same for every face."""
    scale, pad = FRAMING["fer"][:2]
    ok = fs.found
    return ((fs.landmarks[ok] - pad) / scale / FACE_INPUT_SIZE).mean(0)


def main(args: argparse.Namespace) -> int:
    """Detect every split once; with ``--wild DIR`` only the in-the-wild faces (the FER2013/SFEW cache kept)."""
    device = str(resolve_device(args.device))  # "auto" is the CLI's default, MTCNN wants a device
    if getattr(args, "wild", None):
        path = build_wild_detections(args.wild, args.out, device, 200 if args.quick else None)
        fs = load_detections(args.out, WILD)
        print(json.dumps({"detections": str(path), "faces": len(fs.files), "found": float(fs.found.mean()),
                          "per_class": {c: int((fs.labels == i).sum()) for i, c in enumerate(FACE_EMOTIONS)}}))
        return 0
    path = build_detections(args.data, args.out, device, 200 if args.quick else None)
    fer = load_detections(args.out, "fer_train")
    template = template_from_fer(fer)
    summary = {"detections": str(path), "template": np.round(template, 3).tolist(),
               "found": {s: float(load_detections(args.out, s).found.mean()) for s in SPLITS}}
    print(json.dumps(summary, indent=2))
    return 0
