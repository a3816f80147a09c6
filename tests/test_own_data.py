"""A group's own labelled recordings: the labels file, `evaluate data`, profiles and `adapt` (#14)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from conftest import SR, voiced_signal

from emotion_core.__main__ import main
from emotion_core.constants import EMOTIONS
from emotion_core.errors import MediaError
from emotion_core.own_data import read_labels
from emotion_core.profile import VoiceProfile, adapted_logprobs, fit_profile

E = EMOTIONS.index


def test_labels_file_paths_speakers_and_mistakes(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    f = tmp_path / "LABELS.csv"
    f.write_text("Path,Label,Speaker\nsub/a.wav,Neutral,p1\n/abs/b.mp4,angry,\n")
    items = read_labels(f)
    assert items[0].path == tmp_path / "sub" / "a.wav" and items[0].label == "neutral" and items[0].speaker == "p1"
    assert items[1].path == Path("/abs/b.mp4") and items[1].speaker is None
    f.write_text("path,label\na.wav,contempt\n")
    with pytest.raises(ValueError, match="line 2: 'contempt' is not one of the emotions"):
        read_labels(f)
    f.write_text("file,emotion\na.wav,sad\n")
    with pytest.raises(ValueError, match="needs the columns 'path' and 'label'"):
        read_labels(f)
    f.write_text("path,label\n")
    with pytest.raises(ValueError, match="lists no recordings"):
        read_labels(f)


def _clips(seed: int = 0, n: int = 40, d: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A prior model that calls every clip 'happy', features that tell neutral from angry."""
    rng = np.random.default_rng(seed)
    y = np.where(np.arange(n) % 2 == 0, E("neutral"), E("angry"))
    z = rng.normal(0, 1, (n, d))
    z[:, 0] += np.where(y == E("neutral"), -2.0, 2.0)
    p = np.full((n, 8), 0.05)
    p[:, E("happy")] = 0.65
    return np.log(p), z, y


def test_a_profile_learns_the_seen_classes_and_leaves_the_others_alone() -> None:
    logp, z, y = _clips()
    prof = fit_profile(logp, z, y, "m", {"name": "clinic"})
    assert prof.classes == ("neutral", "angry") and prof.meta["clips"] == {"neutral": 20, "angry": 20}
    seen = torch.tensor([E(c) for c in prof.classes])
    lt, zt = _clips(seed=1)[:2]
    out = adapted_logprobs(torch.from_numpy(lt), torch.from_numpy(zt), seen, torch.from_numpy(prof.weight),
                           torch.from_numpy(prof.bias), prof.gain).exp().numpy()
    y_test = _clips(seed=1)[2]
    assert np.allclose(out.sum(1), 1)
    unseen = [k for k in range(8) if k not in seen.tolist()]
    np.testing.assert_allclose(out[:, unseen], np.exp(lt)[:, unseen], rtol=1e-6)  # happy keeps its 0.65
    among = np.array([E("neutral"), E("angry")])[out[:, [E("neutral"), E("angry")]].argmax(1)]
    assert (among == y_test).mean() > 0.9


def test_an_empty_correction_is_the_shipped_model_and_a_profile_survives_a_file(tmp_path: Path) -> None:
    logp, z, _ = _clips()
    seen = torch.tensor([E("neutral"), E("angry")])
    same = adapted_logprobs(torch.from_numpy(logp), torch.from_numpy(z), seen, torch.zeros(2, z.shape[1],
                            dtype=torch.float64), torch.zeros(2, dtype=torch.float64), 1.0)
    np.testing.assert_allclose(same.numpy(), logp, atol=1e-12)
    prof = fit_profile(*_clips(), "model-a", {"name": "x"})
    prof.save(tmp_path / "x.profile")
    back = VoiceProfile.load(tmp_path / "x.profile")
    np.testing.assert_array_equal(back.weight, prof.weight)
    assert (back.classes, back.gain, back.model_id, back.name) == (prof.classes, prof.gain, "model-a", "x")
    (tmp_path / "bad.profile").write_bytes(b"not a profile")
    with pytest.raises(MediaError, match="not a profile"):
        VoiceProfile.load(tmp_path / "bad.profile")
    with pytest.raises(ValueError, match="at least two emotions"):
        fit_profile(logp[:1], z[:1], np.array([E("sad")]), "m", {})


