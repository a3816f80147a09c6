"""A real browser: links to each page on fresh servers; four browser sessions upload different files through the
real uploader at the same time, each must see its own result, and one is checked whole (label, heat map, LIME
panel, tables, screenshot); a long recording as a session with Cancel; the Your data page."""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import MEDIA

from emotion_core.explain import FACE_MAP_METHOD

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVER_PID: dict[str, int] = {}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def server_rss_mb(url: str) -> float:
    status = Path(f"/proc/{SERVER_PID[url]}/status").read_text().splitlines()
    return int(next(x for x in status if x.startswith("VmRSS")).split()[1]) / 1024


@contextmanager
def streamlit_servers(n: int = 1) -> Iterator[list[str]]:
    """``n`` fresh ``streamlit run app.py`` processes on free ports, started together: their URLs once each
    accepts connections."""
    ports = [free_port() for _ in range(n)]
    procs = [subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.address", "127.0.0.1", "--server.headless", "true"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    SERVER_PID.update(zip(urls, (p.pid for p in procs), strict=True))
    try:
        deadline = time.time() + 60
        for port in ports:
            while time.time() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.5)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with streamlit_servers() as (url,):
        yield url


def chromium_path() -> str:
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    return chromium


def open_app(p, chromium: str, server: str, height: int):
    """A browser on the app's first page, ready for an upload: (browser, page)."""
    browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
    page = browser.new_context(viewport={"width": 1400, "height": height}).new_page()
    page.goto(server, timeout=60_000)
    page.get_by_text("Nothing analysed yet").wait_for(timeout=60_000)
    return browser, page


DEEP_LINKS = {"your_data": "Your data", "misclassifications": "Explore misclassifications",
              "inference_tables": "Inference tables", "model_card": "Model card",
              "no_such_page": "Analyse a recording"}
"""A page's own URL, as a researcher bookmarks or sends it, and the page it must open on; a URL that is no page
lands on the Analyse page."""


def test_a_link_to_each_page_opens_it_on_a_fresh_server() -> None:
    """Each URL is the first request of a freshly started server of its own (Streamlit's file-name discovery of
    pages/ is live until some run declares the navigation): the page opens with exactly the five titled pages and
    the privacy line in the sidebar. The servers start and load together, then each page is checked."""
    from pages.ui.navigation import PAGES, PRIVACY

    chromium = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api")
    with streamlit_servers(len(DEEP_LINKS)) as servers, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        pages = {}
        for path, server in zip(DEEP_LINKS, servers, strict=True):
            pages[path] = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            pages[path].goto(f"{server}/{path}", timeout=60_000, wait_until="commit")
        for path, page in pages.items():
            page.get_by_role("heading", name=DEEP_LINKS[path]).first.wait_for(timeout=120_000)
            nav = page.locator("[data-testid='stSidebarNav'] a")
            nav.first.wait_for(timeout=30_000)
            page.wait_for_timeout(500)  # the sidebar settles after the rerun through app.py
            entries = [[x.strip() for x in a.inner_text().splitlines() if x.strip()] for a in nav.all()]
            assert entries == [[icon, title] for _, title, icon in PAGES], path  # five pages, titled, with icons
            sidebar = page.locator("[data-testid='stSidebar']").inner_text()
            assert PRIVACY in sidebar and "Traceback" not in page.inner_text("body"), path
        browser.close()


def test_four_sessions_at_once(server: str, four_uploads: list[Path], analyzer) -> None:
    """Four browser sessions (separate contexts, so separate Streamlit sessions) upload four different
    files through the real uploader within a second of each other; each page must show the label its own file
    gets alone, and the server must stay inside Community Cloud's 2.7 GB. The first (a real clip with face and
    voice where ../shared is there) must show the whole result: label, confidence, face map, LIME panel, tables."""
    chromium = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api")
    files = [MEDIA / "single_face_speech.mp4" if (MEDIA / "single_face_speech.mp4").exists() else four_uploads[0],
             *four_uploads[1:]]
    expected = {f.name: analyzer.analyze(f).label for f in files}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        pages = []
        for _ in files:
            page = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
            page.goto(server, timeout=60_000)
            page.get_by_text("Nothing analysed yet").wait_for(timeout=60_000)
            pages.append(page)
        for page, f in zip(pages, files, strict=True):
            page.locator("input[type=file]").first.set_input_files(str(f))
        for page, f in zip(pages, files, strict=True):
            # Wait for the metric itself: Streamlit loads each element's code on first use, so under
            # load the headline metric can appear seconds after the table heading below it.
            metric = page.locator("[data-testid='stMetricValue']").first
            metric.wait_for(timeout=300_000)
            page.get_by_text("Per emotion").wait_for(timeout=60_000)
            label = metric.inner_text(timeout=60_000).split()[-1]
            assert label == expected[f.name], (f.name, label, expected[f.name])
            assert "Traceback" not in page.inner_text("body")
        whole = pages[0]
        whole.get_by_text("Red cells raise").wait_for(timeout=120_000)  # the LIME panel
        whole.wait_for_timeout(1500)
        ARTIFACTS.mkdir(exist_ok=True)
        whole.screenshot(path=str(ARTIFACTS / "browser_result.png"), full_page=True)
        text = whole.inner_text("body")
        assert "Confidence (calibrated)" in text and "Per emotion" in text
        assert whole.locator("[data-testid='stImage'] img").count() >= 1  # the face map
        assert whole.locator(".js-plotly-plot").count() >= 2  # probability chart + LIME panel
        assert whole.locator("[data-testid='stDataFrame']").count() >= 1  # per-emotion table
        browser.close()
    assert os.path.getsize(ARTIFACTS / "browser_result.png") > 20_000
    assert server_rss_mb(server) < 2700


