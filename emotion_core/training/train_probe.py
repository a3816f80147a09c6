"""Fitting the voice ensemble's frozen-encoder member and its personal-baseline head.

The model itself (``VoiceProbe``, ``VoiceEnsemble``) is in ``emotion_core.voice_ensemble``; this
module fits its two linear heads with scikit-learn (standardised features, logistic regression,
C = 0.1) and measures them:

    python -m emotion_core train voice-probe --data RAVDESS_SPEECH_DIR

computes the features (CPU, about a minute), runs the 5-fold actor protocol for the probe, the
ensemble with the committed fine-tuned out-of-fold predictions (``reports/voice_oof.csv``) and the
baseline, fits the ensemble's temperature on those out-of-fold predictions, then fits the heads
on all twenty actors and writes ``weights/voice_probe.pt``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..baseline import recording_features
from ..constants import EMOTIONS, SAMPLE_RATE
from ..metrics import ece, fit_temperature, fold_accuracy, nll, summarize
from ..registry import REPORTS_DIR, WEIGHTS_DIR, save_checkpoint
from ..voice_ensemble import ENSEMBLE_WEIGHT, ProbeConfig, StandardisedLinear, VoiceProbe
from ..whisper import WhisperEncoder
from .datasets import ACTOR_FOLDS, RavdessItem, find_ravdess, fold_of, load_waveforms

log = logging.getLogger(__name__)

PROBE_C = 0.1
"""Inverse L2 strength of the logistic regressions (the value fixed before any fold was scored)."""
BASELINE_EMOTIONS = ("neutral", "calm")
"""Which RAVDESS clips stand for a person's baseline in training and in the measurement."""
ABSENT_CLASS_LOGIT = -30.0
"""Logit given to a class the classifier never saw in training, so its probability is about zero."""


def head_from_sklearn(head: StandardisedLinear, pipeline) -> StandardisedLinear:
    """Copy a fitted StandardScaler + LogisticRegression pipeline into ``head``."""
    scaler, clf = pipeline[0], pipeline[-1]
    coef, icpt = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:  # scikit-learn keeps one row for two classes
        coef, icpt = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, icpt[0]])
    w = np.zeros(tuple(head.linear.weight.shape))
    b = np.full(head.linear.out_features, ABSENT_CLASS_LOGIT)
    w[clf.classes_], b[clf.classes_] = coef, icpt
    with torch.no_grad():
        head.mean.copy_(torch.from_numpy(scaler.mean_))
        head.scale.copy_(torch.from_numpy(scaler.scale_))
        head.linear.weight.copy_(torch.from_numpy(w))
        head.linear.bias.copy_(torch.from_numpy(b))
    return head


def dataset_features(probe: VoiceProbe, items: list[RavdessItem]) -> np.ndarray:
    """One feature vector per RAVDESS clip (a clip with no detected voice uses all of it)."""
    out = []
    for (y,) in load_waveforms(items, (1.0,)):
        f = recording_features(probe, y)
        out.append(f if f is not None else recording_features(probe, y, [(0.0, len(y) / SAMPLE_RATE, 1.0)]))
    return np.stack(out)


def baseline_relative(feats: np.ndarray, labels: np.ndarray, actors: np.ndarray) -> np.ndarray:
    """[features, features - the actor's baseline mean], the baseline being their neutral and calm clips."""
    is_base = np.isin(labels, [EMOTIONS.index(e) for e in BASELINE_EMOTIONS])
    centred = feats.copy()
    for a in np.unique(actors):
        centred[actors == a] -= feats[(actors == a) & is_base].mean(0)
    return np.hstack([feats, centred])


