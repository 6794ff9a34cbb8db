"""jog3r.geometry.pointmap and jog3r.geometry.registration."""

from __future__ import annotations

import pytest
import roma
import torch

from jog3r.geometry.camera import inverse_se3, transform_points
from jog3r.geometry.pointmap import avg_distance, camera_frame_depth, normalize_pointmaps, pts3d_in_other_view
from jog3r.geometry.registration import align_camera_centers, register_points, sim3_matrix


def test_normalize_pointmaps_joint_average_distance():
    a = torch.tensor([[[[3.0, 4.0, 0.0]]]])  # |.| = 5
    b = torch.tensor([[[[0.0, 0.0, 1.0]]]])  # |.| = 1
    (na, nb), z = normalize_pointmaps(a, b)
    assert z.tolist() == [3.0]
    torch.testing.assert_close(na, a / 3)
    torch.testing.assert_close(nb, b / 3)
    valid = (torch.tensor([[[True]]]), torch.tensor([[[False]]]))
    (_, _), z = normalize_pointmaps(a, b, valid=valid)
    assert z.tolist() == [5.0]
    assert avg_distance(torch.cat((a, b), 2)).tolist() == [3.0]
    with pytest.raises(ValueError):
        normalize_pointmaps(a, b, valid=valid[:1])


def test_pts3d_in_other_view_round_trip():
    gen = torch.Generator().manual_seed(0)
    c2w = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    c2w[:, :3, :3] = roma.random_rotmat(2, dtype=torch.float64, generator=gen)
    c2w[:, :3, 3] = torch.randn(2, 3, dtype=torch.float64, generator=gen)
    world = torch.randn(4, 5, 3, dtype=torch.float64, generator=gen)
    in_a = transform_points(inverse_se3(c2w[0]), world)
    in_b = pts3d_in_other_view(in_a, c2w[0], c2w[1])
    torch.testing.assert_close(in_b, transform_points(inverse_se3(c2w[1]), world))
    torch.testing.assert_close(camera_frame_depth(world, c2w[1]), in_b[..., 2])


def test_register_points_recovers_weighted_similarity():
    gen = torch.Generator().manual_seed(1)
    R = roma.random_rotmat(3, dtype=torch.float64, generator=gen)
    t = torch.randn(3, 3, dtype=torch.float64, generator=gen)
    s = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    src = torch.randn(3, 50, 3, dtype=torch.float64, generator=gen)
    dst = transform_points(sim3_matrix(R, t, s), src)
    dst[:, :5] += 10.0  # outliers with zero weight
    w = torch.ones(3, 50, dtype=torch.float64)
    w[:, :5] = 0
    sim = register_points(src, dst, w)
    torch.testing.assert_close(sim.R, R)
    torch.testing.assert_close(sim.t, t)
    torch.testing.assert_close(sim.s, s)
    rot, trans, scale = register_points(src[0], dst[0], w[0], with_scale=False)  # tuple unpacking works
    assert float(scale) == 1.0 and rot.shape == (3, 3) and trans.shape == (3,)


def test_register_points_errors():
    with pytest.raises(ValueError, match="shapes"):
        register_points(torch.zeros(4, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="weights"):
        register_points(torch.zeros(4, 3), torch.zeros(4, 3), torch.ones(3))
    with pytest.raises(ValueError, match="zero"):
        register_points(torch.randn(4, 3), torch.randn(4, 3), torch.zeros(4))


def test_align_camera_centers():
    gen = torch.Generator().manual_seed(2)
    gt = torch.eye(4).repeat(5, 1, 1)
    gt[:, :3, 3] = torch.randn(5, 3, generator=gen)
    R = roma.random_rotmat(generator=gen)
    pred = gt.clone()
    pred[:, :3, 3] = 0.3 * gt[:, :3, 3] @ R.T + 1.0
    sim, aligned = align_camera_centers(pred, gt)
    torch.testing.assert_close(aligned, gt[:, :3, 3], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=">= 3"):
        align_camera_centers(pred[:2], gt[:2])
