"""The synthetic scene maker shared by the alignment tests and benchmarks/align.py."""

from __future__ import annotations

import torch

from jog3r.align.synthetic import EXACT, NoiseModel, make_scene
from jog3r.geometry.camera import depth_to_world_points, inverse_se3, transform_points


def test_exact_pairs_are_scaled_ground_truth_in_the_first_camera():
    scene = make_scene(4, 10, 14, graph="oneref", symmetrize=True, noise=EXACT, seed=3)
    pm = scene.pointmaps
    assert pm.pts3d.shape == (1, 6, 10, 14, 3) and pm.edges.tolist()[:3] == [[0, 1], [0, 2], [0, 3]]
    torch.testing.assert_close(scene.pts3d, depth_to_world_points(scene.depth, scene.K, scene.cam2world),
                               atol=1e-5, rtol=1e-5)
    for p, (i, j) in enumerate(pm.edges.tolist()):
        w2c = inverse_se3(scene.cam2world[i])
        s = scene.pair_scales[p]
        torch.testing.assert_close(pm.pts3d[0, p], s * transform_points(w2c, scene.pts3d[i]), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(pm.pts3d_in_other_view[0, p], s * transform_points(w2c, scene.pts3d[j]),
                                   atol=1e-4, rtol=1e-4)
    assert bool((scene.depth > 0).all()) and bool((pm.conf >= 1).all())


def test_noise_model_statistics_and_determinism():
    noise = NoiseModel(outlier_frac=0.1, pair_rot_deg=0.0, pair_trans=0.0)
    a = make_scene(3, 32, 32, noise=noise, seed=7)
    b = make_scene(3, 32, 32, noise=noise, seed=7)
    torch.testing.assert_close(a.pointmaps.pts3d, b.pointmaps.pts3d)
    exact = make_scene(3, 32, 32, noise=EXACT, seed=7)
    torch.testing.assert_close(a.pair_scales, exact.pair_scales)  # drawn before the noise: same truth
    truth = exact.pointmaps.pts3d[0]
    rel = (a.pointmaps.pts3d[0] - truth).norm(dim=-1) / truth.norm(dim=-1)
    outliers = a.pointmaps.conf[0] <= 2.0
    assert 0.05 < float(outliers.float().mean()) < 0.2
    inlier_noise = float(rel[~outliers].median())
    assert 0.005 < inlier_noise < 0.03  # ~1 % relative noise on the first view
    # confidence follows the noise: confident pixels are more accurate
    conf = a.pointmaps.conf[0][~outliers]
    err = rel[~outliers]
    assert float(err[conf > conf.median()].mean()) < float(err[conf <= conf.median()].mean())
