from pathlib import Path

import numpy as np
import pandas as pd

from emotion_core.constants import EMOTIONS
from emotion_core.training.evaluate_fusion import pseudo_paired


def test_pseudo_paired_pairs_same_class_faces(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i, e in enumerate(EMOTIONS * 5):
        p = rng.dirichlet(np.ones(8))
        p[EMOTIONS.index(e)] += 1 if i % 2 else 0  # voice right half the time
        rows.append({"true": e, **dict(zip(EMOTIONS, p / p.sum(), strict=True))})
    pd.DataFrame(rows).to_csv(tmp_path / "v.csv", index=False)
    faces = []
    for e in ["neutral", "happy", "sad", "angry", "fear", "disgust", "surprise"] * 3:
        p = np.full(8, 0.02)
        p[1] = 0
        p[EMOTIONS.index({"fear": "fearful", "surprise": "surprised"}.get(e, e))] = 0.88
        faces.append({"true": e, **dict(zip(EMOTIONS, p / p.sum(), strict=True))})
    pd.DataFrame(faces).to_csv(tmp_path / "f.csv", index=False)
    res = pseudo_paired(tmp_path / "v.csv", tmp_path / "f.csv", repeats=3)
    assert res["face_accuracy_mean"] == 35 / 40  # perfect faces, but never "calm"
    assert res["fused_accuracy_mean"] > res["voice_accuracy_mean"]
    assert abs(sum(v["share"] for v in res["agreement"].values()) - 1) < 1e-9


def _confident(e: str, p_top: float) -> dict:
    p = np.full(8, (1 - p_top) / 7)
    p[EMOTIONS.index(e)] = p_top
    return {"true": e, **dict(zip(EMOTIONS, p, strict=True))}


def test_neutral_conflicts_follow_the_stronger_prior(tmp_path: Path) -> None:
    """With equally confident branches the voice's larger prior (0.6) decides: a neutral face does not stop an
    angry voice, and a neutral voice outweighs an angry face."""
    from emotion_core.training.evaluate_fusion import neutral_conflicts

    voices = [_confident(e, 0.8) for e in ("neutral", "calm", "angry", "happy") for _ in range(3)]
    faces = [_confident(e, 0.8) for e in ("neutral", "angry", "happy") for _ in range(3)]
    for f in faces:
        f["calm"] = 0.0
    pd.DataFrame(voices).to_csv(tmp_path / "v.csv", index=False)
    pd.DataFrame(faces).to_csv(tmp_path / "f.csv", index=False)
    res = neutral_conflicts(tmp_path / "v.csv", tmp_path / "f.csv", repeats=2)
    assert res["face_neutral"]["angry"]["fused_says_the_emotion"] == 1.0
    assert res["voice_neutral"]["angry"]["fused_says_neutral_or_calm"] == 1.0
    assert "sad" not in res["voice_neutral"], "no sad faces: no row"
    for row in res["face_neutral"].values():
        assert abs(row["fused_says_the_emotion"] + row["fused_says_neutral_or_calm"] + row["fused_says_other"] - 1) < 1e-9
