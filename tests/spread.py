"""Float comparisons whose tolerance depends on the CPU path, and the record that sets those tolerances.

Float results move with the CPU's instruction set (AVX-512 or AVX2, native bfloat16 or not, the oneDNN kernels
chosen) and with the thread count. Each comparison below that can see such a difference goes through
:func:`within`, naming its check; with ``EMOTION_SPREAD_LOG=FILE`` every observed difference is appended to
FILE (one JSON line), and ``python benchmarks/tolerance_spread.py`` runs these checks on each CPU path and
thread count and prints the largest difference seen per check beside its tolerance. The tolerances live in
``TOLERANCES`` with the measurement behind each. Labels, keys, windows, frames and files stay exact.
"""

from __future__ import annotations

import json
import os

TOLERANCES: dict[str, float] = {}
"""Filled below, one entry per check, each with the largest spread measured and the margin taken."""

# analyze --json against tests/reference/*.jsonl (written on an AVX-512 CPU): largest probability difference
# seen 3.1e-3 on AVX2 CPUs (issue #31, and benchmarks/tolerance_spread.py here); ~3x margin.
TOLERANCES["golden_analyze"] = 1e-2
# Two L-BFGS fits of the same convex problem (plain and one-hot-target cross-entropy): weights differ by the
# optimiser's stopping point, 1.9e-4 on an AVX2 CPU (issue #31); ~5x margin.
TOLERANCES["fit_softmax_one_hot"] = 1e-3
# Our heads against scikit-learn's logistic regression (LBFGS against lbfgs): stopping points again.
TOLERANCES["head_vs_sklearn"] = 1e-3
TOLERANCES["masked_head_vs_sklearn"] = 2e-3
# Our PyTorch Whisper encoder against CTranslate2's (different kernels, float32 throughout).
TOLERANCES["whisper_vs_ctranslate2"] = 1e-2
# The same faces through analyze --crop-is-face and the evaluation path (other batch sizes).
TOLERANCES["crop_is_face_vs_training"] = 1e-4
# LIME weights with another batch size (the network sees other batch shapes).
TOLERANCES["lime_batch_size"] = 1e-5
# LIME's batches in bfloat16 against float32: 1.1e-2 on an AVX2 CPU (bfloat16 emulated); ~3x margin.
TOLERANCES["lime_bfloat16"] = 3e-2
# Four sessions at once against each alone (same process; other batch timing, same kernels).
TOLERANCES["concurrent_vs_alone"] = 1e-5


def within(check: str, observed: float) -> bool:
    """``observed <= TOLERANCES[check]``; with ``EMOTION_SPREAD_LOG`` set, the observation is recorded."""
    tolerance = TOLERANCES[check]
    log = os.environ.get("EMOTION_SPREAD_LOG")
    if log:
        import torch

        row = {"check": check, "observed": float(observed), "tolerance": tolerance,
               "capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}
        with open(log, "a") as f:
            f.write(json.dumps(row) + "\n")
    return observed <= tolerance
