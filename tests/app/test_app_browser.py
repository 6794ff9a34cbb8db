"""The page in a real browser (Debian's chromium through Playwright): upload a real clip, run V2C, see the viewer.

Screenshots land in a temporary folder; ``make screenshots`` (``JOG3R_UPDATE_DOCS_IMAGES=1``) writes them to
``docs/images/app_*.png`` instead (the pictures in the README and docs/notes/app.md). Tests never write tracked files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--use-gl=swiftshader", "--enable-unsafe-swiftshader",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """Where the screenshots go: docs/images with ``JOG3R_UPDATE_DOCS_IMAGES=1`` (``make screenshots``), else a temp dir."""
    if os.environ.get("JOG3R_UPDATE_DOCS_IMAGES"):
        return DOCS_IMAGES
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield browser
        browser.close()


def _drawn_sessions(runtime) -> list[str]:
    hub = runtime.viewer
    return [t for t in hub.tokens() if hub.handles(t)]


def _colourful_fraction(png: Path) -> float:
    """Fraction of clearly coloured (saturated) pixels in a screenshot: frustums and points, not the grey UI."""
    import imageio.v3 as iio

    img = iio.imread(png)[..., :3].astype(np.int16)
    saturation = img.max(-1) - img.min(-1)
    return float((saturation > 60).mean())


def _close_software_gl_toast(viewer) -> None:
    """Headless chromium renders WebGL in software and viser says so in a toast; close it for the screenshots."""
    toast = viewer.locator(".mantine-Notification-closeButton")
    if toast.count():
        toast.first.click()


def test_upload_clip_run_v2c_and_see_frustums(studio, clip, browser, shots):
    video, gt = clip
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1600, "height": 1100})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(studio.url, wait_until="load")
    page.get_by_role("tab", name="Estimate cameras").click()

    page.locator("#estimate-files input[type=file]").set_input_files(str(video))
    # wait for the upload's own plan (16 frames by default) before changing the sampling, so the two plan events
    # cannot race
    page.locator("#estimate-plan").get_by_text("16 frames", exact=True).wait_for(timeout=120_000)
    page.get_by_label("Number of frames").check()
    page.get_by_label("Frames", exact=True).fill("8")
    page.get_by_label("Frames", exact=True).press("Enter")
    page.locator("#estimate-plan").get_by_text("8 frames").wait_for(timeout=120_000)
    page.locator("#estimate-gt input[type=file]").set_input_files(str(gt))
    # the example clips are named buttons, not a table whose headers (the inputs' long labels) were cut
    examples = page.locator("#estimate-examples")
    assert examples.get_by_text("0bf152ef + ground truth").count() == 1, examples.inner_text()
    page.locator("#estimate-run").click()  # scrolls the page down to the button
    # the viewer column stays in sight while the page scrolls (it scrolled away: Gradio's overflow: hidden
    # container broke the column's position: sticky)
    assert page.evaluate("window.scrollY") > 0
    top = page.evaluate("document.getElementById('jog3r-viewer-box').getBoundingClientRect().top")
    assert 0 <= top < 100, f"the viewer is off screen (top {top} px) when Estimate is clicked"
    page.locator("#estimate-metrics").get_by_text("RRA@5").wait_for(timeout=300_000)

    # The viewer iframe connected as this page's session and drew the reconstruction with its frustums.
    viewer = page.frame_locator("#jog3r-viewer")
    viewer.locator("canvas").first.wait_for(timeout=60_000)
    deadline = time.time() + 60
    while not _drawn_sessions(studio.runtime) and time.time() < deadline:
        time.sleep(0.5)
    drawn = _drawn_sessions(studio.runtime)
    assert drawn, "no viewer client of this page got the reconstruction"
    (handles,) = studio.runtime.viewer.handles(drawn[0])[:1]
    assert len(handles.frustums) >= 2

    _close_software_gl_toast(viewer)
    # The page's "points kept" slider thins the points in the viewer (and moves the viewer's own slider), so the
    # frustums show; folding the viewer's control folder uncovers the scene.
    conf = page.locator("input[aria-label='number input for Points kept (% most confident, in the viewer and the "
                        "exports)']")
    conf.fill("30")
    conf.press("Enter")
    viewer.get_by_text("Estimated cameras").first.click()
    time.sleep(4)  # let WebGL render a few frames (software GL)
    shot = shots / "app_estimate.png"
    page.screenshot(path=str(shot), full_page=True)
    viewer_shot = shots / "app_viewer.png"
    page.locator("#jog3r-viewer").screenshot(path=str(viewer_shot))
    assert _colourful_fraction(viewer_shot) > 0.002, "the viewer looks empty"
    assert not errors, errors

    # Training: a real run on tiny clips; its log and loss curves stream into the page, then Stop ends it.
    page.get_by_role("tab", name="Training").click()
    page.get_by_text("-m jog3r.train").first.wait_for(timeout=30_000)
    page.get_by_text("Clip size (empty or 0 = the model preset's)").click()
    for label, value in (("Steps", "1000"), ("Frames per clip", "2"), ("Height (px)", "32"), ("Width (px)", "32")):
        page.get_by_label(label, exact=True).fill(value)
        page.get_by_label(label, exact=True).press("Tab")
    page.get_by_text("--num-frames 2 --height 32 --width 32").first.wait_for(timeout=30_000)
    page.locator("#train-start").click()
    log = page.locator("#train-log textarea")
    deadline = time.time() + 180
    while log.input_value().count("L_total") < 2 and time.time() < deadline:  # the Timer polls log.jsonl each second
        time.sleep(0.5)
    assert "L_total" in log.input_value(), page.locator("#train-status").inner_text()
    time.sleep(2)
    page.screenshot(path=str(shots / "app_training.png"), full_page=True)
    page.locator("#train-stop").click()
    page.locator("#train-status").get_by_text("Stopped").wait_for(timeout=60_000)
    assert not studio.runtime.jobs.current.running

    # Closing the tab ends the session: its viewer scene (and temp folder) go away.
    page.close()
    deadline = time.time() + 60
    while drawn[0] in studio.runtime.viewer.tokens() and time.time() < deadline:
        time.sleep(0.5)
    assert drawn[0] not in studio.runtime.viewer.tokens(), "the session was not closed on unload"


def test_generate_then_score_its_consistency(studio, browser, shots):
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1600, "height": 1100})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(studio.url, wait_until="load")
    page.get_by_label("Prompt").fill("a slow walk through a bright living room with large windows")
    page.get_by_label("Steps").last.fill("2")
    page.get_by_label("Also estimate cameras (T2V+C, one pass)").uncheck()
    page.get_by_role("button", name="Generate", exact=True).click()
    page.locator("#generate-video video").wait_for(timeout=180_000)  # (progress text would match a text wait)
    _close_software_gl_toast(page.frame_locator("#jog3r-viewer"))
    time.sleep(2)
    page.screenshot(path=str(shots / "app_generate.png"), full_page=True)

    page.get_by_role("button", name="Score its 3D consistency →").click()
    page.get_by_role("tab", name="3D consistency", selected=True).wait_for(timeout=30_000)
    page.get_by_label("Feature backbone").click()
    page.get_by_role("option", name="RGB (no learned features)").click()
    page.get_by_role("button", name="Score 3D consistency").click()
    page.locator("#consistency-summary").get_by_text("lower is more consistent").wait_for(timeout=180_000)
    time.sleep(2)
    page.screenshot(path=str(shots / "app_consistency.png"), full_page=True)
    assert not errors, errors
    page.close()