def test_a_long_recording_as_a_session_in_chromium(server: str, session_video: Path, tmp_path: Path) -> None:
    """A multi-minute talking-face video: the progress bar can cancel the analysis; analysed, the page
    shows the emotion map, the time shares and a clickable list of stretches that moves the face panel."""
    from conftest import looped_video

    chromium = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api")
    video = looped_video(session_video, 140.0, tmp_path / "two_minutes.mp4")  # 70 s twice: over two minutes
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser, page = open_app(p, chromium, server, 2400)
        page.locator("input[type=file]").first.set_input_files(str(video))
        cancel = page.get_by_role("button", name="Cancel")
        cancel.wait_for(timeout=120_000)
        page.wait_for_timeout(1500)  # a person reads the bar before clicking
        cancel.click()
        page.get_by_text("was cancelled").wait_for(timeout=60_000)
        page.get_by_role("button", name="Analyse it after all").click()
        page.get_by_text("s left").first.wait_for(timeout=60_000)  # the progress bar with the time left
        try:
            page.get_by_text("Share of the time").wait_for(timeout=600_000)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "browser_session_failed.png"), full_page=True)
            raise AssertionError(page.inner_text("body")[-1500:]) from None
        emotion_map = page.locator(".js-plotly-plot").filter(has=page.locator(".rangeslider-container"))
        emotion_map.locator(".hm").first.wait_for(timeout=60_000)  # the heat map, with its zoom slider
        stretches = page.locator("[data-testid='stButton'] button").filter(has_text=" s · ")
        stretches.first.wait_for(timeout=60_000)  # at least one stretch
        label = stretches.last.inner_text()
        start, end = (float(x) for x in label.split(" s ")[0].split("–"))
        stretches.last.click()
        page.wait_for_timeout(3000)
        page.get_by_text("Red cells raise").wait_for(timeout=120_000)
        page.screenshot(path=str(ARTIFACTS / "browser_session.png"), full_page=True)
        caption = page.get_by_text(f"{FACE_MAP_METHOD} for").first.inner_text()  # the face panel's caption
        assert start - 1e-6 <= float(caption.split(" at ")[1].split(" s")[0]) <= end + 1e-6, (label, caption)
        assert "Traceback" not in page.inner_text("body")
        with page.expect_download(timeout=60_000) as download:  # the session as ELAN tiers, beside the video
            page.get_by_role("button", name="ELAN (.eaf)").click()
        eaf_path = tmp_path / download.value.suggested_filename
        download.value.save_as(eaf_path)
        browser.close()
    from pympi.Elan import Eaf

    assert eaf_path.name == "two_minutes.eaf"
    eaf = Eaf(str(eaf_path))
    assert set(eaf.get_tier_names()) == {"fused", "face", "voice", "agreement", "sustained", "disagreement"}
    assert eaf.media_descriptors[0]["RELATIVE_MEDIA_URL"] == "./two_minutes.mp4"
    voice = sorted(eaf.get_annotation_data_for_tier("voice"))
    assert len(voice) > 50 and voice[-1][1] <= 141_000 and eaf.get_annotation_data_for_tier("face")


def test_your_data_page_in_chromium(server: str, labelled_zip: Path) -> None:
    """A zip of labelled voices: evaluated with a confusion matrix, then a profile built and offered."""
    chromium = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser, page = open_app(p, chromium, server, 1800)
        page.get_by_role("link", name="Your data").click()  # as a person does, through the sidebar
        page.get_by_text("Nothing uploaded yet").wait_for(timeout=60_000)
        page.locator("input[type=file]").first.set_input_files(str(labelled_zip))
        page.get_by_role("button", name="Evaluate").click()
        page.get_by_text("Files scored").wait_for(timeout=180_000)
        page.get_by_text("Predictions among happy, sad").wait_for(timeout=30_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)  # the confusion matrix (its code loads late)
        page.get_by_role("button", name="Build a profile from these recordings").click()
        page.get_by_role("button", name="Download the profile").wait_for(timeout=180_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "browser_your_data.png"), full_page=True)
        text = page.inner_text("body")
        assert "Profile 'my-group' fitted on" in text and "Traceback" not in text
        browser.close()
