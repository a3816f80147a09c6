"""Per-emotion inference tables and faithfulness figures over held-out data (``tables`` command).

Region shares of Grad-CAM on FER2013 PrivateTest faces and band shares of LIME on RAVDESS clips,
per emotion, with the deletion check and the model-randomisation check; written to ``reports/``
and shown on the app's Inference tables page.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import librosa
import numpy as np
import torch
from scipy.stats import spearmanr

from ..constants import EMOTIONS, FACE_EMOTIONS, SAMPLE_RATE
from ..explain import explain_voice, face_cams, face_deletion, region_shares, voice_deletion
from ..features import voice_windows
from ..models import FaceConfig, FaceNet
from ..registry import LoadedModel, load_model, randomised
from .datasets import find_ravdess, load_fer

log = logging.getLogger(__name__)


def _spread(rows: list[dict[str, float]]) -> tuple[dict, dict]:
    keys = list(rows[0])
    arr = np.array([[r[k] for k in keys] for r in rows])
    return dict(zip(keys, arr.mean(0).tolist(), strict=True)), dict(zip(keys, arr.std(0).tolist(), strict=True))


def face_tables(fer_root: str | Path, per_class: int = 100, seed: int = 0, method: str = "gradcam") -> tuple[dict, dict]:
    """Region shares per emotion (Grad-CAM for the true class on PrivateTest faces), faithfulness
    (deletion vs random deletion) and the model-randomisation check."""
    lm = load_model("face")
    data = load_fer(fer_root, "private")
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.permutation(np.flatnonzero(data.labels == c))[:per_class] for c in range(len(FACE_EMOTIONS))])
    faces = data.images[idx].astype(np.float32) / 255
    targets = [FACE_EMOTIONS[c] for c in data.labels[idx]]
    cams = np.concatenate([face_cams(lm, faces[i: i + 64], targets[i: i + 64], method) for i in range(0, len(idx), 64)])
    mean, std = {}, {}
    for c, emo in enumerate(FACE_EMOTIONS):
        rows = [region_shares(cam) for cam, y in zip(cams, data.labels[idx], strict=True) if y == c]
        mean[emo], std[emo] = _spread(rows)
    drop_imp, drop_rand = face_deletion(lm, faces, cams, targets)
    torch.manual_seed(seed)
    rand = LoadedModel("face", FaceNet(FaceConfig()).eval())
    sub = slice(0, min(200, len(idx)))
    rcams = face_cams(rand, faces[sub], targets[sub], method)
    corr = [_spearman(a.ravel(), b.ravel()) for a, b in zip(cams[sub], rcams, strict=True)]
    table = {"mean": mean, "std": std, "n": len(idx), "method": method, "target": "true class",
             "split": "FER2013 PrivateTest", "command": "python -m emotion_core tables --data DATA_DIR"}
    faith = {"n": len(idx), "deletion_fraction": 0.2, "drop_important_mean": float(drop_imp.mean()),
             "drop_random_mean": float(drop_rand.mean()), "important_beats_random": float((drop_imp > drop_rand).mean()),
             "randomised_model_spearman_mean": float(np.nanmean(corr)), "randomisation_n": len(corr)}
    return table, faith


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    r = spearmanr(a, b).statistic
    return float(r) if np.isfinite(r) else 0.0


def voice_tables(ravdess_root: str | Path, per_class: int = 15, samples: int = 200, seed: int = 0
                 ) -> tuple[dict, dict]:
    """Band and time shares of positive LIME weight per emotion (true class), deletion check and
    the model-randomisation check, on RAVDESS clips."""
    lm = load_model("voice")
    rand = randomised(lm, seed)  # both members of the ensemble re-initialised
    items = find_ravdess(ravdess_root)
    rng = np.random.default_rng(seed)
    chosen = [it for c in range(len(EMOTIONS))
              for it in rng.permutation([i for i in items if i.emotion == c])[:per_class]]
    bands, times, imp, ran, corr = {e: [] for e in EMOTIONS}, {e: [] for e in EMOTIONS}, [], [], []
    t0 = time.time()
    for n, it in enumerate(chosen):
        y, _ = librosa.load(it.path, sr=SAMPLE_RATE)
        s, e, _ = max(voice_windows(y) or [(0.0, len(y) / SAMPLE_RATE, 1.0)], key=lambda w: (w[1] - w[0]) * w[2])
        ex = explain_voice(lm, y, s, e, [it.label], samples, seed)
        bands[it.label].append(ex.band_shares(it.label))
        times[it.label].append(ex.time_shares(it.label))
        di, dr = voice_deletion(lm, ex, it.label)
        imp.append(di)
        ran.append(dr)
        if n % 4 == 0:
            rex = explain_voice(rand, y, s, e, [it.label], samples, seed)
            corr.append(_spearman(ex.weights[it.label], rex.weights[it.label]))
        if n % 20 == 0:
            log.info("voice tables: %d/%d clips (%.0fs)", n + 1, len(chosen), time.time() - t0)
    mean, std = {}, {}
    for emo in EMOTIONS:
        mean[emo], std[emo] = _spread(bands[emo])
    table = {"mean": mean, "std": std, "time_mean": {e: np.mean(times[e], 0).tolist() for e in EMOTIONS},
             "n": len(chosen), "samples": samples, "target": "true class",
             "clips": "RAVDESS speech actors 01-20 (the shipped model was trained on them)",
             "command": "python -m emotion_core tables --data DATA_DIR"}
    faith = {"n": len(chosen), "deleted_segments": 5, "drop_important_mean": float(np.mean(imp)),
             "drop_random_mean": float(np.mean(ran)), "important_beats_random": float(np.mean(np.array(imp) > np.array(ran))),
             "randomised_model_spearman_mean": float(np.mean(corr)), "randomisation_n": len(corr)}
    return table, faith


def write_tables(data_dir: str | Path, reports: str | Path, quick: bool = False) -> dict:
    data_dir, reports = Path(data_dir), Path(reports)
    reports.mkdir(parents=True, exist_ok=True)
    ft, ff = face_tables(data_dir / "fer2013", per_class=5 if quick else 100)
    vt, vf = voice_tables(data_dir / "ravdess-speech-16k", per_class=1 if quick else 15, samples=60 if quick else 200)
    faith = {"face": ff, "voice": vf}
    if not quick:
        (reports / "face_regions.json").write_text(json.dumps(ft, indent=2))
        (reports / "voice_bands.json").write_text(json.dumps(vt, indent=2))
        (reports / "faithfulness.json").write_text(json.dumps(faith, indent=2))
    return {"face_regions": ft, "voice_bands": vt, "faithfulness": faith}
