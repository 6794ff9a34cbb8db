"""Tests for jog3r.metrics.met3r and jog3r.metrics.features on an exactly known scene.

The scene is a fronto-parallel plane at depth 2 textured with a real RealEstate10K frame; camera ``f``
translates along +x so that its image is the texture shifted by an integer number of pixels. The point maps
are then exact and every warped pixel lands on a pixel centre, so consistent videos score 0 and perturbations
can only raise it.
"""

from __future__ import annotations

import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import roma
import torch
import torch.nn.functional as nnf

from jog3r.geometry.camera import unproject_depth
from jog3r.metrics.features import DINOv2Features, RGBFeatures, TAEF2Features
from jog3r.metrics.met3r import error_map_panels, met3r, save_error_map_video, splat_features
from jog3r.types import PairwisePointmaps, Reconstruction

H, W, FOCAL, DEPTH, MARGIN = 48, 64, 60.0, 2.0, 40
K = torch.tensor([[FOCAL, 0, W / 2], [0, FOCAL, H / 2], [0, 0, 1.0]])
ASSETS = Path(__file__).resolve().parents[2] / "assets"


@pytest.fixture(scope="module")
def texture(data_dir_module) -> torch.Tensor:
    """``[3, H, W + MARGIN]`` real image (RealEstate10K frame, area-downsampled)."""
    image = iio.imread(data_dir_module / "realestate10k/clips16_384x256/frames/0bf152ef84195293/00.jpg")
    image = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)[None] / 255.0
    return nnf.interpolate(image, size=(H, W + MARGIN), mode="area")[0]


@pytest.fixture(scope="module")
def data_dir_module() -> Path:
    return Path(__file__).resolve().parents[1] / "data"


def plane_video(texture: torch.Tensor, shifts: list[int]) -> torch.Tensor:
    """Frame ``f`` sees texture columns ``shifts[f] .. shifts[f] + W``: ``[F, 3, H, W]``."""
    return torch.stack([texture[:, :, s : s + W] for s in shifts])


def plane_pointmaps(shifts: list[int], scales: list[float] | None = None) -> PairwisePointmaps:
    """Exact pairs ``(0, f)``: camera ``f`` at ``x = shifts[f] * DEPTH / FOCAL``; optional pair scales."""
    num = len(shifts) - 1
    scales = [1.0] * num if scales is None else scales
    ref = unproject_depth(torch.full((H, W), DEPTH), K)
    pts, other = [], []
    for f in range(1, len(shifts)):
        offset = torch.tensor([shifts[f] * DEPTH / FOCAL, 0.0, 0.0])
        pts.append(scales[f - 1] * ref), other.append(scales[f - 1] * (ref + offset))
    ones = torch.ones(1, num, H, W)
    edges = torch.tensor([[0, f] for f in range(1, len(shifts))])
    return PairwisePointmaps(torch.stack(pts)[None], ones, torch.stack(other)[None], ones, edges)


def plane_reconstruction(
    texture: torch.Tensor, shifts: list[int], world_from_cam0: torch.Tensor
) -> Reconstruction:
    """The same scene as a Reconstruction, expressed in an arbitrary world frame."""
    c2w = torch.eye(4).repeat(len(shifts), 1, 1)
    c2w[:, 0, 3] = torch.tensor(shifts, dtype=torch.float32) * DEPTH / FOCAL
    c2w = world_from_cam0 @ c2w
    depth = torch.full((len(shifts), H, W), DEPTH)
    pts_cam = unproject_depth(depth, K)
    pts = pts_cam @ c2w[:, None, :3, :3].transpose(-1, -2) + c2w[:, None, None, :3, 3]
    frames = plane_video(texture, shifts)
    return Reconstruction(c2w, K.repeat(len(shifts), 1, 1), depth, pts, torch.ones(len(shifts), H, W),
                          frames.permute(0, 2, 3, 1))


def test_repeated_frame_with_identical_pointmaps_scores_zero(texture):
    frames = plane_video(texture, [0, 0, 0, 0])
    result = met3r(frames, pointmaps=plane_pointmaps([0, 0, 0, 0]))
    assert result.score <= 1e-5 and result.backbone == "rgb"
    assert result.per_frame.shape == (3,)
    assert result.masks.shape == (3, H, W) and result.error_maps.shape == (3, H, W)
    assert bool(result.masks.all())
    assert float(result.error_maps.abs().max()) <= 1e-5
    np.testing.assert_allclose(result.focal.numpy(), FOCAL, rtol=1e-5)  # estimated from the point map
    # Same with identity cameras through a Reconstruction.
    recon = plane_reconstruction(texture, [0, 0, 0, 0], torch.eye(4))
    assert met3r(frames, recon=recon).score <= 1e-5


