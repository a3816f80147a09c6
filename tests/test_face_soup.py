"""Face model soups: the weight average, BatchNorm re-estimation, and a tiny face-soup run that writes a
checkpoint the app loads."""

import json
from pathlib import Path

import numpy as np
import torch
from test_ferplus import tiny_face_data

from emotion_core.models import FaceConfig, FaceNet
from emotion_core.registry import FILES, load_checkpoint, save_checkpoint
from emotion_core.training.face_soup import average_states, make_soup, reestimate_bn


def net(seed: int) -> FaceNet:
    torch.manual_seed(seed)
    return FaceNet(FaceConfig()).eval()


def test_average_is_the_mean_and_a_soup_of_one_model_is_that_model() -> None:
    a, b = net(0).state_dict(), net(1).state_dict()
    avg = average_states([a, b])
    k = "_fc.weight"
    assert torch.allclose(avg[k], (a[k] + b[k]) / 2)
    assert torch.equal(avg["_bn0.num_batches_tracked"], a["_bn0.num_batches_tracked"])
    x = torch.rand(4, 1, 48, 48)
    same = make_soup([a, a], net(0), None)
    assert torch.allclose(same(x), net(0)(x), atol=1e-6)
    assert not torch.allclose(make_soup([a, b], net(0), None)(x), same(x), atol=1e-3)


def test_batchnorm_statistics_are_re_estimated_on_the_faces_given() -> None:
    faces = np.random.default_rng(0).integers(0, 256, (40, 48, 48), dtype=np.uint8)
    m = reestimate_bn(net(0), faces, batch_size=20)
    stem = (torch.from_numpy(faces).float()[:, None] / 255).expand(-1, 3, -1, -1)
    stem = torch.nn.functional.interpolate(stem, size=(128, 128), mode="bilinear", align_corners=False)
    stem = m._conv_stem((stem - m.mean) / m.std)
    # the mean over both batches, not a running average that forgets the first one
    assert torch.allclose(m._bn0.running_mean, stem.mean((0, 2, 3)), atol=1e-4)
    assert m._bn0.momentum == 0.1 and not m.training


def test_tiny_face_soup_run_writes_soups_the_app_loads(tmp_path: Path) -> None:
    from emotion_core.__main__ import main

    out = tiny_face_data(tmp_path)
    for seed in (0, 1):
        save_checkpoint(out / f"m{seed}" / FILES["face"], "face", net(seed), {"temperature": 1.0})
    rc = main(["train", "face-soup", "--data", str(tmp_path / "data"), "--out", str(out), "--quick",
               "--ingredients", str(out / "m0"), str(out / "m1"), "--reports", str(tmp_path / "rep")])
    assert rc == 0
    res = json.loads((out / "soup-uniform" / "results.json").read_text())
    assert res["soup"]["members"] == ["m0", "m1"] and not res["soup"]["bn_reestimated"]
    assert set(res["soup"]["ingredients"]) == {"m0", "m1"}
    assert set(res["selection"]) == {"fer_public", "sfew_films"} and res["temperature"] > 0
    model, meta = load_checkpoint(out / "soup-uniform+bn" / FILES["face"])
    assert isinstance(model, FaceNet) and set(meta["ingredients"]) == {"m0", "m1"}
    assert meta["crop"]["align"] is True
    assert not (tmp_path / "rep").exists(), "--quick writes no report"
