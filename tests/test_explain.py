"""Explanations come from the shipped models, are deterministic, and are faithful to them."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import face_frame, voiced_signal
from spread import within

from emotion_core.constants import EMOTIONS, N_MELS
from emotion_core.explain import (
    N_TIME_SEGMENTS,
    explain_voice,
    face_cams,
    face_class_index,
    face_deletion,
    grid_segments,
    overlay,
    region_shares,
    voice_deletion,
)
from emotion_core.faces import FaceDetector
from emotion_core.media import Frame
from emotion_core.models import FaceConfig, FaceNet
from emotion_core.registry import LoadedModel, load_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    det = FaceDetector()
    obs = [o for _, o in det.track([Frame(0, face_frame(shift=s)) for s in (0, 8, 16, 24)])]
    return np.stack([o.face_input for o in obs])


def test_grid_segments_tile_the_spectrogram() -> None:
    seg = grid_segments(400)
    assert seg.shape == (N_MELS, 400) and seg.min() == 0 and seg.max() == N_TIME_SEGMENTS * 5 - 1
    assert len(np.unique(seg)) == N_TIME_SEGMENTS * 5


def test_region_shares_sum_to_one() -> None:
    cam = np.random.default_rng(0).random((48, 48))
    shares = region_shares(cam)
    assert set(shares) == {"eyes_brows", "nose", "mouth", "rest"} and sum(shares.values()) == pytest.approx(1)


def test_calm_has_no_face_class() -> None:
    with pytest.raises(ValueError, match="calm"):
        face_class_index("calm")


def test_cams_and_overlay(faces: np.ndarray) -> None:
    lm = load_model("face")
    cams = face_cams(lm, faces, ["happy"] * len(faces))
    assert cams.shape == faces.shape and cams.min() >= 0 and cams.max() <= 1 + 1e-6
    for method in ("gradcam++", "hirescam", "layercam"):
        assert face_cams(lm, faces[:1], ["sad"], method).shape == (1, 48, 48)
    img = overlay(np.zeros((160, 160, 3), np.uint8), cams[0])
    assert img.shape == (160, 160, 3) and img.dtype == np.uint8


def test_gradcam_is_faithful_and_model_dependent(faces: np.ndarray) -> None:
    """Deleting the most-attended pixels hurts more than deleting random blobs; a network with
    re-initialised weights gives clearly different maps (Adebayo et al. sanity check)."""
    lm = load_model("face")
    x = np.repeat(faces, 4, axis=0)
    targets = [EMOTIONS[i] for i in (2, 3, 4, 5)] * len(faces)
    cams = face_cams(lm, x, targets)
    imp, rnd = face_deletion(lm, x, cams, targets)
    assert imp.mean() > rnd.mean()
    torch.manual_seed(1)
    rand = face_cams(LoadedModel("face", FaceNet(FaceConfig()).eval()), x, targets)
    from scipy.stats import spearmanr

    corr = np.nanmean([spearmanr(a.ravel(), b.ravel()).statistic for a, b in zip(cams, rand, strict=True)])
    assert corr < 0.5


@pytest.fixture(scope="module")
def voice_ex():
    lm = load_model("voice")
    y = voiced_signal(3.0, seed=3)
    return lm, y, explain_voice(lm, y, targets=["angry", "sad"], n_samples=150, seed=0)


@pytest.mark.numeric
def test_lime_is_seeded_and_batched(voice_ex) -> None:
    lm, y, ex = voice_ex
    again = explain_voice(lm, y, targets=["angry", "sad"], n_samples=150, seed=0, batch_size=7)
    assert within("lime_batch_size", np.abs(np.asarray(ex.weights["angry"]) - again.weights["angry"]).max())
    assert ex.heatmap("sad").shape == ex.mel.shape
    assert sum(ex.band_shares("angry").values()) == pytest.approx(1, abs=1e-6) or max(ex.weights["angry"]) <= 0


@pytest.mark.numeric
@pytest.mark.parametrize("native", [True, False])
def test_lime_runs_in_bfloat16_only_where_the_cpu_computes_it(voice_ex, monkeypatch: pytest.MonkeyPatch,
                                                               native: bool) -> None:
    """Both branches of the CPU-feature choice, whatever this CPU has: with native bfloat16 LIME's batches run
    in it, close to float32; without it they stay in float32, exactly the plain result."""
    from emotion_core.explain import fast_cpu_dtype, fast_dtype, predict_mels
    from emotion_core.features import log_mel

    lm, y, _ = voice_ex
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native, raising=False)
    assert fast_cpu_dtype() == (torch.bfloat16 if native else None)
    assert fast_dtype(torch.device("cpu")) == fast_cpu_dtype()
    mel = log_mel(y)
    mels = np.stack([mel, mel * 0.9, np.where(np.arange(mel.shape[1]) < mel.shape[1] // 2, mel, mel.min())])
    plain, fast = predict_mels(lm, mels), predict_mels(lm, mels, fast=True)
    if native:
        assert np.abs(fast - plain).max() > 0, "the batches really ran in bfloat16"
        assert within("lime_bfloat16", np.abs(fast - plain).max())
    else:
        np.testing.assert_array_equal(fast, plain)


@pytest.mark.parametrize("bf16", [True, False])
def test_a_gpu_without_bfloat16_takes_float16(monkeypatch: pytest.MonkeyPatch, bf16: bool) -> None:
    from emotion_core.explain import fast_dtype

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert fast_dtype(torch.device("cuda")) == (torch.bfloat16 if bf16 else torch.float16)


def test_lime_deletion_beats_random(voice_ex) -> None:
    lm, _, ex = voice_ex
    label = EMOTIONS[int(np.argmax(ex.probs))]
    ex2 = explain_voice(lm, voiced_signal(3.0, seed=3), targets=[label], n_samples=150)
    imp, rnd = voice_deletion(lm, ex2, label)
    assert imp > rnd


def test_explain_command(media_dir: Path, tmp_path: Path) -> None:
    from emotion_core.__main__ import main  # in this process: what the command writes, not its start-up

    assert main(["explain", str(media_dir / "talking.mp4"), "--out", str(tmp_path), "--samples", "40",
                 "--all-classes"]) == 0
    doc = json.loads((tmp_path / "explanation.json").read_text())
    assert doc["schema"] == 1 and doc["label"] in EMOTIONS
    assert len(doc["voice"]["panels"]) == 8 and {f["target"] for f in doc["face"]["frames"]} == set(EMOTIONS) - {"calm"}
    for f in doc["face"]["frames"]:
        assert (tmp_path / f["overlay"]).stat().st_size > 1000
    for panel in doc["voice"]["panels"]:
        assert (tmp_path / panel["png"]).exists() and set(panel["faithfulness"]) == {"drop_important", "drop_random"}


def test_concurrent_cams_and_inference_do_not_mix(faces: np.ndarray) -> None:
    """The race the model lock exists for: Grad-CAM's hooks sit on the shared face network while other sessions
    run it forward. Two threads explain (two targets), two classify; neither sees the other's passes."""
    import threading

    from emotion_core.inference import predict_faces

    lm = load_model("face")
    targets = ["happy", "angry"]
    ref = {t: face_cams(lm, faces, [t] * len(faces)) for t in targets}
    probs = predict_faces(lm, faces)
    out, errors, bad = [], [], []
    start = threading.Barrier(4)

    def cams(t: str) -> None:
        try:
            start.wait()
            for _ in range(5):
                out.append((t, face_cams(lm, faces, [t] * len(faces))))
        except Exception as e:
            errors.append(e)

    def infer() -> None:
        start.wait()
        for _ in range(20):
            if not np.allclose(predict_faces(lm, faces), probs, atol=1e-5):
                bad.append("probs")

    threads = [threading.Thread(target=cams, args=(t,)) for t in targets]
    threads += [threading.Thread(target=infer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and not bad and len(out) == 10
    for t, m in out:
        np.testing.assert_allclose(m, ref[t], atol=1e-5)


def test_lime_agreement_between_seeds() -> None:
    """The stability measure of issue #18: top-cell overlap and rank correlation of two weight vectors."""
    from emotion_core.training.lime_stability import agreement

    a = np.arange(40, dtype=float)
    assert agreement(a, a) == (1.0, 1.0)
    b = a.copy()
    b[[39, 0]] = b[[0, 39]]  # the top cell moves to the bottom
    overlap, rho = agreement(a, b)
    assert overlap == 0.8 and 0 < rho < 1
    assert agreement(a, -a) == (0.0, -1.0)


@pytest.mark.slow
def test_lime_stability_runs_on_the_shipped_model(analyzer) -> None:
    from emotion_core.training.lime_stability import stability

    res = stability(analyzer.models.voice, [voiced_signal(2.0, seed=4)], (30,), seeds=2)
    assert set(res) == {"30"} and 0 <= res["30"]["top_overlap"] <= 1 and -1 <= res["30"]["spearman"] <= 1


def test_landmark_regions_follow_the_face() -> None:
    """Regions move with the landmarks: the same cam read on two faces at different places gives different shares,
    and a blob on the mouth counts as mouth."""
    from emotion_core.constants import FACE_TEMPLATE
    from emotion_core.explain import landmark_regions

    lm = np.asarray(FACE_TEMPLATE) * 48
    masks = landmark_regions(lm, (48, 48))
    assert not (masks["eyes_brows"] & masks["mouth"]).any() and not (masks["nose"] & masks["mouth"]).any()
    cam = np.zeros((48, 48))
    (mlx, mly), (mrx, _) = lm[3], lm[4]
    cam[int(mly) - 2: int(mly) + 3, int(mlx): int(mrx)] = 1.0
    assert region_shares(cam, lm)["mouth"] > 0.9
    moved = lm + np.array([0.0, -12.0])  # the same face higher in the crop: the blob now sits below its mouth
    assert region_shares(cam, moved)["mouth"] < 0.5
    assert region_shares(cam, np.full((5, 2), np.nan)) == region_shares(cam), "no landmarks: the template"


def test_difference_from_mean_shows_what_moves() -> None:
    from emotion_core.explain import difference_from_mean

    table = {"happy": {"mouth": 0.4, "eyes": 0.6}, "sad": {"mouth": 0.2, "eyes": 0.8}}
    diff = difference_from_mean(table)
    assert diff["happy"]["mouth"] == pytest.approx(0.1) and diff["sad"]["eyes"] == pytest.approx(0.1)
    assert sum(d["mouth"] for d in diff.values()) == pytest.approx(0)


def test_bootstrap_stability_tells_a_clear_ranking_from_noise() -> None:
    from emotion_core.explain import bootstrap_stability

    rng = np.random.default_rng(0)
    masks = rng.integers(0, 2, (300, 40))
    true_w = np.zeros(40)
    true_w[:5] = [0.5, 0.4, 0.3, 0.25, 0.2]
    clear = masks @ true_w + 0.01 * rng.standard_normal(300)
    noise = rng.standard_normal(300)
    w = np.ones(300)
    assert bootstrap_stability(masks, clear, w, true_w) > 0.9
    noisy_w = np.linalg.lstsq(masks, noise, rcond=None)[0]
    assert bootstrap_stability(masks, noise, w, noisy_w) < 0.6


def test_lime_reports_its_stability_and_flags_unstable_ones(voice_ex) -> None:
    from emotion_core.explain import UNSTABLE_BELOW

    _, _, ex = voice_ex
    for emo in ("angry", "sad"):
        assert 0 <= ex.stability[emo] <= 1
        assert ex.unstable(emo) == (ex.stability[emo] < UNSTABLE_BELOW)


def test_cam_grid_is_the_layers_resolution() -> None:
    from emotion_core.explain import cam_grid

    lm = LoadedModel("face", FaceNet(FaceConfig()).eval())
    assert cam_grid(lm, 4) == 16 and cam_grid(lm, 10) == 8 and cam_grid(lm, 15) == 4


def test_deletion_and_insertion_curves(faces: np.ndarray, voice_ex) -> None:
    """Both orders start and end at the same inputs (the face, the blurred face), deletion from the face is
    insertion's end point; the voice curves have one row per step. (Which order falls faster is a measurement
    over many faces: reports/faithfulness.json.)"""
    from emotion_core.explain import CURVE_STEPS, curve_summary, face_curves, voice_curves

    lm = load_model("face")
    targets = ["happy"] * len(faces)
    cams = face_cams(lm, faces, targets)
    c = face_curves(lm, faces, cams, targets, grid=16)
    assert c["deletion_important"].shape == (len(faces), len(CURVE_STEPS))
    for mode in ("deletion", "insertion"):
        np.testing.assert_allclose(c[f"{mode}_important"][:, [0, -1]], c[f"{mode}_random"][:, [0, -1]], atol=1e-5)
    np.testing.assert_allclose(c["deletion_important"][:, 0], c["insertion_important"][:, -1], atol=1e-5)
    s = curve_summary(c)
    assert 0 <= s["deletion_beats_random"] <= 1 and s["n"] == len(faces)
    vlm, _, ex = voice_ex
    v = voice_curves(vlm, ex, "angry")
    assert set(v) == set(c) and v["deletion_important"].shape == (1, len(CURVE_STEPS))


def test_occlusion_maps_follow_what_the_model_reads() -> None:
    """A model that reads only the mouth corner (its class 'happy' = the mean brightness of rows 34-41, columns
    16-31) gets its occlusion map there, at the 4-pixel steps of the method; the app's method list offers it."""
    from torch import nn

    from emotion_core.explain import CAM_METHODS, face_occlusion, map_grid

    class Mouth(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unused = nn.Parameter(torch.zeros(1))  # a device to read, like any model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = torch.zeros(len(x), 7)
            logits[:, 1] = 4 * x[:, 0, 34:42, 16:32].mean((1, 2))
            return logits

    lm = LoadedModel("face", Mouth())
    face = np.zeros((1, 48, 48), np.float32)
    face[0, 34:42, 16:32] = 1.0  # bright where the model looks, so blurring it lowers 'happy'
    m = face_occlusion(lm, face, ["happy"])
    assert m.shape == (1, 48, 48) and m.min() >= 0 and m.max() == pytest.approx(1)
    assert m[0, 34:42, 16:32].mean() > 5 * m[0, :24].mean()
    assert np.array_equal(face_cams(lm, face, ["happy"], "occlusion"), m)
    assert "occlusion" in CAM_METHODS and map_grid(lm, "occlusion") == 12


def test_region_table_shows_which_region_moves() -> None:
    """The committed per-emotion face table: maps on the mouth for happy faces and on the eyes for the rest give
    happy a mouth share far above the mean over emotions; faces without landmarks fall back to the template."""
    from emotion_core.constants import FACE_EMOTIONS, FACE_TEMPLATE
    from emotion_core.training.tables import region_table

    lm = np.asarray(FACE_TEMPLATE) * 48
    mouth, eyes = np.zeros((48, 48)), np.zeros((48, 48))
    (mlx, mly), (mrx, _) = lm[3], lm[4]
    mouth[int(mly) - 2: int(mly) + 3, int(mlx): int(mrx)] = 1.0
    eyes[int(lm[0, 1]) - 2: int(lm[0, 1]) + 3, int(lm[0, 0]) - 3: int(lm[1, 0]) + 3] = 1.0
    targets = [e for e in FACE_EMOTIONS for _ in range(2)]
    maps = np.stack([mouth if t == "happy" else eyes for t in targets])
    pts = np.stack([lm if i % 2 else np.full((5, 2), np.nan) for i in range(len(targets))])
    table = region_table(maps, pts, targets)
    assert table["n"] == len(targets) and "50%" in table["regions"]
    assert table["mean"]["happy"]["mouth"] > 0.9 and table["mean"]["sad"]["mouth"] < 0.1
    assert table["difference"]["happy"]["mouth"] > 0.75
    assert all(abs(sum(row.values()) - 1) < 1e-6 for row in table["mean"].values())


def test_the_default_face_map_is_the_measured_one() -> None:
    """The map the app shows by default has its faithfulness and region table committed in reports/ (on the same
    faces), and it is the face map that passes the deletion test most often."""
    import json

    from emotion_core.explain import FACE_MAP_METHOD
    from emotion_core.registry import REPORTS_DIR
    from emotion_core.training.tables import OCCLUSION_REGIONS

    faith = json.loads((REPORTS_DIR / "faithfulness.json").read_text())
    face = {f["method"]: f for k, f in faith.items() if k.startswith("face")}
    assert FACE_MAP_METHOD in face and max(face, key=lambda m: face[m]["important_beats_random"]) == FACE_MAP_METHOD
    table = json.loads((REPORTS_DIR / OCCLUSION_REGIONS).read_text())
    assert table["method"] == FACE_MAP_METHOD and table["n"] == face[FACE_MAP_METHOD]["n"]
