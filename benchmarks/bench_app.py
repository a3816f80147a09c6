"""The app as a user meets it, in a real browser (Debian chromium through Playwright):

    python benchmarks/bench_app.py [CLIP ...]

prints cold start to first page, upload-to-result time per clip (after a warm-up upload of a
generated clip, so no measured clip is a cache hit), and the server's resident memory after the
clips. Targets (issue): first page < 15 s, a 4-second
clip's result <= 3 s after warm-up, memory after three clips < 1.5 GB.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT.parent / "shared" / "data" / "media"


def rss_mb(pid: int) -> float:
    total = 0.0
    for p in [pid, *map(int, subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split())]:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                total += int(line.split()[1]) / 1024
    return total


def warm_up_clip() -> Path:
    """A generated 4-second talking-face clip, different from every measured one."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import face_frame, voiced_signal, write_video

    path = Path(tempfile.mkdtemp(prefix="bench-app-")) / "warm_up.mp4"
    return write_video(path, [face_frame(shift=(i % 5) * 4) for i in range(40)], 10, voiced_signal(4.0, seed=7))


@contextmanager
def served() -> Iterator[tuple[subprocess.Popen, str, float]]:
    """``streamlit run app.py`` on a free port: (process, url, start time), stopped on exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.headless", "true"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        yield server, f"http://127.0.0.1:{port}", t0
    finally:
        server.terminate()
        server.wait(timeout=20)


def open_page(p, url: str, height: int = 1200):
    """Chromium on the app's first page (retrying while the server starts)."""
    browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
    page = browser.new_page(viewport={"width": 1400, "height": height})
    while True:
        try:
            page.goto(url, timeout=2000)
            break
        except Exception:
            time.sleep(0.2)
    page.get_by_text("Nothing analysed yet").wait_for(timeout=60_000)
    return browser, page


def main() -> None:
    from playwright.sync_api import sync_playwright

    clips = [Path(c) for c in sys.argv[1:]] or [MEDIA / "single_face_speech.mp4", MEDIA / "no_face.mp4",
                                                MEDIA / "single_face.mp4"]
    with served() as (server, url, t0), sync_playwright() as p:
        browser, page = open_page(p, url)
        print(f"cold start to first page: {time.perf_counter() - t0:.1f} s")
        for i, clip in enumerate([warm_up_clip(), *clips]):
            page.goto(url)
            page.get_by_text("Nothing analysed yet").wait_for(timeout=60_000)
            t = time.perf_counter()
            page.locator("input[type=file]").first.set_input_files(str(clip))
            page.get_by_text("Expressed emotion").or_(page.locator("[data-testid='stAlert']")).first.wait_for(
                timeout=120_000)
            what = "warm-up" if i == 0 else clip.name
            print(f"upload to result, {what}: {time.perf_counter() - t:.2f} s")
        page.wait_for_timeout(3000)
        print(f"server memory after {len(clips) + 1} uploads: {rss_mb(server.pid):.0f} MB")
        browser.close()


if __name__ == "__main__":
    main()
