from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emotion_core.constants import EMOTIONS, FACE_EMOTIONS, FER_CLASSES
from emotion_core.training.datasets import ACTOR_FOLDS, find_ravdess, fold_of, load_fer, parse_ravdess_name, stratified_holdout


def test_parse_ravdess_name() -> None:
    it = parse_ravdess_name("Actor_06/03-01-03-02-02-01-06.flac")
    assert (it.modality, it.vocal_channel, it.label, it.intensity, it.statement, it.repetition, it.actor) == \
        (3, 1, "happy", 2, 2, 1, 6)
    assert parse_ravdess_name("01-01-08-01-01-01-24.mp4").label == "surprised"


@pytest.mark.parametrize("name", ["03-01-09-01-01-01-01.wav", "03-01-01-01-01-01.wav", "hello.wav",
                                  "03-01-01-03-01-01-01.wav", "03-01-01-01-01-01-25.wav"])
def test_bad_names_rejected(name: str) -> None:
    with pytest.raises(ValueError):
        parse_ravdess_name(name)


def test_folds_partition_actors_1_to_20() -> None:
    actors = [a for f in ACTOR_FOLDS for a in f]
    assert sorted(actors) == list(range(1, 21)) and len(set(actors)) == 20
    assert all(len(f) == 4 for f in ACTOR_FOLDS)
    assert fold_of(21) is None and fold_of(7) == 1


def test_find_ravdess_any_format_speech_only(tmp_path: Path) -> None:
    for name in ["03-01-01-01-01-01-01.wav", "03-01-05-02-01-01-02.flac", "03-02-05-02-01-01-02.wav",
                 "notes.wav", "03-01-05-02-01-01-02.txt"]:
        (tmp_path / name).write_bytes(b"")
    items = find_ravdess(tmp_path)
    assert [it.path.name for it in items] == ["03-01-01-01-01-01-01.wav", "03-01-05-02-01-01-02.flac"]
    with pytest.raises(FileNotFoundError):
        find_ravdess(tmp_path / "nothing-here")


def make_fer(root: Path, per_class: int = 3) -> None:
    rng = np.random.default_rng(0)
    for split, prefix in (("train", "Training"), ("test", "PublicTest"), ("test", "PrivateTest")):
        for c in FER_CLASSES:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (48, 48), dtype=np.uint8)).save(
                    root / split / c / f"{prefix}_{c}{i}.jpg")


def test_load_fer_maps_classes(tmp_path: Path) -> None:
    make_fer(tmp_path)
    tr = load_fer(tmp_path, "train")
    pub = load_fer(tmp_path, "public")
    assert tr.images.shape == (21, 48, 48) and tr.images.dtype == np.uint8
    assert all(f.startswith("test/") and "PublicTest_" in f for f in pub.files)
    fear = [i for i, f in enumerate(tr.files) if "/fear/" in f]
    assert {FACE_EMOTIONS[tr.labels[i]] for i in fear} == {"fearful"}
    assert "calm" not in FACE_EMOTIONS and len(FACE_EMOTIONS) == len(EMOTIONS) - 1


def test_stratified_holdout() -> None:
    labels = np.repeat(np.arange(7), 20)
    tr, held = stratified_holdout(labels, 0.1, seed=0)
    assert len(np.intersect1d(tr, held)) == 0 and len(tr) + len(held) == len(labels)
    assert np.bincount(labels[held]).tolist() == [2] * 7
