"""A real browser: start `streamlit run app.py`, upload a clip through the real uploader, wait for the
result, check the label, heat map, LIME panel and tables are on the page, save a screenshot."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import MEDIA

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> str:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_upload_and_result_in_chromium(server: str, media_dir: Path) -> None:
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    clip = MEDIA / "single_face_speech.mp4"
    if not clip.exists():
        clip = media_dir / "talking.mp4"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        page.goto(server, timeout=60_000)
        page.get_by_text("Nothing analysed yet").wait_for(timeout=60_000)
        page.locator("input[type=file]").first.set_input_files(str(clip))
        page.get_by_text("Expressed emotion").wait_for(timeout=120_000)
        page.get_by_text("Red cells raise").wait_for(timeout=120_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "browser_result.png"), full_page=True)
        text = page.inner_text("body")
        assert "Confidence (calibrated)" in text and "Per emotion" in text
        assert any(e in text for e in ("happy", "neutral", "sad", "angry", "calm", "fearful", "disgust", "surprised"))
        assert page.locator("img[alt*='gradcam'], [data-testid='stImage'] img").count() >= 1  # Grad-CAM overlay
        assert page.locator(".js-plotly-plot").count() >= 2  # probability chart + LIME panel
        assert page.locator("[data-testid='stDataFrame']").count() >= 1  # per-emotion table
        assert "Traceback" not in text
        browser.close()
    assert os.path.getsize(ARTIFACTS / "browser_result.png") > 20_000
