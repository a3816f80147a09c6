"""The session summary: time per emotion, sustained stretches, disagreements; one function for all outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emotion_core.analysis import AnalysisResult, TimelineWindow
from emotion_core.constants import EMOTIONS
from emotion_core.features import window_grid
from emotion_core.session import emotion_map, owned_spans, summarize_session


def p_of(label: str, p: float = 0.8) -> np.ndarray:
    v = np.full(8, (1 - p) / 7)
    v[EMOTIONS.index(label)] = p
    return v


def timeline(labels: list[str | None], face: list[str | None] | None = None, disagree: set[int] = frozenset(),
             duration: float | None = None) -> list[TimelineWindow]:
    """One window per 2 s (4 s long); ``None`` = no answer there."""
    grid = window_grid(duration or 2.0 * len(labels) + 2.0)
    assert len(grid) == len(labels)
    face = face or labels
    return [TimelineWindow(s, e, None if lab is None else p_of(lab), None if f is None else p_of(f, 0.9),
                           2, None if lab is None else p_of(lab), "disagree" if i in disagree else "agree", [])
            for i, ((s, e), lab, f) in enumerate(zip(grid, labels, face, strict=True))]


def test_each_window_stands_for_its_own_stretch_and_shares_add_up() -> None:
    tl = timeline(["neutral"] * 6 + ["sad"] * 3 + [None])  # 22 s: windows every 2 s, the last 4 s long
    spans = owned_spans(tl)
    assert spans[0].tolist() == [0.0, 2.0] and spans[-1].tolist() == [18.0, 22.0]
    s = summarize_session(tl)
    assert s.seconds_read["fused"] == pytest.approx(18.0)  # the last window has no answer
    assert s.time_share["fused"]["neutral"] == pytest.approx(12 / 18) and s.time_share["fused"]["sad"] == pytest.approx(6 / 18)
    assert sum(s.time_share["fused"].values()) == pytest.approx(1.0)


def test_sustained_stretches_need_the_minimum_length_and_survive_a_blip_when_smoothed() -> None:
    labels = ["neutral"] * 8 + ["angry"] + ["neutral"] * 3 + ["sad"] * 2
    raw = summarize_session(timeline(labels), smoothing_s=0, min_segment_s=10)
    assert [(g.emotion, g.start, g.end) for g in raw.segments] == [("neutral", 0.0, 16.0)]  # 3 neutral after: 6 s
    smooth = summarize_session(timeline(labels), smoothing_s=8, min_segment_s=10)
    assert smooth.segments[0].emotion == "neutral" and smooth.segments[0].end >= 24.0, "the 2-s angry blip is smoothed out"
    assert all(g.seconds >= 10 for g in smooth.segments)
    assert summarize_session(timeline(labels), smoothing_s=0, min_segment_s=60).segments == []


def test_disagreements_merge_when_they_follow_each_other() -> None:
    labels = ["sad"] * 8
    face = ["sad", "happy", "happy", "sad", "sad", "happy", "sad", "sad"]
    s = summarize_session(timeline(labels, face, disagree={1, 2, 5}))
    assert [(d.start, d.end, d.face, d.voice) for d in s.disagreements] == [(2.0, 6.0, "happy", "sad"),
                                                                           (10.0, 12.0, "happy", "sad")]
    assert s.time_share["face"]["happy"] == pytest.approx(6 / 18)


def test_the_map_has_nan_where_a_branch_is_silent_and_smoothing_keeps_it_there() -> None:
    tl = timeline(["happy", None, "sad", "sad"])
    times, p = emotion_map(tl, "voice", smoothing_s=10)
    assert times.tolist() == [0.0, 2.0, 4.0, 6.0] and p.shape == (8, 4)
    assert np.isnan(p[:, 1]).all() and not np.isnan(p[:, [0, 2, 3]]).any()
    assert np.allclose(p[:, 0], (p_of("happy") + p_of("sad")) / 2)  # 0 and 4 s lie within 5 s of 0 s


def test_the_result_carries_its_summary_into_the_json() -> None:
    tl = timeline(["calm"] * 10)
    res = AnalysisResult("a.wav", "audio", 22.0, p_of("calm"), timeline=tl)
    doc = json.loads(json.dumps(res.to_dict()))
    assert doc["summary"]["time_share"]["fused"]["calm"] == 1.0
    assert doc["summary"]["segments"] == [{"emotion": "calm", "start": 0.0, "end": 22.0, "mean_probability": 0.8}]
    assert AnalysisResult("a.jpg", "image", None, p_of("happy")).to_dict()["summary"] is None
