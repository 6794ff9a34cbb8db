"""The optional pose-aware auxiliary term (issue 18, not in the paper) and the pair-gap option."""

from __future__ import annotations

import math

import pytest
import roma
import torch

from jog3r.data.annotate import cameras_in_first, pointmaps_in_first
from jog3r.losses import relative_pose_loss
from jog3r.train.config import TrainConfig, TrainMode
from jog3r.train.trainer import Trainer, sample_rec_pairs
from jog3r.types import PairwisePointmaps


def _scene(seed: int = 0, baseline: float = 0.3):
    """Two cameras looking at a random depth map; returns true points of frame i / j in camera i and j -> i."""
    g = torch.Generator().manual_seed(seed)
    h, w = 12, 16
    depth = 2.0 + 3.0 * torch.rand(2, h, w, generator=g, dtype=torch.float64)
    K = torch.tensor([[20.0, 0, w / 2], [0, 20.0, h / 2], [0, 0, 1]], dtype=torch.float64).expand(2, 3, 3)
    c2w = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    c2w[1, :3, :3] = roma.rotvec_to_rotmat(torch.tensor([0.02, 0.1, -0.03], dtype=torch.float64))
    c2w[1, :3, 3] = baseline * torch.tensor([0.8, 0.1, 0.6], dtype=torch.float64)
    pts, valid = pointmaps_in_first(depth, K, c2w)
    return pts, valid, cameras_in_first(c2w)


def _pm(p1, p2, c1=None, c2=None) -> PairwisePointmaps:
    c1 = torch.ones(p1.shape[:-1]) if c1 is None else c1
    c2 = torch.ones(p2.shape[:-1]) if c2 is None else c2
    return PairwisePointmaps(pts3d=p1[None, None], conf=c1[None, None], pts3d_in_other_view=p2[None, None],
                             conf_in_other_view=c2[None, None], edges=torch.tensor([[0, 1]]))


def _call(pred, pts, valid, cams, **kw):
    return relative_pose_loss(pred, pts[0][None, None], pts[1][None, None], cams[1][None, None],
                              valid[0][None, None], valid[1][None, None], **kw)


def test_cameras_in_first_is_the_frame_of_the_points():
    pts, valid, cams = _scene()
    assert torch.allclose(cams[0], torch.eye(4), atol=1e-6)
    # frame 1's points in camera 1, moved by cam2first[1], are its points in camera 0
    back = torch.einsum("ij,hwj->hwi", cams[1, :3, :3].inverse(), pts[1] - cams[1, :3, 3])
    again = torch.einsum("ij,hwj->hwi", cams[1, :3, :3], back) + cams[1, :3, 3]
    assert torch.allclose(again, pts[1], atol=1e-5)


def test_a_prediction_with_the_true_pose_costs_nothing_whatever_its_frame_and_scale():
    pts, valid, cams = _scene()
    R = roma.rotvec_to_rotmat(torch.tensor([0.4, -0.2, 0.3]))
    move = lambda p: 2.5 * p @ R.T + torch.tensor([0.3, -1.0, 2.0])  # noqa: E731  one similarity for both views
    out = _call(_pm(move(pts[0]), move(pts[1])), pts, valid, cams)
    assert float(out["loss"]) < 1e-3
    assert float(out["pose_rot_deg"]) < 0.05 and float(out["pose_trans_deg"]) < 0.1


def test_a_wrong_translation_direction_is_charged_and_measured():
    pts, valid, cams = _scene()
    # view 2 predicted as seen from a camera displaced sideways: the same relative rotation, another direction
    wrong = cams[1].clone()
    wrong[:3, 3] = torch.tensor([-0.18, 0.03, 0.24])  # 0.3 long, perpendicular-ish to the truth's direction
    back = torch.einsum("ji,hwj->hwi", cams[1, :3, :3], pts[1] - cams[1, :3, 3])  # frame 1 in camera 1
    p2 = torch.einsum("ij,hwj->hwi", wrong[:3, :3], back) + wrong[:3, 3]
    expected = math.degrees(math.acos(float(torch.nn.functional.cosine_similarity(wrong[:3, 3], cams[1, :3, 3],
                                                                                    dim=0))))
    p1 = pts[0].clone().requires_grad_(True)
    p2 = p2.clone().requires_grad_(True)
    out = _call(_pm(p1, p2), pts, valid, cams)
    assert abs(float(out["pose_trans_deg"]) - expected) < 0.5 and expected > 60
    assert float(out["pose_rot_deg"]) < 0.05
    assert float(out["loss"].detach()) > 1.0
    out["loss"].backward()
    assert torch.isfinite(p2.grad).all() and p2.grad.abs().sum() > 0


def test_no_direction_term_below_the_minimum_baseline():
    pts, valid, cams = _scene(baseline=1e-4)
    out = _call(_pm(pts[0], pts[1]), pts, valid, cams)
    assert math.isnan(float(out["pose_trans_deg"]))
    assert float(out["loss"]) < 1e-3


def test_pairs_respect_the_minimum_gap_and_default_to_the_papers_draw():
    gen = torch.Generator().manual_seed(3)
    ref = torch.randperm(15, generator=torch.Generator().manual_seed(3))[:4] + 1
    edges = sample_rec_pairs(16, 4, gen)
    assert edges[:, 0].eq(0).all() and edges[:, 1].tolist() == sorted(ref.tolist())
    for seed in range(20):
        e = sample_rec_pairs(16, 4, torch.Generator().manual_seed(seed), min_gap=8)
        assert e.shape == (4, 2) and e[:, 1].min() >= 8 and e[:, 1].max() <= 15 and len(set(e[:, 1].tolist())) == 4
    assert sample_rec_pairs(16, 4, gen, min_gap=14).shape == (2, 2)


def test_a_training_step_with_the_pose_term_logs_it_and_stays_finite(tmp_path):
    cfg = TrainConfig(out=tmp_path / "run", preset="micro", mode=TrainMode.REC, data="synth", num_frames=4,
                      height=32, width=48, batch_size=1, warmup_steps=1, threads=1, device="cpu",
                      pose_weight=1.0, pair_min_gap=2)
    trainer = Trainer(cfg)
    record = trainer.train_step()
    assert math.isfinite(record["loss_pose"]) and record["loss_pose"] > 0
    assert math.isfinite(record["pose_rot_deg"])
    assert math.isfinite(record["loss_total"])


@pytest.mark.parametrize("kw", [{"pose_weight": -1.0}, {"pose_weight": float("nan")}, {"pair_min_gap": 4},
                                {"pair_min_gap": 0}])
def test_bad_options_are_refused(tmp_path, kw):
    cfg = TrainConfig(out=tmp_path / "run", preset="micro", mode=TrainMode.REC, data="synth", num_frames=4,
                      height=32, width=48, threads=1, device="cpu", **kw)
    with pytest.raises(ValueError, match="pose-weight|pair-min-gap"):
        Trainer(cfg)
