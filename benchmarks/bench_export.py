"""A session-length recording exported for ELAN and Praat: time taken, and whether the files hold what the JSON says.

    python benchmarks/bench_export.py [--minutes 10] [VIDEO]

Runs ``python -m emotion_core analyze VIDEO --json --eaf OUT.eaf --textgrid OUT.TextGrid`` as its own process
(VIDEO looped to ``--minutes`` by stream copy; without VIDEO a generated talking-face clip), opens both files
with pympi and prints: the wall time, the tiers and their annotation counts, and the largest gap in
milliseconds between the ELAN voice tier and the JSON's voice windows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    from bench_long import make_long_video
    from conftest import looped_video
    from pympi.Elan import Eaf
    from pympi.Praat import TextGrid

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("video", nargs="?")
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="bench-export-", dir=shm if shm.is_dir() else None) as d:
        folder = Path(d)
        seconds = args.minutes * 60
        video = looped_video(Path(args.video), seconds, folder / "session.mp4") if args.video else \
            make_long_video(folder, seconds, "session.mp4")
        eaf_path, tg_path = folder / "session.eaf", folder / "session.TextGrid"
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "emotion_core", "analyze", str(video), "--json", "--eaf",
                            str(eaf_path), "--textgrid", str(tg_path)], capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        if p.returncode:
            raise SystemExit(p.stderr[-2000:])
        doc = json.loads(p.stdout)
        eaf = Eaf(str(eaf_path))
        grid = TextGrid(str(tg_path))
        windows = doc["modalities"]["voice"]["windows"]
        voice = sorted(eaf.get_annotation_data_for_tier("voice"))
        gap = max(max(abs(s - 1000 * w["start"]), abs(e - 1000 * w["end"])) for (s, e, _), w in
                  zip(voice, windows, strict=True))
        print(json.dumps({
            "video": args.video or "generated", "duration_s": doc["timeline"][-1]["end"], "wall_s": round(wall, 1),
            "eaf_tiers": {t: len(eaf.get_annotation_data_for_tier(t)) for t in eaf.get_tier_names()},
            "textgrid_tiers": {t.name: sum(bool(iv[2].strip()) for iv in t.get_intervals()) for t in grid.get_tiers()},
            "voice_tier_equals_json_windows": len(voice) == len(windows), "max_gap_ms": gap,
            "eaf_kb": round(eaf_path.stat().st_size / 1024), "textgrid_kb": round(tg_path.stat().st_size / 1024),
        }, indent=1))


if __name__ == "__main__":
    main()
