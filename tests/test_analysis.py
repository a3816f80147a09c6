"""The analysis result navigates itself, and a baseline re-reads only the voice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import face_frame, voiced_signal, write_video

from emotion_core.analysis import AnalysisResult, Analyzer, FaceBranch, FaceFrame, TimelineWindow, VoiceBranch
from emotion_core.constants import EMOTIONS, FACE_EMOTIONS
from emotion_core.errors import MediaError
from emotion_core.inference import VoiceWindow


def p_of(label: str, p: float = 0.9) -> np.ndarray:
    v = np.full(8, (1 - p) / 7)
    v[EMOTIONS.index(label)] = p
    return v


def made_up_result() -> AnalysisResult:
    crop, inp = np.zeros((4, 4, 3), np.uint8), np.zeros((48, 48), np.float32)
    frames = [FaceFrame(0.5, p_of("happy", 0.6), 0.99, np.zeros(4), 1, crop, inp),
              FaceFrame(1.0, p_of("sad", 0.9), 0.99, np.zeros(4), 1),  # crop dropped: not kept for display
              FaceFrame(3.0, p_of("angry", 0.7), 0.99, np.zeros(4), 1, crop, inp),
              FaceFrame(5.0, p_of("fearful", 0.8), 0.99, np.zeros(4), 1, crop, inp)]
    calm_face = p_of("calm", 0.5)  # the face model never says calm: its own label comes from 7 classes
    frames.append(FaceFrame(5.5, calm_face, 0.99, np.zeros(4), 1, crop, inp))
    voice = VoiceBranch(p_of("sad"), [VoiceWindow(0.0, 4.0, 0.5, p_of("sad")), VoiceWindow(2.0, 6.0, 0.9, p_of("angry"))],
                        5.6)
    timeline = [TimelineWindow(0.0, 4.0, p_of("sad"), p_of("happy"), 2, p_of("sad"), "disagree", []),
                TimelineWindow(2.0, 6.0, p_of("angry"), p_of("angry"), 2, None, None, ["no voice"])]
    return AnalysisResult("clip.mp4", "video", 6.0, p_of("sad"), FaceBranch(p_of("happy"), frames, 12), voice,
                          "disagree", timeline=timeline)


def test_the_result_knows_its_frames_moments_and_rows() -> None:
    res = made_up_result()
    assert [f.t for f in res.kept_frames] == [0.5, 3.0, 5.0, 5.5]
    assert res.best_frame() == 2  # 5.0 s, 0.8: the most confident kept frame (1.0 s is not kept)
    assert res.best_frame(0.0, 4.0) == 1 and res.best_frame(6.5, 9.0) is None
    assert res.moment_frames() == [1, 2]
    assert res.kept_frames[3].face_label in FACE_EMOTIONS
    assert res.voice_window_at(2.0) == 1 and res.voice_window_at(1.0) is None
    assert res.main_voice_window() == 1
    rows = res.timeline_rows()
    assert [r["label"] for r in rows] == ["sad", "angry"] and rows[1]["voice_sad"] is None
    assert rows[0]["face_happy"] == pytest.approx(0.9) and rows[0]["notes"] == ""
    branch = res.branch_rows()
    assert [r["modality"] for r in branch] == ["face"] * 5 + ["voice"] * 2 and branch[-1]["end"] == 6.0


def test_with_baseline_equals_analysing_with_it_and_keeps_the_face(tmp_path: Path) -> None:
    analyzer = Analyzer()
    clip = write_video(tmp_path / "six.mp4", [face_frame(shift=(i % 5) * 4) for i in range(60)], 10,
                       voiced_signal(6.0, seed=4))
    plain = analyzer.analyze(clip, keep_audio=True)
    direct = analyzer.analyze(clip, baseline_span=(0.0, 3.0))
    reread = analyzer.with_baseline(plain, baseline_span=(0.0, 3.0))
    assert reread.face is plain.face, "the face branch is not run again"
    assert reread.to_dict() == direct.to_dict()
    assert analyzer.with_baseline(reread).to_dict() == plain.to_dict(), "no baseline: back to the plain reading"
    with pytest.raises(MediaError, match="baseline"):
        analyzer.with_baseline(plain, baseline_span=(5.0, 5.2))  # too little speech to stand for a person


def test_with_baseline_refuses_what_has_no_voice(media_dir: Path, analyzer: Analyzer) -> None:
    photo = analyzer.analyze(media_dir / "face.jpg", keep_audio=True)
    with pytest.raises(MediaError, match="no voice"):
        analyzer.with_baseline(photo, baseline_span=(0.0, 1.0))
    without_audio = analyzer.analyze(media_dir / "voice.wav")
    with pytest.raises(ValueError, match="keep_audio"):
        analyzer.with_baseline(without_audio, baseline_span=(0.0, 1.0))