def test_consistent_camera_motion_scores_zero_and_masks_the_overlap(texture):
    shifts = [0, 3, 6, 9]
    result = met3r(plane_video(texture, shifts), pointmaps=plane_pointmaps(shifts))
    assert result.score <= 1e-5
    for f in range(1, 4):  # frame f covers frame 0's columns s_f .. W-1 only
        mask = result.masks[f - 1]
        assert not mask[:, : shifts[f]].any() and bool(mask[:, shifts[f] :].all())


def test_each_pair_may_have_its_own_scale(texture):
    shifts = [0, 2, 5, 11]
    frames = plane_video(texture, shifts)
    noisy = (frames + 0.1 * torch.randn_like(frames)).clamp(0, 1)
    base = met3r(noisy, pointmaps=plane_pointmaps(shifts))
    scaled = met3r(noisy, pointmaps=plane_pointmaps(shifts, scales=[0.5, 2.0, 7.0]))
    assert base.score > 0.01
    torch.testing.assert_close(scaled.per_frame, base.per_frame)
    assert torch.equal(scaled.masks, base.masks)


def test_reconstruction_input_matches_pointmaps(texture):
    shifts = [0, 4, 8]
    frames = (plane_video(texture, shifts) + 0.05 * torch.randn(3, 3, H, W)).clamp(0, 1)
    world = roma.RigidUnitQuat(roma.random_unitquat(), torch.tensor([1.0, -2.0, 0.5])).to_homogeneous()
    from_recon = met3r(frames, recon=plane_reconstruction(texture, shifts, world))
    from_pairs = met3r(frames, pointmaps=plane_pointmaps(shifts))
    torch.testing.assert_close(from_recon.per_frame, from_pairs.per_frame, atol=1e-5, rtol=1e-4)
    assert torch.equal(from_recon.masks, from_pairs.masks)


def test_score_rises_with_inconsistent_content(texture):
    shifts = [0, 3, 6, 9, 12]
    pointmaps = plane_pointmaps(shifts)
    # The frames move further than the geometry says by `extra` pixels per frame.
    by_shift = [
        met3r(plane_video(texture, [s + extra * f for f, s in enumerate(shifts)]), pointmaps=pointmaps).score
        for extra in (0, 1, 2, 4)
    ]
    assert by_shift[0] <= 1e-5 and all(a < b for a, b in zip(by_shift, by_shift[1:])), by_shift
    frames = plane_video(texture, shifts)
    by_noise = []
    for sigma in (0.0, 0.05, 0.1, 0.2):
        noisy = frames.clone()
        noisy[1:] = (frames[1:] + sigma * torch.randn_like(frames[1:])).clamp(0, 1)  # frame 0 stays clean
        by_noise.append(met3r(noisy, pointmaps=pointmaps).score)
    assert by_noise[0] <= 1e-5 and all(a < b for a, b in zip(by_noise, by_noise[1:])), by_noise


def test_points_outside_the_view_or_behind_give_empty_masks(texture):
    frames = plane_video(texture, [0, 0, 0])
    pm = plane_pointmaps([0, 0, 0])
    aside = PairwisePointmaps(pm.pts3d, pm.conf, pm.pts3d_in_other_view + torch.tensor([100.0, 0, 0]),
                              pm.conf_in_other_view, pm.edges)
    result = met3r(frames, pointmaps=aside)
    assert not result.masks.any() and torch.isnan(result.per_frame).all() and math.isnan(result.score)
    assert float(result.error_maps.abs().max()) == 0.0
    behind = PairwisePointmaps(pm.pts3d, pm.conf, pm.pts3d_in_other_view * torch.tensor([1.0, 1.0, -1.0]),
                               pm.conf_in_other_view, pm.edges)
    assert not met3r(frames, pointmaps=behind).masks.any()


