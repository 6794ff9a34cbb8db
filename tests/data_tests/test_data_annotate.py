"""Point-map annotation: exact on synthetic depth, invalid masks, local depth estimator with a clear error."""

from __future__ import annotations

import pytest
import torch

from jog3r.data.annotate import DepthEstimator, annotate_clip, pointmaps_in_first
from jog3r.data.synth import SynthConfig, generate_clip
from jog3r.data.synth.render import camera_rays
from jog3r.geometry.camera import transform_points, unproject_depth
from jog3r.types import PosedClip

CFG = SynthConfig(height=24, width=32, num_frames=4)


def test_points_are_the_rendered_surface_points_in_camera_0():
    clip = generate_clip(2, CFG)
    pts, valid = annotate_clip(clip)
    assert pts.shape == (4, 24, 32, 3) and valid.shape == (4, 24, 32) and pts.dtype == torch.float32
    origins, dirs = camera_rays(clip.cam2world, clip.K, 24, 32)
    hit_world = origins[:, None, None] + clip.depth[..., None] * dirs  # where the renderer's rays stopped
    back_in_world = transform_points(clip.cam2world[0], pts)
    assert torch.allclose(back_in_world[valid], hit_world[valid], atol=1e-3)
    assert torch.allclose(pts[0], unproject_depth(clip.depth[0], clip.K[0]) * valid[0, ..., None], atol=1e-5)
    assert torch.equal(valid, clip.depth > 0)


def test_missing_depth_is_invalid_and_zero():
    depth = torch.full((2, 4, 5), 2.0)
    depth[0, 0, 0], depth[1, 1, 1], depth[1, 2, 2], depth[0, 3, 4] = 0.0, -1.0, float("nan"), float("inf")
    K = torch.tensor([[4.0, 0, 2.5], [0, 4.0, 2.0], [0, 0, 1]]).expand(2, 3, 3)
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[1, :3, 3] = torch.tensor([1.0, 0.0, 0.0])
    pts, valid = pointmaps_in_first(depth, K, c2w)
    assert valid.sum() == 2 * 20 - 4
    assert not valid[0, 0, 0] and not valid[1, 1, 1] and not valid[1, 2, 2] and not valid[0, 3, 4]
    assert torch.isfinite(pts).all() and (pts[~valid] == 0).all()
    # camera 1 sits 1 m to the right of camera 0: in camera 0 its points are shifted by +1 in x
    expect = unproject_depth(torch.full((4, 5), 2.0), K[1]) + torch.tensor([1.0, 0.0, 0.0])
    assert torch.allclose(pts[1][valid[1]], expect[valid[1]], atol=1e-6)


def test_clip_without_depth_needs_an_estimator():
    clip = generate_clip(0, CFG)
    bare = PosedClip(frames=clip.frames, cam2world=clip.cam2world, K=clip.K, depth=None, name="bare")
    with pytest.raises(ValueError, match="'bare' has no depth"):
        annotate_clip(bare)


def test_missing_estimator_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json missing.*never downloaded"):
        DepthEstimator(tmp_path / "zoedepth")


def _tiny_depth_anything(folder, metric: bool, bias: float):
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    backbone = Dinov2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                            image_size=28, patch_size=14, out_features=["stage1", "stage2"],
                            reshape_hidden_states=False)
    cfg = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=16, neck_hidden_sizes=[8, 16],
                              fusion_hidden_size=8, head_hidden_size=8, reassemble_factors=[2, 1], patch_size=14,
                              depth_estimation_type="metric" if metric else "relative", max_depth=10)
    model = DepthAnythingForDepthEstimation(cfg)
    with torch.no_grad():  # constant output: a known answer
        model.head.conv3.weight.zero_()
        model.head.conv3.bias.fill_(bias)
    model.save_pretrained(folder)
    DPTImageProcessor(size={"height": 28, "width": 28}, keep_aspect_ratio=False).save_pretrained(folder)


@pytest.mark.parametrize("metric", [False, True])
def test_tiny_local_depth_anything(tmp_path, metric):
    _tiny_depth_anything(tmp_path, metric, bias=2.0)
    est = DepthEstimator(tmp_path)
    assert est.metric is metric
    clip = generate_clip(1, CFG)
    depth = est(clip.frames)
    assert depth.shape == (4, 24, 32)
    # the head outputs max_depth * sigmoid(2) (metric) or max_depth * relu(2) = 20 as inverse depth (relative)
    expect = 10.0 * torch.sigmoid(torch.tensor(2.0)) if metric else torch.tensor(1 / 20)
    assert torch.allclose(depth, expect.expand_as(depth), rtol=1e-4)
    bare = PosedClip(frames=clip.frames, cam2world=clip.cam2world, K=clip.K, depth=None, name="bare")
    pts, valid = annotate_clip(bare, est)
    assert valid.all() and torch.allclose(pts[0, ..., 2], expect.expand(24, 32), rtol=1e-4)
