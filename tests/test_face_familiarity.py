"""A confidence per face (training/face_familiarity.py): the checkpoint carries its familiarity model, each face
takes the temperature its familiarity gives, the map learns to soften faces unlike the known ones, folds keep
whole films together, and the rule reads as written."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_ferplus import tiny_face_data

from emotion_core.familiarity import Familiarity
from emotion_core.inference import FACE_INDEX, face_outputs, predict_faces, read_faces, softmax_t
from emotion_core.models import FaceConfig, FaceNet
from emotion_core.registry import LoadedModel, load_checkpoint, save_checkpoint
from emotion_core.training.face_familiarity import (
    SELECTION,
    Outputs,
    attach,
    decision,
    fit_map,
    fold_ids,
    with_map,
)


def tiny_face() -> LoadedModel:
    torch.manual_seed(0)
    return LoadedModel("face", FaceNet(FaceConfig()).eval(), {"temperature": 1.3})


def test_each_face_takes_the_temperature_its_familiarity_gives_and_the_checkpoint_keeps_it(tmp_path: Path) -> None:
    lm = tiny_face()
    faces = np.random.default_rng(0).random((6, 48, 48)).astype(np.float32)
    logits, feats = face_outputs(lm, faces)
    assert logits.shape == (6, 7) and feats.shape == (6, 1280)
    # without a familiarity model: the one temperature, as before
    np.testing.assert_allclose(predict_faces(lm, faces)[:, FACE_INDEX], softmax_t(logits, 1.3), atol=1e-6)
    fam = Familiarity(1280, 3).fit(np.random.default_rng(1).normal(size=(40, 1280)) + feats.mean(0).numpy())
    fam.set_map(np.array([1.0, -0.5]), 0.2, 0.8, 3.0)
    withfam = attach(lm, fam)
    assert lm.model.familiarity is None, "attach copies the model"
    save_checkpoint(tmp_path / "face.pt", "face", withfam.model, {"temperature": 1.3}, keep_fp32=("familiarity.",))
    model, meta = load_checkpoint(tmp_path / "face.pt")
    assert model.cfg.familiarity_components == 3 and model.familiarity.weights.dtype == torch.float64
    back = LoadedModel("face", model, meta)
    r = read_faces(back, faces)
    u = fam.unfamiliarity(fam.distances(feats.double()))
    np.testing.assert_allclose(r.unfamiliarity, u, rtol=1e-6)
    np.testing.assert_allclose(r.temperature, 0.8 ** (1 - u) * 3.0**u, rtol=1e-6)
    lg = face_outputs(back, faces)[0]  # the weights stored in float16
    expected = np.stack([softmax_t(lg[i:i + 1], float(t))[0] for i, t in enumerate(r.temperature)])
    np.testing.assert_allclose(r.probs[:, FACE_INDEX], expected, atol=1e-6)
    assert r.probs[:, 1].max() == 0, "calm stays 0 for the face"
    np.testing.assert_allclose(predict_faces(back, faces, per_face=False)[:, FACE_INDEX], softmax_t(lg, 1.3), atol=1e-6)


def test_the_map_softens_the_faces_unlike_the_known_ones() -> None:
    """Two kinds of faces: near the known ones and calibrated at T = 1, or far and three times too sure."""
    rng = np.random.default_rng(0)
    known = rng.normal(size=(400, 20))
    fam = Familiarity(20, 4).fit(known)
    sets = []
    for far in (False, True):
        n = 600
        feats = rng.normal(size=(n, 20)) * (4.0 if far else 1.0)
        y = rng.integers(0, 7, n)
        true_logits = rng.normal(size=(n, 7)) + 2.0 * np.eye(7)[y]
        p = torch.softmax(torch.from_numpy(true_logits), 1).numpy()
        labels = np.array([rng.choice(7, p=row) for row in p])  # drawn from the calibrated probabilities
        sets.append(Outputs(torch.from_numpy(true_logits * (3.0 if far else 1.0)).float(), torch.from_numpy(feats), labels))
    fmap = fit_map([fam.distances(o.feats) for o in sets], sets, 1.5)
    fitted = with_map(fam, fmap)
    t_near, t_far = (np.median(fitted.temperature(fitted.unfamiliarity(fam.distances(o.feats)))) for o in sets)
    assert 0.7 < t_near < 1.4 and 2.2 < t_far < 4.0, (t_near, t_far, fmap)


def test_folds_keep_whole_films_together() -> None:
    films = np.array(["a", "a", "b", "c", "c", "c", "d", "e", "f", "f"])
    o = Outputs(torch.zeros(10, 7), torch.zeros(10, 3), np.zeros(10, int), films)
    f = fold_ids(o, k=5)
    for film in np.unique(films):
        assert len(set(f[films == film])) == 1
    assert set(f) == set(range(5))
    plain = fold_ids(Outputs(torch.zeros(12, 7), torch.zeros(12, 3), np.zeros(12, int)), k=5)
    assert np.bincount(plain).tolist() == [3, 3, 2, 2, 2]


def test_the_rule_as_written() -> None:
    def cv(single: tuple, per_face: tuple) -> dict:
        return {m: {n: {"nll": v[0][i], "ece": v[1][i]} for i, n in enumerate(SELECTION)}
                for m, v in (("single", single), ("per_face", per_face))}

    base = ((0.60, 1.20), (0.03, 0.09))
    assert decision(cv(base, ((0.60, 1.10), (0.03, 0.07))))["adopt"]
    no = decision(cv(base, ((0.60, 1.30), (0.03, 0.07))))
    assert not no["adopt"] and not no["checks"]["mean_nll_lower"]
    no = decision(cv(base, ((0.60, 1.10), (0.03, 0.095))))
    assert not no["adopt"] and not no["checks"]["film_ece_lower"]
    no = decision(cv(((0.60, 1.20), (0.03, 0.15)), ((0.60, 1.10), (0.03, 0.12))))
    assert not no["adopt"] and no["checks"] == {"mean_nll_lower": True, "film_ece_lower": True,
                                                 "ece_at_most_0.10_on_each": False}


def test_the_command_fits_scores_and_ships_only_by_the_rule(tmp_path: Path) -> None:
    from emotion_core.__main__ import main

    out = tiny_face_data(tmp_path)
    lm = tiny_face()
    save_checkpoint(tmp_path / "w" / "face.pt", "face", lm.model, {"temperature": 1.3, "crop": {"align": True}})
    reports = tmp_path / "reports"
    reports.mkdir()
    before = (tmp_path / "w" / "face.pt").read_bytes()
    assert main(["train", "face-familiarity", "--data", str(tmp_path / "data"), "--out", str(out), "--weights",
                 str(tmp_path / "w"), "--reports", str(reports), "--tag", "fam", "--ship"]) == 0
    rep = json.loads((reports / "face_familiarity.json").read_text())
    assert set(rep["cross_validated"]) == {"single", "per_face"}
    assert set(rep["tests_scored_once"]) == {"fer_private", "fer_private_ferplus", "sfew_val"}
    assert rep["rule"].startswith("(written before")
    assert rep["per_film_at_shipped_temperature"]["sfew_films"]["films"] >= 1
    model, meta = load_checkpoint(out / "fam" / "face.pt")
    assert model.familiarity is not None and meta["familiarity"]["map"] == rep["map"]
    shipped = (tmp_path / "w" / "face.pt").read_bytes() != before
    assert shipped == rep["decision"]["adopt"] == ("shipped" in rep)


def test_film_spread_reads_each_film_with_enough_faces() -> None:
    from emotion_core.training.face_familiarity import film_spread

    # film a: 8 faces, sure (logit 4) and all right; film b: 8 faces, as sure and all wrong; film c: 2 faces, left out
    logits = torch.zeros(18, 7)
    logits[:, 0] = 4.0
    labels = np.array([0] * 8 + [1] * 8 + [0, 0])
    o = Outputs(logits, torch.zeros(18, 3), labels, np.array(["a"] * 8 + ["b"] * 8 + ["c"] * 2))
    s = film_spread(o, 1.0)
    conf = float(torch.softmax(logits[0], 0)[0])
    assert s["films"] == 3 and s["films_with_8_faces"] == 2
    assert s["accuracy_min"] == 0.0 and s["accuracy_max"] == 1.0
    assert s["overconfidence_min"] == pytest.approx(conf - 1) and s["overconfidence_max"] == pytest.approx(conf)

