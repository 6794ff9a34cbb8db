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


def test_known_per_frame_intrinsics_seed_pnp_with_each_frame_focal(monkeypatch):
    """With a fixed K, PnP starts every frame from its own focal and never refines it (it used to take the median
    of the first views' focals and refine it)."""
    import jog3r.align.init as init_mod

    scene = make_scene(5, 48, 64, noise=EXACT, seed=2)
    K = scene.K.clone()
    K[:, 0, 0] *= torch.linspace(0.9, 1.1, 5)
    K[:, 1, 1] *= torch.linspace(0.9, 1.1, 5)
    calls, pnp = [], init_mod.pnp_ransac

    def spy(pts, mask, focal, pp, **kw):
        calls.append((focal, kw["refine_focal"]))
        return pnp(pts, mask, focal, pp, **kw)

    monkeypatch.setattr(init_mod, "pnp_ransac", spy)
    rec, _ = fit(scene.pointmaps, scene.images, ALIGN_PRESETS["jog3r"], K=K)
    assert calls and not any(refine for _, refine in calls)
    focals = sorted(f for f, _ in calls)
    expected = sorted(float((K[f, 0, 0] * K[f, 1, 1]).sqrt()) for f in range(5))
    assert all(any(abs(f - e) < 1e-3 * e for e in expected) for f in focals)
    assert len({round(f, 3) for f in focals}) == len(focals) > 1  # each frame its own, not one shared guess
    torch.testing.assert_close(rec.K, K)
