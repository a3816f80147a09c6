"""One clip -> one typed result: decode, detect faces, run both models, fuse.

``Analyzer.analyze`` is the single analysis path used by the command line, the app and the batch
runner. Each result depends on its input alone, and knows how to navigate itself (kept frames,
the best frame of a moment, table rows), so that the pages and report writers only lay out.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import dataclasses
import logging
import warnings as _warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .baseline import VoiceBaseline, voice_baseline
from .constants import EMOTIONS, FACE_EMOTIONS, MIRROR_TTA_MAX_FRAMES, SAMPLE_RATE, SILENCE_DBFS
from .devices import batching_for, exact_on, module_device, resolve_device
from .errors import MediaError
from .faces import FaceDetector, FaceObservation, crop_settings, face_input_from_crop
from .familiarity import UNFAMILIAR_MESSAGE, FamiliarityReading, face_summary
from .features import frame_dbfs, voice_windows, window_grid
from .fusion import VOICE_PRIOR, fuse
from .inference import FACE_INDEX, VoiceWindow, pool_faces, pool_voice, read_faces, read_voice
from .media import (
    Frame,
    Limits,
    MediaInfo,
    check_frame_rate,
    frame_rate_for,
    iter_frames,
    load_audio,
    load_image,
    prefetch,
    probe,
)
from .profile import VoiceProfile, profiled_model
from .registry import Models, load_models
from .session import MIN_SEGMENT_S, SMOOTHING_S, SessionSummary, summarize_session

log = logging.getLogger(__name__)

TRIM_EVERY_FRAMES = 100
"""While streaming a long video, freed heap is handed back to the OS this often (see release_memory)."""


def release_memory() -> None:
    """Hand freed heap back to the OS (glibc keeps it in its arenas otherwise): the detector's and
    the encoders' temporary tensors would else pile up as resident memory in a long analysis or a
    long-lived server. A no-op off glibc."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


Progress = Callable[[float, str], None]
"""``progress(fraction of the analysis done, stage in words)``."""
FACE_SHARE_OF_WORK = 0.85
"""Share of a video's analysis time the face stage takes (decoding, detection, the face model): how
far the progress bar goes while frames stream in (benchmarks/bench_device.py --profile)."""
STAGES = {"face": "finding and reading the face", "voice": "listening to the voice", "done": "fusing face and voice"}

MAX_KEPT_CROPS = 120
"""Colour face crops kept per clip for display (Grad-CAM); the rest are dropped after use."""


NO_ANSWER = "neither a face nor a voice could be analysed; no emotion is given."
VOICE_STAGE = ("voice:", "baseline:", NO_ANSWER)
"""Warnings that the voice stage writes (the start of each): re-reading the voice replaces them."""


def probs_dict(p: np.ndarray) -> dict[str, float]:
    return {e: float(v) for e, v in zip(EMOTIONS, p, strict=True)}


def prob_columns(p: np.ndarray | None, prefix: str = "") -> dict[str, float | None]:
    """One table column per emotion (``{prefix}{emotion}``), None where the branch gave no answer."""
    return {f"{prefix}{e}": (None if p is None else float(p[i])) for i, e in enumerate(EMOTIONS)}


@dataclass
class FaceFrame:
    t: float
    probs: np.ndarray
    det_prob: float
    box: np.ndarray
    n_faces: int
    crop_rgb: np.ndarray | None = None
    face_input: np.ndarray | None = None
    crop_landmarks: np.ndarray | None = None
    """(5, 2) MTCNN landmarks in ``crop_rgb``'s pixels: region shares follow the face (None: not detected)."""

    def landmarks_at(self, side: int) -> np.ndarray | None:
        """The landmarks in the pixels of a ``side``-pixel map of the same crop (a CAM), or None."""
        if self.crop_landmarks is None or self.crop_rgb is None:
            return None
        return self.crop_landmarks * (side / self.crop_rgb.shape[0])

    @property
    def face_label(self) -> str:
        """What the face model says here, among its seven classes."""
        return FACE_EMOTIONS[int(np.argmax(self.probs[FACE_INDEX]))]


