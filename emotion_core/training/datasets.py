"""Reading the training data: RAVDESS file names and actor folds, FER2013's image folders.

Nothing here downloads anything: every function takes the path of a copy the user has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..constants import EMOTIONS, FACE_EMOTIONS, FER_CLASSES, FER_TO_EMOTION, SAMPLE_RATE

ACTOR_FOLDS: tuple[tuple[int, ...], ...] = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16),
                                            (17, 18, 19, 20))
"""Speaker-independent 5-fold protocol over actors 01-20 (whole actors held out)."""

_RAVDESS = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


@dataclass(frozen=True)
class RavdessItem:
    path: Path
    modality: int  # 1 audio+video, 2 video only, 3 audio only
    vocal_channel: int  # 1 speech, 2 song
    emotion: int  # index into EMOTIONS
    intensity: int  # 1 normal, 2 strong
    statement: int
    repetition: int
    actor: int

    @property
    def label(self) -> str:
        return EMOTIONS[self.emotion]


def parse_ravdess_name(path: str | Path) -> RavdessItem:
    """Parse ``MM-VV-EE-II-SS-RR-AA.ext``; raises ValueError on anything else."""
    path = Path(path)
    m = _RAVDESS.match(path.stem)
    if not m:
        raise ValueError(f"{path.name} does not follow the RAVDESS naming convention MM-VV-EE-II-SS-RR-AA")
    mm, vv, ee, ii, ss, rr, aa = (int(g) for g in m.groups())
    if not 1 <= ee <= len(EMOTIONS) or ii not in (1, 2) or not 1 <= aa <= 24:
        raise ValueError(f"{path.name}: field out of range")
    return RavdessItem(path, mm, vv, ee - 1, ii, ss, rr, aa)


def find_ravdess(root: str | Path, suffixes: tuple[str, ...] = AUDIO_SUFFIXES, speech_only: bool = True
                 ) -> list[RavdessItem]:
    """Every RAVDESS-named file under ``root`` (sorted by name), speech only by default."""
    items = []
    for p in sorted(Path(root).rglob("*")):
        if p.suffix.lower() in suffixes and _RAVDESS.match(p.stem):
            it = parse_ravdess_name(p)
            if not speech_only or it.vocal_channel == 1:
                items.append(it)
    if not items:
        raise FileNotFoundError(f"no RAVDESS-named {'/'.join(suffixes)} files under {root}")
    return items


def fold_of(actor: int, folds: tuple[tuple[int, ...], ...] = ACTOR_FOLDS) -> int | None:
    for i, f in enumerate(folds):
        if actor in f:
            return i
    return None


# --- FER2013 ---------------------------------------------------------------------------------
FER_SPLITS = {"train": ("train", "Training_"), "public": ("test", "PublicTest_"), "private": ("test", "PrivateTest_")}


@dataclass
class FerSplit:
    images: np.ndarray  # (n, 48, 48) uint8
    labels: np.ndarray  # (n,) index into FACE_EMOTIONS
    files: list[str]


def load_fer(root: str | Path, split: str) -> FerSplit:
    """Load one FER2013 split ('train', 'public' or 'private') from the image-folder layout."""
    from PIL import Image

    folder, prefix = FER_SPLITS[split]
    images, labels, files = [], [], []
    for cls in FER_CLASSES:
        label = FACE_EMOTIONS.index(FER_TO_EMOTION[cls])
        for p in sorted((Path(root) / folder / cls).glob(f"{prefix}*")):
            with Image.open(p) as im:
                images.append(np.asarray(im.convert("L").resize((48, 48))))
            labels.append(label)
            files.append(f"{folder}/{cls}/{p.name}")
    if not files:
        raise FileNotFoundError(f"no FER2013 {split} images under {root}/{folder}")
    return FerSplit(np.stack(images), np.array(labels), files)


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held-out) with ``fraction`` of each class held out."""
    rng = np.random.default_rng(seed)
    hold = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        hold.append(idx[: int(round(len(idx) * fraction))])
    held = np.sort(np.concatenate(hold))
    return np.setdiff1d(np.arange(len(labels)), held), held


def load_waveforms(items: list[RavdessItem], speeds: tuple[float, ...]) -> list[list[np.ndarray]]:
    """Per item, one 16 kHz waveform per speed factor (speed < 1 = slower and lower)."""
    import librosa
    from joblib import Parallel, delayed

    def one(path: Path) -> list[np.ndarray]:
        y, _ = librosa.load(path, sr=SAMPLE_RATE, mono=True)
        return [y if s == 1.0 else librosa.resample(y, orig_sr=SAMPLE_RATE, target_sr=int(round(SAMPLE_RATE / s)))
                for s in speeds]

    return Parallel(n_jobs=-1, prefer="processes")(delayed(one)(it.path) for it in items)
