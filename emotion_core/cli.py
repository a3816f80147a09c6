"""Command line: ``python -m emotion_core {analyze,explain,tables,batch,ravdess-av,train,evaluate} ...``.

Also installed as ``emotion-core``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .constants import MAX_DURATION_S, MAX_FILE_MB

if TYPE_CHECKING:
    from .analysis import AnalysisResult


def expand_inputs(paths: list[str]) -> list[Path]:
    """Files as given, directories replaced by every media file under them (sorted)."""
    from .media import is_media_file

    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and is_media_file(f))
        else:
            out.append(p)
    return out


def cmd_analyze(args: argparse.Namespace) -> int:
    from .analysis import Analyzer
    from .errors import MediaError
    from .media import Limits

    inputs = expand_inputs(args.paths)
    analyzer = Analyzer(limits=Limits(max_file_mb=args.max_mb, max_duration_s=args.max_duration),
                        frame_rate=args.frame_rate)
    baseline = span = None
    try:
        if args.baseline:
            baseline = analyzer.load_baseline(args.baseline)
        if args.baseline_span:
            span = parse_span(args.baseline_span)
    except (MediaError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    status = 0
    rows: list[dict] = []
    from tqdm import tqdm

    for path in inputs:
        with tqdm(total=100, desc=path.name, unit="%", leave=False, file=sys.stderr,
                  disable=not sys.stderr.isatty()) as bar:
            res = analyzer.analyze(path, crop_is_face=args.crop_is_face, baseline=baseline, baseline_span=span,
                                   progress=lambda f, bar=bar: bar.update(int(f * 100) - bar.n))
        rows += timeline_rows(res)
        if res.error:
            status = 2
        if args.json:
            print(json.dumps(res.to_dict()), flush=True)
        else:
            conf = f" ({res.probs.max():.0%})" if res.probs is not None else ""
            print(f"{path}: {res.error or res.label}{conf}", flush=True)
            for w in res.warnings:
                print(f"  warning: {w}", flush=True)
    if args.csv:
        import pandas as pd

        pd.DataFrame(rows).to_csv(args.csv, index=False)
    return status


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
    from .media import check_frame_rate

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of frames per second") from None
    try:
        return check_frame_rate(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_frame_rate_argument(parser: argparse.ArgumentParser) -> None:
    from .constants import FRAME_RATE, LONG_FRAME_RATE, LONG_RECORDING_S

    parser.add_argument("--frame-rate", type=frame_rate, default=None, metavar="FPS",
                        help=f"video frames read per second (default {FRAME_RATE:g}, or {LONG_FRAME_RATE:g} for videos "
                        f"over {LONG_RECORDING_S:g} s, where it halves the face branch's cost)")


def timeline_rows(res: AnalysisResult) -> list[dict]:
    """One table row per timeline window: fused, face and voice probabilities side by side."""
    from .constants import EMOTIONS

    rows = []
    for w in res.timeline:
        row = {"file": res.file, "start": w.start, "end": w.end, "label": w.label, "agreement": w.agreement,
               "face_frames": w.face_frames, "notes": "; ".join(w.notes)}
        for prefix, p in (("", w.probs), ("face_", w.face), ("voice_", w.voice)):
            row |= {f"{prefix}{e}": (None if p is None else float(p[i])) for i, e in enumerate(EMOTIONS)}
        rows.append(row)
    return rows


def cmd_train(args: argparse.Namespace) -> int:
    from importlib import import_module

    name = {"fusion": ".evaluate_fusion", "voice-probe": ".probe"}.get(args.what, f".train_{args.what}")
    module = import_module(name, __package__)
    return module.evaluate(args) if args.evaluate_only else module.main(args)


def cmd_explain(args: argparse.Namespace) -> int:
    from .analysis import Analyzer
    from .explain_report import explain_file

    doc = explain_file(Analyzer(), args.path, args.out, args.target, args.all_classes, args.method, args.samples)
    if doc["error"]:
        print(f"{args.path}: {doc['error']}", file=sys.stderr)
        return 2
    print(json.dumps({k: doc[k] for k in ("file", "label", "warnings")}))
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    from .explain_report import write_tables

    res = write_tables(args.data, args.reports or Path(__file__).resolve().parent.parent / "reports", args.quick)
    print(json.dumps(res["faithfulness"], indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="emotion_core", description="Emotion recognition from face and voice.")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze", help="analyse video, audio or image files")
    a.add_argument("paths", nargs="+", help="files or folders (every media file under a folder)")
    a.add_argument("--json", action="store_true", help="one JSON object per input, one per line")
    a.add_argument("--crop-is-face", action="store_true", help="images are already-cropped faces")
    a.add_argument("--csv", metavar="FILE", help="also write the timelines (one row per window) to this CSV file")
    a.add_argument("--baseline", metavar="FILE", nargs="+", help="one or more recordings of the same person speaking "
                   "in their usual way; the voice is then read relative to them")
    a.add_argument("--baseline-span", metavar="START:END", help="use this stretch of each input (seconds) as the "
                   "person's baseline instead")
    add_frame_rate_argument(a)
    a.add_argument("--max-mb", type=float, default=MAX_FILE_MB, help="largest file accepted (MB)")
    a.add_argument("--max-duration", type=float, default=MAX_DURATION_S, help="longest recording (s)")
    a.set_defaults(func=cmd_analyze)

    from .constants import EMOTIONS
    from .explain import CAM_METHODS

    e = sub.add_parser("explain", help="Grad-CAM overlays, LIME panels and explanation.json for one input")
    e.add_argument("path")
    e.add_argument("--out", required=True, help="folder for the PNG files and explanation.json")
    e.add_argument("--target", choices=EMOTIONS, help="emotion to explain (default: each branch's prediction)")
    e.add_argument("--all-classes", action="store_true", help="one panel per emotion")
    e.add_argument("--method", choices=CAM_METHODS, default="gradcam")
    e.add_argument("--samples", type=int, default=1000, help="LIME perturbations")
    e.set_defaults(func=cmd_explain)

    tb = sub.add_parser("tables", help="per-emotion inference tables and faithfulness figures (reports/)")
    tb.add_argument("--data", required=True, help="folder holding fer2013/ and ravdess-speech-16k/")
    tb.add_argument("--reports", default=None)
    tb.add_argument("--quick", action="store_true")
    tb.set_defaults(func=cmd_tables)

    from .batch import add_parser as add_batch_parser
    from .ravdess_av import add_parser as add_av_parser

    add_batch_parser(sub)
    add_av_parser(sub)

    for name in ("train", "evaluate"):
        t = sub.add_parser(name, help=f"{name} a model (see the model card)")
        t.add_argument("what", choices=["voice", "voice-probe", "face"] if name == "train" else ["voice", "face", "fusion"])
        t.add_argument("--data", required=True, help="RAVDESS speech folder (voice) or FER2013 folder (face); "
                       "for 'evaluate voice', 'oof' summarises the committed out-of-fold predictions")
        t.add_argument("--out", default="runs", help="folder for logs, caches and out-of-fold predictions")
        t.add_argument("--weights", default=None, help="where to write the shipped checkpoint (default weights/)")
        t.add_argument("--device", default="auto")
        t.add_argument("--epochs", type=int, default=None)
        t.add_argument("--seed", type=int, default=0)
        t.add_argument("--folds", default="all", help="'all', 'none', or comma list of fold numbers (voice)")
        t.add_argument("--final", action=argparse.BooleanOptionalAction, default=True,
                       help="also train the shipped model on all the data")
        t.add_argument("--quick", action="store_true", help="tiny settings, for tests")
        t.add_argument("--whisper", default=None, help="Whisper tiny.en: CTranslate2 model.bin or extracted .pt")
        t.add_argument("--ablation", action="store_true", help="also run the ablation baselines")
        t.add_argument("--ablation-only", action="store_true", help="run only the ablation baselines")
        t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a training or model setting")
        t.add_argument("--resume", action="store_true", help="face: continue from --out/face_train_state.pt")
        t.add_argument("--stop-after", type=int, default=None, help="face: train at most N epochs in this run")
        t.add_argument("--reports", default=None, help="folder for committed evaluation files (default reports/)")
        t.set_defaults(func=cmd_train, evaluate_only=name == "evaluate")
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    warnings.filterwarnings("ignore")
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
