"""Real paired evaluation of the fusion on RAVDESS audio-visual clips, and fitting its weight.

Everything else in this project had to measure the fusion on pseudo-pairs (``evaluate_fusion``),
because RAVDESS video is not available here. A user who has it runs

    python -m emotion_core ravdess-av --data RAVDESS_VIDEO_DIR --out RESULTS [--fit [--install]]
                                      [--export DIR] [--workers N]

1. Every speech clip named ``01-01-EE-II-SS-RR-AA.mp4`` (modality 01, audio-visual) is analysed by
   the batch path (``batch.run_batch``: parallel workers, resumable, the same code as ``analyze``):
   face crops from MTCNN through the face model, the audio track through the voice model.
   ``--export DIR`` also writes what was extracted, for training on it later: the 16 kHz audio as
   ``DIR/audio/<name>.wav`` and the 48x48 face crops as ``DIR/faces/<name>.npz`` (with their times).
2. Honesty: the shipped voice model was trained on actors 01-20, whose audio-only files are the
   same performances. For those actors the voice branch is replaced by the committed out-of-fold
   prediction of the clip's audio-only twin (``03-01-EE-II-SS-RR-AA``, from the shipped voice model's
   ``registry.VOICE_OOF``): a model that never heard the actor. Actors outside 01-20
   (21-24) get the shipped model. The face model never saw RAVDESS.
3. Scores, per actor fold (01-04, ..., 17-20) and for any other actors together ("unseen"):
   voice only, face only, and fused with the shipped rule. With ``--fit``, the voice prior (the
   fusion's one free parameter; the face's is one minus it) is fitted by grid search on the other
   folds and scored on the held-out one (nested, actor-independent); the unseen actors are scored
   with the prior fitted on all of 01-20, which is also what ``--install`` writes to
   ``weights/fusion.json`` for ``analyze`` to use.

Writes ``RESULTS/av_clips.csv`` (one row per clip: both branches, the evidence, the fused answers)
and ``RESULTS/av_fusion.json`` (the table and the fitted prior).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis import Analyzer
from ..batch import run_batch
from ..constants import EMOTIONS, SAMPLE_RATE
from ..fusion import VOICE_PRIOR, FusionConfig, fuse
from ..registry import REPORTS_DIR, VOICE_OOF, WEIGHTS_DIR
from .datasets import ACTOR_FOLDS, RavdessItem, find_ravdess, fold_of

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4",)
PRIOR_GRID = np.round(np.linspace(0.0, 1.0, 21), 2)
"""Voice priors tried when fitting (face prior = 1 - voice prior)."""
UNSEEN = "unseen"


def av_clips(root: str | Path) -> list[RavdessItem]:
    """The audio-visual speech clips (modality 01, vocal channel 01) under ``root``."""
    items = [it for it in find_ravdess(root, VIDEO_SUFFIXES) if it.modality == 1]
    if not items:
        raise FileNotFoundError(f"no RAVDESS audio-visual speech clips (01-01-*.mp4) under {root}")
    return items


def audio_twin(item: RavdessItem) -> str:
    """The audio-only file stem of the same performance (modality 03; any audio extension)."""
    return "03" + item.path.stem[2:]


def group_of(actor: int) -> str:
    f = fold_of(actor)
    return UNSEEN if f is None else "-".join(f"{a:02d}" for a in (ACTOR_FOLDS[f][0], ACTOR_FOLDS[f][-1]))


@dataclass
class ClipTable:
    """Both branches for every clip, as arrays (a missing branch is a row of NaN)."""

    items: list[RavdessItem]
    face: np.ndarray  # (n, 8), calm = 0
    voice: np.ndarray  # (n, 8)
    frames: np.ndarray  # usable face frames
    voiced: np.ndarray  # voiced seconds
    voice_source: list[str]  # "out-of-fold" or "shipped model"

    @property
    def y(self) -> np.ndarray:
        return np.array([it.emotion for it in self.items])

    @property
    def groups(self) -> np.ndarray:
        return np.array([group_of(it.actor) for it in self.items])

    def fused(self, voice_prior: float, mask: np.ndarray | None = None) -> np.ndarray:
        """(n, 8) fused probabilities with ``voice_prior``; a clip with neither branch gets NaN."""
        idx = np.flatnonzero(np.ones(len(self.items), bool) if mask is None else mask)
        out = np.full((len(idx), len(EMOTIONS)), np.nan)
        for k, i in enumerate(idx):
            f = None if np.isnan(self.face[i]).any() else self.face[i]
            v = None if np.isnan(self.voice[i]).any() else self.voice[i]
            if f is not None or v is not None:
                out[k] = fuse(f, v, int(self.frames[i]), float(self.voiced[i]), voice_prior).probs
        return out


def accuracy(p: np.ndarray, y: np.ndarray) -> float:
    """Share of clips answered correctly; a clip the branch could not answer counts as wrong."""
    ok = ~np.isnan(p).any(1)
    return float(np.mean(np.where(ok, np.nan_to_num(p).argmax(1) == y, False))) if len(y) else float("nan")


def fit_prior(table: ClipTable, mask: np.ndarray) -> float:
    """The grid voice prior with the best fused accuracy on ``mask`` (ties: closest to the default)."""
    y = table.y[mask]
    scores = [(accuracy(table.fused(w, mask), y), -abs(w - VOICE_PRIOR), w) for w in PRIOR_GRID]
    return float(max(scores)[2])


def build_table(items: list[RavdessItem], recordings: Any, oof_path: Path | None) -> ClipTable:
    """Join the batch's per-recording rows with the out-of-fold voice predictions."""
    import pandas as pd

    rec = recordings.set_index("file")
    oof = None
    if oof_path is not None and oof_path.exists():
        oof = pd.read_csv(oof_path)
        oof = oof.set_index(oof["file"].map(lambda f: Path(f).stem))
    n, k = len(items), len(EMOTIONS)
    face, voice = np.full((n, k), np.nan), np.full((n, k), np.nan)
    frames, voiced, source = np.zeros(n), np.zeros(n), []
    for i, it in enumerate(items):
        r = rec.loc[str(it.path)]
        if r["status"] == "ok":
            if pd.notna(r["face_neutral"]):
                face[i] = r[[f"face_{e}" for e in EMOTIONS]].to_numpy(float)
                frames[i] = r["face_frames_used"]
            if pd.notna(r["voice_neutral"]):
                voice[i] = r[[f"voice_{e}" for e in EMOTIONS]].to_numpy(float)
                voiced[i] = r["voiced_seconds"]
        twin = audio_twin(it)
        if oof is not None and fold_of(it.actor) is not None and twin in oof.index and not np.isnan(voice[i]).any():
            voice[i] = oof.loc[twin, list(EMOTIONS)].to_numpy(float)
            source.append("out-of-fold")
        else:
            source.append("shipped model")
    return ClipTable(items, face, voice, frames, voiced, source)


