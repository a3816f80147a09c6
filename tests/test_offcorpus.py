"""Voices it never heard (issue #28): the nEMO loader, the per-recording normalisation, the familiarity model and
its calibration map, the recording-level temperature at run time, and the committed report against its
out-of-fold predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from conftest import ROOT, SR, voiced_signal

from emotion_core.constants import EMOTIONS
from emotion_core.familiarity import UNFAMILIAR_MESSAGE, Familiarity
from emotion_core.metrics import ece
from emotion_core.training.corpora import find_corpora, find_corpus
from emotion_core.training.voice_offcorpus import (
    OOF_FILE,
    CalibrationSample,
    apply_map,
    core_classes,
    fit_map,
    normalise,
    scores,
)
from emotion_core.voice_ensemble import ProbeConfig, VoiceProbe

E = EMOTIONS.index
REPORT = ROOT / "reports" / "voice_offcorpus"

NEMO_TSV = ("file_id\temotion\traw_text\tnormalized_text\tspeaker_id\tgender\tage\n"
            "WR0_surprised_64.wav\tsurprised\tUcho wykrywa dźwięki.\tucho wykrywa dźwięki\t        WR0\tmale\t23\n"
            "EB0_neutral_13.wav\tneutral\tInteresuje mnie historia.\tinteresuje mnie historia\t        EB0\tfemale\t27\n"
            "EB0_anger_2.wav\tanger\tTo jest stół.\tto jest stół\t        EB0\tfemale\t27\n")


def _nemo(root: Path, tsv: str = NEMO_TSV) -> Path:
    (root / "samples").mkdir(parents=True, exist_ok=True)
    (root / "data.tsv").write_text(tsv, encoding="utf-8")
    for line in tsv.splitlines()[1:]:
        sf.write(root / "samples" / line.split("\t")[0], voiced_signal(0.5), 24000)
    return root


def test_nemo_is_read_from_its_own_table_with_speakers_stripped_and_emotions_mapped(tmp_path: Path) -> None:
    clips = find_corpus("nemo", _nemo(tmp_path / "nemo"))
    assert [(c.path.name, c.label, c.speaker, c.corpus) for c in clips] == [
        ("EB0_anger_2.wav", "angry", "nemo:EB0", "nemo"), ("EB0_neutral_13.wav", "neutral", "nemo:EB0", "nemo"),
        ("WR0_surprised_64.wav", "surprised", "nemo:WR0", "nemo")]


def test_nemo_refuses_an_unknown_emotion_by_its_line_and_a_missing_clip(tmp_path: Path) -> None:
    root = _nemo(tmp_path / "a", NEMO_TSV.replace("\tanger\t", "\tboredom\t"))
    with pytest.raises(ValueError, match=r"line 4: unknown emotion 'boredom'"):
        find_corpus("nemo", root)
    root = _nemo(tmp_path / "b")
    (root / "samples" / "EB0_neutral_13.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"line 3: .*EB0_neutral_13\.wav is missing"):
        find_corpus("nemo", root)
    with pytest.raises(FileNotFoundError, match=r"github\.com/amu-cai/nEMO"):
        find_corpus("nemo", tmp_path / "nowhere")


def test_a_fetched_corpus_joins_the_shared_ones(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "urdu-16k" / "Sad").mkdir(parents=True)
    sf.write(data / "urdu-16k" / "Sad" / "SM1_F1_S01.wav", voiced_signal(0.5), SR)
    clips = find_corpora(data, ("urdu",), roots={"nemo": _nemo(tmp_path / "nemo")})
    assert [c.corpus for c in clips] == ["urdu", "nemo", "nemo", "nemo"]


def test_the_layer_normalisation_standardises_each_block_of_a_clip() -> None:
    x = np.random.default_rng(0).normal(3, 2, (4, 10 * 6)).astype(np.float32)
    z = normalise(x, "layer").reshape(4, 10, 6)
    assert np.allclose(z.mean(-1), 0, atol=1e-5) and np.allclose(z.std(-1), 1, atol=1e-4)
    # a room that scales and shifts a whole hidden state leaves it unchanged
    shifted = x.reshape(4, 10, 6) * np.array([1.0, 3.0] * 5)[None, :, None] + 5
    assert np.allclose(normalise(shifted.reshape(4, -1).astype(np.float32), "layer"), z.reshape(4, -1), atol=1e-4)
    assert normalise(x, "none") is x


def test_core_uar_takes_calm_for_neutral_where_a_corpus_has_no_neutral() -> None:
    assert [EMOTIONS[k] for k in core_classes("turev")] == ["calm", "happy", "sad", "angry"]
    assert [EMOTIONS[k] for k in core_classes("nemo")] == ["neutral", "happy", "sad", "angry"]
    labels = np.array([E("neutral"), E("happy"), E("sad"), E("angry"), E("fearful")])
    probs = np.eye(8)[[E("neutral"), E("happy"), E("angry"), E("angry"), E("fearful")]]
    s = scores(labels, probs, "nemo")
    assert s["core_uar"] == pytest.approx(0.75) and s["neutral_or_calm_recall"] == 1.0
    assert s["ece"] == pytest.approx(ece(labels, probs, 10)) and s["mean_top"] == 1.0


PROJECTION = np.random.default_rng(7).normal(0, 1, (3, 40))
"""The training clips' low-dimensional cloud: 3 directions in 40 features."""


