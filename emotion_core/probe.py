"""The second voice model and the personal baseline: a linear probe on the frozen Whisper encoder.

Why a second model: the fine-tuned encoder (``VoiceNet``) and the pretrained, frozen one see a
voice differently; the equal-weight geometric mean of their probabilities is right more often
than either (5-fold actor-held-out figures in the model card). Why frozen: its features mean the
same for a speaker it has never heard as for the training actors, which is what makes the
personal baseline honest to measure and to use. The probe's features are the mean and standard
deviation over time of the encoder's five hidden states (3840 numbers per window), standardised,
then a logistic regression (C = 0.1). The baseline head sees the same features next to the
features minus the person's baseline (the mean over their baseline recording), which lets it
learn how far from the person's own neutral voice a window is.

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .constants import EMOTIONS, SAMPLE_RATE
from .datasets import RavdessItem
from .whisper import WhisperEncoder, WhisperEncoderConfig

log = logging.getLogger(__name__)

PROBE_C = 0.1
"""Inverse L2 strength of the logistic regressions (the value fixed before any fold was scored)."""
ENSEMBLE_WEIGHT = 0.5
"""Weight of the probe in the geometric mean with the fine-tuned model (equal weights, not tuned)."""
BASELINE_EMOTIONS = ("neutral", "calm")
ABSENT_CLASS_LOGIT = -30.0
"""Which RAVDESS clips stand for a person's baseline in training and in the measurement."""


@dataclass
class ProbeConfig:
    encoder: WhisperEncoderConfig = field(default_factory=WhisperEncoderConfig)
    n_classes: int = len(EMOTIONS)

    @property
    def n_features(self) -> int:
        return 2 * self.encoder.d_model * (self.encoder.n_layers + 1)

    @classmethod
    def from_dict(cls, d: dict) -> ProbeConfig:
        return cls(encoder=WhisperEncoderConfig(**d["encoder"]), n_classes=d["n_classes"])


