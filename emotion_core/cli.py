"""Command line of the runtime: ``python -m emotion_core {analyze,explain,batch} ...``.

Also installed as ``emotion-core``. The training and evaluation commands (``train``, ``evaluate``,
``tables``, ``ravdess-av``) belong to ``emotion_core.training``; ``python -m emotion_core`` hands
them over (see ``__main__``), so analysing a clip never loads the training side.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from .analysis import Analyzer
from .batch import add_parser as add_batch_parser
from .coding import LabelledFile, check_media, parse_ignored, read_labels
from .constants import EMOTIONS, MAX_DURATION_S, MAX_FILE_MB
from .devices import DeviceError
from .errors import MediaError
from .explain import CAM_METHODS, FACE_MAP_METHOD, LIME_SAMPLES
from .explain_report import explain_file
from .media import Limits, expand_inputs
from .options import (
    add_coding_arguments,
    add_device_argument,
    add_export_arguments,
    add_frame_rate_argument,
    add_profile_argument,
    parse_span,
)
from .own_data import MODALITIES, adapt, evaluate_files, write_outputs
from .profile import VoiceProfile
from .tiers import result_tiers, write_annotations

TRAINING_COMMANDS = ("train", "evaluate", "tables", "ravdess-av")
RUNTIME_EVALUATIONS = ("data",)
"""``evaluate data`` (a user's own labelled recordings) is a runtime command; other ``evaluate`` targets train-side."""
"""Subcommands of ``emotion_core.training.cli``, reachable through ``python -m emotion_core`` too."""


def with_profile(analyzer: Analyzer, path: str | None) -> Analyzer:
    """The analyser reading voices through the profile at ``path`` (MediaError with a human message)."""
    return analyzer if not path else analyzer.with_profile(VoiceProfile.load(path))


def cmd_analyze(args: argparse.Namespace) -> int:
    inputs = expand_inputs(args.paths)
    analyzer = Analyzer(limits=Limits(max_file_mb=args.max_mb, max_duration_s=args.max_duration),
                        frame_rate=args.frame_rate, device=args.device)
    baseline = span = None
    try:
        analyzer = with_profile(analyzer, args.profile)
        if args.baseline:
            baseline = analyzer.load_baseline(args.baseline)
        if args.baseline_span:
            span = parse_span(args.baseline_span)
    except (MediaError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    targets = {}
    for flag, suffix in (("eaf", ".eaf"), ("textgrid", ".TextGrid")):
        if (out := getattr(args, flag)) is not None:
            if len(inputs) > 1 and Path(out).suffix.lower() == suffix.lower():
                print(f"error: --{flag} {out}: with several inputs, give a folder (one file per recording).",
                      file=sys.stderr)
                return 2
            targets[suffix] = Path(out)
    status = 0
    rows: list[dict] = []
    for path in inputs:
        with tqdm(total=100, desc=path.name, unit="%", leave=False, file=sys.stderr,
                  disable=not sys.stderr.isatty()) as bar:
            res = analyzer.analyze(path, crop_is_face=args.crop_is_face, baseline=baseline, baseline_span=span,
                                   progress=lambda f, stage, bar=bar: bar.update(int(f * 100) - bar.n))
        rows += res.timeline_rows()
        if res.error:
            status = 2
        for suffix, out in targets.items():
            if res.error is None and res.kind != "image":
                write_annotations(result_tiers(res), out if len(inputs) == 1 else out / f"{path.stem}{suffix}")
            elif res.kind == "image":
                print(f"  note: {path.name} is a still image; it has no time line to write as tiers.", file=sys.stderr)
        if args.json:
            print(json.dumps(res.to_dict()), flush=True)
        else:
            conf = f" ({res.probs.max():.0%})" if res.probs is not None else ""
            print(f"{path}: {res.error or res.label}{conf}", flush=True)
            for w in res.warnings:
                print(f"  warning: {w}", flush=True)
    if args.csv:
        pd.DataFrame(rows).to_csv(args.csv, index=False)
    return status


def cmd_explain(args: argparse.Namespace) -> int:
    doc = explain_file(Analyzer(device=args.device), args.path, args.out, args.target, args.all_classes, args.method,
                       args.samples)
    if doc["error"]:
        print(f"{args.path}: {doc['error']}", file=sys.stderr)
        return 2
    print(json.dumps({k: doc[k] for k in ("file", "label", "warnings")}))
    return 0


def coded_items(args: argparse.Namespace) -> list[LabelledFile]:
    """The coded items ``--labels`` (with ``--tier``, ``--media``, ``--ignore-labels``) names, their recordings
    checked (they exist and the segments lie within them); ValueError with one line otherwise."""
    items = read_labels(args.labels, tier=args.tier, media=args.media, ignore=parse_ignored(args.ignore_labels))
    check_media(items, Path(args.labels).name)
    return items


def cmd_evaluate_data(args: argparse.Namespace) -> int:
    try:
        items = coded_items(args)
        analyzer = with_profile(Analyzer(frame_rate=args.frame_rate, device=args.device), args.profile)
    except (MediaError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with tqdm(total=len(items), desc="evaluate", unit="file", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
        report = evaluate_files(analyzer, items, args.modality, lambda i, n, name: bar.update(i - bar.n),
                                args.segment_voice)
    doc = report.to_dict()
    if args.out:
        write_outputs(report, Path(args.out))
    if args.json:
        print(json.dumps(doc))
    else:
        acc = "–" if doc["accuracy"] is None else f"{doc['accuracy']:.1%}"
        unit = "segments" if any(it.is_segment for it in items) else "files"
        print(f"{doc['n']} {unit} scored, accuracy {acc} among {', '.join(doc['classes'])}; "
              f"{len(doc['failed'])} could not be scored")
    return 0 if doc["n"] else 2


def cmd_adapt(args: argparse.Namespace) -> int:
    try:
        items = coded_items(args)
        analyzer = Analyzer(device=args.device)
        with tqdm(total=len(items), desc="adapt", unit="file", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
            profile, failed = adapt(analyzer, items, Path(args.out).stem, Path(args.labels).name,
                                    lambda i, n, name: bar.update(i - bar.n), args.segment_voice)
    except (MediaError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    profile.save(args.out)
    for f in failed:
        print(f"  skipped: {f.reason}", file=sys.stderr)
    print(json.dumps({"profile": str(args.out), **profile.to_dict()}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="emotion_core", description="Emotion recognition from face and voice.",
                                epilog="Training and evaluation: python -m emotion_core {train,evaluate,tables,"
                                "ravdess-av} --help (the emotion_core.training package).")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze", help="analyse video, audio or image files")
    a.add_argument("paths", nargs="+", help="files or folders (every media file under a folder)")
    a.add_argument("--json", action="store_true", help="one JSON object per input, one per line")
    a.add_argument("--crop-is-face", action="store_true", help="images are already-cropped faces")
    a.add_argument("--csv", metavar="FILE", help="also write the timelines (one row per window) to this CSV file")
    add_export_arguments(a, folder=False)
    a.add_argument("--baseline", metavar="FILE", nargs="+", help="one or more recordings of the same person speaking "
                   "in their usual way; the voice is then read relative to them")
    a.add_argument("--baseline-span", metavar="START:END", help="use this stretch of each input (seconds) as the "
                   "person's baseline instead")
    add_profile_argument(a)
    add_frame_rate_argument(a)
    add_device_argument(a)
    a.add_argument("--max-mb", type=float, default=MAX_FILE_MB, help="largest file accepted (MB)")
    a.add_argument("--max-duration", type=float, default=MAX_DURATION_S, help="longest recording (s)")
    a.set_defaults(func=cmd_analyze)

    e = sub.add_parser("explain", help="Grad-CAM overlays, LIME panels and explanation.json for one input")
    e.add_argument("path")
    e.add_argument("--out", required=True, help="folder for the PNG files and explanation.json")
    e.add_argument("--target", choices=EMOTIONS, help="emotion to explain (default: each branch's prediction)")
    e.add_argument("--all-classes", action="store_true", help="one panel per emotion")
    e.add_argument("--method", choices=CAM_METHODS, default=FACE_MAP_METHOD)
    e.add_argument("--samples", type=int, default=LIME_SAMPLES, help="LIME perturbations (default: the app's)")
    add_device_argument(e)
    e.set_defaults(func=cmd_explain)

    ev = sub.add_parser("evaluate", help="evaluate data: score the model on your own labelled recordings")
    ev.add_argument("what", choices=["data"], help="'data' (the training evaluations: python -m emotion_core.training)")
    add_coding_arguments(ev)
    ev.add_argument("--modality", choices=MODALITIES, help="default: voice for audio, fused for video, face for images")
    ev.add_argument("--json", action="store_true", help="print the report as one JSON object")
    ev.add_argument("--out", metavar="DIR", help="also write predictions.csv and report.html here")
    add_profile_argument(ev)
    add_frame_rate_argument(ev)
    add_device_argument(ev)
    ev.set_defaults(func=cmd_evaluate_data)

    ad = sub.add_parser("adapt", help="fit a voice profile on your own labelled recordings")
    add_coding_arguments(ad)
    ad.add_argument("--out", required=True, metavar="PROFILE", help="the profile file to write (e.g. clinic.profile)")
    ad.add_argument("--modality", choices=["voice"], default="voice", help="what is adapted (the voice only)")
    add_device_argument(ad)
    ad.set_defaults(func=cmd_adapt)

    add_batch_parser(sub)
    return p


def setup() -> None:
    """Quiet, human output for a command-line run: log lines on stderr, no library warnings."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    warnings.filterwarnings("ignore")


def main(argv: list[str] | None = None) -> int:
    setup()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DeviceError as e:  # e.g. --device cuda on a machine without a GPU
        print(f"error: {e}", file=sys.stderr)
        return 2
