"""Command-line option parsing shared by the commands (analyze, batch, explain and the trainers)."""

from __future__ import annotations

import argparse
import dataclasses

from .constants import FRAME_RATE, LONG_FRAME_RATE, LONG_RECORDING_S
from .media import check_frame_rate
from .own_data import SEGMENT_VOICE


def parse_span(text: str) -> tuple[float, float]:
    """'START:END' in seconds (e.g. '0:30') -> (start, end)."""
    try:
        start, end = (float(v) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"--baseline-span wants START:END in seconds, e.g. 0:30, not {text!r}") from None
    if not 0 <= start < end:
        raise ValueError(f"--baseline-span {text}: the end must come after the start")
    return start, end


def frame_rate(text: str) -> float:
    """argparse type of ``--frame-rate``: a number within the accepted range."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of frames per second") from None
    try:
        return check_frame_rate(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_frame_rate_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frame-rate", type=frame_rate, default=None, metavar="FPS",
                        help=f"video frames read per second (default {FRAME_RATE:g}, or {LONG_FRAME_RATE:g} for videos "
                        f"over {LONG_RECORDING_S:g} s, where it halves the face branch's cost)")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", metavar="{auto,cpu,cuda}",
                        help="where the networks run: auto (a CUDA GPU when PyTorch sees one, else the CPU), cpu, "
                        "cuda or cuda:N")


def _typed(default: object, value: str) -> object:
    if isinstance(default, bool):
        if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
            raise SystemExit(f"--set: {value!r} is not true or false")
        return value.lower() in {"true", "1", "yes"}
    if isinstance(default, tuple):
        return tuple(map(float, value.split(",")))
    return type(default)(value)


def parse_overrides(pairs: list[str] | None, *targets: type) -> list[dict]:
    """``--set key=value`` strings -> one dict of typed values per target dataclass (by field name);
    a key that names no field of any target is refused (SystemExit with the reason)."""
    out: list[dict] = [{} for _ in targets]
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set {pair}: expected KEY=VALUE")
        for d, cls in zip(out, targets, strict=True):
            if key in {f.name for f in dataclasses.fields(cls)}:
                try:
                    d[key] = _typed(getattr(cls(), key), value)
                except ValueError:
                    raise SystemExit(f"--set {key}: {value!r} is not a valid value") from None
                break
        else:
            known = sorted({f.name for cls in targets for f in dataclasses.fields(cls)})
            raise SystemExit(f"--set {key}: unknown setting (known: {', '.join(known)})")
    return out


def add_profile_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", metavar="FILE", help="read voices through this profile (made by `adapt` or the "
                   "app's 'Your data' page)")


def add_coding_arguments(p: argparse.ArgumentParser) -> None:
    """``--labels`` and what picks the coding inside it (``evaluate data`` and ``adapt``)."""
    p.add_argument("--labels", required=True, metavar="FILE",
                   help="the coding: a CSV with path,label[,speaker] (whole recordings) or path,start,end,label[,speaker] "
                   "(segments, seconds; paths relative to the CSV), an ELAN .eaf or a Praat .TextGrid file")
    p.add_argument("--tier", metavar="NAME", help="the coded tier of an .eaf or .TextGrid (default: its only tier)")
    p.add_argument("--media", metavar="REC", help="the recording an .eaf or .TextGrid codes (default for .eaf: the one "
                   "it names, relative URL first)")
    p.add_argument("--ignore-labels", metavar="X,Y", default="", help="coded labels to skip (case-insensitive), e.g. "
                   "'laugh,unclear'; any other label that is not an emotion is an error")
    p.add_argument("--segment-voice", choices=SEGMENT_VOICE, default=SEGMENT_VOICE[0],
                   help="a coded segment's voice: 'span' (default), exactly the segment's audio read as a clip; "
                   "'windows', the analysis's 4-s windows overlapping it, weighted by overlap, as the timeline shows "
                   "it (a code shorter than a window then also hears its neighbours)")


def add_export_arguments(p: argparse.ArgumentParser, folder: bool) -> None:
    """``--eaf`` / ``--textgrid``: the reading as ELAN or Praat tiers (a file, or one per recording in a folder)."""
    if folder:
        p.add_argument("--eaf", action="store_true", help="also write one ELAN file per recording (RESULTS/elan/)")
        p.add_argument("--textgrid", action="store_true", help="also write one Praat TextGrid per recording "
                       "(RESULTS/praat/)")
        return
    p.add_argument("--eaf", metavar="OUT.eaf", help="also write the reading as ELAN tiers linked to the recording "
                   "(several inputs: a folder, one NAME.eaf each)")
    p.add_argument("--textgrid", metavar="OUT.TextGrid", help="also write the reading as Praat tiers (several inputs: "
                   "a folder, one NAME.TextGrid each)")
