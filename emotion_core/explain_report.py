"""Explanation reports: ``explain`` for one input (PNGs + explanation.json) and ``tables`` for the
per-emotion inference tables and the faithfulness figures over held-out data.

explanation.json schema (version 1)::

    {"schema": 1, "file": str, "label": str | null, "probs": {emotion: p} | null,
     "face": null | {"method": str, "frames": [{"t": s, "face_label": str, "target": str,
                     "overlay": "face_<t>s_<emotion>.png", "regions": {"eyes_brows", "nose", "mouth", "rest"},
                     "faithfulness": {"drop_important": x, "drop_random": x}}]},
     "voice": null | {"window": [start, end], "voice_label": str, "samples": n,
                      "panels": [{"emotion": str, "png": "voice_lime_<emotion>.png", "fit_r2": x,
                                  "bands": {band: share}, "time": [share per slice],
                                  "faithfulness": {"drop_important": x, "drop_random": x}}]},
     "warnings": [str]}
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from .analysis import Analyzer
from .constants import EMOTIONS, FACE_EMOTIONS
from .explain import (
    BAND_EDGES,
    BAND_NAMES,
    explain_voice,
    face_cams,
    face_deletion,
    overlay,
    region_shares,
    voice_deletion,
)

log = logging.getLogger(__name__)


def _save_png(arr: np.ndarray, path: Path, size: int = 320) -> None:
    from PIL import Image

    Image.fromarray(arr).resize((size, size), Image.BILINEAR).save(path)


def _lime_png(ex, emotion: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heat = ex.heatmap(emotion)
    lim = float(np.abs(heat).max()) or 1.0
    extent = (ex.start, ex.end, 0, ex.mel.shape[0])
    fig, ax = plt.subplots(figsize=(6, 2.6), dpi=110)
    ax.imshow(ex.mel, origin="lower", aspect="auto", cmap="Greys", extent=extent)
    im = ax.imshow(heat, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, alpha=0.55, extent=extent)
    ax.set_yticks(list(BAND_EDGES[:-1]), list(BAND_NAMES), fontsize=7)
    ax.set_xlabel("seconds")
    ax.set_title(f"LIME for '{emotion}' (red raises it, blue lowers it; fit R² {ex.score[emotion]:.2f})", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def explain_file(analyzer: Analyzer, path: str | Path, out: str | Path, target: str | None = None,
                 all_classes: bool = False, method: str = "gradcam", samples: int = 1000) -> dict:
    """Write overlays, LIME panels and explanation.json for one input into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = analyzer.analyze(path, keep_audio=True)
    doc: dict = {"schema": 1, "file": res.file, "label": res.label,
                 "probs": None if res.probs is None else dict(zip(EMOTIONS, map(float, res.probs), strict=True)),
                 "face": None, "voice": None, "warnings": list(res.warnings), "error": res.error}
    fidx = [EMOTIONS.index(e) for e in FACE_EMOTIONS]
    if res.face is not None:
        kept = [f for f in res.face.frames if f.crop_rgb is not None]
        # the most confident frame of each timeline window (one frame for an image)
        chosen = {}
        for w in res.timeline or [None]:
            inside = [f for f in kept if w is None or w.start <= f.t <= w.end]
            if inside:
                best = max(inside, key=lambda f: f.probs.max())
                chosen[round(best.t, 3)] = best
        frames_doc = []
        for fr in chosen.values():
            face_label = FACE_EMOTIONS[int(np.argmax(fr.probs[fidx]))]
            targets = list(FACE_EMOTIONS) if all_classes else [target if target in FACE_EMOTIONS else face_label]
            cams = face_cams(analyzer.models.face, np.stack([fr.face_input] * len(targets)), targets, method)
            drops = face_deletion(analyzer.models.face, np.stack([fr.face_input] * len(targets)), cams, targets)
            for t, cam, di, dr in zip(targets, cams, *drops, strict=True):
                name = f"face_{fr.t:.1f}s_{t}.png"
                _save_png(overlay(fr.crop_rgb, cam), out / name)
                frames_doc.append({"t": round(fr.t, 3), "face_label": face_label, "target": t, "overlay": name,
                                   "regions": region_shares(cam),
                                   "faithfulness": {"drop_important": float(di), "drop_random": float(dr)}})
        doc["face"] = {"method": method, "frames": frames_doc}
    if res.voice is not None:
        w = max(res.voice.windows, key=lambda w: (w.end - w.start) * w.activity)
        voice_label = EMOTIONS[int(np.argmax(w.probs))]
        targets = list(EMOTIONS) if all_classes else [target or voice_label]
        ex = explain_voice(analyzer.models.voice, res.audio, w.start, w.end, targets, samples)
        panels = []
        for emo in targets:
            name = f"voice_lime_{emo}.png"
            _lime_png(ex, emo, out / name)
            di, dr = voice_deletion(analyzer.models.voice, ex, emo)
            panels.append({"emotion": emo, "png": name, "fit_r2": ex.score[emo], "bands": ex.band_shares(emo),
                           "time": ex.time_shares(emo), "faithfulness": {"drop_important": di, "drop_random": dr}})
        doc["voice"] = {"window": [w.start, w.end], "voice_label": voice_label, "samples": samples, "panels": panels}
    (out / "explanation.json").write_text(json.dumps(doc, indent=2))
    return doc


# ---------------------------------------------------------------------------------------------
# Inference tables and faithfulness over held-out data
# ---------------------------------------------------------------------------------------------
def _spread(rows: list[dict[str, float]]) -> tuple[dict, dict]:
    keys = list(rows[0])
    arr = np.array([[r[k] for k in keys] for r in rows])
    return dict(zip(keys, arr.mean(0).tolist(), strict=True)), dict(zip(keys, arr.std(0).tolist(), strict=True))


def face_tables(fer_root: str | Path, per_class: int = 100, seed: int = 0, method: str = "gradcam") -> tuple[dict, dict]:
    """Region shares per emotion (Grad-CAM for the true class on PrivateTest faces), faithfulness
    (deletion vs random deletion) and the model-randomisation check."""
    import torch

    from .datasets import load_fer
    from .models import FaceConfig, FaceNet
    from .registry import LoadedModel, load_model

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
    from scipy.stats import spearmanr

    r = spearmanr(a, b).statistic
    return float(r) if np.isfinite(r) else 0.0


def voice_tables(ravdess_root: str | Path, per_class: int = 15, samples: int = 200, seed: int = 0
                 ) -> tuple[dict, dict]:
    """Band and time shares of positive LIME weight per emotion (true class), deletion check and
    the model-randomisation check, on RAVDESS clips."""
    import librosa

    from .datasets import find_ravdess
    from .features import voice_windows
    from .registry import load_model, randomised

    lm = load_model("voice")
    rand = randomised(lm, seed)  # both members of the ensemble re-initialised
    items = find_ravdess(ravdess_root)
    rng = np.random.default_rng(seed)
    chosen = [it for c in range(len(EMOTIONS))
              for it in rng.permutation([i for i in items if i.emotion == c])[:per_class]]
    bands, times, imp, ran, corr = {e: [] for e in EMOTIONS}, {e: [] for e in EMOTIONS}, [], [], []
    t0 = time.time()
    for n, it in enumerate(chosen):
        y, _ = librosa.load(it.path, sr=16000)
        s, e, _ = max(voice_windows(y) or [(0.0, len(y) / 16000, 1.0)], key=lambda w: (w[1] - w[0]) * w[2])
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
