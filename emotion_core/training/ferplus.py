"""FER+ (Barsoum et al. 2016, MIT): ten annotators' votes for every FER2013 face, as training targets and
as cleaner labels than FER2013's single rater.

``../shared/data/ferplus/labels.csv`` holds, per FER2013 file (``path``, as ``datasets.load_fer`` names it),
the counts for neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown and NF
(not a face). How they become targets follows the FER+ authors' reference code, adapted to our seven face
classes (which lack contempt):

* a class with a single vote is an outlier and counts zero (FER+ ``_process_data``);
* **majority** (FER+'s "majority" mode, the one its published 84-85 % test accuracy uses): the class with
  more than half of all remaining votes (unknown and NF votes included in the total); a face without one, or
  whose majority is unknown or NF, has none. A face whose majority is contempt has no label among our
  classes and is left out of training and scoring (222 of 35,710 faces have a contempt plurality);
* **votes**: the remaining counts over our seven classes, normalised; unknown and NF votes are dropped, and a
  face whose largest count is unknown or NF is left out (225 faces). Contempt votes are dropped
  (``contempt="drop"``) or counted as disgust (``"disgust"``, the nearest of our classes).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..constants import FACE_EMOTIONS

FERPLUS_CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                   "unknown", "NF")
TO_FACE = {"neutral": "neutral", "happiness": "happy", "surprise": "surprised", "sadness": "sad",
           "anger": "angry", "disgust": "disgust", "fear": "fearful"}
"""FER+ emotion -> our face class; contempt, unknown and NF have none."""
LABELS_CSV = Path("ferplus") / "labels.csv"
CONTEMPT = ("drop", "disgust")
NO_LABEL = -1


def load_votes(path: str | Path) -> dict[str, np.ndarray]:
    """file (relative to fer2013/) -> its ten vote counts, in ``FERPLUS_CLASSES`` order."""
    with open(path, newline="") as fh:
        rows = csv.reader(fh)
        header = next(rows)
        if tuple(header[2:]) != FERPLUS_CLASSES:
            raise ValueError(f"{path}: expected the columns path, ferplus_name, {', '.join(FERPLUS_CLASSES)}")
        return {r[0]: np.array([int(v) for v in r[2:]], float) for r in rows}


def counts_for(files: list[str], votes: dict[str, np.ndarray]) -> np.ndarray:
    """(n, 10) counts for ``files``, NaN rows for the faces FER+ dropped."""
    return np.stack([votes.get(f, np.full(len(FERPLUS_CLASSES), np.nan)) for f in files])


def _cleaned(counts: np.ndarray) -> np.ndarray:
    """Single votes removed (FER+'s outlier rule); faces without votes stay NaN."""
    return np.where(counts <= 1, 0.0, counts)


def _to_face_columns(counts: np.ndarray) -> np.ndarray:
    """(n, 10) FER+ counts -> (n, 7) in ``FACE_EMOTIONS`` order (contempt, unknown, NF left out)."""
    out = np.zeros((len(counts), len(FACE_EMOTIONS)))
    for j, name in enumerate(FERPLUS_CLASSES):
        if name in TO_FACE:
            out[:, FACE_EMOTIONS.index(TO_FACE[name])] = counts[:, j]
    return out


def majority(counts: np.ndarray) -> np.ndarray:
    """FER+ majority label per face as an index into ``FACE_EMOTIONS``, ``NO_LABEL`` where there is none among
    our classes (no class over half the votes, unknown, NF, contempt, or no FER+ row)."""
    c = _cleaned(counts)
    ok = np.isfinite(c).all(1)
    c = np.nan_to_num(c)
    top = c.argmax(1)
    has = ok & (c.max(1) > 0.5 * c.sum(1))
    face = np.array([FACE_EMOTIONS.index(TO_FACE[n]) if n in TO_FACE else NO_LABEL for n in FERPLUS_CLASSES])
    return np.where(has, face[top], NO_LABEL)


def vote_targets(counts: np.ndarray, contempt: str = "drop") -> tuple[np.ndarray, np.ndarray]:
    """(n, 7) vote distributions over our face classes and the mask of faces that have one."""
    if contempt not in CONTEMPT:
        raise ValueError(f"contempt must be one of {CONTEMPT}, not {contempt!r}")
    c = _cleaned(counts)
    ok = np.isfinite(c).all(1)
    c = np.nan_to_num(c)
    ok &= ~np.isin(c.argmax(1), [FERPLUS_CLASSES.index("unknown"), FERPLUS_CLASSES.index("NF")])
    dist = _to_face_columns(c)
    if contempt == "disgust":
        dist[:, FACE_EMOTIONS.index("disgust")] += c[:, FERPLUS_CLASSES.index("contempt")]
    total = dist.sum(1)
    ok &= total > 0
    return (dist / np.maximum(total, 1e-9)[:, None]).astype(np.float32), ok


def targets(files: list[str], votes: dict[str, np.ndarray], mode: str, contempt: str = "drop"
            ) -> tuple[np.ndarray, np.ndarray]:
    """Training targets (n, 7) for FER2013 ``files`` under ``mode`` "votes" or "majority" (one-hot), and the
    mask of faces kept."""
    counts = counts_for(files, votes)
    if mode == "votes":
        return vote_targets(counts, contempt)
    if mode == "majority":
        lab = majority(counts)
        keep = lab != NO_LABEL
        return np.eye(len(FACE_EMOTIONS), dtype=np.float32)[np.where(keep, lab, 0)], keep
    raise ValueError(f"FER+ targets are 'votes' or 'majority', not {mode!r}")


def contempt_summary(votes: dict[str, np.ndarray]) -> dict:
    """What the faces with a contempt plurality are otherwise: their FER2013 label (the folder in the path) and
    their next-most-voted FER+ class. The evidence for dropping contempt rather than folding it into disgust.

        python -m emotion_core.training.ferplus ../shared/data/ferplus/labels.csv
    """
    contempt = FERPLUS_CLASSES.index("contempt")
    faces = {f: c for f, c in votes.items() if c.argmax() == contempt}
    fer2013: dict[str, int] = {}
    runner_up: dict[str, int] = {}
    for f, c in faces.items():
        fer2013[f.split("/")[1]] = fer2013.get(f.split("/")[1], 0) + 1
        rest = c.copy()
        rest[contempt] = -1
        name = FERPLUS_CLASSES[int(rest.argmax())]
        runner_up[name] = runner_up.get(name, 0) + 1
    with_votes = sum(1 for c in votes.values() if c[contempt] > 1)
    return {"faces_with_contempt_plurality": len(faces), "faces_with_2_or_more_contempt_votes": with_votes,
            "their_fer2013_label": dict(sorted(fer2013.items(), key=lambda kv: -kv[1])),
            "their_next_ferplus_class": dict(sorted(runner_up.items(), key=lambda kv: -kv[1]))}


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(contempt_summary(load_votes(sys.argv[1])), indent=2))
