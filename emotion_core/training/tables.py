"""Per-emotion inference tables and faithfulness figures over held-out data (``tables`` command).

Region shares of Grad-CAM on FER2013 PrivateTest faces and band shares of LIME on RAVDESS clips,
per emotion, with the deletion check and the model-randomisation check; written to ``reports/``
and shown on the app's Inference tables page.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import librosa
import numpy as np
import torch
from scipy.stats import spearmanr

from ..constants import EMOTIONS, FACE_EMOTIONS, SAMPLE_RATE
from ..explain import (
    FACE_CAM_LAYER,
    FACE_CAM_METHOD,
    OCCLUSION_PATCH,
    OCCLUSION_STRIDE,
    cam_grid,
    curve_summary,
    difference_from_mean,
    explain_voice,
    face_cams,
    face_curves,
    face_deletion,
    face_occlusion,
    map_grid,
    region_shares,
    voice_curves,
    voice_deletion,
)
from ..faces import crop_settings
from ..features import voice_windows
from ..models import FaceNet
from ..registry import LoadedModel, load_model, randomised
from .corpora import CORPUS_CLASSES, find_corpora
from .datasets import find_ravdess, load_fer
from .face_data import FRAMING, FaceSet, detect, model_inputs

FRAMING_FER = FRAMING["fer"][:2]

log = logging.getLogger(__name__)


def _spread(rows: list[dict[str, float]]) -> tuple[dict, dict]:
    keys = list(rows[0])
    arr = np.array([[r[k] for k in keys] for r in rows])
    return dict(zip(keys, arr.mean(0).tolist(), strict=True)), dict(zip(keys, arr.std(0).tolist(), strict=True))


CAM_CANDIDATES = ((4, "layercam"), (4, "gradcam"), (4, "hirescam"), (7, "layercam"), (7, "gradcam"),
                  (10, "layercam"), (10, "gradcam"), (10, "hirescam"))
"""(block, method) pairs compared on PublicTest; the app's FACE_CAM_LAYER / FACE_CAM_METHOD is the winner."""


def _sample(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(len(FACE_EMOTIONS))])


def face_inputs(fer_root: str | Path, split: str, lm: LoadedModel, per_class: int, seed: int
                ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A class-balanced sample of FER2013 faces as the face model reads them (re-cropped by MTCNN and aligned
    when the model was trained so), their landmarks in the 48-pixel input (NaN where MTCNN found none) and labels."""
    data = load_fer(fer_root, split)
    idx = _sample(data.labels, per_class, seed)
    boxes, points = detect(data.images[idx], "fer")
    fs = FaceSet(f"fer_{split}", data.images[idx], data.labels[idx], [data.files[i] for i in idx],
                 np.array([""] * len(idx)), boxes, points)
    crop = crop_settings(lm.meta)
    if crop["align"]:
        inputs, pts = model_inputs(fs, align=True, margin=crop["margin"])
    else:  # the model reads FER2013's own crops; landmarks mapped into them
        inputs, (scale, pad) = data.images[idx], FRAMING_FER
        pts = (points - pad) / scale
    return inputs.astype(np.float32) / 255, pts, [FACE_EMOTIONS[c] for c in data.labels[idx]]


def cam_study(lm: LoadedModel, faces: np.ndarray, targets: list[str]) -> list[dict]:
    """Deletion test (20 % of pixels, against random maps of the same smoothness) for each CAM_CANDIDATE."""
    rows = []
    for layer, method in CAM_CANDIDATES:
        cams = face_cams(lm, faces, targets, method, layer)
        di, dr = face_deletion(lm, faces, cams, targets, grid=cam_grid(lm, layer))
        rows.append({"layer": layer, "method": method, "grid": cam_grid(lm, layer), "drop_important": float(di.mean()),
                     "drop_random": float(dr.mean()), "important_beats_random": float((di > dr).mean())})
        log.info("CAM study: %s", rows[-1])
    return rows


def region_table(maps: np.ndarray, pts: np.ndarray, targets: list[str]) -> dict:
    """Mean and spread of each emotion's region shares (regions from each face's landmarks) and each
    emotion's difference from the mean over emotions: the committed per-emotion face table."""
    rows = [region_shares(m, p) for m, p in zip(maps, pts, strict=True)]
    mean, std = {}, {}
    for emo in FACE_EMOTIONS:
        mean[emo], std[emo] = _spread([r for r, t in zip(rows, targets, strict=True) if t == emo])
    landmarked = float(np.isfinite(pts[:, 0, 0]).mean())
    return {"mean": mean, "std": std, "difference": difference_from_mean(mean), "n": len(maps),
            "target": "true class", "split": "FER2013 PrivateTest",
            "regions": f"from each face's MTCNN landmarks ({landmarked:.0%} of faces), else the fixed template"}


