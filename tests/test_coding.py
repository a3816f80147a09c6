"""The coding workflow (#30): ELAN and Praat files in and out, coded segments scored from one analysis."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from pympi.Elan import Eaf
from pympi.Praat import TextGrid

from emotion_core.__main__ import main
from emotion_core.analysis import AnalysisResult, FaceBranch, FaceFrame, TimelineWindow, VoiceBranch
from emotion_core.coding import check_media, emotion_of, read_coding_upload, read_labels
from emotion_core.constants import EMOTIONS
from emotion_core.features import window_grid
from emotion_core.fusion import fuse
from emotion_core.inference import VoiceWindow, pool_faces
from emotion_core.own_data import evaluate_files, evaluate_result
from emotion_core.tiers import TIER_NAMES, build_textgrid, eaf_text, result_tiers, textgrid_text

# 14 coded segments over a 40-s recording: labels as coders write them, some shorter than a voice window
SEGMENTS = [(0.0, 2.5, "happy"), (2.5, 5.0, "Sad"), (5.5, 8.0, "anger"), (8.0, 10.4, "neutral"), (11.0, 13.0, "joy"),
            (13.0, 16.2, "fear"), (16.5, 18.0, "surprise"), (18.0, 21.0, "calm"), (21.0, 24.5, "disgust"),
            (25.0, 27.0, "sadness"), (27.5, 30.0, "happy"), (30.0, 33.3, "angry"), (34.0, 36.5, "Neutral"),
            (37.0, 39.9, "sad")]


DATA = Path(__file__).parent / "data"
"""``coded.eaf`` and ``coded.TextGrid``: SEGMENTS coded by hand in each format's own shape. The .eaf is
as ELAN 6 saves it (EAF 3.0: a header with the media descriptor ./rec40.wav, time order, the coded tier
'emotion' with a participant, an empty tier 'notes', a dependent symbolic-association tier 'certainty',
linguistic types and constraints); the TextGrid as Praat saves it (long text format, the interval tier
tiling the recording with empty gaps, then a point tier 'events')."""


def elan_document(media: str = "./rec40.wav", absolute: str = "file:///nowhere/rec40.wav") -> str:
    """The hand-written .eaf, its media descriptor pointing at ``media`` (relative) and ``absolute``."""
    return (DATA / "coded.eaf").read_text().replace('RELATIVE_MEDIA_URL="./rec40.wav"', f'RELATIVE_MEDIA_URL="{media}"'
                                                    ).replace("file:///nowhere/rec40.wav", absolute)


@pytest.fixture(scope="module")
def rec40_result(analyzer, rec40: Path) -> AnalysisResult:
    return analyzer.analyze(rec40)


def test_labels_are_matched_with_their_usual_synonyms() -> None:
    assert [emotion_of(x) for x in ("Anger", " joy ", "HAPPINESS", "sadness", "fear", "surprise", "calm", "Disgusted",
                                    "neu")] == ["angry", "happy", "happy", "sad", "fearful", "surprised", "calm",
                                                "disgust", "neutral"]
    assert emotion_of("contempt") is None and emotion_of("laugh") is None


def test_a_segment_csv_is_read_with_its_mistakes_named(tmp_path: Path) -> None:
    f = tmp_path / "segments.csv"
    f.write_text("path,start,end,label,speaker\nrec.wav,0,2.5,Joy,client\nrec.wav,3,4,laugh,client\n")
    with pytest.raises(ValueError, match=r"line 3: 'laugh' is not one of the emotions.*--ignore-labels"):
        read_labels(f)
    items = read_labels(f, ignore=["LAUGH"])
    assert [(it.start, it.end, it.label, it.speaker, it.where) for it in items] == [(0.0, 2.5, "happy", "client",
                                                                                    "line 2")]
    f.write_text("path,start,end,label\nrec.wav,0,2.5,sad\nrec.wav,2.0,4,sad\n")
    with pytest.raises(ValueError, match=r"line 2 \(0-2.5 s\) and line 3 \(2-4 s\) overlap"):
        read_labels(f)
    f.write_text("path,start,end,label\nrec.wav,0,2,sad\nwhole.wav,,,happy\n")  # empty times: the whole recording
    assert [(it.path.name, it.is_segment) for it in read_labels(f)] == [("rec.wav", True), ("whole.wav", False)]
    f.write_text("path,start,end,label\nrec.wav,0,two,sad\n")
    with pytest.raises(ValueError, match="line 2: the end 'two' is not a number"):
        read_labels(f)
    f.write_text("path,start,end,label\nrec.wav,3,3,sad\n")
    with pytest.raises(ValueError, match="has no length"):
        read_labels(f)
    f.write_text("path,start,label\nrec.wav,3,sad\n")
    with pytest.raises(ValueError, match="needs both columns 'start' and 'end'"):
        read_labels(f)
    f.write_text("path,start,end,label\nrec.wav,0,2,sad\nother.wav,1,3,sad\n")  # overlap only within a recording
    assert len(read_labels(f)) == 2


def test_a_hand_written_elan_file_gives_its_tier_media_and_participant(rec40: Path, tmp_path: Path) -> None:
    eaf = rec40.parent / "coded.eaf"
    eaf.write_text(elan_document())
    with pytest.raises(ValueError, match=r"has 3 tiers \('emotion', 'notes', 'certainty'\): choose the coded one "
                                         "with --tier NAME"):
        read_labels(eaf)
    items = read_labels(eaf, tier="emotion")
    assert len(items) == 14 and {it.path for it in items} == {rec40}  # the relative media URL, found beside it
    assert [(it.start, it.end) for it in items] == [(s, e) for s, e, _ in SEGMENTS]
    assert [it.label for it in items][:3] == ["happy", "sad", "angry"] and items[0].speaker == "client"
    assert items[0].where == "annotation a1"
    with pytest.raises(ValueError, match="no tier 'Emotion'; its tiers are 'emotion', 'notes', 'certainty'"):
        read_labels(eaf, tier="Emotion")
    with pytest.raises(ValueError, match="holds no segment"):
        read_labels(eaf, tier="notes")
    certainty = tmp_path / "c.eaf"  # a dependent tier takes its parent's times; its values are not emotions
    certainty.write_text(elan_document(media=str(rec40)))
    with pytest.raises(ValueError, match=r"annotation 1 of tier 'certainty' \(0-2.5 s\): 'sure' is not one"):
        read_labels(certainty, tier="certainty")
    moved = tmp_path / "moved.eaf"  # neither URL leads to the recording: --media does
    moved.write_text(elan_document())
    with pytest.raises(ValueError, match=r"the recording it names \(./rec40.wav\) was not found; give it with --media"):
        read_labels(moved, tier="emotion")
    assert {it.path for it in read_labels(moved, tier="emotion", media=rec40)} == {rec40}
    absolute = tmp_path / "absolute.eaf"  # the absolute URL when the relative one fails
    absolute.write_text(elan_document(media="./elsewhere.wav", absolute=rec40.as_uri()))
    assert {it.path for it in read_labels(absolute, tier="emotion")} == {rec40}


def test_a_hand_written_textgrid_in_utf8_and_utf16(rec40: Path, tmp_path: Path) -> None:
    tg = tmp_path / "coded.TextGrid"
    tg.write_text((DATA / "coded.TextGrid").read_text(), encoding="utf-8")
    with pytest.raises(ValueError, match="does not name its recording; give it with --media REC"):
        read_labels(tg, tier="emotion")
    with pytest.raises(ValueError, match=r"has 2 tiers \('emotion', 'events'\)"):
        read_labels(tg, media=rec40)
    items = read_labels(tg, tier="emotion", media=rec40)
    assert [(it.start, it.end, it.label) for it in items] == [(s, e, emotion_of(x)) for s, e, x in SEGMENTS]
    assert items[2].where == "interval 4 of tier 'emotion'"  # the empty intervals (5-5.5 s) are gaps, not segments
    tg.write_text((DATA / "coded.TextGrid").read_text(), encoding="utf-16")  # Praat's choice when a label is not ASCII
    assert [it.label for it in read_labels(tg, tier="emotion", media=rec40)] == [it.label for it in items]
    with pytest.raises(ValueError, match="'events' is a point tier"):
        read_labels(tg, tier="events", media=rec40)


@pytest.mark.parametrize("damage", ["truncated", "not xml", "no tiers", "beyond", "missing media", "overlap"])
def test_bad_coding_files_get_one_line_and_status_2(rec40: Path, tmp_path: Path, damage: str,
                                                    capsys: pytest.CaptureFixture) -> None:
    text = elan_document(media=str(rec40))
    if damage == "truncated":
        text = text[: len(text) // 2]
    elif damage == "not xml":
        text = "ELAN? no.\n"
    elif damage == "no tiers":
        text = re.sub(r"<TIER .*?(/>|</TIER>)", "", text, flags=re.S)
    elif damage == "beyond":
        text = text.replace('TIME_VALUE="39900"', 'TIME_VALUE="45000"')
    elif damage == "missing media":
        text = elan_document(media="./gone.wav")
    elif damage == "overlap":
        text = text.replace('TIME_SLOT_ID="ts2" TIME_VALUE="2500"', 'TIME_SLOT_ID="ts2" TIME_VALUE="3000"')
    f = tmp_path / "bad.eaf"
    f.write_text(text)
    assert main(["evaluate", "data", "--labels", str(f), "--tier", "emotion"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: bad.eaf") and "Traceback" not in err, err
    words = {"truncated": "not a readable ELAN file", "not xml": "not a readable ELAN file",
             "no tiers": "the file has no tiers", "beyond": "lies beyond the end of rec40.wav (40.000 s)",
             "missing media": "(./gone.wav) was not found", "overlap": "annotation a1 (0-3 s) and annotation a2"}
    assert words[damage] in err, err


def test_fourteen_segments_in_elan_and_csv_give_the_same_report(rec40: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    """The done-when: ELAN with 14 coded segments over a 40-s recording = the same segments as a CSV."""
    eaf = rec40.parent / "coded.eaf"
    eaf.write_text(elan_document())
    csv = tmp_path / "segments.csv"
    csv.write_text("path,start,end,label,speaker\n" + "".join(f"{rec40},{s},{e},{x},client\n" for s, e, x in SEGMENTS))
    assert main(["evaluate", "data", "--labels", str(eaf), "--tier", "emotion", "--json"]) == 0
    from_elan = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "data", "--labels", str(csv), "--json", "--out", str(tmp_path / "out")]) == 0
    from_csv = json.loads(capsys.readouterr().out)
    assert from_elan["n"] == from_csv["n"] == 14 and from_elan["accuracy"] == from_csv["accuracy"]
    assert from_elan == from_csv
    assert from_elan["per_speaker"] == {"client": {"n": 14, "accuracy": from_elan["accuracy"]}}
    rows = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert rows[0].startswith("path,speaker,start,end,where,label,modality,predicted") and len(rows) == 15
    from sklearn.metrics import cohen_kappa_score

    table = [r.split(",") for r in rows[1:]]
    assert from_csv["kappa"] == pytest.approx(cohen_kappa_score([r[5] for r in table], [r[7] for r in table]))
    assert "14 coded segments scored" in (tmp_path / "out" / "report.html").read_text()


def test_a_segment_is_read_from_the_one_analysis_as_the_timeline_is(analyzer, rec40: Path,
                                                                    rec40_result: AnalysisResult) -> None:
    """Segment scoring equals analysing the same span: over the whole recording it is the clip's reading;
    over a stretch it is the overlapping voice windows weighted by overlap, recomputed here from the JSON."""
    res = rec40_result
    whole = res.reading_between(0.0, res.duration)
    np.testing.assert_allclose(whole.voice, res.voice.probs, atol=1e-12)
    np.testing.assert_allclose(whole.probs, res.probs, atol=1e-12)
    doc = res.to_dict()
    for start, end in [(5.5, 8.0), (16.5, 18.0), (0.0, 40.0), (33.0, 33.4)]:
        w = [(v["start"], v["end"], np.array([v["probs"][e] for e in EMOTIONS])) for v in
             doc["modalities"]["voice"]["windows"]]
        act = {round(v.start, 3): v.activity for v in res.voice.windows}
        weights = np.array([max(0.0, min(end, e) - max(start, s)) / (e - s) * act[s] for s, e, _ in w])
        expected = (weights[:, None] * np.stack([p for *_, p in w])).sum(0) / weights.sum()
        got = res.reading_between(start, end)
        np.testing.assert_allclose(got.voice, expected, atol=1e-6)
        np.testing.assert_allclose(got.probs, got.voice, atol=1e-12)  # audio only: fused = voice
    items = read_labels_from_rows(rec40, [(0.0, 40.0, "sad"), (5.5, 8.0, "angry")])
    report = evaluate_files(analyzer, items, "voice", segment_voice="windows")
    np.testing.assert_allclose(report.items[0].probs, res.voice.probs, atol=1e-12)
    np.testing.assert_allclose(report.items[1].probs, res.reading_between(5.5, 8.0).voice, atol=1e-12)


def test_a_segments_own_voice_is_the_span_analysed_as_a_clip(analyzer, rec40: Path, tmp_path: Path) -> None:
    """The default ('span'): a segment's voice equals analysing that stretch of the recording cut out as a file."""
    import soundfile as sf

    from emotion_core.media import load_audio, probe

    spans = [(5.5, 8.0, "angry"), (16.5, 18.0, "surprise"), (21.0, 24.5, "disgust"), (30.0, 39.9, "sad")]
    report = evaluate_files(analyzer, read_labels_from_rows(rec40, spans), "voice")
    audio = load_audio(probe(rec40))
    for (s, e, _), scored in zip(spans, report.items, strict=True):
        cut = tmp_path / f"cut_{s}.wav"
        sf.write(cut, audio[round(s * 16_000): round(e * 16_000)], 16_000, subtype="FLOAT")
        alone = analyzer.analyze(cut)
        np.testing.assert_allclose(scored.probs, alone.voice.probs, atol=1e-5)
    windows = evaluate_files(analyzer, read_labels_from_rows(rec40, spans), "voice", segment_voice="windows")
    assert any(not np.allclose(a.probs, b.probs, atol=1e-3) for a, b in zip(report.items, windows.items, strict=True))
    assert main(["evaluate", "data", "--labels", str(rec40.parent / "rows.csv"), "--segment-voice", "windows"]) == 0


