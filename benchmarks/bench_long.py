"""Real-time factor and peak memory on a long recording (issue target: a 10-minute 640x360 video
at least 10x faster than real time on 2 cores, peak memory under 1.5 GB).

    python benchmarks/bench_long.py [--minutes 10] [--frame-rate 5] [VIDEO]

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
    import imageio_ffmpeg
    from conftest import face_frame, voiced_signal, write_video

    base = write_video(folder / f"base{seed}.mp4", [face_frame(shift=(i % 10) * 3) for i in range(100)], 10,
                       voiced_signal(10.0, seed=seed))
    video = folder / name
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-stream_loop", str(max(0, round(seconds / 10) - 1)),
                    "-i", str(base), "-c", "copy", str(video)], check=True)
    base.unlink()
    return video


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("video", nargs="?")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frame-rate", type=float, default=5.0, help="video frames read per second (analyze's default: 5)")
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
    print(f"video {res.duration:.0f} s, analysed in {wall:.1f} s: {res.duration / wall:.1f}x real time "
          f"({args.threads} threads, {args.frame_rate:g} frames/s); "
          f"face frames {res.face.frames_used}/{res.face.frames_sampled}, "
          f"voice windows {len(res.voice.windows)}, timeline windows {len(res.timeline)}")
    print(f"peak resident memory: {peak:.0f} MB (after loading the models: {rss_loaded:.0f} MB)")


if __name__ == "__main__":
    main()
