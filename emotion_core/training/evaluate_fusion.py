"""Pseudo-paired evaluation of the fusion rule, the best that can be done without RAVDESS video.

Each voice prediction of the shipped voice model (out-of-fold, actors 01-20,
reports/voice_ensemble_oof.csv) is paired with the face
prediction of a random FER2013 PrivateTest image of the same true class (reports/face_private.csv;
calm clips get neutral faces, since FER2013 has no calm), many times over. The pairs are not real:
one person's face and voice are correlated in ways random pairs are not, so this measures the rule's
arithmetic, not the system on real audio-visual recordings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..constants import EMOTIONS, FER_TO_EMOTION
from ..fusion import FACE_FULL_FRAMES, VOICE_FULL_SECONDS, fuse
from ..registry import REPORTS_DIR


def pseudo_paired(voice_csv: Path, face_csv: Path, repeats: int = 20, seed: int = 0) -> dict:
    voice = pd.read_csv(voice_csv)
    face = pd.read_csv(face_csv)
    face["true"] = face["true"].replace(FER_TO_EMOTION)
    pools = {e: face[face["true"] == ("neutral" if e == "calm" else e)][list(EMOTIONS)].to_numpy() for e in EMOTIONS}
    y = voice["true"].map(EMOTIONS.index).to_numpy()
    vp = voice[list(EMOTIONS)].to_numpy()
    rng = np.random.default_rng(seed)
    acc = {"voice": [], "face": [], "fused": []}
    agreement = {"agree": [], "disagree": [], "uncertain": []}
    for _ in range(repeats):
        fp = np.stack([pools[EMOTIONS[t]][rng.integers(len(pools[EMOTIONS[t]]))] for t in y])
        fused = [fuse(f, v, FACE_FULL_FRAMES, VOICE_FULL_SECONDS) for f, v in zip(fp, vp, strict=True)]
        acc["voice"].append(float((vp.argmax(1) == y).mean()))
        acc["face"].append(float((fp.argmax(1) == y).mean()))
        acc["fused"].append(float((np.stack([r.probs for r in fused]).argmax(1) == y).mean()))
        labels = np.array([r.agreement for r in fused])
        for k in agreement:
            m = labels == k
            agreement[k].append((float(m.mean()), float((np.stack([r.probs for r in fused])[m].argmax(1) == y[m]).mean())
                                 if m.any() else float("nan")))
    out = {"what": "pseudo-paired: RAVDESS voice out-of-fold predictions x FER2013 PrivateTest faces of the same class "
                   "(calm -> neutral faces); not real audio-visual pairs", "pairs_per_repeat": len(y),
           "repeats": repeats, "seed": seed}
    for k, v in acc.items():
        out[f"{k}_accuracy_mean"], out[f"{k}_accuracy_std"] = float(np.mean(v)), float(np.std(v))
    out["agreement"] = {k: {"share": float(np.mean([a for a, _ in v])), "fused_accuracy": float(np.nanmean([b for _, b in v]))}
                        for k, v in agreement.items()}
    out["command"] = "python -m emotion_core evaluate fusion --data oof"
    return out


def evaluate(args: argparse.Namespace) -> int:
    res = pseudo_paired(REPORTS_DIR / "voice_ensemble_oof.csv", REPORTS_DIR / "face_private.csv", seed=args.seed)
    if not args.quick:
        (Path(args.reports or REPORTS_DIR) / "fusion_pseudo_paired.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return 0

