"""fit(): recovery of known cameras from synthetic pairwise point maps, outputs and options."""

from __future__ import annotations

import pytest
import torch

from jog3r.align import ALIGN_PRESETS, AlignConfig, InitMethod, Solver, fit
from jog3r.align.synthetic import EXACT, make_scene
from jog3r.metrics.pose import pose_metrics
from jog3r.types import Reconstruction


@pytest.mark.parametrize("preset", ["fast", "jog3r"])
@pytest.mark.parametrize("seed", [0, 1])
def test_recovers_cameras_from_noisy_pointmaps(preset, seed):
    scene = make_scene(8, 48, 64, seed=seed)  # the paper's (1 -> f) pairs, golden-like noise
    rec, _ = fit(scene.pointmaps, scene.images, ALIGN_PRESETS[preset])
    m = pose_metrics(rec.cam2world, scene.cam2world)
    assert m["Rot. err."] < 0.5 and m["Trans. err."] < 2.0
    assert (rec.focal - scene.K[:, 0, 0]).abs().max() < 0.02 * scene.K[0, 0, 0]


@pytest.mark.parametrize("graph,symmetrize", [("first-to-all", False), ("oneref", True), ("swin", True)])
def test_recovers_cameras_exactly_from_exact_pointmaps(graph, symmetrize):
    scene = make_scene(6, 24, 32, graph=graph, symmetrize=symmetrize, noise=EXACT, seed=2)
    rec, hist = fit(scene.pointmaps, None, ALIGN_PRESETS["fast"])
    m = pose_metrics(rec.cam2world, scene.cam2world)
    assert m["Rot. err."] < 0.05 and m["Trans. err."] < 0.05
    torch.testing.assert_close(rec.focal, scene.K[:, 0, 0], rtol=1e-3, atol=0)
    assert hist["loss"][-1] < 1e-5  # world units are ~0.5 (base_scale): this is a 1e-5 relative fit


def test_reconstruction_and_history_layout():
    scene = make_scene(4, 12, 16, seed=0)
    rec, hist = fit(scene.pointmaps, scene.images, ALIGN_PRESETS["fast"])
    assert isinstance(rec, Reconstruction)
    F, H, W = 4, 12, 16
    shapes = {"cam2world": (F, 4, 4), "K": (F, 3, 3), "depth": (F, H, W), "pts3d": (F, H, W, 3),
              "conf": (F, H, W), "colors": (F, H, W, 3)}
    for name, shape in shapes.items():
        value = getattr(rec, name)
        assert value.shape == shape and value.dtype == torch.float32 and torch.isfinite(value).all(), name
    torch.testing.assert_close(rec.colors, scene.images.permute(0, 2, 3, 1))
    torch.testing.assert_close(rec.cam2world[:, 3], torch.tensor([0.0, 0, 0, 1]).expand(F, 4))
    # points are the depths unprojected with K and posed with cam2world
    from jog3r.geometry.camera import depth_to_world_points

    torch.testing.assert_close(rec.pts3d, depth_to_world_points(rec.depth, rec.K, rec.cam2world), atol=1e-5, rtol=1e-5)
    keys = {"iter", "loss", "pointmap", "fl", "transl", "lr", "time"}
    assert set(hist) == keys and len({len(v) for v in hist.values()}) == 1
    assert hist["time"] == sorted(hist["time"]) and hist["loss"][-1] < hist["loss"][0]
    grey, _ = fit(scene.pointmaps, None, ALIGN_PRESETS["fast"].replace(niter=1))
    assert torch.all(grey.colors == 0.5)


def test_dust3r_recipe_runs_the_adam_loop_with_a_cosine_schedule():
    scene = make_scene(3, 8, 10, seed=0)
    _, hist = fit(scene.pointmaps, None, ALIGN_PRESETS["dust3r"].replace(niter=20))
    assert len(hist["loss"]) == 21 and hist["lr"][0] == pytest.approx(0.01) and hist["lr"][-2] < 1e-3
    assert hist["loss"][-1] < hist["loss"][0]


def test_early_stopping_stops_adam():
    scene = make_scene(3, 8, 10, seed=0)
    cfg = AlignConfig(niter=300, early_stop_rtol=0.5, early_stop_patience=5)
    _, hist = fit(scene.pointmaps, None, cfg)
    assert len(hist["loss"]) < 300


def test_known_intrinsics_are_kept():
    scene = make_scene(5, 16, 20, seed=3)
    rec, _ = fit(scene.pointmaps, None, ALIGN_PRESETS["fast"], K=scene.K)
    torch.testing.assert_close(rec.K, scene.K)
    m = pose_metrics(rec.cam2world, scene.cam2world)
    assert m["Rot. err."] < 0.5 and m["Trans. err."] < 2.0
    rec, _ = fit(scene.pointmaps, None, ALIGN_PRESETS["fast"].replace(known_focal=20.0))
    torch.testing.assert_close(rec.focal, torch.full((5,), 20.0))


# Adam's first steps move every unknown by ~lr even from an exact start (DUSt3R's loop does the same)
@pytest.mark.parametrize("solver,depth_rtol", [(Solver.ADAM, 0.05), (Solver.GAUSS_NEWTON, 1e-3)])
def test_known_poses_are_kept_and_depth_recovered(solver, depth_rtol):
    scene = make_scene(4, 12, 16, noise=EXACT, seed=1)
    cfg = AlignConfig(init=InitMethod.KNOWN_POSES, solver=solver, niter=10)
    rec, _ = fit(scene.pointmaps, None, cfg, K=scene.K, cam2world=scene.cam2world)
    torch.testing.assert_close(rec.cam2world, scene.cam2world, atol=1e-5, rtol=0)
    torch.testing.assert_close(rec.depth, scene.depth, rtol=depth_rtol, atol=0)


def test_shared_focal_gives_one_focal():
    scene = make_scene(5, 16, 20, seed=4)
    rec, _ = fit(scene.pointmaps, None, ALIGN_PRESETS["jog3r"].replace(shared_focal=True))
    assert torch.all(rec.focal == rec.focal[0])
    assert abs(float(rec.focal[0]) - float(scene.K[0, 0, 0])) < 0.02 * float(scene.K[0, 0, 0])


def test_temporal_terms_smooth_the_trajectory():
    scene = make_scene(8, 24, 32, seed=5)
    _, plain = fit(scene.pointmaps, None, ALIGN_PRESETS["fast"])
    _, smooth = fit(scene.pointmaps, None, ALIGN_PRESETS["fast"].replace(w_transl=0.1, w_fl=10.0))
    assert smooth["transl"][-1] < plain["transl"][-1] and smooth["fl"][-1] < plain["fl"][-1]
    assert smooth["pointmap"][-1] >= plain["pointmap"][-1]  # the regularisers trade data fit for smoothness


def test_presets_are_documented_and_valid():
    assert {"dust3r", "fast", "jog3r"} <= set(ALIGN_PRESETS)
    assert ALIGN_PRESETS["dust3r"] == AlignConfig()
    dust3r = ALIGN_PRESETS["dust3r"]
    assert (dust3r.lr, dust3r.niter, dust3r.schedule.value, dust3r.min_conf_thr, dust3r.base_scale) == (
        0.01, 300, "cosine", 3.0, 0.5)
    assert ALIGN_PRESETS["jog3r"].w_transl > 0 and ALIGN_PRESETS["jog3r"].w_fl > 0