def evaluate_table(table: ClipTable, fit: bool) -> dict[str, Any]:
    """Voice, face, fused (shipped prior) and, with ``fit``, fused with a nested-fitted prior, per group."""
    y, groups = table.y, table.groups
    shipped = table.fused(VOICE_PRIOR)
    folds = [g for g in dict.fromkeys(group_of(a) for f in ACTOR_FOLDS for a in f) if (groups == g).any()]
    out: dict[str, Any] = {"groups": {}, "n_clips": len(y)}
    in_folds = np.isin(groups, folds)
    final_prior = fit_prior(table, in_folds) if fit and in_folds.any() else None
    for g in [*folds, UNSEEN]:
        m = groups == g
        if not m.any():
            continue
        row = {"clips": int(m.sum()), "voice_only": accuracy(table.voice[m], y[m]),
               "face_only": accuracy(table.face[m], y[m]), "fused_shipped_prior": accuracy(shipped[m], y[m]),
               "voice_source": sorted({table.voice_source[i] for i in np.flatnonzero(m)})}
        if fit:
            train = in_folds & ~m
            prior = final_prior if g == UNSEEN else (fit_prior(table, train) if train.any() else None)
            row["fitted_voice_prior"] = prior
            row["fused_fitted_prior"] = None if prior is None else accuracy(table.fused(prior, m), y[m])
        out["groups"][g] = row
    fold_rows = [out["groups"][g] for g in folds]
    if fold_rows:
        out["mean_of_folds"] = {k: float(np.mean([r[k] for r in fold_rows])) for k in
                                ("voice_only", "face_only", "fused_shipped_prior", "fused_fitted_prior")
                                if all(r.get(k) is not None for r in fold_rows)}
    if fit:
        out["final_voice_prior"] = final_prior
    return out