def face_tables(fer_root: str | Path, per_class: int = 100, seed: int = 0, method: str = FACE_CAM_METHOD,
                layer: int = FACE_CAM_LAYER, study_per_class: int = 20) -> tuple[dict, dict]:
    """Region shares per emotion (CAM for the true class on PrivateTest faces, regions from each face's
    landmarks), faithfulness (deletion at 20 % and deletion/insertion curves against random maps) and the
    model-randomisation check; the CAM layer and method compared beforehand on PublicTest faces."""
    lm = load_model("face")
    study_faces, _, study_targets = face_inputs(fer_root, "public", lm, study_per_class, seed)
    study = cam_study(lm, study_faces, study_targets)
    best = max(study, key=lambda r: (r["important_beats_random"], r["drop_important"] - r["drop_random"]))
    if (best["layer"], best["method"]) != (layer, method):
        log.warning("PublicTest prefers %s at block %d; the tables use %s at block %d", best["method"], best["layer"],
                    method, layer)
    faces, pts, targets = face_inputs(fer_root, "private", lm, per_class, seed)
    cams = np.concatenate([face_cams(lm, faces[i: i + 64], targets[i: i + 64], method, layer)
                           for i in range(0, len(faces), 64)])
    grid = cam_grid(lm, layer)
    judged = face_faithfulness(lm, faces, cams, targets, grid, partial(face_cams, method=method, layer=layer),
                               n_randomised=200, seed=seed)
    table = region_table(cams, pts, targets) | {"method": method, "layer": layer, "grid": grid,
                                                 "command": "python -m emotion_core tables --data DATA_DIR"}
    judged["curves"] |= {"replacement": "the face blurred (Gaussian, sigma 3 px)",
                         "random": f"random maps of {grid}x{grid} cells, upsampled like the CAM"}
    faith = {"n": len(faces), "deletion_fraction": 0.2, "method": method, "layer": layer} | judged | {
        "cam_study": {"split": "FER2013 PublicTest", "n": len(study_faces), "rows": study,
                      "best": {"layer": best["layer"], "method": best["method"]}}}
    return table, faith


