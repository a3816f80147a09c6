"""Real-time factor and peak memory on a long recording (issue target: a 10-minute 640x360 video
at least 10x faster than real time on 2 cores, peak memory under 1.5 GB).

Speed is measured in this process (analysis only, models loaded). Peak memory is measured on the
product itself: ``python -m emotion_core analyze VIDEO --json`` in a child process (this process also
carries the clip generator's imports, a few hundred MB the product never loads).

    python benchmarks/bench_long.py [--minutes 10] [--frame-rate FPS] [VIDEO]

Without VIDEO, a 640x360 talking-face clip with voice is generated and looped (stream copy) to the
requested length in /dev/shm or /tmp, and removed afterwards.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def make_long_video(folder: Path, seconds: float, name: str = "long.mp4", seed: int = 2) -> Path:
    """A 640x360 talking-face video with voice: a generated 10 s clip looped (stream copy)."""
    from conftest import face_frame, looped_video, voiced_signal, write_video

    base = write_video(folder / f"base{seed}.mp4", [face_frame(shift=(i % 10) * 3) for i in range(100)], 10,
                       voiced_signal(10.0, seed=seed))
    video = looped_video(base, seconds, folder / name)
    base.unlink()
    return video


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("video", nargs="?")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frame-rate", type=float, default=None,
                    help="video frames read per second (default: analyze's, 2.5 for videos over 2 minutes)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from emotion_core.analysis import Analyzer

    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as d:
        video = Path(args.video) if args.video else None
        if video is None:
            video = make_long_video(Path(d), args.minutes * 60)
        a = Analyzer(frame_rate=args.frame_rate)
        rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t = time.perf_counter()
        res = a.analyze(video)
        wall = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cmd = [sys.executable, "-m", "emotion_core", "analyze", str(video), "--json"]
        if args.frame_rate:
            cmd += ["--frame-rate", str(args.frame_rate)]
        # through a small wrapper process: a child forked from this big process would report our RSS
        wrapper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
                   "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", wrapper, *cmd], cwd=ROOT, check=True, capture_output=True, text=True)
        cli_wall = time.perf_counter() - t
        cli_peak = int(out.stdout.split()[-1]) / 1024
    print(f"video {res.duration:.0f} s, analysed in {wall:.1f} s: {res.duration / wall:.1f}x real time "
          f"({args.threads} threads, {res.face.frame_rate:g} frames/s); "
          f"face frames {res.face.frames_used}/{res.face.frames_sampled}, "
          f"voice windows {len(res.voice.windows)}, timeline windows {len(res.timeline)}")
    print(f"benchmark process peak resident memory: {peak:.0f} MB (after loading the models: {rss_loaded:.0f} MB)")
    print(f"`python -m emotion_core analyze` on it: {cli_wall:.1f} s including start-up and model loading "
          f"({res.duration / cli_wall:.1f}x real time), peak resident memory {cli_peak:.0f} MB")


if __name__ == "__main__":
    main()
