"""How stable LIME's picture of a voice window is, by number of samples (issue #18's measurement).

    python -m emotion_core evaluate lime-stability --data RAVDESS_SPEECH_DIR

For 12 RAVDESS clips (drawn with a fixed seed from actors 01-20; all clips of a smaller folder), the shipped voice
model's prediction on the clip's first voice window is explained with LIME with S different seeds at
each sample budget. Two explanations of the same window agree when they put the same cells on top:
``top_overlap`` is the share of the top-5 cells (of 40) that two seeds have in common, ``spearman``
the rank correlation of all 40 weights; both are averaged over seed pairs and clips. ``r2`` is LIME's
own fit of its local linear model. ``bootstrap`` is the stability each explanation reports about itself
(``explain.bootstrap_stability``, what the app warns on), set beside the seed agreement of the same window:
``bootstrap_vs_seeds_spearman`` says whether a window the app flags is one whose seeds disagree. Writes
``reports/lime_stability.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import time
from pathlib import Path

import numpy as np

from ..constants import SAMPLE_RATE
from ..explain import TOP_CELLS, UNSTABLE_BELOW, explain_voice
from ..features import voice_windows
from ..registry import REPORTS_DIR, load_model
from .datasets import find_ravdess, fold_of, load_waveforms

log = logging.getLogger(__name__)

SIZES = (50, 100, 200, 300, 500, 1000, 2000)
TOP = TOP_CELLS
COMMAND = "python -m emotion_core evaluate lime-stability --data RAVDESS_SPEECH_DIR"


def agreement(a: np.ndarray, b: np.ndarray, top: int = TOP) -> tuple[float, float]:
    """(share of the top cells in common, Spearman rank correlation) of two LIME weight vectors."""
    from scipy.stats import spearmanr

    ta, tb = set(np.argsort(-a)[:top]), set(np.argsort(-b)[:top])
    rho = spearmanr(a, b).statistic
    return len(ta & tb) / top, float(0.0 if np.isnan(rho) else rho)


def stability(model, windows: list[np.ndarray], sizes: tuple[int, ...], seeds: int) -> dict:
    """The agreement between seeds at each sample budget, averaged over windows and seed pairs."""
    out = {}
    for n in sizes:
        overlaps, rhos, r2, t0 = [], [], [], time.perf_counter()
        per_window, boot = [], []
        for audio in windows:
            exps = [explain_voice(model, audio, n_samples=n, seed=s) for s in range(seeds)]
            target = next(iter(exps[0].weights))
            pairs = [agreement(a.weights[target], b.weights[target]) for a, b in itertools.combinations(exps, 2)]
            overlaps += [o for o, _ in pairs]
            rhos += [r for _, r in pairs]
            per_window.append(float(np.mean([o for o, _ in pairs])))
            boot.append(float(np.mean([e.stability[target] for e in exps])))
            r2 += [e.score[target] for e in exps]
        secs = (time.perf_counter() - t0) / (len(windows) * seeds)
        from scipy.stats import spearmanr

        flagged = np.array(boot) < UNSTABLE_BELOW
        rho = spearmanr(boot, per_window).statistic if len(set(boot)) > 1 and len(set(per_window)) > 1 else None
        out[str(n)] = {"top_overlap": float(np.mean(overlaps)), "top_overlap_min": float(np.min(overlaps)),
                       "spearman": float(np.mean(rhos)), "r2": float(np.mean(r2)), "seconds_per_explanation": secs,
                       "bootstrap": float(np.mean(boot)),
                       "bootstrap_vs_seeds_spearman": None if rho is None or np.isnan(rho) else float(rho),
                       "flagged_unstable": float(flagged.mean()),
                       "seed_overlap_flagged": float(np.mean(np.array(per_window)[flagged])) if flagged.any() else None,
                       "seed_overlap_not_flagged": float(np.mean(np.array(per_window)[~flagged]))
                       if (~flagged).any() else None}
        log.info("%5d samples: top-%d overlap %.2f, Spearman %.2f, R2 %.2f, %.2f s each", n, TOP,
                 out[str(n)]["top_overlap"], out[str(n)]["spearman"], out[str(n)]["r2"], secs)
    return out


def main(args: argparse.Namespace) -> int:
    items = [it for it in find_ravdess(args.data) if fold_of(it.actor) is not None]
    n_clips = min(len(items), 4 if args.quick else 12)
    picked = [items[i] for i in sorted(np.random.default_rng(0).choice(len(items), n_clips, replace=False))]
    windows = []
    for (y,) in load_waveforms(picked, (1.0,)):
        s, e, _ = (voice_windows(y) or [(0.0, len(y) / SAMPLE_RATE, 1.0)])[0]
        windows.append(y[int(s * SAMPLE_RATE): int(e * SAMPLE_RATE)])
    model = load_model("voice", args.weights, args.device)
    sizes = (20, 40) if args.quick else tuple(int(v) for v in args.sizes.split(",")) if args.sizes else SIZES
    res = {"protocol": f"{len(windows)} RAVDESS clips (drawn with seed 0 from actors 01-20), their "
                       f"first voice window, the shipped model's predicted emotion, {args.seeds if not args.quick else 2} "
                       f"LIME seeds per budget; top-{TOP} of 40 cells", "device": str(args.device),
           "clips": [it.path.name for it in picked], "command": COMMAND,
           "by_samples": stability(model, windows, sizes, 2 if args.quick else args.seeds)}
    reports = Path(args.reports or REPORTS_DIR)
    reports.mkdir(parents=True, exist_ok=True)
    name = "lime_stability_quick.json" if args.quick else "lime_stability.json" if sizes == SIZES else \
        f"lime_stability_{'-'.join(map(str, sizes))}.json"  # a partial run keeps the full table
    (reports / name).write_text(
        json.dumps(res, indent=2) + "\n")
    print(json.dumps(res["by_samples"], indent=2))
    return 0
