"""A session-length recording in the app against the command line, in the same run (issue targets:
the app's analysis within 1.3x of ``python -m emotion_core analyze`` on the same file, server memory
under 1.5 GB after the upload with its explanations).

    python benchmarks/bench_session.py [VIDEO] [--minutes 10]

Without VIDEO, a 640x360 talking-face video with voice is generated (benchmarks/bench_long.py) and
removed afterwards. Prints the command's time (start-up and model loading included), the app's time
from upload to the session view (its models loaded by a warm-up upload of a short clip), and the server's resident memory once
the Grad-CAM and LIME panels are drawn.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("video", nargs="?")
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    from bench_app import open_page, rss_mb, served, warm_up_clip
    from bench_long import make_long_video
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as d:
        video = Path(args.video) if args.video else make_long_video(Path(d), args.minutes * 60)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "emotion_core", "analyze", str(video), "--json"], cwd=ROOT, check=True,
                       capture_output=True)
        cli = time.perf_counter() - t
        print(f"`python -m emotion_core analyze` on {video.name}: {cli:.1f} s (start-up and model loading included)",
              flush=True)
        with served() as (server, url, _), sync_playwright() as p:
            browser, page = open_page(p, url, height=2400)
            page.locator("input[type=file]").first.set_input_files(str(warm_up_clip()))  # loads the models
            page.get_by_text("Expressed emotion").wait_for(timeout=120_000)
            t = time.perf_counter()  # the same page replaces its upload
            page.locator("input[type=file]").first.set_input_files(str(video))
            page.get_by_text("Share of the time").wait_for(timeout=900_000)
            app = time.perf_counter() - t
            print(f"app, upload to session view: {app:.1f} s = {app / cli:.2f}x the command", flush=True)
            page.get_by_text("Red cells raise").wait_for(timeout=300_000)
            page.wait_for_timeout(3000)
            print(f"server memory after the upload with its explanations: {rss_mb(server.pid):.0f} MB")
            browser.close()


if __name__ == "__main__":
    main()