def make_classifier() -> Pipeline:
    """Member 2's classifier: standardised features, L2 logistic regression."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=PROBE_C, max_iter=3000))


def predict_proba(clf, x: np.ndarray) -> np.ndarray:
    """(n, 8) probabilities, 0 for classes the classifier never saw."""
    out = np.zeros((len(x), len(EMOTIONS)))
    out[:, clf.classes_] = clf.predict_proba(x)
    return out


def geometric(p_ft: np.ndarray, p_probe: np.ndarray, weight: float = ENSEMBLE_WEIGHT) -> np.ndarray:
    """Normalised weighted geometric mean of two probability tables (what VoiceEnsemble computes)."""
    logp = (1 - weight) * np.log(np.clip(p_ft, 1e-12, 1)) + weight * np.log(np.clip(p_probe, 1e-12, 1))
    p = np.exp(logp - logp.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def cross_validate(feats: np.ndarray, labels: np.ndarray, actors: np.ndarray, p_ft: np.ndarray | None) -> dict:
    """The 5-fold actor protocol for the probe, the ensemble and the baseline; out-of-fold tables."""
    folds = np.array([fold_of(int(a)) for a in actors])
    rel = baseline_relative(feats, labels, actors)
    p_probe, p_base = np.zeros((len(labels), len(EMOTIONS))), np.zeros((len(labels), len(EMOTIONS)))
    for f in range(len(ACTOR_FOLDS)):
        tr, te = folds != f, folds == f
        p_probe[te] = predict_proba(make_classifier().fit(feats[tr], labels[tr]), feats[te])
        p_base[te] = predict_proba(make_classifier().fit(rel[tr], labels[tr]), rel[te])

    def per_fold(p: np.ndarray, mask: np.ndarray) -> list[float]:
        return fold_accuracy(labels[mask], p[mask], folds[mask], range(len(ACTOR_FOLDS)))

    everything = np.ones(len(labels), bool)
    scored = ~np.isin(labels, [EMOTIONS.index(e) for e in BASELINE_EMOTIONS])
    res: dict = {"probe": {"fold_accuracy": per_fold(p_probe, everything)}}
    out = {"probe": p_probe}
    if p_ft is not None:
        ens = geometric(p_ft, p_probe)
        t = fit_temperature(lambda t: nll(labels, power(ens, t)))
        out["ensemble"] = power(ens, t)
        res["finetuned"] = {"fold_accuracy": per_fold(p_ft, everything)}
        res["ensemble"] = {"fold_accuracy": per_fold(ens, everything), "temperature": t,
                           "ece_before": ece(labels, ens), "ece_after": ece(labels, out["ensemble"]),
                           "summary": summarize(labels, out["ensemble"], EMOTIONS)}
        res["baseline"] = {  # each held-out actor's non-baseline clips only
            "n_scored": int(scored.sum()),
            "finetuned": per_fold(p_ft, scored), "probe": per_fold(p_probe, scored),
            "probe_with_baseline": per_fold(p_base, scored),
            "ensemble": per_fold(ens, scored), "ensemble_with_baseline": per_fold(geometric(p_ft, p_base), scored)}
    for v in res.values():
        if "fold_accuracy" in v:
            v["mean_accuracy"] = float(np.mean(v["fold_accuracy"]))
    if "baseline" in res:
        res["baseline"] = {k: (v if k == "n_scored" else {"fold_accuracy": v, "mean_accuracy": float(np.mean(v))})
                           for k, v in res["baseline"].items()}
    return {"results": res, "oof": out}


def power(p: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Temperature on a probability table: softmax(log p / t); ``t`` one number or one per row."""
    t = np.asarray(t, np.float64)
    logp = np.log(np.clip(p, 1e-12, 1)) / (t[:, None] if t.ndim else t)
    q = np.exp(logp - logp.max(1, keepdims=True))
    return q / q.sum(1, keepdims=True)


def build_probe(whisper: str | None = None) -> VoiceProbe:
    enc = WhisperEncoder.from_ct2(whisper)
    probe = VoiceProbe(ProbeConfig(encoder=enc.cfg))
    probe.encoder.load_state_dict(enc.state_dict())
    return probe.eval()


def main(args: argparse.Namespace) -> int:
    import pandas as pd

    torch.manual_seed(args.seed)
    items = [it for it in find_ravdess(args.data) if fold_of(it.actor) is not None]
    labels = np.array([it.emotion for it in items])
    actors = np.array([it.actor for it in items])
    names = [it.path.name for it in items]
    probe = build_probe(args.whisper)
    log.info("probe features for %d clips", len(items))
    feats = dataset_features(probe, items)
    reports = Path(args.reports or REPORTS_DIR)
    oof_path = reports / "voice_oof.csv"
    p_ft = None
    if oof_path.exists() and not args.quick:
        df = pd.read_csv(oof_path).set_index("file")
        if set(names) <= set(df.index):
            p_ft = df.loc[names, list(EMOTIONS)].to_numpy()
    cv = cross_validate(feats, labels, actors, p_ft)
    res = cv["results"]
    res["protocol"] = ("5-fold CV by actor over actors 01-20 (01-04, 05-08, 09-12, 13-16, 17-20); 'baseline': for "
                       "each held-out actor the baseline is only their neutral and calm clips, accuracy on their "
                       "other clips")
    res["command"] = "python -m emotion_core train voice-probe --data RAVDESS_SPEECH_DIR"
    print(json.dumps({k: (v if not isinstance(v, dict) else {kk: vv for kk, vv in v.items() if kk != "summary"})
                      for k, v in res.items()}, indent=2))
    reports.mkdir(parents=True, exist_ok=True)
    if "ensemble" in cv["oof"]:
        base = pd.read_csv(oof_path).set_index("file").loc[names].reset_index()
        ens = base.drop(columns=list(EMOTIONS) + ["pred"])
        ens["pred"] = [EMOTIONS[i] for i in cv["oof"]["ensemble"].argmax(1)]
        ens[list(EMOTIONS)] = np.round(cv["oof"]["ensemble"], 5)
        ens.to_csv(reports / "voice_ensemble_oof.csv", index=False)
    (reports / "voice_probe_cv.json").write_text(json.dumps(res, indent=2) + "\n")
    head_from_sklearn(probe.head, make_classifier().fit(feats, labels))
    head_from_sklearn(probe.baseline_head, make_classifier().fit(baseline_relative(feats, labels, actors), labels))
    meta = {"data": "RAVDESS speech, actors 01-20", "cv": {k: v for k, v in res.items() if k != "command"},
            "ensemble_weight": ENSEMBLE_WEIGHT, "c": PROBE_C,
            "temperature": res.get("ensemble", {}).get("temperature", 1.0),
            "command": res["command"]}
    digest = save_checkpoint(Path(args.weights or WEIGHTS_DIR) / "voice_probe.pt", "voice_probe", probe, meta,
                             keep_fp32=("head.", "baseline_head."))
    log.info("wrote voice_probe.pt (%s)", digest[:12])
    return 0
