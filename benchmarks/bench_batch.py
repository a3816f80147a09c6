"""Batch throughput: recordings per hour and real-time factor for the local worker pool and for a
local Ray instance, on the same generated recordings.

    python benchmarks/bench_batch.py [--recordings 8] [--seconds 60] [--workers N]

Recordings are 640x360 talking-face videos with voice (benchmarks/bench_long.py's generator),
written to /dev/shm or /tmp and removed afterwards. Each engine writes to its own results folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recordings", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    from bench_long import make_long_video

    from emotion_core.batch import run_batch

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{args.recordings} recordings x {args.seconds:.0f} s")
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as d:
        inputs = Path(d) / "in"
        inputs.mkdir()
        for i in range(args.recordings):
            make_long_video(inputs, args.seconds, f"rec{i:03d}.mp4", seed=i)
        engines = [("local", False)] + ([] if args.no_ray else [("ray", True)])
        for name, use_ray in engines:
            stats = run_batch([inputs], Path(d) / f"out_{name}", workers=args.workers, use_ray=use_ray)
            print(f"{name:5s}: {stats['workers']} workers, {stats['wall_s']:.1f} s wall (model loading included), "
                  f"{stats['recordings_per_hour']:.0f} recordings/hour, {stats['real_time_factor']:.1f}x real time")
            print("       " + json.dumps(stats))


if __name__ == "__main__":
    main()
