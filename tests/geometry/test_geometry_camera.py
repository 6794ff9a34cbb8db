"""Property tests of the camera conventions in jog3r.geometry.camera (viser-style axioms with hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import roma
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jog3r.geometry import camera as cam

_settings = settings(max_examples=40, deadline=None, derandomize=True)
seeds = st.integers(min_value=0, max_value=2**31 - 1)


def _random_cam2world(seed: int, n: int = 4, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    c2w = torch.eye(4, dtype=dtype).repeat(n, 1, 1)
    c2w[:, :3, :3] = roma.random_rotmat(n, dtype=dtype, generator=gen)
    c2w[:, :3, 3] = 5 * torch.randn(n, 3, generator=gen, dtype=dtype)
    return c2w


@_settings
@given(seeds)
def test_world2cam_after_cam2world_is_identity(seed):
    c2w = _random_cam2world(seed)
    w2c = cam.inverse_se3(c2w)
    eye = torch.eye(4, dtype=c2w.dtype).expand_as(c2w)
    torch.testing.assert_close(cam.compose(c2w, w2c), eye, atol=1e-12, rtol=0)
    torch.testing.assert_close(cam.compose(w2c, c2w), eye, atol=1e-12, rtol=0)
    torch.testing.assert_close(w2c, torch.linalg.inv(c2w), atol=1e-12, rtol=0)


@_settings
@given(seeds)
def test_compose_chains_transforms_in_order(seed):
    a2b, b2c = _random_cam2world(seed, 2).unbind(0)
    pts = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    direct = cam.transform_points(cam.compose(a2b, b2c), pts)
    chained = cam.transform_points(b2c, cam.transform_points(a2b, pts))
    torch.testing.assert_close(direct, chained, atol=1e-12, rtol=0)


@_settings
@given(seeds, st.integers(2, 9), st.integers(2, 9), st.floats(0.3, 3.0))
def test_project_unproject_round_trip_hits_pixel_centres(seed, H, W, focal_scale):
    gen = torch.Generator().manual_seed(seed)
    depth = 0.5 + 10 * torch.rand(2, H, W, generator=gen, dtype=torch.float64)
    pp = torch.tensor([[W / 2, H / 2], [W / 2 + 0.7, H / 2 - 0.3]], dtype=torch.float64)
    K = cam.intrinsics_from_focal(torch.tensor([focal_scale * W, 1.3 * focal_scale * W]), H, W, pp=pp).double()
    pts = cam.unproject_depth(depth, K)
    torch.testing.assert_close(pts[..., 2], depth)
    uv = cam.project(pts, K)
    grid = cam.pixel_grid(H, W, dtype=torch.float64)
    torch.testing.assert_close(uv, grid.expand_as(uv), atol=1e-9, rtol=0)


def test_pixel_grid_centres_are_at_half_pixels():
    grid = cam.pixel_grid(2, 3)
    assert grid.shape == (2, 3, 2)
    assert grid[0, 0].tolist() == [0.5, 0.5]
    assert grid[1, 2].tolist() == [2.5, 1.5]  # (x, y) of column 2, row 1


def test_centred_principal_point_projects_optical_axis_to_image_centre():
    K = cam.intrinsics_from_focal(100.0, 48, 64)
    uv = cam.project(torch.tensor([[0.0, 0.0, 2.0]]), K)
    assert uv.tolist() == [[32.0, 24.0]]


@_settings
@given(seeds)
def test_depth_to_world_points_matches_manual_transform(seed):
    gen = torch.Generator().manual_seed(seed)
    c2w = _random_cam2world(seed, 3)
    K = cam.intrinsics_from_focal(torch.tensor([50.0, 60.0, 70.0]), 4, 5).double()
    depth = 1 + torch.rand(3, 4, 5, generator=gen, dtype=torch.float64)
    world = cam.depth_to_world_points(depth, K, c2w)
    pts_cam = cam.unproject_depth(depth, K)
    manual = torch.einsum("fij,fhwj->fhwi", c2w[:, :3, :3], pts_cam) + c2w[:, None, None, :3, 3]
    torch.testing.assert_close(world, manual)


@_settings
@given(seeds)
def test_opencv_opengl_round_trip_and_axes(seed):
    c2w = _random_cam2world(seed)
    gl = cam.opencv_to_opengl(c2w)
    torch.testing.assert_close(cam.opengl_to_opencv(gl), c2w)
    # same camera centre, OpenGL looks down -z: its -z column equals OpenCV's +z column
    torch.testing.assert_close(gl[:, :3, 3], c2w[:, :3, 3])
    torch.testing.assert_close(-gl[:, :3, 2], c2w[:, :3, 2])
    torch.testing.assert_close(-gl[:, :3, 1], c2w[:, :3, 1])
    assert torch.allclose(torch.linalg.det(gl[:, :3, :3]), torch.ones(4, dtype=gl.dtype))


@_settings
@given(seeds)
def test_quaternion_matrix_round_trip_is_xyzw(seed):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    R = cam.quat_to_matrix(q)
    q2 = cam.matrix_to_quat(R)
    # q and -q are the same rotation
    assert torch.allclose(q2 * torch.sign((q2 * q).sum(-1, keepdim=True)), q, atol=1e-10)
    torch.testing.assert_close(cam.quat_to_matrix(3.0 * q), R)  # normalised inside


def test_quaternion_order_is_scalar_last():
    angle = math.radians(90.0)
    q = torch.tensor([0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2)])  # 90 deg about +z, XYZW
    R = cam.quat_to_matrix(q)
    torch.testing.assert_close(R @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(cam.matrix_to_quat(torch.eye(3)), torch.tensor([0.0, 0.0, 0.0, 1.0]))


@_settings
@given(st.floats(0.2, 2.5), st.integers(8, 1024))
def test_fov_focal_round_trip(fov, size):
    f = cam.focal_from_fov(fov, size)
    assert math.isclose(cam.fov_from_focal(f, size), fov, rel_tol=1e-12)
    ft = cam.focal_from_fov(torch.tensor(fov, dtype=torch.float64), size)
    assert math.isclose(float(ft), f, rel_tol=1e-12)


def test_focal_from_fov_known_value():
    assert math.isclose(cam.focal_from_fov(math.radians(90.0), 200), 100.0, rel_tol=1e-12)


@_settings
@given(seeds, st.floats(20.0, 400.0), st.sampled_from(["weiszfeld", "median"]))
def test_estimate_focal_recovers_synthetic_focal(seed, focal, mode):
    gen = torch.Generator().manual_seed(seed)
    H, W = 24, 32
    pp = torch.tensor([W / 2 + 1.5, H / 2 - 0.5], dtype=torch.float64)
    K = cam.intrinsics_from_focal(torch.tensor(focal, dtype=torch.float64), H, W, pp=pp)
    depth = 0.5 + 5 * torch.rand(H, W, generator=gen, dtype=torch.float64)
    pts = cam.unproject_depth(depth, K)
    est = cam.estimate_focal(pts, pp=pp, mode=mode)
    assert abs(float(est) - focal) < 1e-6 * focal


def test_estimate_focal_is_batched_and_clipped():
    H, W = 12, 16
    K = cam.intrinsics_from_focal(torch.tensor([10.0, 30.0]), H, W)
    pts = cam.unproject_depth(torch.ones(2, H, W), K)
    est = cam.estimate_focal(pts)
    torch.testing.assert_close(est, torch.tensor([10.0, 30.0]), rtol=1e-4, atol=0)
    base = max(H, W) / (2 * math.tan(math.radians(30)))
    clipped = cam.estimate_focal(pts, min_focal=1.0, max_focal=2.0)  # [13.86, 27.71] px
    torch.testing.assert_close(clipped, torch.tensor([base, 2 * base]), rtol=1e-4, atol=0)


def test_estimate_focal_rejects_bad_input():
    with pytest.raises(ValueError, match="point map"):
        cam.estimate_focal(torch.zeros(4, 4, 2))
    with pytest.raises(ValueError, match="mode"):
        cam.estimate_focal(torch.ones(4, 4, 3), mode="mean")


def test_inverse_se3_rejects_wrong_shape():
    with pytest.raises(ValueError, match="4, 4"):
        cam.inverse_se3(torch.eye(3))


def test_module_docstring_states_the_conventions():
    doc = cam.__doc__
    for phrase in ("OpenCV", "cam2world", "(u + 0.5, v + 0.5)", "XYZW", "radians"):
        assert phrase in doc
    assert np.all([f in dir(cam) for f in cam.__all__])