def read_labels_from_rows(path: Path, rows: list[tuple[float, float, str]]) -> list:
    csv = path.parent / "rows.csv"
    csv.write_text("path,start,end,label,speaker\n" + "".join(f"{path.name},{s},{e},{x},coder{k}\n"
                                                             for k, (s, e, x) in enumerate(rows)))
    return read_labels(csv)


def test_face_frames_inside_a_segment_are_pooled_and_fused_like_the_timeline() -> None:
    rng = np.random.default_rng(0)
    frames = [FaceFrame(t, p, 0.99, np.zeros(4), 1) for t, p in zip(np.arange(0, 10, 0.2),
                                                                     rng.dirichlet(np.ones(8), 50), strict=True)]
    for f in frames:
        f.probs[1] = 0.0
        f.probs /= f.probs.sum()
    windows = [VoiceWindow(s, e, 0.8, rng.dirichlet(np.ones(8))) for s, e in window_grid(10.0)]
    res = AnalysisResult("x.mp4", "video", 10.0, face=FaceBranch(np.full(8, 1 / 8), frames, 50, 5.0),
                         voice=VoiceBranch(np.full(8, 1 / 8), windows, 8.0))
    got = res.reading_between(2.0, 5.0)
    inside = [f for f in frames if 2.0 <= f.t < 5.0]
    fp = pool_faces(np.stack([f.probs for f in inside]), np.array([f.det_prob for f in inside]))
    assert got.face_frames == len(inside) == 15
    np.testing.assert_allclose(got.face, fp)
    np.testing.assert_allclose(got.probs, fuse(fp, got.voice, 15, got.voiced_seconds, res.voice_prior).probs)
    assert got.voiced_seconds == pytest.approx(0.8 * (2 + 3 + 1))  # windows 0-4, 2-6, 4-8 overlap 2, 3 and 1 s