def test_a_profile_for_another_model_is_refused(analyzer) -> None:
    prof = fit_profile(*_clips(d=analyzer.models.voice.model.probe.cfg.n_features), "someone-else", {"name": "old"})
    with pytest.raises(MediaError, match="another version of the voice model"):
        analyzer.with_profile(prof)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 'speakers', low calm-ish voices labelled sad and bright high ones labelled happy, a broken file."""
    d = tmp_path_factory.mktemp("own")
    rows = []
    for spk in ("a", "b"):
        for i in range(4):
            for label, f0 in (("sad", 95.0), ("happy", 260.0)):
                name = f"{spk}_{label}_{i}.wav"
                sf.write(d / name, voiced_signal(2.0, f0=f0 + 7 * i, seed=hash((spk, i, label)) % 1000), SR)
                rows.append((name, label, spk))
    (d / "broken.wav").write_bytes(b"RIFF....WAVE" * 10)
    rows.append(("broken.wav", "sad", "a"))
    pd.DataFrame(rows, columns=["path", "label", "speaker"]).to_csv(d / "LABELS.csv", index=False)
    return d


@pytest.mark.slow
def test_evaluate_data_agrees_with_analyze_and_a_profile_is_named(labelled: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    assert main(["evaluate", "data", "--labels", str(labelled / "LABELS.csv"), "--json", "--out",
                 str(tmp_path / "rep")]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc["n"] == 16 and doc["classes"] == ["happy", "sad"] and doc["profile"] is None
    assert set(doc["per_class"]) == {"happy", "sad"} and np.array(doc["confusion"]).sum() == 16
    assert set(doc["per_speaker"]) == {"a", "b"} and [f["path"] for f in doc["failed"]] == [str(labelled / "broken.wav")]
    preds = pd.read_csv(tmp_path / "rep" / "predictions.csv")
    assert len(preds) == 17 and "confusion matrix" in (tmp_path / "rep" / "report.html").read_text().lower()
    # the same files through `analyze`: the same predictions, so the same accuracy
    ok = preds[preds.error.isna()]
    assert main(["analyze", *[str(labelled / p) for p in ok.path.map(lambda s: Path(s).name)], "--json"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    among = [max(("happy", "sad"), key=lambda e, d=d: d["modalities"]["voice"]["probs"][e]) for d in docs]
    assert np.isclose(np.mean(np.array(among) == ok.label.to_numpy()), doc["accuracy"])

    prof = tmp_path / "clinic.profile"
    assert main(["adapt", "--labels", str(labelled / "LABELS.csv"), "--out", str(prof)]) == 0
    made = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert made["name"] == "clinic" and made["clips"] == {"happy": 8, "sad": 8} and made["speakers"] == 2
    assert main(["evaluate", "data", "--labels", str(labelled / "LABELS.csv"), "--json", "--profile", str(prof)]) == 0
    after = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert after["profile"]["name"] == "clinic" and after["accuracy"] >= doc["accuracy"]
    assert main(["analyze", str(labelled / "a_sad_0.wav"), "--json", "--profile", str(prof)]) == 0
    assert json.loads(capsys.readouterr().out.strip())["profile"]["name"] == "clinic"
    assert main(["batch", str(labelled / "a_sad_0.wav"), "--out", str(tmp_path / "b"), "--csv", "--workers", "1",
                 "--profile", str(prof)]) == 0
    assert pd.read_csv(tmp_path / "b" / "recordings.csv")["profile"].iloc[0] == str(prof.resolve())


def test_bad_labels_and_profiles_are_refused_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "L.csv").write_text("path,label\nx.wav,bored\n")
    assert main(["evaluate", "data", "--labels", str(tmp_path / "L.csv")]) == 2
    assert "'bored' is not one of the emotions" in capsys.readouterr().err
    (tmp_path / "p.profile").write_text("hello")
    (tmp_path / "M.csv").write_text("path,label\nx.wav,sad\n")
    assert main(["analyze", str(tmp_path / "M.csv"), "--profile", str(tmp_path / "p.profile")]) == 2
    assert "not a profile" in capsys.readouterr().err


def test_a_profiled_model_runs_through_analysis_and_lime(analyzer, media_dir: Path) -> None:
    """Every path that reads a voice reads it through the profile: analysis, the baseline re-read, LIME
    (in bfloat16 batches where the CPU has them). A profile keeps the base model's reading of the emotions it
    never saw, at the model's fixed (familiar) temperature: it was fitted on that reading, and it is its own
    calibration for the data it was fitted on (the plain path's recording-level temperature does not apply)."""
    from emotion_core.explain import explain_voice
    from emotion_core.inference import pool_voice
    from emotion_core.profile import model_id

    n = analyzer.models.voice.model.probe.cfg.n_features
    logp, z, y = _clips(d=n)
    prof = fit_profile(logp, z, y, model_id(analyzer.models.voice.meta), {"name": "p"})
    profiled = analyzer.with_profile(prof)
    assert profiled.models is analyzer.models and analyzer.profile is None  # shared, the original untouched
    plain, res = analyzer.analyze(media_dir / "voice.wav", keep_audio=True), profiled.analyze(media_dir / "voice.wav")
    assert res.to_dict()["profile"]["name"] == "p" and "profile" not in plain.to_dict()
    unseen = [k for k in range(8) if EMOTIONS[k] not in prof.classes]
    base = pool_voice(plain.voice.windows, analyzer.models.voice.temperature)
    np.testing.assert_allclose(res.voice.probs[unseen], base[unseen], rtol=1e-4)
    again = profiled.with_baseline(plain)
    assert again.profile["name"] == "p" and np.allclose(again.voice.probs, res.voice.probs, atol=1e-5)
    ex = explain_voice(profiled.voice_model, plain.audio, n_samples=40)
    assert np.isclose(ex.probs.sum(), 1)


def test_uploads_are_staged_safely(tmp_path: Path) -> None:
    import io
    import zipfile

    from emotion_core.own_data import stage_uploads

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("study/LABELS.csv", "path,label\nclips/a.wav,sad\n")
        z.writestr("study/clips/a.wav", b"RIFF")
        z.writestr("../../escape.txt", b"x")  # a path that climbs out is brought back inside
        z.writestr("__MACOSX/study/._a.wav", b"junk")
    (tmp_path / "one").mkdir()
    items = stage_uploads([("study.zip", buf.getvalue())], tmp_path / "one")
    assert [(i.path, i.label) for i in items] == [(tmp_path / "one" / "study" / "clips" / "a.wav", "sad")]
    assert (tmp_path / "one" / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "one" / "__MACOSX").exists()
    (tmp_path / "two").mkdir()
    with pytest.raises(ValueError, match="lies outside the upload"):
        stage_uploads([("LABELS.csv", b"path,label\n/etc/passwd,sad\n")], tmp_path / "two")
    (tmp_path / "three").mkdir()
    with pytest.raises(ValueError, match="no labels file"):
        stage_uploads([("a.wav", b"RIFF")], tmp_path / "three")
    (tmp_path / "four").mkdir()
    with pytest.raises(ValueError, match="could not be opened"):
        stage_uploads([("bad.zip", b"not a zip")], tmp_path / "four")


def test_learning_curve_holds_whole_speakers_out() -> None:
    from emotion_core.training.adapt_curve import draw, speaker_groups

    speakers = np.array(["a"] * 10 + ["b"] * 6 + ["c"] * 5 + ["d"] * 3 + ["e"] * 2 + ["f"] * 2)
    groups = speaker_groups(speakers, 3)
    assert sorted(s for g in groups for s in g) == list("abcdef") and len(groups) == 3
    assert max(sum((speakers == s).sum() for s in g) for g in groups) <= 10  # balanced by clips
    labels = np.array([0, 1] * 14)
    pick = draw(np.arange(10), labels, 3, np.random.default_rng(0))
    assert len(pick) == 6 and set(labels[pick]) == {0, 1} and pick.max() < 10


def test_each_file_is_scored_by_what_it_holds(analyzer, media_dir: Path, tmp_path: Path) -> None:
    from emotion_core.own_data import evaluate_files

    (tmp_path / "L.csv").write_text(f"path,label\n{media_dir / 'face.jpg'},happy\n{media_dir / 'talking.mp4'},sad\n"
                                    f"{media_dir / 'voice.wav'},sad\n{media_dir / 'no_audio.mp4'},happy\n")
    report = evaluate_files(analyzer, read_labels(tmp_path / "L.csv"))
    assert [s.modality for s in report.items] == ["face", "fused", "voice", "fused"]
    only_voice = evaluate_files(analyzer, read_labels(tmp_path / "L.csv"), "voice").to_dict()
    assert only_voice["n"] == 2 and len(only_voice["failed"]) == 2  # the photo and the silent video have no voice
    assert all("no voice reading" in f["reason"] for f in only_voice["failed"])
