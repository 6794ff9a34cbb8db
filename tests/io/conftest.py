"""Fixtures for the camera-file tests: seeded random cameras in the package convention."""

from __future__ import annotations

import numpy as np
import pytest
import roma
import torch


def make_cameras(num: int, seed: int, *, shared_K: bool = False, size: tuple[int, int] = (256, 384)):
    """``(cam2world [F,4,4], K [F,3,3])`` float32: random rotations and translations, non-square pixels."""
    gen = torch.Generator().manual_seed(seed)
    cam2world = torch.eye(4).repeat(num, 1, 1)
    cam2world[:, :3, :3] = roma.random_rotmat(num, generator=gen)
    cam2world[:, :3, 3] = (torch.rand(num, 3, generator=gen) - 0.5) * 10.0
    H, W = size
    rng = np.random.default_rng(seed)
    count = 1 if shared_K else num
    fx = rng.uniform(0.4, 1.2, count) * W
    fy = fx * rng.uniform(0.8, 1.25, count)  # non-square pixels
    cx = W / 2 + rng.uniform(-5, 5, count)
    cy = H / 2 + rng.uniform(-5, 5, count)
    K = torch.zeros(count, 3, 3)
    K[:, 0, 0], K[:, 1, 1] = torch.tensor(fx), torch.tensor(fy)
    K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = torch.tensor(cx), torch.tensor(cy), 1.0
    return cam2world, K.expand(num, 3, 3).clone()


@pytest.fixture
def cameras():
    """Factory fixture: ``cameras(num, seed, shared_K=False, size=(H, W))``."""
    return make_cameras
