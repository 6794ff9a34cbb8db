"""jog3r.metrics.pose against hand-built cameras (PoseDiffusion protocol, REFERENCE D)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import roma
import torch

from jog3r.metrics.pose import frame_pairs, maa, maa30, pose_metrics, relative_pose_errors, rra, rta


def _cams(rotvecs_deg, centres) -> torch.Tensor:
    c2w = torch.eye(4, dtype=torch.float64).repeat(len(centres), 1, 1)
    c2w[:, :3, :3] = roma.rotvec_to_rotmat(torch.deg2rad(torch.tensor(rotvecs_deg, dtype=torch.float64)))
    c2w[:, :3, 3] = torch.tensor(centres, dtype=torch.float64)
    return c2w


def test_known_10_degree_rotation_reads_10():
    gt = _cams([[0, 0, 0], [0, 0, 0]], [[0, 0, 0], [1, 0, 0]])
    pred = _cams([[0, 0, 0], [0, 10, 0]], [[0, 0, 0], [1, 0, 0]])
    rot, trans = relative_pose_errors(pred, gt, frame_pairs(2))
    assert rot.tolist() == pytest.approx([10.0], abs=1e-9)
    # camera 1 turned by 10 deg about y: its view of the baseline turns by 10 deg too
    assert trans.tolist() == pytest.approx([10.0], abs=1e-9)


def test_identical_cameras_give_zero_error_and_full_accuracy():
    gen = torch.Generator().manual_seed(0)
    c2w = torch.eye(4, dtype=torch.float64).repeat(6, 1, 1)
    c2w[:, :3, :3] = roma.random_rotmat(6, dtype=torch.float64, generator=gen)
    c2w[:, :3, 3] = torch.randn(6, 3, dtype=torch.float64, generator=gen)
    scaled = c2w.clone()
    scaled[:, :3, 3] *= 3.7  # metrics are scale-free
    for pairs in ("all", "first"):
        m = pose_metrics(scaled, c2w, pairs=pairs)
        assert m["Rot. err."] < 1e-5 and m["Trans. err."] < 1e-5
        assert m["RRA@5"] == m["RTA@5"] == m["mAA@30"] == 100.0
    assert pose_metrics(c2w, c2w)["pairs"].shape == (15, 2)
    assert pose_metrics(c2w, c2w, pairs="first")["pairs"].tolist() == [[0, f] for f in range(1, 6)]


def test_translation_sign_flip_gives_zero_translation_error():
    gt = _cams([[0, 0, 0], [0, 0, 0], [0, 0, 0]], [[0, 0, 0], [1, 0.5, 0], [2, 0, 1]])
    flipped = gt.clone()
    flipped[:, :3, 3] *= -1.0  # every relative translation flips sign
    rot, trans = relative_pose_errors(flipped, gt, frame_pairs(3))
    assert rot.abs().max() < 1e-9 and trans.abs().max() < 1e-6


def test_translation_error_range_and_undefined():
    gt = _cams([[0, 0, 0], [0, 0, 0]], [[0, 0, 0], [1, 0, 0]])
    perp = _cams([[0, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 1, 0]])
    _, trans = relative_pose_errors(perp, gt, frame_pairs(2))
    assert trans.tolist() == pytest.approx([90.0])
    same_place = _cams([[0, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]])
    _, trans = relative_pose_errors(same_place, gt, frame_pairs(2))
    assert trans.tolist() == [1e6]


def test_maa_hand_computed():
    rot = np.array([0.5, 2.5, 10.0, 40.0])
    trans = np.array([0.2, 0.5, 29.5, 1.0])
    # max errors: 0.5, 2.5, 29.5, 40 -> Acc(k) = #(e < k) / 4 for k = 1..29, and e <= 30 for k = 30
    acc = [(1 + (k > 2.5) + (k > 29.5)) / 4 for k in range(1, 31)]
    assert maa30(rot, trans) == pytest.approx(100 * np.mean(acc))
    assert maa(rot, trans, 3) == pytest.approx(100 * np.mean([1 / 4, 1 / 4, 2 / 4]))
    assert maa30([30.0], [0.0]) == pytest.approx(100 / 30)  # only the closed last bin counts it
    with pytest.raises(ValueError):
        maa30([1.0, 2.0], [1.0])


def test_rra_rta_thresholds_are_strict():
    err = torch.tensor([1.0, 4.999, 5.0, 7.0])
    assert rra(err, 5.0) == 50.0
    assert rta(err, 7.5) == 100.0


def test_pose_metrics_keys_and_errors():
    c2w = _cams([[0, 0, 0], [0, 3, 0], [0, 6, 0]], [[0, 0, 0], [1, 0, 0], [2, 0, 0]])
    m = pose_metrics(c2w, c2w)
    assert set(m) >= {"Rot. err.", "Trans. err.", "RRA@5", "RTA@5", "mAA@30", "rot_err", "trans_err", "pairs"}
    with pytest.raises(ValueError, match="pairs"):
        frame_pairs(3, "nearby")
    with pytest.raises(ValueError, match="2 frames"):
        frame_pairs(1)
    with pytest.raises(ValueError, match=r"\[F, 4, 4\]"):
        relative_pose_errors(c2w[:2], c2w, frame_pairs(2))


def test_small_rotation_is_accurate():
    angle = 1e-4
    gt = _cams([[0, 0, 0], [0, 0, 0]], [[0, 0, 0], [1, 0, 0]])
    pred = _cams([[0, 0, 0], [angle, 0, 0]], [[0, 0, 0], [1, 0, 0]])
    rot, _ = relative_pose_errors(pred, gt, frame_pairs(2))
    assert math.isclose(float(rot[0]), angle, rel_tol=1e-6)