def _clips(rng: np.random.Generator, n: int, off: float) -> np.ndarray:
    """Clips on the training cloud (``off`` = 0) or ``off`` away from it in the other directions."""
    return rng.normal(0, 1, (n, 3)) @ PROJECTION + off * rng.normal(0, 1, (n, 40)) + rng.normal(0, 0.1, (n, 40))


def test_familiarity_distances_grow_for_a_recording_unlike_the_training_clips() -> None:
    rng = np.random.default_rng(0)
    fam = Familiarity(40, 3).fit(_clips(rng, 400, 0.0))
    near, far = fam.distances(_clips(rng, 50, 0.0)), fam.distances(_clips(rng, 50, 1.0))
    assert near[:, 1].max() < far[:, 1].min(), "off the training directions: the outside distance grows"
    wide = rng.normal(0, 1, (50, 3)) @ PROJECTION * 4 + rng.normal(0, 0.1, (50, 40))
    assert np.median(fam.distances(wide)[:, 0]) > near[:, 0].max(), "far along them: the inside distance grows"
    fam.set_map(np.array([0.0, 10.0]), -10.0 * float(np.median(np.r_[near[:, 1], far[:, 1]])), 1.1, 2.5)
    a, b = fam.read(_clips(rng, 1, 0.0)[0]), fam.read(_clips(rng, 1, 1.0)[0])
    assert not a.unfamiliar and a.temperature == pytest.approx(1.1, abs=0.05)
    assert b.unfamiliar and b.temperature == pytest.approx(2.5, abs=0.05)
    assert b.to_dict()["message"] == UNFAMILIAR_MESSAGE and a.to_dict()["message"] is None
    assert set(a.to_dict()) >= {"inside", "outside", "unfamiliarity", "temperature"}


def test_the_calibration_map_cools_the_unfamiliar_clips_and_leaves_the_familiar_ones() -> None:
    """Familiar clips (the reference corpus, its speakers out): confidence matches accuracy at T = 1. Unfamiliar
    ones (another corpus, higher signals): as sure, right far less often. The fitted map must find them and give
    them a higher temperature and a lower ECE."""
    rng = np.random.default_rng(1)
    n = 1500
    unfamiliar = np.repeat([False, True], n)
    signals = np.where(unfamiliar, 1.0, -1.0)[:, None] + rng.normal(0, 0.5, (2 * n, 2))
    logits = rng.normal(0, 1, (2 * n, 8))
    logits[np.arange(2 * n), 0] += 2.5
    probs = torch.softmax(torch.from_numpy(logits), -1).numpy()
    labels = np.array([rng.choice(8, p=p) for p in probs])  # calibrated by construction
    labels[unfamiliar] = rng.integers(0, 8, n)  # off-corpus: as sure, at chance
    sample = CalibrationSample(probs, signals, labels, unfamiliar, np.where(unfamiliar, "urdu", "ravdess"))
    assert (sample.familiar == ~unfamiliar).all()
    params = fit_map(sample)
    assert params[3] > 3 * params[2] and abs(params[2] - 1) < 0.2 and (params[0] > 0).all()
    mapped = apply_map(probs, signals, params)
    assert ece(labels[unfamiliar], mapped[unfamiliar], 10) < 0.5 * ece(labels[unfamiliar], probs[unfamiliar], 10)
    assert ece(labels[~unfamiliar], mapped[~unfamiliar], 10) < 0.05
    fam = Familiarity(4, 1)
    fam.set_map(*params)
    u = fam.unfamiliarity(signals[:5])
    np.testing.assert_allclose(fam.temperature(u), params[2] ** (1 - u) * params[3] ** u)


def test_a_probe_with_a_familiarity_model_round_trips_and_an_old_config_still_loads(tmp_path: Path) -> None:
    from emotion_core.registry import load_checkpoint, save_checkpoint

    cfg = ProbeConfig(norm="layer", familiarity_components=4)
    probe = VoiceProbe(cfg)
    probe.familiarity.fit(np.random.default_rng(0).normal(size=(50, cfg.n_features)))
    probe.familiarity.set_map(np.array([0.5, 0.2]), -1.0, 1.1, 2.0)
    save_checkpoint(tmp_path / "voice_probe.pt", "voice_probe", probe, {}, keep_fp32=("familiarity.",))
    back, _ = load_checkpoint(tmp_path / "voice_probe.pt")
    assert back.cfg == cfg and torch.equal(back.familiarity.components, probe.familiarity.components)
    assert back.familiarity.calibration.tolist() == [-1.0, 1.1, 2.0]
    assert back.familiarity.weights.tolist() == [0.5, 0.2]
    old = ProbeConfig.from_dict({"encoder": {}, "n_classes": 8})
    assert old.norm == "none" and old.familiarity_components == 0 and VoiceProbe(old).familiarity is None


