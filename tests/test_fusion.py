import numpy as np
import pytest

from emotion_core.constants import EMOTIONS, FACE_EMOTIONS
from emotion_core.fusion import fuse, split_calm
from emotion_core.inference import face_to_8, pool_faces

IDX = {e: i for i, e in enumerate(EMOTIONS)}


def one_hot(label: str, p: float = 0.9) -> np.ndarray:
    v = np.full(len(EMOTIONS), (1 - p) / (len(EMOTIONS) - 1))
    v[IDX[label]] = p
    return v


def face(label: str, p: float = 0.9) -> np.ndarray:
    v = one_hot(label, p)
    v[IDX["calm"]] = 0
    return v / v.sum()


def test_missing_modality_gives_the_other() -> None:
    v = one_hot("sad")
    r = fuse(None, v, voiced_seconds=3)
    np.testing.assert_allclose(r.probs, v)
    assert r.agreement is None and r.voice_weight == 1
    f = face("happy")
    r = fuse(f, None, face_frames=10)
    np.testing.assert_allclose(r.probs, f)
    assert r.probs[IDX["calm"]] == 0  # the face alone never claims calm


def test_needs_one_modality() -> None:
    with pytest.raises(ValueError):
        fuse(None, None)


def test_calm_comes_from_the_voice() -> None:
    v = np.zeros(8)
    v[IDX["calm"]], v[IDX["neutral"]] = 0.75, 0.25
    f = face("neutral", 0.8)
    split = split_calm(f, v)
    assert split[IDX["calm"]] == pytest.approx(0.75 * f[IDX["neutral"]])
    assert split.sum() == pytest.approx(1)
    r = fuse(f, v, face_frames=10, voiced_seconds=3)
    assert EMOTIONS[int(np.argmax(r.probs))] == "calm"


def test_confident_disagreement_is_flagged() -> None:
    r = fuse(face("happy"), one_hot("angry"), face_frames=10, voiced_seconds=3)
    assert r.agreement == "disagree"
    assert fuse(face("happy"), one_hot("happy"), 10, 3).agreement == "agree"
    assert fuse(face("happy", 0.3), one_hot("angry", 0.3), 10, 3).agreement == "uncertain"


def test_weak_evidence_lowers_a_branch_weight() -> None:
    strong = fuse(face("happy"), one_hot("sad"), face_frames=10, voiced_seconds=3)
    weak_face = fuse(face("happy"), one_hot("sad"), face_frames=1, voiced_seconds=3)
    assert weak_face.face_weight < strong.face_weight
    assert weak_face.probs[IDX["sad"]] > strong.probs[IDX["sad"]]
    assert strong.probs.sum() == pytest.approx(1)


def test_face_pooling_discounts_flat_frames() -> None:
    sharp = face_to_8(np.eye(7)[[FACE_EMOTIONS.index("sad")]] * 0.94 + 0.01)  # confident "sad"
    flat = face_to_8(np.full((3, 7), 1 / 7))
    flat[:, IDX["happy"]] += 0.05
    probs = np.concatenate([sharp, flat])
    pooled = pool_faces(probs, np.ones(4))
    assert EMOTIONS[int(np.argmax(pooled))] == "sad"
