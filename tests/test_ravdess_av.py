"""The RAVDESS audio-visual path: extraction, honest voice predictions, nested fitting of the fusion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import face_frame, voiced_signal, write_video

from emotion_core.__main__ import main
from emotion_core.constants import EMOTIONS
from emotion_core.fusion import VOICE_PRIOR, FusionConfig, fuse
from emotion_core.registry import VOICE_OOF
from emotion_core.training.datasets import parse_ravdess_name
from emotion_core.training.ravdess_av import ClipTable, audio_twin, av_clips, evaluate_table, fit_prior

ROOT = Path(__file__).resolve().parent.parent


def one_hot(k: int, p: float = 0.9) -> np.ndarray:
    v = np.full(len(EMOTIONS), (1 - p) / (len(EMOTIONS) - 1))
    v[k] = p
    return v


def table(actors: list[int], face_right: bool, voice_right: bool) -> ClipTable:
    """Clips of happy/sad for each actor; each branch always right or always wrong."""
    items, face, voice = [], [], []
    for a in actors:
        for emo in (EMOTIONS.index("happy"), EMOTIONS.index("sad")):
            wrong = EMOTIONS.index("angry")
            items.append(parse_ravdess_name(f"01-01-{emo + 1:02d}-01-01-01-{a:02d}.mp4"))
            face.append(one_hot(emo if face_right else wrong, 0.6))
            voice.append(one_hot(emo if voice_right else wrong, 0.6))
    n = len(items)
    return ClipTable(items, np.array(face), np.array(voice), np.full(n, 10.0), np.full(n, 3.0), ["x"] * n)


def test_fit_prior_follows_the_branch_that_is_right() -> None:
    t = table([1, 5, 9], face_right=True, voice_right=False)
    assert fit_prior(t, np.ones(6, bool)) < VOICE_PRIOR
    t = table([1, 5, 9], face_right=False, voice_right=True)
    assert fit_prior(t, np.ones(6, bool)) >= VOICE_PRIOR
    t = table([1, 5], face_right=True, voice_right=True)  # every prior is as good: the default is kept
    assert fit_prior(t, np.ones(4, bool)) == VOICE_PRIOR


def test_nested_evaluation_per_fold_and_unseen() -> None:
    t = table([1, 2, 5, 21], face_right=True, voice_right=False)
    res = evaluate_table(t, fit=True)
    assert list(res["groups"]) == ["01-04", "05-08", "unseen"]
    g = res["groups"]["01-04"]
    assert g["clips"] == 4 and g["voice_only"] == 0.0 and g["face_only"] == 1.0
    assert g["fitted_voice_prior"] < VOICE_PRIOR and g["fused_fitted_prior"] == 1.0  # fitted on 05-08 alone
    assert res["groups"]["unseen"]["fitted_voice_prior"] == res["final_voice_prior"]
    assert set(res["mean_of_folds"]) == {"voice_only", "face_only", "fused_shipped_prior", "fused_fitted_prior"}
    assert "fitted_voice_prior" not in evaluate_table(t, fit=False)["groups"]["01-04"]


def test_fuse_uses_the_fitted_prior() -> None:
    f, v = one_hot(EMOTIONS.index("happy")), one_hot(EMOTIONS.index("sad"))
    assert fuse(f, v, 10, 3, voice_prior=0.9).probs.argmax() == EMOTIONS.index("sad")
    assert fuse(f, v, 10, 3, voice_prior=0.1).probs.argmax() == EMOTIONS.index("happy")
    assert fuse(f, v, 10, 3, voice_prior=1.0).face_weight == 0.0


def test_fusion_config_file(tmp_path: Path) -> None:
    assert FusionConfig.load(tmp_path).voice_prior == VOICE_PRIOR
    FusionConfig(0.35, "test").save(tmp_path / "fusion.json")
    assert FusionConfig.load(tmp_path) == FusionConfig(0.35, "test")
    (tmp_path / "fusion.json").write_text(json.dumps({"voice_prior": 1.5}))
    with pytest.raises(ValueError, match="voice_prior"):
        FusionConfig.load(tmp_path)


@pytest.fixture(scope="module")
def av_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny clips with RAVDESS audio-visual names for actors 01, 05 and 21, plus files to be ignored."""
    d = tmp_path_factory.mktemp("ravdess_av")
    frames = [face_frame(shift=(i % 5) * 4, size=(180, 320)) for i in range(15)]
    for k, (actor, emo) in enumerate([(1, 3), (1, 4), (5, 3), (5, 4), (21, 3)]):
        sub = d / f"Actor_{actor:02d}"
        sub.mkdir(exist_ok=True)
        write_video(sub / f"01-01-{emo:02d}-01-01-01-{actor:02d}.mp4", frames, 10,
                    voiced_signal(1.5, f0=120 + 30 * k, seed=k))
    write_video(d / "Actor_01" / "02-01-03-01-01-01-01.mp4", frames, 10)  # video-only: not a pair
    write_video(d / "Actor_01" / "01-02-03-01-01-01-01.mp4", frames, 10, voiced_signal(1.5))  # song
    return d


