"""Non-square pixels: the estimated pixel aspect of the ``jog3r`` alignment preset (our addition to DUSt3R)."""

from __future__ import annotations

import pytest
import torch

from jog3r.align import fit
from jog3r.align.config import ALIGN_PRESETS
from jog3r.align.synthetic import EXACT, GOLDEN_LIKE, make_scene
from jog3r.geometry.camera import estimate_pixel_aspect, transform_points, inverse_se3
from jog3r.metrics.pose import pose_metrics


@pytest.mark.parametrize("aspect", [1.0, 1.185, 0.8])
def test_estimate_pixel_aspect_from_a_camera_frame_point_map(aspect):
    scene = make_scene(2, 48, 64, noise=EXACT, pixel_aspect=aspect, seed=1)
    pts_cam = transform_points(inverse_se3(scene.cam2world[:1].double()), scene.pts3d[:1].double()).float()
    # 20 % wild outliers must not move the estimate
    gen = torch.Generator().manual_seed(0)
    wild = torch.rand(pts_cam.shape[:-1], generator=gen) < 0.2
    pts_cam = torch.where(wild[..., None], pts_cam * (0.5 + torch.rand(pts_cam.shape, generator=gen)), pts_cam)
    est = estimate_pixel_aspect(pts_cam, scene.K[0, :2, 2])
    assert est.shape == (1,) and est.item() == pytest.approx(aspect, rel=0.02)


def test_estimated_aspect_recovers_anisotropic_cameras_that_square_pixels_cannot():
    scene = make_scene(8, 48, 72, noise=GOLDEN_LIKE, pixel_aspect=1.185, seed=3)
    square = ALIGN_PRESETS["jog3r"].replace(pixel_aspect=1.0)
    rec_sq, _ = fit(scene.pointmaps, scene.images, square)
    rec, _ = fit(scene.pointmaps, scene.images, ALIGN_PRESETS["jog3r"])
    err_sq = pose_metrics(rec_sq.cam2world, scene.cam2world)
    err = pose_metrics(rec.cam2world, scene.cam2world)
    fx, fy = rec.K[:, 0, 0], rec.K[:, 1, 1]
    assert (fy / fx).mean().item() == pytest.approx(1.185, rel=0.03)
    assert fx.mean().item() == pytest.approx(scene.K[0, 0, 0].item(), rel=0.05)
    assert err["Rot. err."] < 1.0 and err["Trans. err."] < 5.0
    assert err["Trans. err."] < err_sq["Trans. err."]


def test_square_pixel_scenes_keep_an_aspect_of_one():
    scene = make_scene(6, 48, 64, noise=GOLDEN_LIKE, seed=4)
    rec, _ = fit(scene.pointmaps, scene.images, ALIGN_PRESETS["jog3r"])
    assert (rec.K[:, 1, 1] / rec.K[:, 0, 0]).mean().item() == pytest.approx(1.0, abs=0.02)
