"""Metrics shared by every evaluation: accuracy, macro F1, per-class recall, confusion matrix, Cohen's
kappa, expected calibration error and temperature fitting."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), dtype=int)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def summarize(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict:
    """Accuracy, macro F1, per-class recall and the confusion matrix (rows = truth)."""
    y_true = np.asarray(y_true)
    y_pred = probs.argmax(1)
    cm = confusion(y_true, y_pred, len(classes))
    tp = np.diag(cm).astype(float)
    recall = tp / np.maximum(cm.sum(1), 1)
    precision = tp / np.maximum(cm.sum(0), 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    present = cm.sum(1) > 0
    return {
        "n": len(y_true),
        "accuracy": float((y_pred == y_true).mean()),
        "macro_f1": float(f1[present].mean()),
        "recall": {c: float(r) for c, r, p in zip(classes, recall, present, strict=True) if p},
        "confusion": cm.tolist(),
        "classes": list(classes),
        "ece": ece(y_true, probs),
    }


def cohen_kappa(cm: np.ndarray) -> float | None:
    """Cohen's kappa of a confusion matrix: agreement beyond what the two raters' base rates give by chance
    (the figure coders report for each other, so the model's can be set beside it). None when undefined."""
    cm = np.asarray(cm, float)
    n = cm.sum()
    if n == 0:
        return None
    observed = np.trace(cm) / n
    chance = float((cm.sum(0) * cm.sum(1)).sum() / n**2)
    return None if chance >= 1 else float((observed - chance) / (1 - chance))


def ece(y_true: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top-class confidence (equal-width bins)."""
    conf = probs.max(1)
    correct = probs.argmax(1) == np.asarray(y_true)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(total)


def fit_temperature(nll_at: Callable[[float], float], grid: np.ndarray | None = None) -> float:
    """The temperature minimising a held-out negative log-likelihood (coarse-to-fine grid)."""
    grid = np.exp(np.linspace(np.log(0.3), np.log(5.0), 60)) if grid is None else grid
    best = min(grid, key=nll_at)
    fine = np.linspace(best * 0.9, best * 1.1, 21)
    return float(min(fine, key=nll_at))


def nll(y_true: np.ndarray, probs: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(y_true)), y_true], 1e-12, 1)).mean())


def fold_accuracy(y_true: np.ndarray, probs: np.ndarray, folds: np.ndarray, fold_ids: Sequence[int]) -> list[float]:
    """Accuracy of the arg-max prediction within each of ``fold_ids`` (``folds``: each row's fold)."""
    return [float((probs[folds == f].argmax(1) == y_true[folds == f]).mean()) for f in fold_ids]


def paired_gain(right_a: Sequence[np.ndarray], right_b: Sequence[np.ndarray], n_resamples: int = 2000,
                seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """How much model a beats model b on the mean over sets of their accuracies, and whether beyond noise:
    ``right_*``: per set, whether each face was read right (same faces, same order, for both models). The faces
    are resampled within each set, the same draw for both models (paired), ``n_resamples`` times (seeded)."""
    rng = np.random.default_rng(seed)
    gains = np.zeros(n_resamples)
    for a, b in zip(right_a, right_b, strict=True):
        d = np.asarray(a, float) - np.asarray(b, float)
        idx = rng.integers(0, len(d), size=(n_resamples, len(d)))
        gains += d[idx].mean(1) / len(right_a)
    point = float(np.mean([np.mean(a) - np.mean(b) for a, b in zip(right_a, right_b, strict=True)]))
    lo, hi = np.quantile(gains, [(1 - level) / 2, (1 + level) / 2])
    return {"gain": point, "low": float(lo), "high": float(hi), "beyond_noise": bool(lo > 0)}
