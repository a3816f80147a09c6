"""Personal baseline: how much does normalising a speaker's voice to their own neutral speech help?

Measurement only (the `analyze --baseline` path is not built yet). Protocol, from the fusion issue:
5-fold CV by actor over actors 01-20; for each held-out actor the baseline is only that actor's
neutral and calm clips, and accuracy is reported on the actor's other clips (happy to surprised),
with and without the baseline. Features: the frozen, pretrained Whisper tiny.en encoder (mean and
standard deviation over time of all 5 hidden states, averaged over the clip's voiced 4 s windows);
classifier: standardisation + logistic regression. With the baseline, every clip's features have
its speaker's baseline mean subtracted (training actors: their own neutral and calm clips), either
alone ("baseline") or next to the raw features ("baseline_concat").

    python -m emotion_core evaluate baseline --data RAVDESS_SPEECH_DIR
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from .constants import EMOTIONS, SAMPLE_RATE
from .datasets import ACTOR_FOLDS, find_ravdess, fold_of
from .features import log_mel, voice_windows
from .registry import REPORTS_DIR

log = logging.getLogger(__name__)
BASELINE_EMOTIONS = ("neutral", "calm")


@torch.no_grad()
def clip_features(paths: list[Path], whisper: str | None = None) -> np.ndarray:
    """(n, 3840) frozen Whisper tiny.en statistics per clip."""
    import librosa

    from .whisper import WhisperEncoder

    enc = WhisperEncoder.from_ct2(whisper)
    out = []
    for p in paths:
        y, _ = librosa.load(p, sr=SAMPLE_RATE)
        wins = voice_windows(y) or [(0.0, len(y) / SAMPLE_RATE, 1.0)]
        feats, weights = [], []
        for s, e, a in wins:
            states = enc(torch.from_numpy(log_mel(y[int(s * SAMPLE_RATE): int(e * SAMPLE_RATE)]))[None])
            feats.append(torch.cat([torch.cat([h.mean(1), h.std(1)], -1) for h in states], -1)[0].numpy())
            weights.append(a)
        out.append(np.average(np.stack(feats), axis=0, weights=weights))
    return np.stack(out)


def evaluate_protocol(feats: np.ndarray, labels: np.ndarray, actors: np.ndarray, c: float = 0.1) -> dict:
    """Per-fold accuracy on each held-out actor's non-baseline clips, without and with the baseline."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    is_base = np.isin(labels, [EMOTIONS.index(e) for e in BASELINE_EMOTIONS])
    centred = feats.copy()
    for a in np.unique(actors):
        centred[actors == a] -= feats[(actors == a) & is_base].mean(0)
    variants = {"plain": feats, "baseline": centred,  # features minus the speaker's baseline mean
                "baseline_concat": np.hstack([feats, centred])}  # raw and baseline-relative side by side
    folds = np.array([fold_of(int(a)) for a in actors])
    res: dict = {k: [] for k in variants}
    for f in range(len(ACTOR_FOLDS)):
        tr, te = folds != f, (folds == f) & ~is_base
        for name, x in variants.items():
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
            clf.fit(x[tr], labels[tr])
            res[name].append(float((clf.predict(x[te]) == labels[te]).mean()))
    return {k: {"fold_accuracy": v, "mean_accuracy": float(np.mean(v))} for k, v in res.items()}


def evaluate(args: argparse.Namespace) -> int:
    items = [it for it in find_ravdess(args.data) if fold_of(it.actor) is not None]
    labels = np.array([it.emotion for it in items])
    actors = np.array([it.actor for it in items])
    feats = clip_features([it.path for it in items], args.whisper)
    res = evaluate_protocol(feats, labels, actors)
    res["protocol"] = ("5-fold CV by actor (01-04 ... 17-20); baseline = the held-out actor's neutral and calm "
                       "clips only; accuracy on that actor's other clips (8-way classifier)")
    res["features"] = "frozen Whisper tiny.en, mean+std of 5 hidden states; standardised logistic regression C=0.1"
    res["n_scored"] = int((~np.isin(labels, [0, 1])).sum())
    oof = REPORTS_DIR / "voice_oof.csv"
    if oof.exists():
        import pandas as pd

        df = pd.read_csv(oof)
        df = df[~df["true"].isin(BASELINE_EMOTIONS)]
        res["shipped_recipe_same_clips"] = float((df["true"] == df["pred"]).mean())
    res["command"] = "python -m emotion_core evaluate baseline --data RAVDESS_SPEECH_DIR"
    if not args.quick:
        (Path(args.reports or REPORTS_DIR) / "voice_baseline.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return 0


main = evaluate