def export_extracted(items: list[RavdessItem], out: Path) -> None:
    """The extracted audio (16 kHz wav) and face crops (48x48 uint8 npz) of every clip."""
    import soundfile as sf


    analyzer = Analyzer()
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / "faces").mkdir(parents=True, exist_ok=True)
    for it in items:
        stem = it.path.stem
        if (out / "faces" / f"{stem}.npz").exists():
            continue
        res = analyzer.analyze(it.path, keep_audio=True)
        if res.audio is not None:
            sf.write(out / "audio" / f"{stem}.wav", res.audio, SAMPLE_RATE)
        frames = [f for f in (res.face.frames if res.face else []) if f.face_input is not None]
        np.savez_compressed(out / "faces" / f"{stem}.npz",
                            faces=np.stack([np.round(f.face_input * 255).astype(np.uint8) for f in frames])
                            if frames else np.zeros((0, 48, 48), np.uint8),
                            t=np.array([f.t for f in frames], float))


def run(data: str | Path, out: str | Path, fit: bool = False, install: bool = False, workers: int | None = None,
        export: str | Path | None = None, oof_path: Path | None = None, weights_dir: Path | None = None
        ) -> dict[str, Any]:
    import pandas as pd

    out = Path(out)
    items = av_clips(data)
    log.info("%d audio-visual speech clips", len(items))
    stats = run_batch([it.path for it in items], out / "batch", workers)
    recordings = pd.read_parquet(out / "batch" / "recordings.parquet")
    table = build_table(items, recordings, REPORTS_DIR / VOICE_OOF if oof_path is None else oof_path)
    res = evaluate_table(table, fit)
    res["batch"] = {k: stats[k] for k in ("analysed", "skipped", "failed", "wall_s")}
    res["what"] = ("real audio-visual pairs: RAVDESS modality-01 speech clips; voice of actors 01-20 from the "
                   "out-of-fold predictions of the audio-only twin clips, face from the shipped FER2013 model")
    res["command"] = "python -m emotion_core ravdess-av --data RAVDESS_VIDEO_DIR --out RESULTS --fit"
    rows = pd.DataFrame({"file": [it.path.name for it in table.items], "actor": [it.actor for it in table.items],
                         "group": table.groups, "true": [it.label for it in table.items],
                         "voice_source": table.voice_source, "face_frames_used": table.frames,
                         "voiced_seconds": table.voiced})
    for name, p in (("face", table.face), ("voice", table.voice), ("fused", table.fused(VOICE_PRIOR))):
        rows[f"{name}_pred"] = [None if np.isnan(r).any() else EMOTIONS[int(np.argmax(r))] for r in p]
        rows[[f"{name}_{e}" for e in EMOTIONS]] = np.round(p, 5)
    rows.to_csv(out / "av_clips.csv", index=False)
    (out / "av_fusion.json").write_text(json.dumps(res, indent=2) + "\n")
    if fit and res.get("final_voice_prior") is not None:
        n_fit = int((table.groups != UNSEEN).sum())
        cfg = FusionConfig(res["final_voice_prior"],
                           f"fitted on {n_fit} RAVDESS audio-visual clips (actors 01-20) by `ravdess-av --fit`")
        cfg.save(out / "fusion.json", mean_of_folds=res.get("mean_of_folds"))
        if install:
            cfg.save(Path(weights_dir or WEIGHTS_DIR) / "fusion.json", mean_of_folds=res.get("mean_of_folds"))
    if export:
        export_extracted(items, Path(export))
    return res


def cmd_ravdess_av(args: argparse.Namespace) -> int:
    res = run(args.data, args.out, args.fit, args.install, args.workers, args.export,
              Path(args.oof) if args.oof else None, Path(args.weights) if args.weights else None)
    print(json.dumps(res, indent=2))
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("ravdess-av", help="evaluate (and fit) the fusion on RAVDESS audio-visual clips")
    p.add_argument("--data", required=True, help="folder with RAVDESS modality-01 mp4 files (Actor_*/01-01-*.mp4)")
    p.add_argument("--out", required=True, help="results folder (re-using it resumes the analysis)")
    p.add_argument("--fit", action="store_true", help="fit the fusion's voice prior, nested by actor fold")
    p.add_argument("--install", action="store_true", help="with --fit: write weights/fusion.json for analyze")
    p.add_argument("--workers", type=int, default=None, help="parallel workers (default: cores, memory allowing)")
    p.add_argument("--export", metavar="DIR", help="also write the extracted audio (wav) and face crops (npz)")
    p.add_argument("--oof", default=None, help=f"out-of-fold voice predictions (default reports/{VOICE_OOF})")
    p.add_argument("--weights", default=None, help="with --install: weights folder (default weights/)")
    p.set_defaults(func=cmd_ravdess_av)