@dataclass
class FaceBranch:
    probs: np.ndarray
    frames: list[FaceFrame]
    frames_sampled: int
    frame_rate: float | None = None  # frames read per second (None for a still image)
    familiarity: dict[str, Any] | None = None  # how unlike the faces it knows they are (familiarity.face_summary)

    @property
    def frames_used(self) -> int:
        return len(self.frames)


@dataclass
class VoiceBranch:
    probs: np.ndarray
    windows: list[VoiceWindow]
    voiced_seconds: float
    familiarity: FamiliarityReading | None = None  # how unlike the training data the voice is (familiarity.py)


@dataclass
class TimelineWindow:
    """One moment of the recording: what the face, the voice and their fusion say there."""

    start: float
    end: float
    probs: np.ndarray | None
    face: np.ndarray | None
    face_frames: int
    voice: np.ndarray | None
    agreement: str | None
    notes: list[str]

    @property
    def label(self) -> str | None:
        return None if self.probs is None else EMOTIONS[int(np.argmax(self.probs))]

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "label": self.label,
                "probs": None if self.probs is None else probs_dict(self.probs),
                "face": None if self.face is None else {"probs": probs_dict(self.face), "frames_used": self.face_frames},
                "voice": None if self.voice is None else {"probs": probs_dict(self.voice)},
                "agreement": self.agreement, "notes": self.notes}


@dataclass
class SpanReading:
    """What the face, the voice and their fusion say over one stretch of a recording (a coded segment)."""

    start: float
    end: float
    probs: np.ndarray | None
    face: np.ndarray | None
    voice: np.ndarray | None
    face_frames: int
    voiced_seconds: float
    agreement: str | None


def overlap_weights(windows: list[VoiceWindow], start: float, end: float) -> np.ndarray:
    """Each voice window's weight over ``start``-``end``: its voiced share times the part of it inside the span
    (1 for a window wholly inside, so a span over the whole recording weighs them as the recording does)."""
    inside = np.array([max(0.0, min(end, w.end) - max(start, w.start)) / max(w.end - w.start, 1e-9) for w in windows])
    return inside * np.array([w.activity for w in windows])


