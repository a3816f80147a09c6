"""Emotional-speech corpora for training the voice model across languages and rooms.

Each corpus labels only some of the eight emotions (``CORPUS_CLASSES``); the multi-corpus trainer
uses that to restrict a clip's loss to the classes its corpus can tell apart. Speakers are named
per corpus (``corpus:speaker``) so that whole speakers can be held out.

Layouts: RAVDESS by its file names (``datasets.find_ravdess``); URDU and TurEV-DB as one folder
per emotion with the speaker as the file name's first ``_`` field (``../shared/data/README.md``); nEMO
as its public repository lays it out (``samples/*.wav`` and ``data.tsv``; fetched, not in ``../shared``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..constants import EMOTIONS
from .datasets import AUDIO_SUFFIXES, find_ravdess, fold_of

CORPUS_FOLDERS = {"ravdess": "ravdess-speech-16k", "urdu": "urdu-16k", "turev": "turev-16k"}
"""Where each corpus lies inside a data folder such as ``../shared/data``."""
CORPUS_CLASSES: dict[str, tuple[str, ...]] = {
    "ravdess": EMOTIONS,
    "urdu": ("neutral", "happy", "sad", "angry"),
    "turev": ("calm", "happy", "sad", "angry"),
    "nemo": ("neutral", "happy", "sad", "angry", "fearful", "surprised"),
}
"""The emotions each corpus labels (in EMOTIONS order); a clip's loss and scores cover only these."""


@dataclass(frozen=True)
class Clip:
    path: Path
    emotion: int  # index into EMOTIONS
    speaker: str  # "corpus:speaker"
    corpus: str

    @property
    def label(self) -> str:
        return EMOTIONS[self.emotion]


def find_folder_corpus(root: str | Path, corpus: str) -> list[Clip]:
    """Clips of a corpus laid out as one folder per emotion (``Angry/``, ``Neutral/``, ...)."""
    clips = []
    for p in sorted(Path(root).rglob("*")):
        if p.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        emotion = p.parent.name.lower()
        if emotion not in CORPUS_CLASSES[corpus]:
            raise ValueError(f"{p}: folder '{p.parent.name}' is not one of {corpus}'s emotions "
                             f"{', '.join(CORPUS_CLASSES[corpus])}")
        clips.append(Clip(p, EMOTIONS.index(emotion), f"{corpus}:{p.stem.split('_')[0]}", corpus))
    if not clips:
        raise FileNotFoundError(f"no {'/'.join(AUDIO_SUFFIXES)} files in emotion folders under {root}")
    return clips


NEMO_EMOTIONS = {"neutral": "neutral", "happiness": "happy", "sadness": "sad", "anger": "angry", "fear": "fearful",
                 "surprised": "surprised"}
"""nEMO's ``data.tsv`` emotion names -> ours."""
NEMO_COMMIT = "66de9999a8f2"
"""The commit of github.com/amu-cai/nEMO whose files were measured (``../shared/data/README.md``)."""


def find_nemo(root: str | Path) -> list[Clip]:
    """nEMO (acted Polish, 9 speakers): ``root/data.tsv`` names each ``samples/`` file's emotion and speaker
    (the speaker field is space-padded)."""
    import csv

    root = Path(root)
    table = root / "data.tsv"
    if not table.exists():
        raise FileNotFoundError(f"{table} not found: give the folder of a checkout of github.com/amu-cai/nEMO "
                                f"(commit {NEMO_COMMIT}) holding data.tsv and samples/")
    clips = []
    with table.open(newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE), start=2):
            emotion = NEMO_EMOTIONS.get(row["emotion"].strip().lower())
            if emotion is None:
                raise ValueError(f"{table}, line {line}: unknown emotion '{row['emotion']}' "
                                 f"(known: {', '.join(NEMO_EMOTIONS)})")
            path = root / "samples" / row["file_id"].strip()
            if not path.exists():
                raise FileNotFoundError(f"{table}, line {line}: {path} is missing")
            clips.append(Clip(path, EMOTIONS.index(emotion), f"nemo:{row['speaker_id'].strip()}", "nemo"))
    if not clips:
        raise FileNotFoundError(f"{table} lists no clips")
    return sorted(clips, key=lambda c: c.path.name)


def find_corpus(corpus: str, root: str | Path) -> list[Clip]:
    """Every clip of ``corpus`` under ``root`` (the corpus's own folder); RAVDESS: actors 01-20 only."""
    if corpus == "ravdess":
        return [Clip(it.path, it.emotion, f"ravdess:{it.actor:02d}", "ravdess")
                for it in find_ravdess(root) if fold_of(it.actor) is not None]
    if corpus == "nemo":
        return find_nemo(root)
    if corpus not in CORPUS_CLASSES:
        raise ValueError(f"unknown corpus '{corpus}' (known: {', '.join(CORPUS_CLASSES)})")
    return find_folder_corpus(root, corpus)


def find_corpora(data: str | Path, corpora: tuple[str, ...] = tuple(CORPUS_FOLDERS),
                 roots: dict[str, str | Path] | None = None) -> list[Clip]:
    """The clips of several corpora inside one data folder (``data/<CORPUS_FOLDERS[c]>``), and of the
    corpora whose folder ``roots`` gives (a fetched nEMO: ``{"nemo": DIR}``), in that order."""
    roots = roots or {}
    return [c for name in (*corpora, *roots) for c in
            find_corpus(name, roots[name] if name in roots else Path(data) / CORPUS_FOLDERS[name])]


def corpus_mask(corpora: np.ndarray) -> np.ndarray:
    """(n, 8) True where a clip's corpus labels that emotion."""
    return np.array([[e in CORPUS_CLASSES[c] for e in EMOTIONS] for c in corpora])


INTERCHANGEABLE: tuple[tuple[str, str], ...] = (("neutral", "calm"),)
"""Emotions that corpora use for one state: only RAVDESS tells neutral from calm; URDU says neutral and
TurEV-DB says calm for the same unemotional voice."""


def compatible_targets(labels: np.ndarray, corpora: np.ndarray) -> np.ndarray:
    """(n, 8) True for the emotions a clip's label is compatible with: its own, and its interchangeable
    partner where the clip's corpus does not label that partner (an URDU "neutral" may be calm)."""
    targets = np.zeros((len(labels), len(EMOTIONS)), bool)
    targets[np.arange(len(labels)), labels] = True
    labelled = corpus_mask(corpora)
    for a, b in INTERCHANGEABLE:
        for one, other in ((a, b), (b, a)):
            i, j = EMOTIONS.index(one), EMOTIONS.index(other)
            targets[(labels == i) & ~labelled[:, j], j] = True
    return targets


def ravdess_folds(speakers: np.ndarray, corpora: np.ndarray) -> np.ndarray:
    """Each clip's RAVDESS actor fold (``datasets.ACTOR_FOLDS``), -1 for the other corpora's clips."""
    return np.array([fold_of(int(s.split(":")[1])) if c == "ravdess" else -1
                     for s, c in zip(speakers, corpora, strict=True)])
