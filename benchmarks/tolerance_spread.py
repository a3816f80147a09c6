"""Measure how far the suite's CPU-sensitive float checks move across CPU paths and thread counts.

    python benchmarks/tolerance_spread.py [--paths native,avx2,default] [--threads 1,2] [-- PYTEST ARGS]

Runs the tests marked ``numeric`` once per (CPU path, torch thread count) with ``EMOTION_SPREAD_LOG`` set (see
tests/spread.py), then prints, per check, its tolerance and the largest difference seen on each run. A CPU
path is what ATen and oneDNN may use: ``native`` (whatever this CPU offers), ``avx2`` (as a CPU without
AVX-512 behaves: ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2) and ``default`` (no vector extensions
in ATen's own kernels). Tests must pass on every run; the printed table is what sets tests/spread.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paths", default="native,avx2,default")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = ap.parse_args()
    rows: list[dict] = []
    failed = []
    with tempfile.TemporaryDirectory() as d:
        for path in args.paths.split(","):
            for threads in args.threads.split(","):
                log = Path(d) / f"{path}-{threads}.jsonl"
                env = {**os.environ, **PATHS[path], "OMP_NUM_THREADS": threads, "EMOTION_SPREAD_LOG": str(log)}
                cmd = [sys.executable, "-m", "pytest", "-m", "numeric", "-q", "-p", "no:cacheprovider", *args.pytest_args]
                print(f"== {path}, {threads} thread(s): {' '.join(cmd)}", flush=True)
                r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
                print(r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-2000:], flush=True)
                if r.returncode:
                    failed.append(f"{path}/{threads}")
                if log.exists():
                    rows += [{**json.loads(line), "run": f"{path}/{threads}"} for line in log.read_text().splitlines()]
    worst: dict[str, dict[str, float]] = defaultdict(dict)
    tol: dict[str, float] = {}
    caps: dict[str, str] = {}
    for r in rows:
        worst[r["check"]][r["run"]] = max(worst[r["check"]].get(r["run"], 0.0), r["observed"])
        tol[r["check"]] = r["tolerance"]
        caps[r["run"]] = f"{r['capability']}, {r['threads']} thr"
    runs = sorted(caps)
    print("\nruns: " + "; ".join(f"{k} = {v}" for k, v in caps.items()))
    print(f"{'check':28s} {'tolerance':>9s} {'largest':>9s}  " + "  ".join(f"{r:>12s}" for r in runs))
    for check in sorted(worst):
        seen = worst[check]
        print(f"{check:28s} {tol[check]:9.1e} {max(seen.values()):9.1e}  "
              + "  ".join(f"{seen.get(r, float('nan')):12.1e}" for r in runs))
    if failed:
        print("failed runs: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
