"""Shared helpers of the data tests: reprojection of one frame's depth into frame 0."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as tfn

from jog3r.geometry.camera import inverse_se3, project, transform_points, unproject_depth


def _reproject_to_first(depth, K, cam2world, frames=None):
    """For every frame f >= 1, move its depth points into camera 0 and compare with frame 0.

    Returns a dict with ``rel_depth`` (|z - depth_0(proj)| / z) and, when frames are given, ``color`` (mean
    absolute RGB difference to frame 0 at the projection), both over pixels that are valid, inside frame 0 and
    not occluded there.
    """
    n, H, W = depth.shape
    rel, color = [], []
    for f in range(1, n):
        X = transform_points(inverse_se3(cam2world[0]) @ cam2world[f], unproject_depth(depth[f], K[f]))
        uv = project(X, K[0])
        u, v, z = uv[..., 0], uv[..., 1], X[..., 2]
        grid = torch.stack([u / W * 2 - 1, v / H * 2 - 1], -1)[None]
        d0 = tfn.grid_sample(depth[0][None, None], grid, mode="nearest", align_corners=False)[0, 0]
        d0_lin = tfn.grid_sample(depth[0][None, None], grid, mode="bilinear", align_corners=False)[0, 0]
        ok = (depth[f] > 0) & (z > 0.05) & (u > 1) & (u < W - 1) & (v > 1) & (v < H - 1) & (d0 > 0)
        ok &= z <= d0 * 1.02  # not hidden behind a nearer surface in frame 0
        rel.append(((z - d0_lin).abs() / z)[ok & (d0_lin > 0)])
        if frames is not None:
            c0 = tfn.grid_sample(frames[0][None], grid, mode="bilinear", align_corners=False)[0]
            color.append((c0 - frames[f]).abs().mean(0)[ok])
    out = {"rel_depth": torch.cat(rel)}
    if frames is not None:
        out["color"] = torch.cat(color)
    return out


@pytest.fixture
def reproject_to_first():
    """The reprojection helper (a fixture so test modules need no imports from conftest)."""
    return _reproject_to_first