def occlusion_faithfulness(fer_root: str | Path, per_class: int = 100, seed: int = 0) -> tuple[dict, dict]:
    """The face deletion test, curves and randomisation check for occlusion maps (``explain.face_occlusion``) on
    the same PrivateTest faces as the CAM's (``face_tables``), and their region table; occlusion was compared on
    PublicTest first."""
    lm = load_model("face")
    grid = map_grid(lm, "occlusion")
    study_faces, _, study_targets = face_inputs(fer_root, "public", lm, max(1, per_class // 5), seed)
    si, sr = face_deletion(lm, study_faces, face_occlusion(lm, study_faces, study_targets), study_targets, grid=grid)
    study = {"split": "FER2013 PublicTest (the CAM study's faces)", "n": len(study_faces),
             "drop_important": float(si.mean()), "drop_random": float(sr.mean()),
             "important_beats_random": float((si > sr).mean())}
    log.info("occlusion on PublicTest: %s", study)
    faces, pts, targets = face_inputs(fer_root, "private", lm, per_class, seed)
    maps = face_occlusion(lm, faces, targets)
    judged = face_faithfulness(lm, faces, maps, targets, grid, face_occlusion, n_randomised=100, seed=seed)
    judged["curves"] |= {"replacement": "the face blurred (Gaussian, sigma 3 px): the same replacement the "
                                        "occlusion map is made with",
                         "random": f"random maps of {grid}x{grid} cells"}
    command = "python -m emotion_core tables --data DATA_DIR --only face-occlusion"
    table = region_table(maps, pts, targets) | {"method": "occlusion", "grid": grid, "patch": OCCLUSION_PATCH,
                                                "stride": OCCLUSION_STRIDE, "command": command}
    return table, {"n": len(faces), "deletion_fraction": 0.2, "method": "occlusion", "patch": OCCLUSION_PATCH,
                   "stride": OCCLUSION_STRIDE, "split": "FER2013 PrivateTest"} | judged | {
                       "study": study, "command": command}


def face_faithfulness(lm: LoadedModel, faces: np.ndarray, maps: np.ndarray, targets: list[str], grid: int,
                      maps_of: Callable[[LoadedModel, np.ndarray, list[str]], np.ndarray], n_randomised: int,
                      seed: int) -> dict:
    """What every face map is judged by, whatever made it: deletion of its top 20 % against random maps of
    ``grid`` cells, deletion/insertion curves, and (Adebayo et al.'s check) how alike the maps of the first
    ``n_randomised`` faces stay when ``maps_of`` explains a network of the same architecture with random weights."""
    drop_imp, drop_rand = face_deletion(lm, faces, maps, targets, grid=grid)
    curves = curve_summary(face_curves(lm, faces, maps, targets, grid=grid))
    torch.manual_seed(seed)
    rand = LoadedModel("face", FaceNet(lm.model.cfg).eval())  # same architecture, random weights
    sub = slice(0, min(n_randomised, len(faces)))
    corr = [_spearman(a.ravel(), b.ravel())
            for a, b in zip(maps[sub], maps_of(rand, faces[sub], targets[sub]), strict=True)]
    return {"grid": grid, "drop_important_mean": float(drop_imp.mean()), "drop_random_mean": float(drop_rand.mean()),
            "important_beats_random": float((drop_imp > drop_rand).mean()), "curves": curves,
            "randomised_model_spearman_mean": float(np.nanmean(corr)), "randomisation_n": len(corr)}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    r = spearmanr(a, b).statistic
    return float(r) if np.isfinite(r) else 0.0


def voice_tables(ravdess_root: str | Path, per_class: int = 15, samples: int = 200, seed: int = 0
                 ) -> tuple[dict, dict]:
    """Band and time shares of positive LIME weight per emotion (true class), deletion check and
    the model-randomisation check, on RAVDESS clips."""
    items = find_ravdess(ravdess_root)
    rng = np.random.default_rng(seed)
    chosen = [(it.path, it.label) for c in range(len(EMOTIONS))
              for it in rng.permutation([i for i in items if i.emotion == c])[:per_class]]
    table, faith = explain_clips(chosen, samples, seed)
    table |= {"clips": "RAVDESS speech actors 01-20 (the shipped model was trained on them)",
              "command": "python -m emotion_core tables --data DATA_DIR"}
    return table, faith


def unseen_voice_faithfulness(data_dir: str | Path, per_class: int = 8, samples: int = 200, seed: int = 0) -> dict:
    """The voice faithfulness measurement on speech the shipped model never heard: URDU and TurEV-DB clips
    (``per_class`` of each corpus's classes), explained for their true emotion."""
    clips = find_corpora(data_dir, ("urdu", "turev"))
    rng = np.random.default_rng(seed)
    chosen = [(c.path, c.label) for corpus in ("urdu", "turev") for e in CORPUS_CLASSES[corpus]
              for c in rng.permutation([c for c in clips if c.corpus == corpus and c.label == e])[:per_class]]
    _, faith = explain_clips(chosen, samples, seed)
    return faith | {"clips": f"URDU and TurEV-DB, {per_class} clips per class of each (never heard by the model)",
                    "command": "python -m emotion_core tables --data DATA_DIR --only voice-unseen"}


def explain_clips(chosen: list[tuple[Path, str]], samples: int, seed: int) -> tuple[dict, dict]:
    """LIME on each clip's most voiced window for its true emotion: band/time shares per emotion, the deletion
    check and curves, and the model-randomisation check (every fourth clip)."""
    lm = load_model("voice")
    rand = randomised(lm, seed)  # both members of the ensemble re-initialised
    bands, times, imp, ran, corr = {e: [] for e in EMOTIONS}, {e: [] for e in EMOTIONS}, [], [], []
    curves: dict[str, list[np.ndarray]] = {}
    t0 = time.time()
    for n, (path, label) in enumerate(chosen):
        y, _ = librosa.load(path, sr=SAMPLE_RATE)
        s, e, _ = max(voice_windows(y) or [(0.0, len(y) / SAMPLE_RATE, 1.0)], key=lambda w: (w[1] - w[0]) * w[2])
        ex = explain_voice(lm, y, s, e, [label], samples, seed)
        bands[label].append(ex.band_shares(label))
        times[label].append(ex.time_shares(label))
        di, dr = voice_deletion(lm, ex, label)
        imp.append(di)
        ran.append(dr)
        for k, v in voice_curves(lm, ex, label, seed).items():
            curves.setdefault(k, []).append(v[0])
        if n % 4 == 0:
            rex = explain_voice(rand, y, s, e, [label], samples, seed)
            corr.append(_spearman(ex.weights[label], rex.weights[label]))
        if n % 20 == 0:
            log.info("voice tables: %d/%d clips (%.0fs)", n + 1, len(chosen), time.time() - t0)
    mean, std = {}, {}
    for emo in [e for e in EMOTIONS if bands[e]]:
        mean[emo], std[emo] = _spread(bands[emo])
    table = {"mean": mean, "std": std, "difference": difference_from_mean(mean),
             "time_mean": {e: np.mean(times[e], 0).tolist() if times[e] else None for e in EMOTIONS},
             "n": len(chosen), "samples": samples, "target": "true class"}
    faith = {"n": len(chosen), "deleted_segments": 5, "drop_important_mean": float(np.mean(imp)),
             "drop_random_mean": float(np.mean(ran)), "important_beats_random": float(np.mean(np.array(imp) > np.array(ran))),
             "curves": curve_summary({k: np.stack(v) for k, v in curves.items()}) |
             {"replacement": "silence (the spectrogram's floor)", "random": "random orders of LIME's 40 cells (mean of 3)"},
             "randomised_model_spearman_mean": float(np.mean(corr)), "randomisation_n": len(corr)}
    return table, faith


OCCLUSION_REGIONS = "face_regions_occlusion.json"
"""The region table of the app's default face map (occlusion); face_regions.json is LayerCAM's."""


def write_tables(data_dir: str | Path, reports: str | Path, quick: bool = False, only: str | None = None) -> dict:
    data_dir, reports = Path(data_dir), Path(reports)
    reports.mkdir(parents=True, exist_ok=True)
    path = reports / "faithfulness.json"
    faith = json.loads(path.read_text()) if path.exists() else {}  # what this run does not measure is kept

    def voice() -> tuple[dict, dict]:
        return voice_tables(data_dir / "ravdess-speech-16k", per_class=1 if quick else 15, samples=60 if quick else 200)

    if only:  # one measurement, merged into the committed faithfulness report
        out = {}
        if only == "voice-unseen":
            part = unseen_voice_faithfulness(data_dir, per_class=1 if quick else 8, samples=60 if quick else 200)
        elif only == "face":
            out["face_regions.json"], part = face_tables(data_dir / "fer2013", per_class=5 if quick else 100,
                                                         study_per_class=2 if quick else 20)
            out["face_regions.json"]["command"] = part["command"] = "python -m emotion_core tables --data DATA_DIR --only face"
        elif only == "voice":
            out["voice_bands.json"], part = voice()
            out["voice_bands.json"]["command"] = part["command"] = "python -m emotion_core tables --data DATA_DIR --only voice"
        else:
            out[OCCLUSION_REGIONS], part = occlusion_faithfulness(data_dir / "fer2013", per_class=2 if quick else 100)
        faith[only.replace("-", "_")] = part
        if not quick:
            path.write_text(json.dumps(faith, indent=2))
            for name, table in out.items():
                (reports / name).write_text(json.dumps(table, indent=2))
        return {"faithfulness": faith, **out}
    ft, ff = face_tables(data_dir / "fer2013", per_class=5 if quick else 100, study_per_class=2 if quick else 20)
    vt, vf = voice()
    faith |= {"face": ff, "voice": vf}
    if not quick:
        (reports / "face_regions.json").write_text(json.dumps(ft, indent=2))
        (reports / "voice_bands.json").write_text(json.dumps(vt, indent=2))
        path.write_text(json.dumps(faith, indent=2))
    return {"face_regions": ft, "voice_bands": vt, "faithfulness": faith}
