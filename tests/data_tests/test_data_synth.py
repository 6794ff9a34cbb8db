"""Synthetic generator: depth, intrinsics and cameras agree; determinism; realistic paths; on-disk round trip."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from jog3r.data.datasets import collate_clips
from jog3r.data.sampling import ClipDataset, relative_to_first
from jog3r.data.synth import SynthClipStream, SynthConfig, generate_clip, write_dataset
from jog3r.data.synth.layout import build_scene
from jog3r.data.synth.paths import FreeSpace, sample_path
from jog3r.data.synth.render import camera_rays

SMALL = SynthConfig(height=48, width=64, num_frames=6)


@pytest.mark.parametrize("seed", [0, 1, 2, 5])
def test_depth_cameras_and_intrinsics_agree(seed, reproject_to_first):
    clip = generate_clip(seed, SMALL)
    out = reproject_to_first(clip.depth, clip.K, clip.cam2world)
    rel = out["rel_depth"]
    assert rel.numel() > 1000
    # frame f's surface points land on frame 0's surface: sub-pixel agreement except at depth edges
    assert rel.median() < 1e-3
    assert (rel < 0.01).float().mean() > 0.9


def test_images_agree_with_geometry_and_a_wrong_pose_is_detected(reproject_to_first):
    clip = generate_clip(0, dataclasses.replace(SMALL, height=96, width=128, degrade=0.0))
    good = reproject_to_first(clip.depth, clip.K, clip.cam2world, clip.frames)["color"].median()
    assert good < 0.002  # frame f's colours reappear at the projected pixels of frame 0
    # negative control: rotate the later cameras by one degree about their y axis
    a = math.radians(1.0)
    rot = torch.tensor([[math.cos(a), 0, math.sin(a), 0], [0, 1, 0, 0], [-math.sin(a), 0, math.cos(a), 0], [0, 0, 0, 1]])
    bad_c2w = clip.cam2world.clone()
    bad_c2w[1:] = bad_c2w[1:] @ rot
    bad = reproject_to_first(clip.depth, clip.K, bad_c2w, clip.frames)["color"].median()
    assert bad > 4 * good


def test_depth_is_the_z_depth_along_the_camera_rays():
    clip = generate_clip(4, SMALL)
    origins, dirs = camera_rays(clip.cam2world, clip.K, 48, 64)
    cam_dirs = torch.einsum("fji,fhwj->fhwi", clip.cam2world[:, :3, :3], dirs)
    assert torch.allclose(cam_dirs[..., 2], torch.ones(6, 48, 64), atol=1e-5)  # rays scaled to unit camera z
    assert (clip.depth >= 0).all() and torch.isfinite(clip.depth).all()


def test_same_seed_same_clip_other_seed_other_clip():
    a, b, c = generate_clip(7, SMALL), generate_clip(7, SMALL), generate_clip(8, SMALL)
    for field in ("frames", "cam2world", "K", "depth"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert a.caption == b.caption and a.name == b.name == "synth_00000007"
    assert not torch.equal(a.frames, c.frames)


def test_clip_fields_types_and_ranges():
    clip = generate_clip(11, SMALL)
    assert clip.frames.shape == (6, 3, 48, 64) and clip.frames.dtype == torch.float32
    assert 0.0 <= float(clip.frames.min()) and float(clip.frames.max()) <= 1.0
    assert clip.cam2world.shape == (6, 4, 4) and clip.K.shape == (6, 3, 3) and clip.depth.shape == (6, 48, 64)
    assert torch.allclose(clip.cam2world[:, 3], torch.tensor([0.0, 0, 0, 1]).expand(6, 4))
    R = clip.cam2world[:, :3, :3]
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(6, 3, 3), atol=1e-5)
    hfov = 2 * torch.atan(64 / 2 / clip.K[:, 0, 0]) * 180 / math.pi
    assert ((hfov >= 45 - 1e-3) & (hfov <= 95 + 1e-3)).all()
    assert torch.allclose(clip.K[:, 0, 2], torch.tensor(32.0)) and torch.allclose(clip.K[:, 1, 2], torch.tensor(24.0))
    assert isinstance(clip.caption, str) and len(clip.caption.split()) >= 3


@pytest.mark.parametrize("seed", range(12))
def test_paths_are_walkthrough_like_and_collision_free(seed):
    rng = np.random.default_rng(seed)
    scene = build_scene(rng, outdoor_prob=0.2, texture_size=32)
    c2w, kind = sample_path(rng, scene, 16, (1.2, 1.7))
    pos = c2w[:, :3, 3].numpy()
    step = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    assert step.max() < 0.35, kind  # RealEstate10K-like speeds (m per frame)
    rel_rot = c2w[:-1, :3, :3].transpose(1, 2) @ c2w[1:, :3, :3]
    angle = torch.rad2deg(torch.arccos(((rel_rot.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)))
    assert angle.max() < 7.0, kind
    assert ((pos[:, 2] > 1.1) & (pos[:, 2] < 1.8)).all()
    down = c2w[:, :3, 1].numpy()  # camera y axis points roughly down: level cameras
    assert (down[:, 2] < -0.9).all()
    space = FreeSpace(scene)
    assert min(space.clearance_at(p[:2]) for p in pos) > 0.3  # inside the walkable area, never in furniture


@pytest.mark.parametrize("seed", range(6))
def test_long_paths_walk_instead_of_panning_in_place(seed):
    """A 240-frame clip walks (issue 16's long benchmark): before, the single-segment search could not fit a walk
    of that length in a room and fell back to a pan in place (centimetres of translation: no observable baseline)."""
    rng = np.random.default_rng(seed)
    scene = build_scene(rng, outdoor_prob=0.0, texture_size=32)
    c2w, kind = sample_path(rng, scene, 240, (1.2, 1.7))
    assert kind == "walk"
    pos = c2w[:, :3, 3].numpy()
    step = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    assert step.max() < 0.35
    assert step.sum() > 2.0  # metres walked (a pan in place stays within a few centimetres)
    assert np.linalg.norm(pos[:, :2] - pos[0, :2], axis=1).max() > 0.5
    rel_rot = c2w[:-1, :3, :3].transpose(1, 2) @ c2w[1:, :3, :3]
    angle = torch.rad2deg(torch.arccos(((rel_rot.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)))
    assert angle.max() < 7.0
    assert ((pos[:, 2] > 1.1) & (pos[:, 2] < 1.8)).all()  # the per-frame height and pitch drifts stay bounded
    assert (c2w[:, :3, 1].numpy()[:, 2] < -0.9).all()
    space = FreeSpace(scene)
    assert min(space.clearance_at(p[:2]) for p in pos) > 0.3


def test_stream_is_worker_seeded_and_deterministic():
    cfg = SynthConfig(height=16, width=24, num_frames=2)
    names = [c.name for c in SynthClipStream(cfg, base_seed=5, num_clips=3)]
    assert names == ["synth_00000005", "synth_00000006", "synth_00000007"]
    loader = DataLoader(SynthClipStream(cfg, base_seed=5, num_clips=4), batch_size=2, num_workers=2,
                        collate_fn=collate_clips)
    batches = list(loader)
    got = sorted(n for b in batches for n in b["name"])
    assert got == [f"synth_{i:08d}" for i in range(5, 9)]
    ref = generate_clip(6, cfg)
    for b in batches:
        if "synth_00000006" in b["name"]:
            # workers run single-threaded: equal up to float rounding of multi-threaded reductions
            assert torch.allclose(b["frames"][b["name"].index("synth_00000006")], ref.frames, atol=1e-4)


@pytest.mark.parametrize("video", ["frames", "mp4"])
def test_write_dataset_round_trip(tmp_path, video):
    cfg = SynthConfig(height=32, width=48, num_frames=4)
    write_dataset(tmp_path, 2, cfg, start_seed=3, video=video)
    ds = ClipDataset(tmp_path, size=(32, 48), num_frames=4, strides=(1,), reverse_prob=0.0)
    assert len(ds) == 2
    got = ds[0]
    ref = generate_clip(3, cfg)
    assert got.name == "synth_00000003" and got.caption == ref.caption
    assert torch.allclose(got.cam2world, relative_to_first(ref.cam2world), atol=2e-5)
    assert torch.allclose(got.K, ref.K, atol=1e-4)
    assert torch.allclose(got.depth, ref.depth, rtol=1e-3, atol=1e-3)  # float16 on disk
    err = (got.frames - ref.frames).abs()
    if video == "frames":
        assert err.max() <= 1 / 255 + 1e-6  # PNG: only 8-bit quantisation
    else:
        assert err.mean() < 0.02  # H.264 at crf 18
    # resumable: a second call with the same seeds writes nothing new
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file() and p.name != "captions.json"}
    write_dataset(tmp_path, 2, cfg, start_seed=3, video=video)
    after = {p: p.stat().st_mtime_ns for p in before if p.name != "synth_config.json"}
    assert all(after[p] == before[p] for p in after)


def test_outdoor_sky_has_no_depth():
    clip = generate_clip(0, dataclasses.replace(SMALL, outdoor_prob=1.0))
    sky = clip.depth == 0
    assert sky.any() and (~sky).any()
    assert clip.frames.mean(1)[sky].mean() > 0.3  # the sky is bright, not a black hole


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="hfov"):
        SynthConfig(hfov_deg=(100.0, 50.0))
    with pytest.raises(ValueError, match="8x8"):
        SynthConfig(height=4)