@dataclass
class AnalysisResult:
    file: str
    kind: str | None = None
    duration: float | None = None
    probs: np.ndarray | None = None
    face: FaceBranch | None = None
    voice: VoiceBranch | None = None
    agreement: str | None = None
    weights: dict[str, float] = field(default_factory=dict)
    timeline: list[TimelineWindow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    untrained: bool = False
    baseline: VoiceBaseline | None = None
    profile: dict[str, Any] | None = None  # the profile the voice was read with (what it was fitted on)
    audio: np.ndarray | None = None  # kept in memory only, for explanations; never serialised
    voice_prior: float = VOICE_PRIOR  # the fusion's voice prior this result was fused with

    @property
    def label(self) -> str | None:
        return None if self.probs is None else EMOTIONS[int(np.argmax(self.probs))]

    # -- navigation: what the pages and report writers show -----------------------------------
    @property
    def kept_frames(self) -> list[FaceFrame]:
        """The face frames whose colour crop was kept for display (Grad-CAM), in time order."""
        return [f for f in self.face.frames if f.crop_rgb is not None] if self.face else []

    @property
    def voice_windows(self) -> list[VoiceWindow]:
        return self.voice.windows if self.voice else []

    def best_frame(self, start: float | None = None, end: float | None = None) -> int | None:
        """Index in ``kept_frames`` of the most confident kept frame between ``start`` and ``end``
        (seconds, inclusive; the whole recording by default); None when no kept frame is there."""
        kept = self.kept_frames
        inside = [j for j, f in enumerate(kept) if (start is None or f.t >= start) and (end is None or f.t <= end)]
        return max(inside, key=lambda j: kept[j].probs.max()) if inside else None

    def moment_frames(self) -> list[int]:
        """The most confident kept frame of each timeline window (each once; one for an image):
        the frames worth explaining."""
        picks = [self.best_frame(w.start, w.end) for w in self.timeline] if self.timeline else [self.best_frame()]
        return sorted({j for j in picks if j is not None})

    def voice_window_at(self, start: float) -> int | None:
        """Index of the voice window that starts at ``start`` (a timeline window's start), if voiced."""
        return next((j for j, v in enumerate(self.voice_windows) if abs(v.start - start) < 1e-3), None)

    def main_voice_window(self, start: float | None = None, end: float | None = None) -> int | None:
        """Index of the voice window with the most voiced speech (starting between ``start`` and ``end``,
        seconds, if given): the one worth explaining; None when no window is there."""
        ws = self.voice_windows
        inside = [j for j, w in enumerate(ws) if (start is None or w.start >= start) and (end is None or w.start <= end)]
        return max(inside, key=lambda j: (ws[j].end - ws[j].start) * ws[j].activity) if inside else None

    def reading_between(self, start: float, end: float, voice: VoiceBranch | bool | None = True) -> SpanReading:
        """The reading over ``start``-``end`` seconds from this analysis: the voice windows overlapping it
        weighted by their overlap (``overlap_weights``), the face frames inside it pooled as a clip's are,
        and the two fused as the timeline fuses them. Over the whole recording it is the clip's reading.
        ``voice``: a voice branch read from exactly this span's audio instead (``Analyzer.span_voice``), or
        None when that span has no voice."""
        frames = [f for f in (self.face.frames if self.face else []) if start <= f.t < end]
        fp = pool_faces(np.stack([f.probs for f in frames]), np.array([f.det_prob for f in frames])) if frames else None
        if voice is True:
            windows = self.voice_windows
            w = overlap_weights(windows, start, end) if windows else np.zeros(0)
            vp = pool_voice(windows, weights=w) if w.sum() > 0 else None
            voiced = float(sum(max(0.0, min(end, v.end) - max(start, v.start)) * v.activity for v in windows))
        else:
            vp, voiced = (None, 0.0) if not isinstance(voice, VoiceBranch) else (voice.probs, voice.voiced_seconds)
        if fp is None and vp is None:
            return SpanReading(start, end, None, None, None, 0, 0.0, None)
        fused = fuse(fp, vp, len(frames), voiced if vp is not None else 0.0, self.voice_prior)
        return SpanReading(start, end, fused.probs, fp, vp, len(frames), voiced, fused.agreement)

    def summary(self, smoothing_s: float = SMOOTHING_S, min_segment_s: float = MIN_SEGMENT_S) -> SessionSummary | None:
        """The session summary of the timeline (time per emotion, sustained segments, disagreements);
        None for a still image."""
        return summarize_session(self.timeline, smoothing_s, min_segment_s) if self.timeline else None

    def timeline_rows(self) -> list[dict[str, Any]]:
        """One table row per timeline window: fused, face and voice probabilities side by side."""
        rows = []
        for w in self.timeline:
            row = {"file": self.file, "start": w.start, "end": w.end, "label": w.label, "agreement": w.agreement,
                   "face_frames": w.face_frames, "notes": "; ".join(w.notes)}
            for prefix, p in (("", w.probs), ("face_", w.face), ("voice_", w.voice)):
                row |= prob_columns(p, prefix)
            rows.append(row)
        return rows

    def branch_rows(self) -> list[dict[str, Any]]:
        """One table row per face frame and per voice window, with each branch's probabilities."""
        rows = [{"modality": "face", "t": f.t, **prob_columns(f.probs)} for f in (self.face.frames if self.face else [])]
        rows += [{"modality": "voice", "t": w.start, "end": w.end, **prob_columns(w.probs)} for w in self.voice_windows]
        return rows

    def to_dict(self) -> dict[str, Any]:
        """The command-line JSON contract (see README)."""
        face = voice = None
        if self.face is not None:
            face = {"probs": probs_dict(self.face.probs), "frames_used": self.face.frames_used,
                    "frames_sampled": self.face.frames_sampled, "frame_rate": self.face.frame_rate,
                    "familiarity": self.face.familiarity,
                    "frames": [{"t": round(f.t, 3), "probs": probs_dict(f.probs),
                                "box": [round(float(v), 1) for v in f.box]} for f in self.face.frames]}
        if self.voice is not None:
            voice = {"probs": probs_dict(self.voice.probs), "voiced_seconds": round(self.voice.voiced_seconds, 2),
                     "familiarity": None if self.voice.familiarity is None else self.voice.familiarity.to_dict(),
                     "windows": [{"start": round(w.start, 3), "end": round(w.end, 3), "probs": probs_dict(w.probs)}
                                 for w in self.voice.windows]}
        d: dict[str, Any] = {
            "file": self.file,
            "label": self.label,
            "probs": None if self.probs is None else probs_dict(self.probs),
            "modalities": {"face": face, "voice": voice},
            "agreement": self.agreement,
            "timeline": [w.to_dict() for w in self.timeline],
            "summary": None if (summary := self.summary()) is None else summary.to_dict(),
            "warnings": list(self.warnings),
            "error": self.error,
        }
        if self.untrained:
            d["untrained"] = True
        if self.baseline is not None:  # absent on the plain path, so its output is unchanged
            d["baseline"] = self.baseline.to_dict()
        if self.profile is not None:
            d["profile"] = self.profile
        return d


class Analyzer:
    """Holds the loaded models and the face detector; analyses one input at a time."""

    def __init__(self, models: Models | None = None, limits: Limits = Limits(), detector: FaceDetector | None = None,
                 frame_rate: float | None = None, device: torch.device | str | None = None):
        """``frame_rate``: video frames read per second; None chooses by length (``media.frame_rate_for``:
        5, or 2.5 for videos over two minutes, where the face branch's cost dominates).
        ``device``: where the networks run (``devices.resolve_device``: auto, cpu, cuda); with ``models``
        given and no device, theirs. DeviceError when the device is not there."""
        if frame_rate is not None:
            check_frame_rate(frame_rate)
        self.device = exact_on(module_device(models.voice.model) if device is None and models is not None
                               else resolve_device(device))
        self.batching = batching_for(self.device)
        self.models = models or load_models(device=self.device)
        self.limits = limits
        self.detector = detector or FaceDetector(device=self.device, **crop_settings(self.models.face.meta))
        self.frame_rate = frame_rate
        self.profile: VoiceProfile | None = None
        self.voice_model = self.models.voice  # the shipped voice model, or it with a profile

    def with_profile(self, profile: VoiceProfile | None) -> Analyzer:
        """This analyser reading voices through ``profile`` (None: the shipped model); the models, the
        detector and the settings are shared, nothing is loaded again. MediaError when the profile
        belongs to another version of the voice model."""
        out = copy.copy(self)
        out.profile = profile
        out.voice_model = self.models.voice if profile is None else profiled_model(self.models.voice, profile)
        return out

    # -- branches --------------------------------------------------------------------------
    def voice_branch(self, audio: np.ndarray | None, warnings: list[str], kind: str,
                     grid: list[tuple[float, float]] | None = None, baseline: VoiceBaseline | None = None,
                     progress: Callable[[float], None] | None = None) -> VoiceBranch | None:
        if audio is None:
            warnings.append("voice: the file has no audio track." if kind == "video" else
                            "voice: a still image has no voice.")
            return None
        if len(audio) < SAMPLE_RATE * 0.5:
            warnings.append("voice: the audio is shorter than half a second; too short to judge the voice.")
            return None
        if frame_dbfs(audio).max() < SILENCE_DBFS:
            warnings.append("voice: the audio track is silent; no voice to analyse.")
            return None
        windows = voice_windows(audio, grid)
        if not windows:
            warnings.append("voice: no stretch of at least half a second of voice was found.")
            return None
        vws, familiarity = read_voice(self.voice_model, audio, windows, batch_size=self.batching.voice,
                                      baseline=None if baseline is None else baseline.features, progress=progress)
        voiced = float(sum((w.end - w.start) * w.activity for w in vws))
        if familiarity is not None and familiarity.unfamiliar:
            warnings.append(f"voice: {UNFAMILIAR_MESSAGE}")
        return VoiceBranch(pool_voice(vws), vws, voiced, familiarity)

    def face_branch(self, observations: Iterable[tuple[float, FaceObservation | None]], warnings: list[str],
                    duration: float = 0.0, progress: Callable[[float], None] | None = None) -> FaceBranch | None:
        """Classify the main face of each observation as they stream in.

        Only small 48x48 inputs are held for every frame; colour crops (for Grad-CAM) are kept for
        at most MAX_KEPT_CROPS frames spread over the clip, so a long video stays small in memory.
        """
        spacing = duration / MAX_KEPT_CROPS if duration > 0 else 0.0
        next_keep, sampled = -1.0, 0
        seen: list[FaceObservation] = []
        for t, o in observations:
            sampled += 1
            if sampled % TRIM_EVERY_FRAMES == 0:
                release_memory()
            if progress is not None and duration > 0:
                progress(min(1.0, t / duration))
            if o is None:
                continue
            if o.t >= next_keep:
                next_keep = o.t + spacing
            else:
                o.crop_rgb = None
            seen.append(o)
        if sampled == 0:
            return None
        if not seen:
            warnings.append("face: no face was found." if sampled <= 1 else
                            f"face: no face was found in any of the {sampled} sampled frames.")
            return None
        reading = read_faces(self.models.face, np.stack([o.face_input for o in seen]), batch_size=self.batching.face,
                             flip_tta=len(seen) <= MIRROR_TTA_MAX_FRAMES)
        probs = reading.probs
        familiarity = None if reading.unfamiliarity is None else face_summary(reading.unfamiliarity)
        if familiarity is not None and familiarity["unfamiliar"]:
            warnings.append(f"face: {familiarity['message']}")
        frames = [FaceFrame(o.t, p, o.prob, o.box, o.n_faces, o.crop_rgb,
                            o.face_input if o.crop_rgb is not None else None,
                            o.crop_landmarks if o.crop_rgb is not None else None)
                  for o, p in zip(seen, probs, strict=True)]
        if sampled > 1 and len(seen) < 0.5 * sampled:
            warnings.append(f"face: a face was found in only {len(seen)} of {sampled} sampled frames.")
        if max(o.n_faces for o in seen) > 1:
            warnings.append("face: more than one face is in view; the largest, followed through the clip, is analysed.")
        return FaceBranch(pool_faces(probs, np.array([o.prob for o in seen])), frames, sampled,
                          familiarity=familiarity)

    def span_voice(self, res: AnalysisResult, start: float, end: float) -> VoiceBranch | None:
        """The voice of ``start``-``end`` seconds of an analysed recording read on its own, as a clip of
        that length would be (``res`` from ``analyze(..., keep_audio=True)``); None without voice there."""
        if res.audio is None:
            return None
        part = res.audio[int(round(start * SAMPLE_RATE)): int(round(end * SAMPLE_RATE))]
        return self.voice_branch(part, [], res.kind or "audio")

    # -- personal baseline -------------------------------------------------------------------
    def load_baseline(self, paths: str | Path | list[str | Path], display_names: list[str] | None = None
                      ) -> VoiceBaseline:
        """A person's voice baseline from one or more recordings of them (audio, or a video's audio).

        Raises MediaError with a human message when a file cannot serve as a baseline."""
        paths = [paths] if isinstance(paths, str | Path) else list(paths)
        parts = []
        for k, path in enumerate(paths):
            info = probe(Path(path), self.limits)
            audio = load_audio(info) if info.kind != "image" else None
            parts.append(voice_baseline(self.models.voice.model, audio,
                                        display_names[k] if display_names else Path(path).name, check=False))
        return VoiceBaseline.combine(parts).checked()

    # -- whole inputs ----------------------------------------------------------------------
    def analyze(self, path: str | Path, crop_is_face: bool = False, keep_audio: bool = False,
                display_name: str | None = None, progress: Progress | None = None,
                baseline: VoiceBaseline | None = None, baseline_span: tuple[float, float] | None = None
                ) -> AnalysisResult:
        """Analyse one file; never raises for bad input (the result's ``error`` says why).

        ``progress(fraction, stage)`` is called as the work goes on: the fraction of the whole analysis
        done (the face stage of a video is most of it) and what is being done, in words.
        ``baseline`` (from ``load_baseline``) or ``baseline_span`` (start and end, in seconds, of a
        stretch of this recording that shows the person's usual way of speaking) make the voice
        branch read each window relative to that person; without them the plain path runs.
        """
        path = Path(path)
        res = AnalysisResult(file=display_name or str(path), untrained=self.models.untrained, baseline=baseline,
                             profile=None if self.profile is None else self.profile.to_dict())
        if res.untrained:
            res.warnings.append("UNTRAINED MODEL: no trained weights are installed; these numbers are not predictions.")
        try:
            info = probe(path, self.limits)
            res.kind, res.duration = info.kind, info.duration
            with _warnings.catch_warnings():
                _warnings.simplefilter("ignore")
                self._run(info, res, crop_is_face, keep_audio, progress, baseline_span)
        except MediaError as e:
            res.error = str(e)
        except MemoryError:
            res.error = f"{path.name}: the file is too large to analyse on this machine."
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:  # a bug or an input we did not foresee: a message, never a traceback
            log.debug("analysis of %s failed", path, exc_info=True)
            res.error = (f"{Path(res.file).name}: the analysis failed unexpectedly ({type(e).__name__}). The file may "
                         "use an unusual encoding; converting it to mp4 (H.264) or wav usually helps.")
        return res

    @staticmethod
    def timeline(grid: list[tuple[float, float]], face: FaceBranch | None, voice: VoiceBranch | None,
                 voice_prior: float = VOICE_PRIOR) -> list[TimelineWindow]:
        """Fuse face frames and voice windows moment by moment over the overlapping window grid."""
        by_start = {round(w.start, 3): w for w in voice.windows} if voice else {}
        out = []
        for k, (s, e) in enumerate(grid):
            last = k == len(grid) - 1
            frames = [f for f in (face.frames if face else []) if s <= f.t < e or (last and f.t == e)]
            fp = pool_faces(np.stack([f.probs for f in frames]), np.array([f.det_prob for f in frames])) \
                if frames else None
            vw = by_start.get(round(s, 3))
            notes = []
            if face is not None and not frames:
                notes.append("no face in view")
            if vw is None:
                notes.append("no voice")
            if fp is None and vw is None:
                out.append(TimelineWindow(s, e, None, None, 0, None, None, notes))
                continue
            fused = fuse(fp, None if vw is None else vw.probs, len(frames),
                         0.0 if vw is None else (vw.end - vw.start) * vw.activity, voice_prior)
            out.append(TimelineWindow(s, e, fused.probs, fp, len(frames), None if vw is None else vw.probs,
                                      fused.agreement, notes))
        return out

    def with_baseline(self, res: AnalysisResult, baseline: VoiceBaseline | None = None,
                      baseline_span: tuple[float, float] | None = None) -> AnalysisResult:
        """``res`` with its voice read again relative to a personal baseline (or without one when
        neither is given), through this analyser's profile if it has one: only the voice branch, the
        timeline and the fusion run again, since the face depends on neither. ``res`` must come from
        ``analyze(..., keep_audio=True)``. Raises MediaError (a human message) when the baseline cannot serve."""
        if res.error is not None:
            raise ValueError("a failed analysis has no voice to read again")
        if res.audio is None:
            if res.voice is not None:
                raise ValueError("analyse with keep_audio=True to read the voice again")
            raise MediaError(f"baseline: {Path(res.file).name} has no voice to read relative to a baseline.")
        out = dataclasses.replace(res, warnings=[w for w in res.warnings if not w.startswith(VOICE_STAGE)],
                                  baseline=baseline, voice=None, timeline=[], probs=None, agreement=None, weights={},
                                  profile=None if self.profile is None else self.profile.to_dict())
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            self._listen(out, res.audio, baseline_span)
        return out

    def _run(self, info: MediaInfo, res: AnalysisResult, crop_is_face: bool, keep_audio: bool,
             progress: Progress | None = None, span: tuple[float, float] | None = None) -> None:
        report = progress or (lambda fraction, stage: None)
        face_part = FACE_SHARE_OF_WORK if info.kind == "video" else 0.0
        report(0.0, STAGES["face"] if face_part else STAGES["voice"])
        audio = self._see(info, res, crop_is_face, lambda f: report(face_part * f, STAGES["face"]))
        self._listen(res, audio, span, lambda f: report(face_part + (0.99 - face_part) * f, STAGES["voice"]))
        report(1.0, STAGES["done"])
        if keep_audio:
            res.audio = audio

    def _see(self, info: MediaInfo, res: AnalysisResult, crop_is_face: bool,
             progress: Callable[[float], None] | None = None) -> np.ndarray | None:
        """Decode the input and run the face branch; returns the audio (None for an image or no track)."""
        if info.kind == "image":
            img = load_image(info)
            if crop_is_face:
                crop = np.asarray(img)
                obs = FaceObservation(0.0, np.array([0, 0, img.shape[1], img.shape[0]], float), np.zeros((5, 2)),
                                      1.0, 1, crop, face_input_from_crop(crop))
                observations = [(0.0, obs)]
            else:
                observations = [(0.0, o) for _, o in self.detector.track([Frame(0.0, img)])]
            res.face = self.face_branch(observations, res.warnings)
            return None
        if not info.has_video:
            audio = load_audio(info)
            if audio is None:
                raise MediaError(f"{info.path.name}: the audio could not be decoded.")
            return audio
        # on a GPU the audio is decoded in a thread while the frames stream through detection
        with ThreadPoolExecutor(1) if self.batching.prefetch else contextlib.nullcontext() as pool:
            pending = pool.submit(load_audio, info) if pool is not None else None
            audio = load_audio(info) if pending is None else None
            fps = frame_rate_for(info.duration, self.frame_rate)
            frames = prefetch(iter_frames(info, fps), self.batching.prefetch)
            observations = ((fr.t, o) for fr, o in self.detector.track(frames, self.batching.detect))
            res.face = self.face_branch(observations, res.warnings, float(info.duration or 0), progress)
            audio = pending.result() if pending is not None else audio
        if res.face is not None:
            res.face.frame_rate = fps
        if res.face is None and not any(w.startswith("face:") for w in res.warnings):
            raise MediaError(f"{info.path.name}: no video frame could be decoded; the file may be damaged.")
        return audio

    def _listen(self, res: AnalysisResult, audio: np.ndarray | None, span: tuple[float, float] | None,
                progress: Callable[[float], None] | None = None) -> None:
        """The voice stage: the baseline from a stretch (if asked), the voice branch, the timeline, fusion."""
        if span is not None:
            s, e = span
            if audio is None or not 0 <= s < e:
                raise MediaError(f"baseline: the stretch {s:g}-{e:g} s cannot serve; it needs the recording's audio "
                                 "and an end after its start.")
            res.baseline = voice_baseline(self.models.voice.model, audio[int(s * SAMPLE_RATE): int(e * SAMPLE_RATE)],
                                          f"{Path(res.file).name} {s:g}-{e:g} s")
        grid = window_grid(float(res.duration or 0.0)) if res.kind != "image" else None
        if res.baseline is not None and res.baseline.warning:
            res.warnings.append(res.baseline.warning)
        release_memory()
        res.voice = self.voice_branch(audio, res.warnings, res.kind, grid, res.baseline, progress)
        release_memory()
        res.voice_prior = self.models.fusion.voice_prior
        if grid:
            res.timeline = self.timeline(grid, res.face, res.voice, self.models.fusion.voice_prior)
        if res.face is None and res.voice is None:
            res.warnings.append(NO_ANSWER)
            return
        fused = fuse(None if res.face is None else res.face.probs, None if res.voice is None else res.voice.probs,
                     0 if res.face is None else res.face.frames_used,
                     0.0 if res.voice is None else res.voice.voiced_seconds, self.models.fusion.voice_prior)
        res.probs, res.agreement = fused.probs, fused.agreement
        res.weights = {"face": fused.face_weight, "voice": fused.voice_weight}