class _Standardised(nn.Module):
    """StandardScaler + logistic regression as one module (weights from scikit-learn)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_in))
        self.register_buffer("scale", torch.ones(n_in))
        self.linear = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mean) / self.scale)

    def load_sklearn(self, pipeline) -> _Standardised:
        scaler, clf = pipeline[0], pipeline[-1]
        coef, icpt = clf.coef_, clf.intercept_
        if len(clf.classes_) == 2:  # scikit-learn keeps one row for two classes
            coef, icpt = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, icpt[0]])
        w = np.zeros(tuple(self.linear.weight.shape))
        b = np.full(self.linear.out_features, ABSENT_CLASS_LOGIT)  # classes never seen in training
        w[clf.classes_], b[clf.classes_] = coef, icpt
        with torch.no_grad():
            self.mean.copy_(torch.from_numpy(scaler.mean_))
            self.scale.copy_(torch.from_numpy(scaler.scale_))
            self.linear.weight.copy_(torch.from_numpy(w))
            self.linear.bias.copy_(torch.from_numpy(b))
        return self


class VoiceProbe(nn.Module):
    """Frozen Whisper tiny.en encoder -> time statistics -> linear heads (plain and baseline)."""

    def __init__(self, cfg: ProbeConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = WhisperEncoder(cfg.encoder)
        self.head = _Standardised(cfg.n_features, cfg.n_classes)
        self.baseline_head = _Standardised(2 * cfg.n_features, cfg.n_classes)

    def features(self, mel: torch.Tensor, n_frames: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, n_features): mean and (unbiased) standard deviation over the valid frames."""
        t_enc = (mel.shape[-1] + 1) // 2
        pad = None
        if n_frames is not None:
            pad = torch.arange(t_enc, device=mel.device)[None, :] >= ((n_frames + 1) // 2)[:, None]
        states = self.encoder(mel, pad)
        w = torch.ones(mel.shape[0], t_enc, 1, device=mel.device) if pad is None else (~pad).float()[..., None]
        n = w.sum(1)
        out = []
        for h in states:
            mean = (h * w).sum(1) / n
            var = (((h - mean[:, None]) ** 2) * w).sum(1) / (n - 1).clamp_min(1)
            out += [mean, var.sqrt()]
        return torch.cat(out, -1)

    def forward(self, mel: torch.Tensor, n_frames: torch.Tensor | None = None,
                baseline: torch.Tensor | None = None) -> torch.Tensor:
        f = self.features(mel, n_frames)
        if baseline is None:
            return self.head(f)
        return self.baseline_head(torch.cat([f, f - baseline.to(f.dtype)], -1))


class VoiceEnsemble(nn.Module):
    """The shipped voice model: fine-tuned ``VoiceNet`` and frozen ``VoiceProbe`` together.

    Returns the weighted mean of the two calibrated log-probabilities (a geometric mean of the
    probabilities); the ensemble's own temperature is applied to this by the caller, like any
    model's. With ``baseline`` (features of the person's baseline recording) the probe uses its
    baseline head; the fine-tuned model is unchanged.
    """

    def __init__(self, finetuned: nn.Module, probe: VoiceProbe, finetuned_temperature: float = 1.0,
                 weight: float = ENSEMBLE_WEIGHT):
        super().__init__()
        self.finetuned, self.probe = finetuned, probe
        self.finetuned_temperature, self.weight = finetuned_temperature, weight

    accepts_baseline = True

    @property
    def cfg(self):
        return self.finetuned.cfg

    def forward(self, mel: torch.Tensor, n_frames: torch.Tensor | None = None,
                baseline: torch.Tensor | None = None) -> torch.Tensor:
        a = torch.log_softmax(self.finetuned(mel, n_frames) / self.finetuned_temperature, -1)
        b = torch.log_softmax(self.probe(mel, n_frames, baseline), -1)
        return (1 - self.weight) * a + self.weight * b


@dataclass
class VoiceBaseline:
    """A person's baseline: the probe's mean features over their baseline speech."""

    features: np.ndarray
    source: str
    voiced_seconds: float

    def to_dict(self) -> dict:
        return {"source": self.source, "voiced_seconds": round(self.voiced_seconds, 2)}

    @property
    def warning(self) -> str | None:
        if self.voiced_seconds < SHORT_BASELINE_S:
            return (f"baseline: only {self.voiced_seconds:.1f} s of speech in the baseline; a longer one (half a "
                    "minute of ordinary talk) describes the person's usual voice better.")
        return None

    def checked(self) -> VoiceBaseline:
        from .errors import MediaError

        if self.voiced_seconds < MIN_BASELINE_VOICED_S:
            raise MediaError(f"baseline: {self.source} holds {self.voiced_seconds:.1f} s of speech; at least "
                             f"{MIN_BASELINE_VOICED_S:g} s of the person speaking in their usual way is needed.")
        return self

    @staticmethod
    def combine(parts: list[VoiceBaseline]) -> VoiceBaseline:
        """Several baseline recordings of one person as one (weighted by their speech)."""
        w = np.array([p.voiced_seconds for p in parts])
        names = [p.source for p in parts]
        source = ", ".join(names) if len(names) <= 3 else f"{len(names)} recordings ({names[0]}, ...)"
        return VoiceBaseline(np.average(np.stack([p.features for p in parts]), axis=0, weights=w), source,
                             float(w.sum()))


MIN_BASELINE_VOICED_S = 1.0
"""Less voiced speech than this is too little to stand for how a person usually sounds."""
SHORT_BASELINE_S = 5.0
"""Below this a baseline is used, with a warning."""


def voice_baseline(ensemble: nn.Module, audio: np.ndarray | None, source: str, check: bool = True) -> VoiceBaseline:
    """The baseline of one recording (or stretch of a recording); MediaError when it cannot serve."""
    from .errors import MediaError
    from .features import voice_windows

    if not isinstance(ensemble, VoiceEnsemble):
        raise MediaError("baseline: the installed voice model has no baseline head (weights/voice_probe.pt).")
    if audio is None or len(audio) == 0:
        raise MediaError(f"baseline: {source} has no audio; a baseline is a recording of the person speaking.")
    windows = voice_windows(audio)
    if not windows:
        raise MediaError(f"baseline: no speech was found in {source}.")
    voiced = float(sum((e - s) * a for s, e, a in windows))
    out = VoiceBaseline(recording_features(ensemble.probe, audio, windows), source, voiced)
    return out.checked() if check else out


# -- features of recordings -------------------------------------------------------------------
@torch.no_grad()
def recording_features(probe: VoiceProbe, audio: np.ndarray,
                       windows: list[tuple[float, float, float]] | None = None) -> np.ndarray | None:
    """Voice-activity-weighted mean of the probe's window features over a recording (16 kHz mono);
    None when it holds no voice. This is both a training clip's feature and a person's baseline."""
    from .features import log_mel, voice_windows

    windows = voice_windows(audio) if windows is None else windows
    if not windows:
        return None
    feats = [probe.features(torch.from_numpy(log_mel(audio[int(s * SAMPLE_RATE): int(e * SAMPLE_RATE)]))[None])[0]
             for s, e, _ in windows]
    return np.average(torch.stack(feats).numpy(), axis=0, weights=[a for *_, a in windows])


def dataset_features(probe: VoiceProbe, items: list[RavdessItem]) -> np.ndarray:
    """One feature vector per RAVDESS clip (a clip with no detected voice uses all of it)."""
    from .train_voice import load_waveforms

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


def _classifier():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

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
    from .datasets import ACTOR_FOLDS, fold_of
    from .evaluation import ece, fit_temperature, fold_accuracy, nll, summarize

    folds = np.array([fold_of(int(a)) for a in actors])
    rel = baseline_relative(feats, labels, actors)
    p_probe, p_base = np.zeros((len(labels), len(EMOTIONS))), np.zeros((len(labels), len(EMOTIONS)))
    for f in range(len(ACTOR_FOLDS)):
        tr, te = folds != f, folds == f
        p_probe[te] = predict_proba(_classifier().fit(feats[tr], labels[tr]), feats[te])
        p_base[te] = predict_proba(_classifier().fit(rel[tr], labels[tr]), rel[te])

    def per_fold(p: np.ndarray, mask: np.ndarray) -> list[float]:
        return fold_accuracy(labels[mask], p[mask], folds[mask], range(len(ACTOR_FOLDS)))

    everything = np.ones(len(labels), bool)
    scored = ~np.isin(labels, [EMOTIONS.index(e) for e in BASELINE_EMOTIONS])
    res: dict = {"probe": {"fold_accuracy": per_fold(p_probe, everything)}}
    out = {"probe": p_probe}
    if p_ft is not None:
        ens = geometric(p_ft, p_probe)
        t = fit_temperature(lambda t: nll(labels, _power(ens, t)))
        out["ensemble"] = _power(ens, t)
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


def _power(p: np.ndarray, t: float) -> np.ndarray:
    """Temperature on a probability table: softmax(log p / t)."""
    logp = np.log(np.clip(p, 1e-12, 1)) / t
    q = np.exp(logp - logp.max(1, keepdims=True))
    return q / q.sum(1, keepdims=True)


def build_probe(whisper: str | None = None) -> VoiceProbe:
    enc = WhisperEncoder.from_ct2(whisper)
    probe = VoiceProbe(ProbeConfig(encoder=enc.cfg))
    probe.encoder.load_state_dict(enc.state_dict())
    return probe.eval()


def main(args: argparse.Namespace) -> int:
    import pandas as pd

    from .datasets import find_ravdess, fold_of
    from .registry import REPORTS_DIR, WEIGHTS_DIR, save_checkpoint

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
    probe.head.load_sklearn(_classifier().fit(feats, labels))
    probe.baseline_head.load_sklearn(_classifier().fit(baseline_relative(feats, labels, actors), labels))
    meta = {"data": "RAVDESS speech, actors 01-20", "cv": {k: v for k, v in res.items() if k != "command"},
            "ensemble_weight": ENSEMBLE_WEIGHT, "c": PROBE_C,
            "temperature": res.get("ensemble", {}).get("temperature", 1.0),
            "command": res["command"]}
    digest = save_checkpoint(Path(args.weights or WEIGHTS_DIR) / "voice_probe.pt", "voice_probe", probe, meta,
                             keep_fp32=("head.", "baseline_head."))
    log.info("wrote voice_probe.pt (%s)", digest[:12])
    return 0
