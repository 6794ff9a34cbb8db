"""The pose diagnostic's metric: zero on the truth, the injected error otherwise."""

from __future__ import annotations

import math

import pytest
import torch

from jog3r.data.annotate import pointmaps_in_first
from jog3r.data.synth import SynthConfig, generate_clip
from jog3r.geometry.camera import transform_points
from jog3r.recon.pairs import SceneGraph, make_edges
from jog3r.train.diagnose import pair_pose_errors


def _rot_z(deg: float) -> torch.Tensor:
    a = math.radians(deg)
    T = torch.eye(4)
    T[:2, :2] = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return T


@pytest.fixture(scope="module")
def clip():
    return generate_clip(7, SynthConfig(height=32, width=48, num_frames=4))


def test_truth_scores_zero_and_a_rotated_view2_scores_its_rotation(clip):
    pts, _ = pointmaps_in_first(clip.depth, clip.K, clip.cam2world)
    edges = make_edges(4, SceneGraph.FIRST_TO_ALL)
    conf = torch.ones(len(edges), 32, 48)
    exact = pair_pose_errors(pts[edges[:, 1]] * 2.5, conf, pts[edges[:, 0]] * 2.5, clip.depth, clip.K,
                             clip.cam2world, edges)
    for key in ("rot_deg", "rel_rot_deg", "view1_rot_deg"):
        assert exact[key].max() < 0.05, key
    assert exact["trans_deg"].max() < 0.5 and exact["rel_trans_deg"].max() < 0.5
    turned = transform_points(_rot_z(10.0), pts[edges[:, 1]])  # view 2 off by 10 deg, view 1 right
    off = pair_pose_errors(turned, conf, pts[edges[:, 0]], clip.depth, clip.K, clip.cam2world, edges)
    assert off["rot_deg"] == pytest.approx(torch.full((3,), 10.0, dtype=torch.float64), abs=0.05)
    assert off["rel_rot_deg"] == pytest.approx(torch.full((3,), 10.0, dtype=torch.float64), abs=0.05)
    both = pair_pose_errors(turned, conf, transform_points(_rot_z(10.0), pts[edges[:, 0]]), clip.depth, clip.K,
                            clip.cam2world, edges)  # a common frame error: the relative pose is still exact
    assert both["rel_rot_deg"].max() < 0.05 and both["view1_rot_deg"] == pytest.approx(
        torch.full((3,), 10.0, dtype=torch.float64), abs=0.05)
