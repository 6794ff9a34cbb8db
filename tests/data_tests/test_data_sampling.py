"""The paper's sampling rules: strides {1, 2, 4, 8} that fit, reversal, resize + crop, first-frame cameras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jog3r.data.datasets import load_re10k_clip
from jog3r.data.sampling import STRIDES, ClipDataset, choose_window, relative_to_first
from jog3r.geometry.camera import inverse_se3
from jog3r.geometry.camera import adjust_intrinsics

RE10K = Path(__file__).parents[1] / "data" / "realestate10k"


@settings(max_examples=200, deadline=None)
@given(num=st.integers(16, 400), seed=st.integers(0, 2**32 - 1))
def test_window_rules(num, seed):
    idx, stride, flipped = choose_window(num, 16, np.random.default_rng(seed))
    assert stride in STRIDES and 15 * stride + 1 <= num
    ordered = idx[::-1] if flipped else idx
    assert len(idx) == 16 and (np.diff(ordered) == stride).all()
    assert ordered[0] >= 0 and ordered[-1] < num


def test_only_fitting_strides_are_used_and_reversal_is_half():
    rng = np.random.default_rng(0)
    draws = [choose_window(40, 16, rng) for _ in range(2000)]
    assert {d[1] for d in draws} == {1, 2}  # 15*4+1 = 61 > 40
    assert abs(np.mean([d[2] for d in draws]) - 0.5) < 0.04
    assert {d[1] for d in (choose_window(200, 16, rng) for _ in range(400))} == set(STRIDES)
    with pytest.raises(ValueError, match="need at least 16 frames"):
        choose_window(15, 16, rng)


def test_relative_to_first_is_identity_first_and_world_invariant():
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(6, 4, generator=g), dim=-1)
    import roma

    c2w = torch.eye(4).repeat(6, 1, 1)
    c2w[:, :3, :3] = roma.unitquat_to_rotmat(q)
    c2w[:, :3, 3] = torch.randn(6, 3, generator=g)
    rel = relative_to_first(c2w)
    assert torch.allclose(rel[0], torch.eye(4), atol=1e-6)
    world = torch.eye(4)
    world[:3, :3] = roma.unitquat_to_rotmat(torch.nn.functional.normalize(torch.randn(4, generator=g), dim=0))
    world[:3, 3] = torch.tensor([3.0, -1.0, 2.0])
    assert torch.allclose(relative_to_first(world @ c2w), rel, atol=1e-5)


def test_clip_dataset_applies_the_sampling():
    root = RE10K / "clips25_576x320"
    ds = ClipDataset(root, size=(128, 192), num_frames=8, seed=3)
    assert len(ds) == 6
    for i in range(len(ds)):
        clip = ds[i]
        assert clip.frames.shape == (8, 3, 128, 192)
        idx = clip.frame_indices.numpy()
        step = np.abs(np.diff(idx))
        assert len(set(step)) == 1 and step[0] in (1, 2)  # 7*4+1 = 29 > 25 frames
        raw = load_re10k_clip(ds.cameras[i], indices=idx)
        assert torch.allclose(clip.cam2world[0], torch.eye(4), atol=1e-5)
        expect = inverse_se3(raw.cam2world[0].double()) @ raw.cam2world.double()
        assert torch.allclose(clip.cam2world.double(), expect, atol=1e-5)
        assert torch.allclose(clip.K, adjust_intrinsics(raw.K, (320, 576), (128, 192)), atol=1e-4)
    a, b = ds[2], ds[2]
    assert torch.equal(a.frames, b.frames) and torch.equal(a.frame_indices, b.frame_indices)
    windows = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        windows.add(tuple(ds[2].frame_indices.tolist()))
    assert len(windows) > 1