def test_av_clips_and_twins(av_dir: Path) -> None:
    items = av_clips(av_dir)
    assert [it.actor for it in items] == [1, 1, 5, 5, 21]
    assert audio_twin(items[0]) == "03-01-03-01-01-01-01"


def test_ravdess_av_command(av_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, weights, export = tmp_path / "out", tmp_path / "w", tmp_path / "export"
    weights.mkdir()
    assert main(["ravdess-av", "--data", str(av_dir), "--out", str(out), "--fit", "--install",
                 "--weights", str(weights), "--workers", "1", "--export", str(export)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res["groups"]) == {"01-04", "05-08", "unseen"} and res["n_clips"] == 5
    assert res["batch"]["analysed"] == 5 and res["batch"]["failed"] == 0
    clips = pd.read_csv(out / "av_clips.csv")
    assert len(clips) == 5 and clips["face_frames_used"].min() > 0 and clips["voiced_seconds"].min() > 0
    # actors 01-20: the voice is the committed out-of-fold prediction of the audio-only twin
    oof = pd.read_csv(ROOT / "reports" / VOICE_OOF)
    oof = oof.set_index(oof["file"].map(lambda f: Path(f).stem))
    row = clips.set_index("file").loc["01-01-03-01-01-01-01.mp4"]
    assert row["voice_source"] == "out-of-fold"
    np.testing.assert_allclose(row[[f"voice_{e}" for e in EMOTIONS]].to_numpy(float),
                               oof.loc["03-01-03-01-01-01-01", list(EMOTIONS)].to_numpy(float), atol=1e-5)
    assert clips.set_index("file").loc["01-01-03-01-01-01-21.mp4", "voice_source"] == "shipped model"
    assert clips["face_calm"].max() == 0  # the face has no calm class
    fitted = FusionConfig.load(weights)
    assert fitted.voice_prior == res["final_voice_prior"] and "ravdess-av --fit" in fitted.source
    assert (out / "fusion.json").exists()
    # the extracted audio and face crops, named like the clips
    assert sorted(p.stem for p in (export / "audio").glob("*.wav")) == sorted(clips["file"].str[:-4])
    crops = np.load(export / "faces" / "01-01-04-01-01-01-01.npz")
    assert crops["faces"].dtype == np.uint8 and crops["faces"].shape[1:] == (48, 48) and len(crops["t"]) > 0
    # resumable: a second run analyses nothing again and gives the same table
    assert main(["ravdess-av", "--data", str(av_dir), "--out", str(out), "--workers", "1"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["batch"]["analysed"] == 0 and again["batch"]["skipped"] == 5
    assert again["groups"]["01-04"]["face_only"] == res["groups"]["01-04"]["face_only"]