def test_splat_keeps_the_nearest_point_per_pixel():
    k = torch.tensor([[10.0, 0, 2.0], [0, 10.0, 2.0], [0, 0, 1.0]])
    # Three points in pixel (2, 2) (the centre ray) at depths 3, 1, 2, and one in pixel (3, 2).
    pts = torch.tensor([[0.0, 0.0, 3.0], [0.0, 0.0, 1.0], [0.0, 0.0, 2.0], [0.1, 0.0, 1.0]])
    feats = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    rendered, covered = splat_features(pts, feats, k, (4, 4))
    assert rendered[0, 2, 2] == 2.0 and rendered[0, 2, 3] == 4.0
    assert int(covered.sum()) == 2 and rendered[0, 0, 0] == 0.0


def test_bad_inputs_raise(texture):
    frames = plane_video(texture, [0, 1, 2])
    pm = plane_pointmaps([0, 1, 2])
    with pytest.raises(ValueError, match="exactly one"):
        met3r(frames)
    with pytest.raises(ValueError, match="missing f"):
        met3r(frames, pointmaps=PairwisePointmaps(pm.pts3d, pm.conf, pm.pts3d_in_other_view,
                                                  pm.conf_in_other_view, torch.tensor([[0, 1], [1, 2]])))
    with pytest.raises(ValueError, match="resize"):
        met3r(frames[..., :32], pointmaps=pm)
    with pytest.raises(ValueError, match="F >= 2"):
        met3r(frames[:1], pointmaps=pm)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        RGBFeatures()(frames * 3)


def test_dinov2_features_from_a_local_tiny_model(tmp_path, texture):
    from transformers import Dinov2Config, Dinov2Model

    config = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          patch_size=8, image_size=64)
    Dinov2Model(config).save_pretrained(tmp_path / "dinov2-tiny")
    extractor = DINOv2Features(tmp_path / "dinov2-tiny", short_side=32)
    assert extractor.name == "dinov2:dinov2-tiny"
    frames = plane_video(texture, [0, 0, 0])
    feats = extractor(frames)
    assert feats.shape == (3, 32, H, W) and feats.dtype == torch.float32
    assert float(feats[0].std(dim=(1, 2)).mean()) > 0  # spatially varying, not a constant map
    result = met3r(frames, pointmaps=plane_pointmaps([0, 0, 0]), features=extractor)
    assert result.backbone == "dinov2:dinov2-tiny" and result.score <= 1e-5
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        DINOv2Features(tmp_path / "missing")


@pytest.mark.skipif(
    not (ASSETS / "taef2" / "taef2_encoder.pth").is_file(), reason="assets/taef2 weights absent"
)
def test_taef2_features(texture):
    extractor = TAEF2Features()
    assert extractor.name == "taef2:layer13"
    frames = plane_video(texture, [0, 0, 8])[..., :, :60]  # width 60: not a multiple of 8, padded inside
    feats = extractor(frames)
    assert feats.shape == (3, 64, H, 60)
    torch.testing.assert_close(feats[0], feats[1])
    shifts = [0, 0, 8]
    result = met3r(plane_video(texture, shifts), pointmaps=plane_pointmaps(shifts), features=extractor)
    # Frame 2 repeats frame 1 (score 0); frame 3 is shifted by 8 pixels = one latent cell (features differ).
    assert result.per_frame[0] <= 1e-5 and 0 < result.per_frame[1] < 0.5


def test_error_map_video_is_written_and_readable(tmp_path, texture):
    shifts = [0, 4, 8, 12]
    frames = plane_video(texture, shifts)
    frames[2:] = (frames[2:] + 0.15 * torch.randn_like(frames[2:])).clamp(0, 1)
    result = met3r(frames, pointmaps=plane_pointmaps(shifts))
    panels = error_map_panels(result, frames)
    assert panels.shape == (3, 16 + H, 3 * W, 3) and panels.dtype == np.uint8
    heat = panels[2, 16:, 2 * W :]  # below the caption strip
    assert (np.abs(heat[:, : shifts[3]].astype(int) - 128) <= 1).all()  # invisible pixels are grey
    path = save_error_map_video(result, frames, tmp_path / "met3r" / "errors.mp4", fps=4)
    video = iio.imread(path, plugin="pyav")
    assert video.shape == (3, 16 + H, 3 * W, 3)
    # Frame 1 is consistent (low error, blue), frame 3 is noisy (higher error, warmer): compare heat maps.
    assert video[2, 16:, 2 * W + 20 :, 0].mean() > video[0, 16:, 2 * W + 20 :, 0].mean() + 20
