"""What a whole recording was like: time per emotion, sustained stretches, face/voice disagreements.

One function, ``summarize_session``, serves the command line (``analyze --json``'s ``summary``), the
batch tables (``recordings.parquet``), the HTML report and the app's session view, so that all four
say the same thing. It reads the analysis timeline (4-s windows every 2 s): each window stands for
the time from its start to the next window's start (the last one to its end), so the shares of a
branch add up to the time that branch could be read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from .constants import EMOTIONS


class TimelineWindow(Protocol):
    """What this module reads of a timeline window (``analysis.TimelineWindow``)."""

    start: float
    end: float
    probs: np.ndarray | None
    face: np.ndarray | None
    voice: np.ndarray | None
    agreement: str | None

Source = Literal["fused", "face", "voice"]
SOURCES: tuple[Source, ...] = ("fused", "face", "voice")
SMOOTHING_S = 8.0
"""Default span of the moving average over windows before labels are read (two 4-s windows' worth)."""
MIN_SEGMENT_S = 10.0
"""Default shortest stretch of one emotion that counts as sustained."""
SESSION_VIEW_S = 60.0
"""Recordings longer than this get the session view in the app."""


@dataclass
class Segment:
    """A stretch where one emotion held (in the smoothed fused reading)."""

    emotion: str
    start: float
    end: float
    mean_probability: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Disagreement:
    """A stretch where face and voice each confidently said something different."""

    start: float
    end: float
    face: str
    voice: str


@dataclass
class SessionSummary:
    seconds_read: dict[str, float]  # per source: the time it gave an answer
    time_share: dict[str, dict[str, float]]  # per source: emotion -> share of its answered time
    segments: list[Segment] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)
    smoothing_s: float = SMOOTHING_S
    min_segment_s: float = MIN_SEGMENT_S

    def to_dict(self) -> dict[str, Any]:
        return {"smoothing_s": self.smoothing_s, "min_segment_s": self.min_segment_s,
                "seconds_read": {k: round(v, 3) for k, v in self.seconds_read.items()},
                "time_share": {k: {e: round(p, 4) for e, p in v.items()} for k, v in self.time_share.items()},
                "segments": [asdict(s) | {"start": round(s.start, 3), "end": round(s.end, 3),
                                          "mean_probability": round(s.mean_probability, 4)} for s in self.segments],
                "disagreements": [asdict(d) | {"start": round(d.start, 3), "end": round(d.end, 3)}
                                  for d in self.disagreements]}


def owned_spans(timeline: Sequence[TimelineWindow]) -> np.ndarray:
    """(n, 2) the stretch each window stands for: from its start to the next one's, the last to its end."""
    starts = np.array([w.start for w in timeline], float)
    ends = np.append(starts[1:], timeline[-1].end) if timeline else np.zeros(0)
    return np.stack([starts, ends], 1) if timeline else np.zeros((0, 2))


def emotion_map(timeline: Sequence[TimelineWindow], source: Source = "fused", smoothing_s: float = 0.0
                ) -> tuple[np.ndarray, np.ndarray]:
    """(times, probs): the window starts and an (8, n) table of ``source``'s probabilities, NaN where it
    gave none, averaged over a centred span of ``smoothing_s`` seconds (windows without an answer skipped)."""
    attr = {"fused": "probs", "face": "face", "voice": "voice"}[source]
    times = np.array([w.start for w in timeline], float)
    p = np.full((len(timeline), len(EMOTIONS)), np.nan)
    for i, w in enumerate(timeline):
        v = getattr(w, attr)
        if v is not None:
            p[i] = v
    if smoothing_s > 0 and len(times):
        smooth = np.full_like(p, np.nan)
        for i, t in enumerate(times):
            near = (np.abs(times - t) <= smoothing_s / 2) & ~np.isnan(p[:, 0])
            if near.any() and not np.isnan(p[i, 0]):
                smooth[i] = p[near].mean(0)
        p = smooth
    return times, p.T


def summarize_session(timeline: Sequence[TimelineWindow], smoothing_s: float = SMOOTHING_S,
                      min_segment_s: float = MIN_SEGMENT_S) -> SessionSummary:
    """Time share per emotion (fused, face, voice), sustained segments of the smoothed fused reading that
    last at least ``min_segment_s``, and the moments where face and voice disagree."""
    spans = owned_spans(timeline)
    span_s = spans[:, 1] - spans[:, 0]
    read, shares = {}, {}
    for source in SOURCES:
        _, p = emotion_map(timeline, source)
        ok = ~np.isnan(p[0])
        read[source] = float(span_s[ok].sum())
        labels = p[:, ok].argmax(0)
        shares[source] = {e: (float(span_s[ok][labels == k].sum() / read[source]) if read[source] else 0.0)
                          for k, e in enumerate(EMOTIONS)}
    _, smooth = emotion_map(timeline, "fused", smoothing_s)
    segments, run = [], []

    def close_run() -> None:
        if run and spans[run[-1], 1] - spans[run[0], 0] >= min_segment_s:
            k = int(np.nanargmax(smooth[:, run[0]]))
            segments.append(Segment(EMOTIONS[k], float(spans[run[0], 0]), float(spans[run[-1], 1]),
                                    float(np.mean(smooth[k, run]))))

    for i in range(len(timeline)):
        label = None if np.isnan(smooth[0, i]) else int(np.argmax(smooth[:, i]))
        if run and (label is None or label != int(np.argmax(smooth[:, run[0]]))):
            close_run()
            run = []
        if label is not None:
            run.append(i)
    close_run()
    disagreements: list[Disagreement] = []
    for i, w in enumerate(timeline):
        if w.agreement != "disagree":
            continue
        face, voice = EMOTIONS[int(np.argmax(w.face))], EMOTIONS[int(np.argmax(w.voice))]
        last = disagreements[-1] if disagreements else None
        if last and last.end >= spans[i, 0] and (last.face, last.voice) == (face, voice):
            last.end = float(spans[i, 1])
        else:
            disagreements.append(Disagreement(float(spans[i, 0]), float(spans[i, 1]), face, voice))
    return SessionSummary(read, shares, segments, disagreements, smoothing_s, min_segment_s)
