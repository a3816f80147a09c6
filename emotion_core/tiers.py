"""Our reading of a recording as annotation tiers, written for ELAN (.eaf) and Praat (.TextGrid).

Researchers code sessions in ELAN or Praat; these files put the model's reading beside their coding
in the tool they already use. ``result_tiers`` lays an analysis out once (times in integer
milliseconds, the JSON's times rounded to 1 ms); ``eaf_text`` and ``textgrid_text`` only write it.
The formats are written and read by ``pympi-ling`` (``pympi``), never by hand.

Tiers (each annotation's value is ``label confidence``, e.g. ``happy 0.78``):

* ``fused``, ``agreement``: one annotation per timeline window (4 s, a new one every 2 s);
* ``voice``: one per voice window, exactly the JSON's ``modalities.voice.windows``;
* ``face``: one per sampled frame, from the frame to the next one (1 / frame rate);
* ``sustained``, ``disagreement``: the session summary's stretches (recordings over ``SESSION_VIEW_S``).

ELAN keeps overlapping annotations on a tier (it opens and saves them, though its editor would not
make them), so the windows are written as they are. A Praat interval tier cannot overlap: there each
window's annotation ends where the next one starts, the stretch the session summary counts it for.
"""

from __future__ import annotations

import mimetypes
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pympi.Elan import Eaf
from pympi.Elan import to_string as eaf_to_string
from pympi.Praat import TextGrid

from .constants import EMOTIONS
from .session import SESSION_VIEW_S

TIER_NAMES = ("fused", "face", "voice", "agreement")
SESSION_TIERS = ("sustained", "disagreement")
Interval = tuple[int, int, str]
"""(start ms, end ms, value)."""
MIME_FALLBACK = {"video": "video/*", "audio": "audio/*"}


def ms(t: float) -> int:
    """Seconds -> integer milliseconds (the JSON's times are rounded to 1 ms)."""
    return int(round(t * 1000))


def reading(p: np.ndarray) -> str:
    """An annotation value: the top emotion and its probability, e.g. ``happy 0.78``."""
    k = int(np.argmax(p))
    return f"{EMOTIONS[k]} {float(p[k]):.2f}"


@dataclass
class ResultTiers:
    """What one analysis becomes in an annotation file: the tiers, the recording's length and its path."""

    tiers: dict[str, list[Interval]]
    duration_ms: int
    media: str

    def to_dict(self) -> dict[str, Any]:
        return {"tiers": {k: [list(v) for v in iv] for k, iv in self.tiers.items()}, "duration_ms": self.duration_ms,
                "media": self.media}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResultTiers:
        return cls({k: [(int(a), int(b), str(v)) for a, b, v in iv] for k, iv in d["tiers"].items()},
                   int(d["duration_ms"]), str(d["media"]))


def result_tiers(res: Any) -> ResultTiers:
    """The tiers of an ``analysis.AnalysisResult`` of a video or audio recording (ValueError for a still
    image or a failed analysis: they have no time line)."""
    if res.error is not None or res.kind == "image" or not res.duration:
        raise ValueError(f"{Path(res.file).name}: only a video or audio recording can be written as annotation tiers.")
    end = ms(res.duration)
    tiers: dict[str, list[Interval]] = {name: [] for name in TIER_NAMES}
    for w in res.timeline:
        if w.probs is not None:
            tiers["fused"].append((ms(w.start), ms(w.end), reading(w.probs)))
        if w.agreement is not None:
            tiers["agreement"].append((ms(w.start), ms(w.end), w.agreement))
    tiers["voice"] = [(ms(w.start), ms(w.end), reading(w.probs)) for w in res.voice_windows]
    if res.face is not None:
        step = 1.0 / float(res.face.frame_rate or 1.0)
        frames = res.face.frames
        for i, f in enumerate(frames):
            stop = min(f.t + step, frames[i + 1].t if i + 1 < len(frames) else res.duration, res.duration)
            if ms(stop) > ms(f.t):
                tiers["face"].append((ms(f.t), ms(stop), reading(f.probs)))
    if res.duration > SESSION_VIEW_S and (summary := res.summary()) is not None:
        tiers["sustained"] = [(ms(s.start), ms(s.end), f"{s.emotion} {s.mean_probability:.2f}") for s in summary.segments]
        tiers["disagreement"] = [(ms(d.start), ms(d.end), f"face {d.face} / voice {d.voice}")
                                 for d in summary.disagreements]
    return ResultTiers(tiers, end, str(res.file))


