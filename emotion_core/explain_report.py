"""The ``explain`` command's report for one input: Grad-CAM overlays, LIME panels (PNG) and
explanation.json. (The per-emotion tables over held-out data: ``emotion_core.training.tables``.)

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
from pathlib import Path

import numpy as np

from .analysis import Analyzer
from .constants import EMOTIONS, FACE_EMOTIONS
from .explain import (
    BAND_EDGES,
    BAND_NAMES,
    FACE_MAP_METHOD,
    LIME_SAMPLES,
    explain_voice,
    face_cams,
    face_deletion,
    map_grid,
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
                 all_classes: bool = False, method: str = FACE_MAP_METHOD, samples: int = LIME_SAMPLES) -> dict:
    """Write overlays, LIME panels and explanation.json for one input into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = analyzer.analyze(path, keep_audio=True)
    doc: dict = {"schema": 1, "file": res.file, "label": res.label,
                 "probs": None if res.probs is None else dict(zip(EMOTIONS, map(float, res.probs), strict=True)),
                 "face": None, "voice": None, "warnings": list(res.warnings), "error": res.error}
    if res.face is not None:
        frames_doc = []
        for fr in (res.kept_frames[j] for j in res.moment_frames()):
            targets = list(FACE_EMOTIONS) if all_classes else [target if target in FACE_EMOTIONS else fr.face_label]
            cams = face_cams(analyzer.models.face, np.stack([fr.face_input] * len(targets)), targets, method)
            drops = face_deletion(analyzer.models.face, np.stack([fr.face_input] * len(targets)), cams, targets,
                                  grid=map_grid(analyzer.models.face, method))
            for t, cam, di, dr in zip(targets, cams, *drops, strict=True):
                name = f"face_{fr.t:.1f}s_{t}.png"
                _save_png(overlay(fr.crop_rgb, cam), out / name)
                frames_doc.append({"t": round(fr.t, 3), "face_label": fr.face_label, "target": t, "overlay": name,
                                   "regions": region_shares(cam, fr.landmarks_at(cam.shape[0])),
                                   "faithfulness": {"drop_important": float(di), "drop_random": float(dr)}})
        doc["face"] = {"method": method, "frames": frames_doc}
    if res.voice is not None:
        w = res.voice_windows[res.main_voice_window()]
        voice_label = EMOTIONS[int(np.argmax(w.probs))]
        targets = list(EMOTIONS) if all_classes else [target or voice_label]
        ex = explain_voice(analyzer.models.voice, res.audio, w.start, w.end, targets, samples)
        panels = []
        for emo in targets:
            name = f"voice_lime_{emo}.png"
            _lime_png(ex, emo, out / name)
            di, dr = voice_deletion(analyzer.models.voice, ex, emo)
            panels.append({"emotion": emo, "png": name, "fit_r2": ex.score[emo], "stability": ex.stability[emo],
                           "unstable": ex.unstable(emo), "bands": ex.band_shares(emo),
                           "time": ex.time_shares(emo), "faithfulness": {"drop_important": di, "drop_random": dr}})
        doc["voice"] = {"window": [w.start, w.end], "voice_label": voice_label, "samples": samples, "panels": panels}
    (out / "explanation.json").write_text(json.dumps(doc, indent=2))
    return doc
