"""Tests for jog3r.viz.plots (plotly figures)."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import roma
import torch

from jog3r.viz.colors import GT_COLOR, rgb_to_hex, series_color, time_colors
from jog3r.viz.plots import loss_figure, per_frame_figure, training_figure, trajectory_figure

CHROMIUM = "/usr/bin/chromium"
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def _arc(num_frames: int = 10) -> torch.Tensor:
    """Cameras on a quarter circle, each looking at the origin (OpenCV axes, world -y up)."""
    out = torch.eye(4).repeat(num_frames, 1, 1)
    for f in range(num_frames):
        angle = -0.8 + 1.6 * f / (num_frames - 1)
        centre = torch.tensor([3 * math.sin(angle), -0.5, -3 * math.cos(angle)])
        z = -centre / centre.norm()
        x = torch.linalg.cross(z, torch.tensor([0.0, -1.0, 0.0]))
        x = x / x.norm()
        out[f, :3, :3] = torch.stack([x, torch.linalg.cross(z, x), z], dim=1)
        out[f, :3, 3] = centre
    return out


def _similar(c2w: torch.Tensor, scale: float, seed: int) -> torch.Tensor:
    """The same cameras in another world frame and scale."""
    gen = torch.Generator().manual_seed(seed)
    rot = roma.rotvec_to_rotmat(torch.randn(3, generator=gen))
    out = c2w.clone()
    out[:, :3, :3] = rot @ c2w[:, :3, :3]
    out[:, :3, 3] = scale * c2w[:, :3, 3] @ rot.T + torch.randn(3, generator=gen)
    return out


def _centres(trace: go.Scatter3d) -> np.ndarray:
    return np.stack([trace.x, trace.y, trace.z], axis=1).astype(float)


def test_trajectory_figure_aligns_and_colours():
    pred_a = _arc()
    pred_b = _similar(pred_a, 0.3, seed=1)  # e.g. T2V->V2C in its own frame and scale
    gt = _similar(pred_a, 5.0, seed=2)
    fig = trajectory_figure([pred_a, pred_b], ["T2V+C", "T2V->V2C"], gt=gt)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["T2V+C", "T2V->V2C", "ground truth"]
    # Both predictions are aligned onto the ground truth: their centres coincide with it.
    np.testing.assert_allclose(_centres(lines[0]), gt[:, :3, 3].numpy(), atol=1e-4)
    np.testing.assert_allclose(_centres(lines[1]), gt[:, :3, 3].numpy(), atol=1e-4)
    assert lines[0].line.color == rgb_to_hex(series_color(0))
    assert lines[2].line.color == rgb_to_hex(GT_COLOR) and lines[2].line.dash == "dash"
    # Markers run along the time ramp: first red, last purple; only the first trace shows the colour bar.
    scale = lines[0].marker.colorscale
    assert scale[0][1] == rgb_to_hex(time_colors(10)[0]) and scale[-1][1] == rgb_to_hex(time_colors(10)[-1])
    assert lines[0].marker.showscale and not lines[1].marker.showscale
    assert len([t for t in fig.data if t.mode == "lines"]) == 2  # viewing directions
    assert fig.layout.scene.aspectmode == "manual"  # true proportions, longest side 1 (_box_ratio)


def test_trajectory_figure_without_gt_aligns_onto_the_first_and_can_skip_alignment():
    pred_a, pred_b = _arc(6), _similar(_arc(6), 2.0, seed=3)
    fig = trajectory_figure([pred_a, pred_b], ["a", "b"], show_directions=False)
    assert len(fig.data) == 2
    np.testing.assert_allclose(_centres(fig.data[1]), pred_a[:, :3, 3].numpy(), atol=1e-4)
    raw = trajectory_figure([pred_a, pred_b], ["a", "b"], align=False, show_directions=False)
    np.testing.assert_allclose(_centres(raw.data[1]), pred_b[:, :3, 3].numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="label"):
        trajectory_figure([pred_a], ["a", "b"])
    with pytest.raises(ValueError, match="frame counts"):
        trajectory_figure([pred_a, _arc(5)], ["a", "b"])


def test_loss_figure_from_fit_history_and_list():
    history = {
        "iter": [0, 10, 20], "loss": [1.0, 0.5, 0.2], "pointmap": [0.9, 0.4, 0.15], "fl": [0.1, 0.1, 0.05],
        "transl": [0.0, 0.0, 0.0], "lr": [0.01, 0.01, 0.0], "time": [0.0, 0.1, 0.2],
    }
    fig = loss_figure(history)
    assert [t.name for t in fig.data] == ["loss", "pointmap", "fl", "transl"]
    assert list(fig.data[0].x) == [0, 10, 20] and fig.data[1].line.dash == "dash"
    assert fig.layout.yaxis.type == "linear"  # transl has zeros: a log axis would drop them
    positive = loss_figure([3.0, 2.0, 1.5])
    assert positive.layout.yaxis.type == "log" and list(positive.data[0].x) == [0, 1, 2]


def test_training_figure_is_robust_to_partial_records():
    records = [
        {"step": 1, "loss_total": 2.0, "loss_gen": 1.5, "loss_rec": 0.5},
        {"step": 2, "loss_total": 1.8, "loss_gen": 1.4},  # no L_rec at this step
        {"step": 3, "loss_total": float("nan"), "loss_gen": "n/a", "loss_rec": 0.3},  # junk values
        {"L_total": 1.0, "L_rec": 0.2},  # paper spelling, no step -> its index (3)
    ]
    fig = training_figure(records)
    curves = {t.name: (list(t.x), list(t.y)) for t in fig.data}
    assert curves["L_total"] == ([1, 2, 3], [2.0, 1.8, 1.0])
    assert curves["L_gen"] == ([1, 2], [1.5, 1.4])
    assert curves["L_rec"] == ([1, 3, 3], [0.5, 0.3, 0.2])
    only_rec = training_figure([{"step": 0, "loss_rec": 1.0}])
    assert [t.name for t in only_rec.data] == ["L_rec"]
    assert len(training_figure([]).data) == 0


def test_per_frame_figure():
    fig = per_frame_figure(torch.tensor([0.1, float("nan"), 0.3]), "MEt3R per frame", frames=[2, 3, 4])
    bar = fig.data[0]
    assert list(bar.x) == [2, 3, 4] and bar.y[1] is None and bar.y[2] == pytest.approx(0.3)
    assert bar.marker.color[-1] == rgb_to_hex(time_colors(4)[-1])
    assert fig.layout.shapes[0].y0 == pytest.approx(0.2)  # mean of the finite values
    with pytest.raises(ValueError):
        per_frame_figure([0.1, 0.2], "x", frames=[1])


@pytest.mark.browser
def test_trajectory_figure_renders_in_chromium(tmp_path):
    """Render the plotly HTML in headless Chromium (``JOG3R_UPDATE_DOCS_IMAGES=1`` refreshes the docs)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    pred = _arc(12)
    noisy = pred.clone()
    noisy[:, :3, 3] += 0.08 * torch.randn(12, 3)
    gt = _similar(pred, 2.0, seed=4)
    fig = trajectory_figure([pred, _similar(noisy, 0.5, seed=5)], ["T2V+C", "T2V->V2C"], gt=gt)
    fig.update_layout(width=900, height=600)
    html = tmp_path / "trajectory.html"
    html.write_text(fig.to_html(include_plotlyjs=True, full_html=True))
    shot = tmp_path / "trajectory.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--use-gl=swiftshader", "--enable-unsafe-swiftshader"],
        )
        page = browser.new_page(viewport={"width": 920, "height": 620})
        page.goto(html.as_uri())
        page.wait_for_selector(".main-svg", timeout=60_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(shot))
        browser.close()
    import imageio.v3 as iio

    img = iio.imread(shot)[..., :3].astype(int)
    if os.environ.get("JOG3R_UPDATE_DOCS_IMAGES"):
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, DOCS_IMAGES / "trajectory_plot.png")
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    assert ((r > 180) & (g < 90) & (b < 90)).sum() > 20, "no red (first frame) markers"
    assert ((r > 110) & (g < 80) & (b > 170)).sum() > 20, "no purple (last frame) markers"


def test_an_elongated_path_fits_the_plot():
    """A 16-frame dolly (0.9 along z, 0.2 across, 0.04 up) left the plot: plotly's aspectmode "data" normalises
    the box's volume, so the long side was ~3x the view. The box now has its longest side 1 (what plotly's default
    eye frames) and no side under 0.2."""
    from jog3r.viz.plots import trajectory_figure

    c2w = torch.eye(4).repeat(16, 1, 1)
    t = torch.linspace(0, 1, 16)
    c2w[:, 0, 3], c2w[:, 1, 3], c2w[:, 2, 3] = -0.2 * t, 0.04 * t ** 2, 0.9 * t
    scene = trajectory_figure([c2w], ["dolly"], align=False).layout.scene
    ratio = (scene.aspectratio.x, scene.aspectratio.y, scene.aspectratio.z)
    assert scene.aspectmode == "manual" and max(ratio) == pytest.approx(1.0) and min(ratio) >= 0.2
    assert ratio[2] == max(ratio) and ratio[0] == pytest.approx(0.2 / 0.9, rel=0.1)
    eye = scene.camera.eye
    assert min(eye.x, eye.y, eye.z) >= 1.25  # the box [-1, 1]^3 scaled by the ratio stays in front of the eye
