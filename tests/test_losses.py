"""L_rec (JOG3R eq. 2 = DUSt3R ConfLoss(Regr3D(L21, avg_dis))) and L_total on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from jog3r.losses import avg_dist_scale, reconstruction_loss, total_loss
from jog3r.types import PairwisePointmaps

NAN = float("nan")


def pm(p1, c1, p2, c2) -> PairwisePointmaps:
    return PairwisePointmaps(pts3d=p1, conf=c1, pts3d_in_other_view=p2, conf_in_other_view=c2,
                             edges=torch.tensor([[0, 1]]))


def hand_case():
    """One pair of 2x2 point maps; pixel (1, 0) is invalid in both views (garbage there must not matter)."""
    gt1 = torch.tensor([[[0, 0, 1], [0, 0, 3]], [[NAN, NAN, NAN], [0, 3, 4]]], dtype=torch.float32)
    gt2 = torch.tensor([[[0, 0, 2], [0, 0, 2]], [[0, 0, 100], [4, 0, 3]]], dtype=torch.float32)
    pr1 = torch.tensor([[[0, 0, 2], [0, 0, 2]], [[9, 9, 9], [0, 6, 8]]], dtype=torch.float32)
    pr2 = torch.tensor([[[0, 0, 4], [0, 0, 0]], [[0, 0, 50], [0, 0, 12]]], dtype=torch.float32)
    valid = torch.tensor([[True, True], [False, True]])
    c1 = torch.tensor([[2.0, 3.0], [2.0, 2.0]])
    c2 = torch.full((2, 2), 2.0)
    expand = lambda t: t[None, None]  # noqa: E731  [B=1, P=1, ...]
    return (pm(expand(pr1), expand(c1), expand(pr2), expand(c2)), expand(gt1), expand(gt2), expand(valid),
            expand(valid.clone()))


def test_hand_computed_value():
    # GT distances of valid pixels: view 1: 1, 3, 5; view 2: 2, 2, 5 -> z_gt = 18 / 6 = 3.
    # Pred distances: view 1: 2, 2, 10; view 2: 4, 0, 12 -> z_pred = 30 / 6 = 5.
    # View 1 residuals: |0.4 - 1/3| = 1/15, |0.4 - 1| = 3/5, |(0, 1.2 - 1, 1.6 - 4/3)| = 1/3.
    # View 2 residuals: |0.8 - 2/3| = 2/15, |0 - 2/3| = 2/3, |(0 - 4/3, 0, 2.4 - 1)| = 29/15.
    pred, gt1, gt2, v1, v2 = hand_case()
    out = reconstruction_loss(pred, gt1, gt2, v1, v2, alpha=0.2)
    ln2, ln3 = math.log(2.0), math.log(3.0)
    conf1 = ((2 * (1 / 15) - 0.2 * ln2) + (3 * 0.6 - 0.2 * ln3) + (2 * (1 / 3) - 0.2 * ln2)) / 3
    conf2 = (2 * (2 / 15) + 2 * (2 / 3) + 2 * (29 / 15)) / 3 - 0.2 * ln2
    assert out["conf_loss_1"].item() == pytest.approx(conf1, rel=1e-6)
    assert out["conf_loss_2"].item() == pytest.approx(conf2, rel=1e-6)
    assert out["loss"].item() == pytest.approx(conf1 + conf2, rel=1e-6)
    assert out["regr_1"].item() == pytest.approx((1 / 15 + 0.6 + 1 / 3) / 3, rel=1e-6)
    assert out["regr_2"].item() == pytest.approx((2 / 15 + 2 / 3 + 29 / 15) / 3, rel=1e-6)
    assert avg_dist_scale(gt1[0], gt2[0], v1[0], v2[0]).item() == pytest.approx(3.0)


def test_alpha_and_conf_weighting():
    pred, gt1, gt2, v1, v2 = hand_case()
    base = reconstruction_loss(pred, gt1, gt2, v1, v2, alpha=0.0)["loss"]
    with_alpha = reconstruction_loss(pred, gt1, gt2, v1, v2, alpha=0.5)["loss"]
    # alpha only adds -alpha * mean(log C) per view: view 1 mean log C = (2 ln2 + ln3) / 3, view 2 ln2.
    expected_shift = -0.5 * ((2 * math.log(2) + math.log(3)) / 3 + math.log(2))
    assert (with_alpha - base).item() == pytest.approx(expected_shift, rel=1e-5)


@pytest.mark.parametrize("gt_scale,pred_scale", [(7.3, 1.0), (1.0, 0.01), (250.0, 3.0)])
def test_invariant_to_gt_and_prediction_scale(gt_scale, pred_scale):
    pred, gt1, gt2, v1, v2 = hand_case()
    ref = reconstruction_loss(pred, gt1, gt2, v1, v2)["loss"]
    scaled = pm(pred.pts3d * pred_scale, pred.conf, pred.pts3d_in_other_view * pred_scale, pred.conf_in_other_view)
    out = reconstruction_loss(scaled, gt1 * gt_scale, gt2 * gt_scale, v1, v2)["loss"]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_normalisation_is_per_pair_and_means_over_batch_pixels():
    """Two pairs with different GT scales: each pair normalises on its own; means run over all valid pixels."""
    torch.manual_seed(0)
    p1, p2 = torch.randn(2, 2, 3, 4, 3), torch.randn(2, 2, 3, 4, 3)
    g1, g2 = torch.randn(2, 2, 3, 4, 3), torch.randn(2, 2, 3, 4, 3)
    c1, c2 = 1 + torch.rand(2, 2, 3, 4), 1 + torch.rand(2, 2, 3, 4)
    v = torch.ones(2, 2, 3, 4, dtype=torch.bool)
    full = reconstruction_loss(pm(p1, c1, p2, c2), g1, g2, v, v)["loss"]
    scale = torch.tensor([1.0, 10.0, 0.1, 3.0]).reshape(2, 2, 1, 1, 1)
    rescaled = reconstruction_loss(pm(p1, c1, p2, c2), g1 * scale, g2 * scale, v, v)["loss"]
    torch.testing.assert_close(full, rescaled, rtol=1e-5, atol=1e-6)
    parts = [
        reconstruction_loss(pm(p1[b, q][None, None], c1[b, q][None, None], p2[b, q][None, None],
                               c2[b, q][None, None]), g1[b, q][None, None], g2[b, q][None, None],
                            v[b, q][None, None], v[b, q][None, None])["loss"]
        for b in range(2) for q in range(2)
    ]
    # Equal valid counts per pair -> the batch mean is the mean of the per-pair losses.
    torch.testing.assert_close(full, torch.stack(parts).mean(), rtol=1e-5, atol=1e-6)


def test_gradients_are_finite_and_reach_points_and_conf():
    pred, gt1, gt2, v1, v2 = hand_case()
    leaves = [t.clone().requires_grad_(True) for t in (pred.pts3d, pred.conf, pred.pts3d_in_other_view,
                                                       pred.conf_in_other_view)]
    reconstruction_loss(pm(*leaves), gt1, gt2, v1, v2)["loss"].backward()
    for leaf in leaves:
        assert leaf.grad is not None and bool(torch.isfinite(leaf.grad).all())
    assert leaves[0].grad[0, 0, 1, 0].abs().sum() == 0  # invalid pixel: no gradient
    assert leaves[1].grad.abs().sum() > 0


def test_one_empty_view_contributes_zero():
    pred, gt1, gt2, v1, v2 = hand_case()
    out = reconstruction_loss(pred, gt1, gt2, v1, torch.zeros_like(v2))
    assert out["conf_loss_2"].item() == 0.0 and torch.isfinite(out["loss"])


def test_bad_inputs_raise():
    pred, gt1, gt2, v1, v2 = hand_case()
    with pytest.raises(ValueError, match="no valid"):
        reconstruction_loss(pred, gt1, gt2, torch.zeros_like(v1), torch.zeros_like(v2))
    with pytest.raises(ValueError, match="NaN"):
        reconstruction_loss(pred, gt1, gt2, torch.ones_like(v1), v2)  # gt1 is NaN at (1, 0)
    with pytest.raises(ValueError, match="bool"):
        reconstruction_loss(pred, gt1, gt2, v1.float(), v2)
    with pytest.raises(ValueError, match="shape"):
        reconstruction_loss(pred, gt1[..., :1, :], gt2, v1, v2)
    with pytest.raises(ValueError, match="alpha"):
        reconstruction_loss(pred, gt1, gt2, v1, v2, alpha=-1.0)
    bad_conf = pm(pred.pts3d, torch.zeros_like(pred.conf), pred.pts3d_in_other_view, pred.conf_in_other_view)
    with pytest.raises(ValueError, match="> 0"):
        reconstruction_loss(bad_conf, gt1, gt2, v1, v2)


def test_total_loss():
    g, r = torch.tensor(2.0), torch.tensor(3.0)
    assert total_loss(g, r).item() == 5.0
    assert total_loss(g, r, lam=0.5).item() == 3.5
    assert total_loss(None, r, lam=2.0).item() == 6.0
    assert total_loss(g, None).item() == 2.0
    with pytest.raises(ValueError):
        total_loss(None, None)
    with pytest.raises(ValueError, match="0-d"):
        total_loss(torch.ones(2), r)
    with pytest.raises(ValueError, match="lambda"):
        total_loss(g, r, lam=float("nan"))