def media_urls(media: str | Path, annotation_file: str | Path | None) -> tuple[str, str]:
    """ELAN's absolute media URL and the one relative to the annotation file's folder (just the name
    when that folder is not known, as for a download)."""
    media = Path(media)
    if annotation_file is None:  # a download: the recording is wherever the user keeps it, ELAN asks if not beside
        return f"./{media.name}", f"./{media.name}"
    rel = os.path.relpath(media.resolve(), Path(annotation_file).resolve().parent)
    return media.resolve().as_uri(), "./" + Path(rel).as_posix() if not rel.startswith("..") else Path(rel).as_posix()


def build_eaf(rt: ResultTiers, annotation_file: str | Path | None = None) -> Eaf:
    """An ELAN document linked to the recording, one tier per entry of ``rt.tiers``."""
    eaf = Eaf(author="emotion_core")
    eaf.remove_tier("default")
    url, rel = media_urls(rt.media, annotation_file)
    kind = (mimetypes.guess_type(rt.media)[0] or "").split("/")[0]
    mime = mimetypes.guess_type(rt.media)[0] or MIME_FALLBACK.get(kind, "unknown")
    eaf.add_linked_file(url, relpath=rel, mimetype="audio/x-wav" if mime in ("audio/wav", "audio/x-wav") else mime)
    for name, intervals in rt.tiers.items():
        eaf.add_tier(name, ling="default-lt")
        for s, e, v in intervals:
            eaf.add_annotation(name, s, e, v)
    # ELAN numbers the annotations a user adds after this one: it must not reuse ours
    eaf.properties = [(k, v) for k, v in eaf.properties if k != "lastUsedAnnotation"]
    eaf.properties.append(("lastUsedAnnotation", eaf.maxaid))
    return eaf


def eaf_text(rt: ResultTiers, annotation_file: str | Path | None = None) -> str:
    """The .eaf document (XML text); ``annotation_file``: where it will be saved, for the relative media URL."""
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + eaf_to_string(build_eaf(rt, annotation_file))


def build_textgrid(rt: ResultTiers) -> TextGrid:
    """A Praat TextGrid over the recording, one interval tier per entry of ``rt.tiers``; overlapping
    annotations end where the next one starts (a Praat tier cannot overlap)."""
    xmax = rt.duration_ms / 1000
    tg = TextGrid(xmax=xmax)
    for name, intervals in rt.tiers.items():
        tier = tg.add_tier(name)
        ordered = sorted(intervals)
        for i, (s, e, v) in enumerate(ordered):
            if i + 1 < len(ordered):
                e = min(e, ordered[i + 1][0])
            if e > s:
                tier.add_interval(s / 1000, min(e / 1000, xmax), v, check=False)
    return tg


def textgrid_text(rt: ResultTiers, tmp_dir: str | None = None) -> str:
    """The .TextGrid file (Praat's long text format, UTF-8). pympi writes to a path only: the text passes
    through a temporary file in ``tmp_dir`` (memory-backed storage in the app), deleted at once."""
    with tempfile.TemporaryDirectory(prefix="emotion-tg-", dir=tmp_dir) as d:
        path = Path(d) / "out.TextGrid"
        build_textgrid(rt).to_file(str(path), codec="utf-8")
        return path.read_text(encoding="utf-8")


def write_annotations(res_tiers: ResultTiers, out: str | Path) -> Path:
    """``out`` as ELAN (.eaf) or Praat (.TextGrid, by its suffix); returns the path written."""
    out = Path(out)
    text = textgrid_text(res_tiers) if out.suffix.lower() == ".textgrid" else eaf_text(res_tiers, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