def test_analyze_eaf_voice_tier_equals_the_json_windows(rec40: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "exports" / "rec40.eaf"
    assert main(["analyze", str(rec40), "--json", "--eaf", str(out), "--textgrid", str(tmp_path / "rec40.TextGrid")]) == 0
    doc = json.loads(capsys.readouterr().out)
    eaf = Eaf(str(out))
    assert set(eaf.get_tier_names()) == set(TIER_NAMES)  # 40 s: no session tiers
    voice = sorted(eaf.get_annotation_data_for_tier("voice"))
    windows = doc["modalities"]["voice"]["windows"]
    assert len(voice) == len(windows) > 10
    for (s, e, value), w in zip(voice, windows, strict=True):
        assert abs(s - 1000 * w["start"]) <= 1 and abs(e - 1000 * w["end"]) <= 1
        label, conf = value.split()
        assert label == max(w["probs"], key=w["probs"].get) and float(conf) == pytest.approx(max(w["probs"].values()),
                                                                                             abs=0.005)
    fused = sorted(eaf.get_annotation_data_for_tier("fused"))
    assert [(s / 1000, e / 1000) for s, e, _ in fused] == [(w["start"], w["end"]) for w in doc["timeline"]
                                                           if w["label"] is not None]
    media = eaf.media_descriptors[0]
    assert media["MEDIA_URL"] == rec40.resolve().as_uri() and media["MIME_TYPE"] == "audio/x-wav"
    assert (out.parent / media["RELATIVE_MEDIA_URL"]).resolve() == rec40.resolve()
    assert int(dict(eaf.properties)["lastUsedAnnotation"]) == eaf.maxaid  # ELAN's next annotation gets a new id
    grid = TextGrid(str(tmp_path / "rec40.TextGrid"))
    assert [t.name for t in grid.get_tiers()] == list(TIER_NAMES) and grid.xmax == pytest.approx(40.0)
    starts = [s for s, _, _ in grid.get_tier("voice").get_intervals(sort=True)]
    assert starts == [w["start"] for w in windows]  # each window's interval ends where the next one starts
    for tier in grid.get_tiers():  # a Praat tier never overlaps
        iv = sorted(tier.get_intervals())
        assert all(a[1] <= b[0] + 1e-9 for a, b in zip(iv, iv[1:], strict=False))


def test_an_exported_tier_reads_back_as_a_coding(rec40_result: AnalysisResult, rec40: Path, tmp_path: Path) -> None:
    """Round trip through pympi: our 'sustained' and 'face'-like tiers (label confidence) read back as segments,
    so a researcher can start from the model's tier, correct it in ELAN and score it."""
    rt = result_tiers(rec40_result)
    rt.tiers["corrected"] = [(0, 2500, "happy 0.71"), (2500, 5000, "sad 0.40"), (6000, 9000, "Anger")]
    path = tmp_path / "mine.eaf"
    path.write_text(eaf_text(rt, path))
    items = read_labels(path, tier="corrected")
    assert [(it.start, it.end, it.label, it.path) for it in items] == [(0.0, 2.5, "happy", rec40.resolve()),
                                                                       (2.5, 5.0, "sad", rec40.resolve()),
                                                                       (6.0, 9.0, "angry", rec40.resolve())]
    with pytest.raises(ValueError, match="overlap"):  # the window tiers overlap: not a coding
        read_labels(path, tier="voice")


def long_result(seconds: float = 600.0, fps: float = 2.5) -> AnalysisResult:
    """A 10-minute session's result as the analysis builds it (face frames, voice windows, timeline): its
    probabilities drift from happy to sad and face and voice part ways in the middle."""
    rng = np.random.default_rng(1)

    def probs(k: int, sure: float = 0.7) -> np.ndarray:
        p = rng.dirichlet(np.ones(8)) * (1 - sure)
        p[k] += sure
        return p

    frames = [FaceFrame(float(t), probs(2 if t < 300 else 3), 0.99, np.zeros(4), 1) for t in np.arange(0, seconds, 1 / fps)]
    windows = [VoiceWindow(s, e, 0.9, probs(2 if s < 200 or s > 400 else 4)) for s, e in window_grid(seconds)]
    timeline = []
    for s, e in window_grid(seconds):
        inside = [f for f in frames if s <= f.t < e]
        fp = pool_faces(np.stack([f.probs for f in inside]), np.array([f.det_prob for f in inside]))
        vw = next(w for w in windows if w.start == s)
        fz = fuse(fp, vw.probs, len(inside), 3.6)
        timeline.append(TimelineWindow(s, e, fz.probs, fp, len(inside), vw.probs, fz.agreement, []))
    return AnalysisResult("/data/session10.mp4", "video", seconds, np.full(8, 1 / 8),
                          FaceBranch(np.full(8, 1 / 8), frames, len(frames), fps),
                          VoiceBranch(np.full(8, 1 / 8), windows, 500.0), timeline=timeline)


def test_a_ten_minute_session_exported_to_eaf_opens_with_every_tier(tmp_path: Path) -> None:
    res = long_result()
    rt = result_tiers(res)
    path = tmp_path / "session10.eaf"
    path.write_text(eaf_text(rt, path))
    eaf = Eaf(str(path))
    assert set(eaf.get_tier_names()) == {"fused", "face", "voice", "agreement", "sustained", "disagreement"}
    assert len(eaf.get_annotation_data_for_tier("face")) == 1500 and len(eaf.get_annotation_data_for_tier("voice")) == 299
    summary = res.summary()
    assert [(s / 1000, e / 1000, v) for s, e, v in sorted(eaf.get_annotation_data_for_tier("sustained"))] == \
        [(round(g.start, 3), round(g.end, 3), f"{g.emotion} {g.mean_probability:.2f}") for g in summary.segments]
    assert len(summary.segments) >= 2 and summary.disagreements
    disagree = [v for *_, v in sorted(eaf.get_annotation_data_for_tier("disagreement"))]
    assert disagree == [f"face {d.face} / voice {d.voice}" for d in summary.disagreements]
    assert {"face happy / voice angry", "face sad / voice angry"} <= set(disagree)
    face = sorted(eaf.get_annotation_data_for_tier("face"))
    assert face[0][:2] == (0, 400) and all(a[1] <= b[0] for a, b in zip(face, face[1:], strict=False))
    (tmp_path / "session10.TextGrid").write_text(textgrid_text(rt), encoding="utf-8")
    grid = TextGrid(str(tmp_path / "session10.TextGrid"))
    assert [t.name for t in grid.get_tiers()] == ["fused", "face", "voice", "agreement", "sustained", "disagreement"]
    assert build_textgrid(rt).xmax == 600.0


def test_a_still_image_has_no_tiers(analyzer, media_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["analyze", str(media_dir / "face.jpg"), "--eaf", str(tmp_path / "face.eaf")]) == 0
    assert "still image" in capsys.readouterr().err and not (tmp_path / "face.eaf").exists()
    with pytest.raises(ValueError, match="only a video or audio recording"):
        result_tiers(analyzer.analyze(media_dir / "face.jpg"))


def test_batch_writes_one_annotation_file_per_recording(media_dir: Path, rec40: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for src in (rec40, media_dir / "talking.mp4", media_dir / "face.jpg"):
        (inputs / src.name).write_bytes(src.read_bytes())
    assert main(["batch", str(inputs), "--out", str(tmp_path / "out"), "--workers", "1", "--eaf"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["annotation_files"] == {".eaf": 2}
    eaf = Eaf(str(tmp_path / "out" / "elan" / "talking.eaf"))
    assert set(eaf.get_tier_names()) == set(TIER_NAMES) and eaf.get_annotation_data_for_tier("face")
    assert eaf.media_descriptors[0]["RELATIVE_MEDIA_URL"] == "../../in/talking.mp4"  # from RESULTS/elan/
    # a re-run only writes the files asked for, from the parts (nothing is analysed again)
    assert main(["batch", str(inputs), "--out", str(tmp_path / "out"), "--workers", "1", "--textgrid"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["analysed"] == 0 and stats["annotation_files"] == {".TextGrid": 2}
    assert (tmp_path / "out" / "praat" / "rec40.TextGrid").exists()


def test_adapt_fits_a_profile_from_an_elan_coding(rec40: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    eaf = rec40.parent / "coded.eaf"
    eaf.write_text(elan_document())
    out = tmp_path / "client.profile"
    assert main(["adapt", "--labels", str(eaf), "--tier", "emotion", "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert sum(doc["clips"].values()) == 14 and doc["labels_file"] == "coded.eaf"


def test_a_coding_upload_for_one_recording(rec40: Path, rec40_result: AnalysisResult) -> None:
    """The Analyse page's coding row: bytes in, segments of the uploaded recording out, scored by tier."""
    data = elan_document().encode()
    items, tiers = read_coding_upload("coded.eaf", data, "my session.wav", 40.0)
    assert items == [] and tiers == ["emotion", "notes", "certainty"]  # the user chooses the tier first
    items, _ = read_coding_upload("coded.eaf", data, "my session.wav", 40.0, tier="emotion")
    assert len(items) == 14 and {it.path.name for it in items} == {"my session.wav"}
    report = evaluate_result(rec40_result, items, "voice").to_dict()
    assert report["n"] == 14
    csv = b"path,start,end,label\nother.wav,0,1,sad\nmy session.wav,1,3,joy\n"
    items, tiers = read_coding_upload("coding.csv", csv, "my session.wav", 40.0)
    assert [(it.start, it.label) for it in items] == [(1.0, "happy")] and tiers == []
    with pytest.raises(ValueError, match=r"beyond the end of my session\.wav"):
        read_coding_upload("coded.eaf", data, "my session.wav", 20.0, tier="emotion")
    with pytest.raises(ValueError, match=r"coding\.txt: a coding file is an ELAN \.eaf"):
        read_coding_upload("coding.txt", b"x", "my session.wav", 40.0)
    with pytest.raises(ValueError, match="not a readable Praat TextGrid"):
        read_coding_upload("coded.TextGrid", b"File type = \"ooTextFile\"\n", "my session.wav", 40.0)


def test_check_media_names_a_missing_recording(tmp_path: Path) -> None:
    f = tmp_path / "segments.csv"
    f.write_text("path,start,end,label\ngone.wav,0,2,sad\n")
    with pytest.raises(ValueError, match=r"segments\.csv: gone\.wav: the file does not exist"):
        check_media(read_labels(f), f.name)