@pytest.mark.skipif(not (REPORT / "voice_offcorpus.json").exists(), reason="no four-corpora report committed")
def test_committed_offcorpus_report_matches_its_out_of_fold_predictions() -> None:
    report = json.loads((REPORT / "voice_offcorpus.json").read_text())
    oof = pd.read_csv(REPORT / OOF_FILE)
    for name, res in report["candidates"].items():
        for corpus, r in res["corpus_out"].items():
            rows = oof[(oof.protocol == f"{name}:probe_corpus_out") & (oof.corpus == corpus)]
            labels = np.array([E(e) for e in rows.true])
            s = scores(labels, rows[list(EMOTIONS)].to_numpy(), corpus)
            assert s["n"] == r["probe"]["n"]
            assert s["core_uar"] == pytest.approx(r["probe"]["core_uar"], abs=2e-3)
        five = oof[(oof.protocol == f"{name}:probe_five_fold")]
        assert set(five.corpus) == {"ravdess"} and len(five) == 1200
        assert len({s.split(":")[1] for s in five.speaker}) == 20
    assert report["decision"]["rule"].startswith("ship the candidate")


def _voice_with_map(bias: float):
    """The shipped voice model with a familiarity map whose bias alone decides (> 0: every recording unfamiliar)."""
    from emotion_core.registry import load_model

    voice = load_model("voice")
    probe = voice.model.probe
    if probe.familiarity is None:
        probe.familiarity = Familiarity(probe.cfg.n_features, 2).fit(
            np.random.default_rng(0).normal(size=(20, probe.cfg.n_features)))
    probe.familiarity.set_map(np.zeros(2), bias, 1.2, 3.0)
    return voice


def test_the_whole_recording_takes_the_temperature_its_familiarity_gives() -> None:
    from emotion_core.inference import read_voice, softmax_t

    audio = voiced_signal(6.0, seed=3)
    for bias, temperature in ((1e3, 3.0), (-1e3, 1.2)):
        windows, reading = read_voice(_voice_with_map(bias), audio)
        assert reading is not None and reading.temperature == pytest.approx(temperature)
        assert reading.unfamiliar == (bias > 0)
        assert len(windows) >= 2
        for w in windows:
            np.testing.assert_allclose(w.probs, softmax_t(torch.from_numpy(w.logits), temperature), atol=1e-6)


def test_an_unfamiliar_voice_is_said_once_per_recording_and_in_the_json(tmp_path: Path, analyzer) -> None:
    from emotion_core.analysis import Analyzer
    from emotion_core.registry import Models

    wav = tmp_path / "long.wav"
    sf.write(wav, voiced_signal(12.0, seed=5), SR)
    a = Analyzer(models=Models(voice=_voice_with_map(1e3), face=analyzer.models.face), detector=analyzer.detector)
    d = a.analyze(wav).to_dict()
    assert d["warnings"].count(f"voice: {UNFAMILIAR_MESSAGE}") == 1 and len(d["modalities"]["voice"]["windows"]) > 3
    assert d["modalities"]["voice"]["familiarity"]["unfamiliar"] is True
    a = Analyzer(models=Models(voice=_voice_with_map(-1e3), face=analyzer.models.face), detector=analyzer.detector)
    d = a.analyze(wav).to_dict()
    assert not any(UNFAMILIAR_MESSAGE in w for w in d["warnings"])
    assert d["modalities"]["voice"]["familiarity"]["unfamiliar"] is False


@pytest.mark.skipif(not (REPORT / "voice_offcorpus.json").exists(), reason="no four-corpora report committed")
def test_the_shipped_probe_is_the_offcorpus_report_s_winner() -> None:
    """weights/voice_probe.pt holds the candidate the rule chose, at its weight, with the calibration map the report
    fitted and a familiarity model; the misclassifications page's file is that ensemble's RAVDESS 5-fold."""
    from emotion_core.registry import VOICE_OOF, load_checkpoint
    from emotion_core.training.train_voice import summarize_oof

    report = json.loads((REPORT / "voice_offcorpus.json").read_text())
    decision = report["decision"]
    assert decision["ship"] and decision["scores"][decision["best"]] > decision["scores"]["today"]
    probe, meta = load_checkpoint(ROOT / "weights" / "voice_probe.pt")
    winner = report["candidates"][decision["best"]]
    assert meta["recipe"] == decision["best"] == report["calibrated"]
    assert meta["ensemble_weight"] == winner["decision"]["probe_weight"]
    assert winner["decision"]["ravdess_5fold"] >= 0.78 and meta["command"] == report["command"]
    fam = meta["familiarity"]
    assert fam["t_familiar"] == pytest.approx(report["calibration"]["map"]["t_familiar"])
    assert probe.familiarity is not None and probe.cfg.norm == winner["recipe"]["norm"]
    assert probe.familiarity.temperature(1.0) == pytest.approx(fam["t_unfamiliar"])
    summary = summarize_oof(ROOT / "reports" / VOICE_OOF)
    assert abs(summary["mean_fold_accuracy"] - winner["decision"]["ravdess_5fold"]) < 1e-3
