"""Pseudo-paired evaluation of the fusion rule, the best that can be done without RAVDESS video.

Each voice prediction of the shipped voice model (out-of-fold, actors 01-20,
``registry.VOICE_OOF``) is paired with the face
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
from ..registry import REPORTS_DIR, VOICE_OOF


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


def neutral_conflicts(voice_csv: Path, face_csv: Path, repeats: int = 20, seed: int = 0) -> dict:
    """What the fused answer does when one branch reads a neutral person and the other an emotion.

    "face neutral": every RAVDESS clip of an emotion other than neutral and calm, paired with a random FER2013
    PrivateTest face labelled neutral; "voice neutral": every face of another emotion paired with a random
    neutral or calm RAVDESS clip. Both with full evidence (5 frames, 1.5 voiced seconds). For each true emotion of
    the emotional branch: how often the fused top class is that emotion, neutral or calm, or something else."""
    voice = pd.read_csv(voice_csv)
    face = pd.read_csv(face_csv)
    face["true"] = face["true"].replace(FER_TO_EMOTION)
    rng = np.random.default_rng(seed)
    calmish = {EMOTIONS.index("neutral"), EMOTIONS.index("calm")}

    def tally(pairs: list[tuple[np.ndarray, np.ndarray, int]]) -> dict:
        top = np.array([int(np.argmax(fuse(f, v, FACE_FULL_FRAMES, VOICE_FULL_SECONDS).probs)) for f, v, _ in pairs])
        emo = np.array([e for _, _, e in pairs])
        return {"pairs": len(pairs), "fused_says_the_emotion": float((top == emo).mean()),
                "fused_says_neutral_or_calm": float(np.isin(top, list(calmish)).mean()),
                "fused_says_other": float((~np.isin(top, list(calmish)) & (top != emo)).mean())}

    neutral_faces = face[face["true"] == "neutral"][list(EMOTIONS)].to_numpy()
    calm_voices = voice[voice["true"].isin(["neutral", "calm"])][list(EMOTIONS)].to_numpy()
    out: dict = {"face_neutral": {}, "voice_neutral": {}}
    for e in EMOTIONS:
        if e in ("neutral", "calm"):
            continue
        v = voice[voice["true"] == e][list(EMOTIONS)].to_numpy()
        if len(v):
            pairs = [(neutral_faces[rng.integers(len(neutral_faces))], vp, EMOTIONS.index(e)) for _ in range(repeats)
                     for vp in v]
            out["face_neutral"][e] = tally(pairs)
        f = face[face["true"] == e][list(EMOTIONS)].to_numpy()
        if len(f):
            pairs = [(fp, calm_voices[rng.integers(len(calm_voices))], EMOTIONS.index(e)) for fp in f]
            out["voice_neutral"][e] = tally(pairs)
    return out


def evaluate(args: argparse.Namespace) -> int:
    res = pseudo_paired(REPORTS_DIR / VOICE_OOF, REPORTS_DIR / "face_private.csv", seed=args.seed)
    res["neutral_conflicts"] = neutral_conflicts(REPORTS_DIR / VOICE_OOF, REPORTS_DIR / "face_private.csv", seed=args.seed)
    res["voice_oof"] = VOICE_OOF
    ferplus_faces = REPORTS_DIR / "face_private_ferplus.csv"
    if ferplus_faces.exists():  # the same pairing, faces chosen by the ten annotators' majority instead of one rater
        res["faces_by_ferplus_majority"] = pseudo_paired(REPORTS_DIR / VOICE_OOF, ferplus_faces, seed=args.seed)
    if not args.quick:
        (Path(args.reports or REPORTS_DIR) / "fusion_pseudo_paired.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return 0

