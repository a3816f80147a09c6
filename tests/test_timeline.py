import numpy as np
import pytest

from emotion_core.analysis import Analyzer, FaceBranch, FaceFrame, VoiceBranch
from emotion_core.constants import EMOTIONS
from emotion_core.features import window_grid
from emotion_core.inference import VoiceWindow


def test_grid_covers_the_whole_recording() -> None:
    assert window_grid(2.0) == [(0.0, 2.0)]
    g = window_grid(6.0)
    assert g == [(0.0, 4.0), (2.0, 6.0)]
    g = window_grid(19.7)
    assert g[0][0] == 0 and g[-1][1] == pytest.approx(19.7) and len(g) == 9
    assert all(b[0] - a[0] <= 2.0 + 1e-9 for a, b in zip(g, g[1:], strict=False))  # overlapping, no gaps


def onehot(label: str, p: float = 0.9) -> np.ndarray:
    v = np.full(8, (1 - p) / 7)
    v[EMOTIONS.index(label)] = p
    return v


def test_timeline_fuses_moment_by_moment_and_says_what_is_missing() -> None:
    grid = window_grid(8.0)  # 0-4, 2-6, 4-8
    face_p = onehot("happy")
    face_p[1] = 0
    face_p /= face_p.sum()
    frames = [FaceFrame(t, face_p, 0.99, np.zeros(4), 1) for t in np.arange(0, 3.0, 0.2)]  # face leaves at 3 s
    voice = VoiceBranch(onehot("sad"), [VoiceWindow(2.0, 6.0, 0.8, onehot("sad")), VoiceWindow(4.0, 8.0, 0.8, onehot("sad"))],
                        6.4)
    tl = Analyzer.timeline(grid, FaceBranch(face_p, frames, 40), voice)
    assert [(w.start, w.end) for w in tl] == grid
    assert tl[0].voice is None and "no voice" in tl[0].notes and tl[0].label == "happy"
    assert tl[1].face is not None and tl[1].voice is not None and tl[1].agreement == "disagree"
    assert tl[2].face is None and "no face in view" in tl[2].notes and tl[2].label == "sad"
    assert all(abs(w.probs.sum() - 1) < 1e-9 for w in tl)


def test_nothing_in_a_window() -> None:
    tl = Analyzer.timeline([(0.0, 4.0)], None, None)
    assert tl[0].probs is None and tl[0].label is None and tl[0].notes == ["no voice"]


def test_long_videos_are_read_at_the_long_frame_rate(analyzer, media_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    import emotion_core.media as media
    from emotion_core.constants import FRAME_RATE, LONG_FRAME_RATE

    assert media.frame_rate_for(60.0) == FRAME_RATE and media.frame_rate_for(600.0) == LONG_FRAME_RATE
    assert media.frame_rate_for(600.0, chosen=5.0) == 5.0
    short = analyzer.analyze(media_dir / "talking.mp4").to_dict()["modalities"]["face"]
    assert short["frame_rate"] == FRAME_RATE and short["frames_sampled"] == 15
    monkeypatch.setattr(media, "LONG_RECORDING_S", 2.0)  # the 3-second clip now counts as long
    long = analyzer.analyze(media_dir / "talking.mp4").to_dict()["modalities"]["face"]
    assert long["frame_rate"] == LONG_FRAME_RATE and long["frames_sampled"] == 8
    assert all(np.isclose(f["t"] * LONG_FRAME_RATE, round(f["t"] * LONG_FRAME_RATE)) for f in long["frames"])
