"""The README's viewer screenshot of a long-video V2C (``docs/images/viewer_long.png``), made reproducibly.

    python benchmarks/viewer_long.py                              # 120 frames -> docs/images/viewer_long.png
    python benchmarks/viewer_long.py --frames 240                 # what the README's image shows
    python benchmarks/viewer_long.py --frames 60 --out /tmp/viewer_long.png
    python benchmarks/viewer_long.py --frames 240 --reuse          # the last 240-frame run's cameras, drawn again

Runs :func:`jog3r.long_v2c.long_video_to_cameras` with the embedded default on the synthetic walkthrough of
``benchmarks/v2c_long.py`` (``jog3r.data.synth`` seed 950000000, 256x384 source frames matched, the model's
128x192 as input; the clip is cached in ``--cache``), shows the result in the app's viewer
(:class:`app.viewer.ViewerHub`: the same drawing as the Estimate tab, the generator's cameras as the ground truth,
the exports' share of points), opens it in headless Chromium (Playwright, ``/usr/bin/chromium --no-sandbox``,
software WebGL) and saves a screenshot. Prints the run's pose metrics and what the viewer drew (frustums, kept and
drawn points), which the README caption quotes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "viewer_long.png")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/jog3r_v2c_long"))
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--reuse", action="store_true", help="reuse the V2C output an earlier run saved in --cache")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]
    import torch
    from playwright.sync_api import sync_playwright

    from app.viewer import GroundTruth, ViewerHub
    from jog3r.io.video import resize_and_center_crop
    from jog3r.long_v2c import long_video_to_cameras
    from jog3r.metrics.pose import pose_metrics
    from jog3r.pipeline import JOG3RPipeline
    from jog3r.types import Video
    from v2c_long import clip

    torch.set_num_threads(1)
    pipe = JOG3RPipeline.from_pretrained()
    c = clip(a.frames, a.cache)
    src = (c.frames * 255).round().to(torch.uint8)
    video = Video(frames=resize_and_center_crop(src.float() / 255, pipe.resolution), frame_indices=torch.arange(a.frames))
    start = time.perf_counter()
    saved = a.cache / f"recon_{a.frames}.pt"
    if a.reuse and saved.exists():  # the V2C output of an earlier run of this script (only the view changes)
        recon = torch.load(saved, weights_only=False)
    else:
        recon = long_video_to_cameras(pipe, video, source_frames=src).reconstruction
        torch.save(recon, saved)
    m = pose_metrics(recon.cam2world, c.cam2world, pairs="all")
    print(f"{a.frames} frames: {time.perf_counter() - start:.0f} s; mAA@30 {float(m['mAA@30']):.1f}, RRA@5 "
          f"{float(m['RRA@5']):.1f}, rotation error {float(m['Rot. err.']):.2f} deg, translation error "
          f"{float(m['Trans. err.']):.2f} deg", flush=True)

    hub = ViewerHub("127.0.0.1", 0)
    hub.start()
    token = hub.open_session()
    K = c.K if c.K.ndim == 3 else c.K.expand(a.frames, 3, 3)
    truth = GroundTruth(cam2world=c.cam2world, K=K, image_size=tuple(c.frames.shape[-2:]))
    hub.show(token, recon, ground_truth=truth, label="Long-video V2C")
    html = hub.iframe_html(token)
    url = html.split('src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--use-gl=swiftshader", "--enable-unsafe-swiftshader"])
            page = browser.new_page(viewport={"width": a.width, "height": a.height})
            page.goto(url)
            deadline = time.time() + 120
            while not hub.handles(token) and time.time() < deadline:
                page.wait_for_timeout(250)
            if not hub.handles(token):
                raise RuntimeError("the browser never connected to the viewer")
            page.wait_for_timeout(8000)  # software WebGL: let the points and frustums arrive and render
            close = page.locator(".mantine-Notification-closeButton")  # the "software WebGL" notice
            if close.count():
                close.first.click()
                page.wait_for_timeout(800)
            page.screenshot(path=str(a.out))
            handles = hub.handles(token)[0]  # before the browser disconnects
            browser.close()
        print(f"viewer: {len(handles.frustums)} of {a.frames} cameras drawn as frustums (frames "
              f"{handles.frustum_frames[:3]} ... {handles.frustum_frames[-1]}), {handles.num_drawn:,} of "
              f"{handles.num_selected:,} kept points drawn; screenshot {a.out}")
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
