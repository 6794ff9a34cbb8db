"""JOG3R's reconstruction loss ``L_rec`` and the total objective ``L_total = L_gen + lambda * L_rec``.

``L_rec`` is the paper's eq. (2), which is DUSt3R's training loss ``ConfLoss(Regr3D(L21, norm_mode='avg_dis'),
alpha)`` (D3 ``dust3r/losses.py``, ``dust3r/utils/geometry.py::normalize_pointcloud``; REFERENCE.md B.3). The
generation loss ``L_gen`` (IDDPM with the learned-variance VB term) lives in :mod:`jog3r.diffusion`. Losses run
in fp32 whatever the autocast context.
"""

from __future__ import annotations

import logging
import math

import roma
import torch

from jog3r.geometry.registration import register_points
from jog3r.types import PairwisePointmaps

logger = logging.getLogger(__name__)

NORM_EPS = 1e-8
"""Added to the valid-pixel count and lower clip of the average distance (DUSt3R ``normalize_pointcloud``)."""


def _masked_points(pts: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Zero the invalid points (``torch.where``, so NaN/inf at invalid pixels never leak; DUSt3R ``invalid_to_zeros``)."""
    return torch.where(valid[..., None], pts, torch.zeros((), dtype=pts.dtype, device=pts.device))


def avg_dist_scale(
    pts1: torch.Tensor, pts2: torch.Tensor, valid1: torch.Tensor, valid2: torch.Tensor
) -> torch.Tensor:
    """Joint average distance to the origin over the valid pixels of both views (DUSt3R ``norm_mode='avg_dis'``).

    ``z = sum_{valid p of both views} ||X(p)|| / (|M1| + |M2| + 1e-8)``, clipped ``>= 1e-8``.

    Args:
        pts1: ``[N, H, W, 3]`` points of view 1 (one sample per pair), camera-1 frame.
        pts2: ``[N, H, W, 3]`` points of view 2, same frame.
        valid1: ``[N, H, W]`` bool valid mask of view 1.
        valid2: ``[N, H, W]`` bool valid mask of view 2.

    Returns:
        ``[N]`` float32 scale of each pair.
    """
    dist = _masked_points(pts1, valid1).norm(dim=-1).flatten(1).sum(1)
    dist = dist + _masked_points(pts2, valid2).norm(dim=-1).flatten(1).sum(1)
    count = valid1.flatten(1).sum(1) + valid2.flatten(1).sum(1)
    return (dist / (count + NORM_EPS)).clip(min=NORM_EPS)


def _check_inputs(pred: PairwisePointmaps, gt_pts3d, gt_pts3d_in_other_view, valid, valid_in_other_view) -> None:
    shape = tuple(pred.pts3d.shape)
    for name, t in (
        ("pred.pts3d_in_other_view", pred.pts3d_in_other_view),
        ("gt_pts3d", gt_pts3d),
        ("gt_pts3d_in_other_view", gt_pts3d_in_other_view),
    ):
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {shape} ([B, P, H, W, 3] like pred.pts3d)")
    for name, t in (
        ("pred.conf", pred.conf),
        ("pred.conf_in_other_view", pred.conf_in_other_view),
        ("valid", valid),
        ("valid_in_other_view", valid_in_other_view),
    ):
        if tuple(t.shape) != shape[:-1]:
            raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {shape[:-1]} ([B, P, H, W])")
    if valid.dtype != torch.bool or valid_in_other_view.dtype != torch.bool:
        raise ValueError("valid masks must be bool tensors (True = pixel has ground truth); use mask > 0")


def _require_finite(name: str, values: torch.Tensor, mask: torch.Tensor) -> None:
    if not bool(torch.isfinite(values[mask]).all()):
        raise ValueError(
            f"{name} has NaN/inf at pixels marked valid; mark missing ground truth False in the valid mask "
            "(or, for predictions, lower the learning rate / check the inputs)"
        )


def reconstruction_loss(
    pred: PairwisePointmaps,
    gt_pts3d: torch.Tensor,
    gt_pts3d_in_other_view: torch.Tensor,
    valid: torch.Tensor,
    valid_in_other_view: torch.Tensor,
    *,
    alpha: float = 0.2,
) -> dict[str, torch.Tensor]:
    """``L_rec``: confidence-weighted, scale-normalised 3D regression of both views of every pair.

    JOG3R eq. (2) / DUSt3R ``ConfLoss(Regr3D(L21, norm_mode='avg_dis'), alpha)`` (REFERENCE.md B.3). For each
    pair ``(b, p)`` the prediction and the ground truth are each divided by their joint average distance over
    the valid pixels of both views (:func:`avg_dist_scale`, using the ground-truth masks for both), then per
    valid pixel ``l_v = ||P_v / z_pred - X_v / z_gt||_2`` and
    ``L = mean_{valid of view 1}(C1 l_1 - alpha log C1) + mean_{valid of view 2}(C2 l_2 - alpha log C2)``, each
    mean taken over all valid pixels of the whole batch. A view with no valid pixel in the batch contributes
    0 (as DUSt3R) and logs a warning.

    Args:
        pred: predicted point maps, ``pts3d``/``pts3d_in_other_view`` ``[B, P, H, W, 3]`` and ``conf`` /
            ``conf_in_other_view`` ``[B, P, H, W]`` (``>= 1``), all in camera ``i`` of edge ``(i, j)``.
        gt_pts3d: ``[B, P, H, W, 3]`` ground-truth points of frame ``i``'s pixels in camera ``i``'s OpenCV frame
            (any scale: the loss is invariant to it).
        gt_pts3d_in_other_view: ``[B, P, H, W, 3]`` ground-truth points of frame ``j``'s pixels in camera ``i``.
        valid: ``[B, P, H, W]`` bool, pixels of frame ``i`` with ground truth.
        valid_in_other_view: ``[B, P, H, W]`` bool, pixels of frame ``j`` with ground truth.
        alpha: weight of the ``-log C`` confidence regulariser (0.2 in DUSt3R/JOG3R).

    Returns:
        dict of 0-d float32 tensors: ``loss`` (= ``conf_loss_1 + conf_loss_2``, differentiable),
        ``conf_loss_1``, ``conf_loss_2`` and the monitoring terms ``regr_1``, ``regr_2`` (mean ``l_v``, detached).

    Raises:
        ValueError: on mismatched shapes, non-bool masks, ``alpha < 0``, NaN/inf at valid pixels, confidences
            ``<= 0`` at valid pixels, or no valid pixel at all.
    """
    if not (alpha >= 0 and math.isfinite(alpha)):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    _check_inputs(pred, gt_pts3d, gt_pts3d_in_other_view, valid, valid_in_other_view)
    if not bool(valid.any() or valid_in_other_view.any()):
        raise ValueError("no valid ground-truth pixel in the batch: check the depth maps / valid masks")
    with torch.autocast(device_type=pred.pts3d.device.type, enabled=False):
        flat = {
            "P1": pred.pts3d.float().flatten(0, 1),
            "P2": pred.pts3d_in_other_view.float().flatten(0, 1),
            "X1": gt_pts3d.float().flatten(0, 1),
            "X2": gt_pts3d_in_other_view.float().flatten(0, 1),
            "C1": pred.conf.float().flatten(0, 1),
            "C2": pred.conf_in_other_view.float().flatten(0, 1),
        }
        m1, m2 = valid.flatten(0, 1), valid_in_other_view.flatten(0, 1)
        for key, mask in (("X1", m1), ("X2", m2), ("P1", m1), ("P2", m2), ("C1", m1), ("C2", m2)):
            _require_finite(key, flat[key], mask)
        if bool((flat["C1"][m1] <= 0).any() or (flat["C2"][m2] <= 0).any()):
            raise ValueError("confidences must be > 0 (the head gives 1 + exp(x)); got values <= 0")
        z_pred = avg_dist_scale(flat["P1"], flat["P2"], m1, m2)[:, None, None, None]
        z_gt = avg_dist_scale(flat["X1"], flat["X2"], m1, m2)[:, None, None, None]
        out: dict[str, torch.Tensor] = {}
        for view, mask in ((1, m1), (2, m2)):
            pts = _masked_points(flat[f"P{view}"], mask) / z_pred
            gt = _masked_points(flat[f"X{view}"], mask) / z_gt
            regr = (pts - gt).norm(dim=-1)[mask]  # L21: Euclidean distance per valid pixel
            conf = flat[f"C{view}"][mask]
            if regr.numel() == 0:
                logger.warning("no valid pixel in view %d of the batch: its L_rec term is 0", view)
                out[f"conf_loss_{view}"] = pts.sum() * 0.0
                out[f"regr_{view}"] = torch.zeros((), device=pts.device)
                continue
            out[f"conf_loss_{view}"] = (conf * regr - alpha * conf.log()).mean()
            out[f"regr_{view}"] = regr.detach().mean()
        out["loss"] = out["conf_loss_1"] + out["conf_loss_2"]
    return out


def relative_pose_loss(
    pred: PairwisePointmaps,
    gt_pts3d: torch.Tensor,
    gt_pts3d_in_other_view: torch.Tensor,
    gt_other_to_ref: torch.Tensor,
    valid: torch.Tensor,
    valid_in_other_view: torch.Tensor,
    *,
    min_baseline: float = 0.01,
) -> dict[str, torch.Tensor]:
    """Optional pose-aware auxiliary term (issue 18; **not in the paper**): the relative pose that the predicted
    point maps imply, against the true one.

    Why: ``L_rec`` charges every pixel for its distance to the truth, so a translation direction 30 deg off at a
    baseline of 2-5 % of the depth costs less than the per-pixel error the loss still tolerates
    (``docs/notes/pose_diagnosis.md``). This term charges the pose itself, once per pair.

    For each pair ``(i, j)``: the true points of frame ``i`` (in camera ``i``) are registered onto the predicted
    view 1 and the true points of frame ``j`` in camera ``j`` (``inverse(gt_other_to_ref)`` applied to
    ``gt_pts3d_in_other_view``) onto the predicted view 2 by confidence-weighted Umeyama (with scale;
    :func:`jog3r.geometry.registration.register_points`, differentiable). The relative pose ``T1^-1 o T2``
    (camera ``j`` -> camera ``i`` as the prediction has it, a common rigid error of the prediction's frame cancels)
    is compared with
    ``gt_other_to_ref``: ``||R - R_gt||_F`` (chordal, ``2 sqrt(2) sin(theta / 2)`` for a rotation error
    ``theta``) plus ``||t / |t| - t_gt / |t_gt|||`` (chord between the translation directions), the latter only
    for pairs whose true baseline is at least ``min_baseline`` times the mean distance of frame ``i``'s points.
    Chordal distances are smooth at zero error, unlike angles.

    Args:
        pred: predicted point maps, ``pts3d``/``pts3d_in_other_view`` ``[B, P, H, W, 3]``, ``conf`` /
            ``conf_in_other_view`` ``[B, P, H, W]`` (registration weights, detached), in camera ``i``.
        gt_pts3d: ``[B, P, H, W, 3]`` true points of frame ``i``'s pixels in camera ``i``.
        gt_pts3d_in_other_view: ``[B, P, H, W, 3]`` true points of frame ``j``'s pixels in camera ``i``.
        gt_other_to_ref: ``[B, P, 4, 4]`` true camera ``j`` -> camera ``i`` transform (OpenCV axes).
        valid, valid_in_other_view: ``[B, P, H, W]`` bool, pixels with ground truth in frames ``i`` and ``j``.
        min_baseline: baselines below this fraction of the scene distance give no direction term.

    Returns:
        dict of 0-d float32 tensors: ``loss`` (differentiable; mean over pairs of the rotation chord plus, over the
        pairs with a baseline, the direction chord), and the monitoring terms ``pose_rot_deg`` /
        ``pose_trans_deg`` (median angles over the pairs, detached; ``nan`` if no pair has a baseline).
    """
    with torch.autocast(device_type=pred.pts3d.device.type, enabled=False):
        m1 = valid.flatten(0, 1).flatten(1).float()
        m2 = valid_in_other_view.flatten(0, 1).flatten(1).float()
        p1 = _masked_points(pred.pts3d.float(), valid).flatten(0, 1).flatten(1, 2)
        p2 = _masked_points(pred.pts3d_in_other_view.float(), valid_in_other_view).flatten(0, 1).flatten(1, 2)
        x1 = _masked_points(gt_pts3d.float(), valid).flatten(0, 1).flatten(1, 2)
        x2 = _masked_points(gt_pts3d_in_other_view.float(), valid_in_other_view).flatten(0, 1).flatten(1, 2)
        rel = gt_other_to_ref.float().flatten(0, 1)  # [N, 4, 4] camera j -> camera i
        r_gt, t_gt = rel[:, :3, :3], rel[:, :3, 3]
        y2 = torch.einsum("nji,nkj->nki", r_gt, x2 - t_gt[:, None])  # frame j's points in camera j
        w1 = pred.conf.detach().float().flatten(0, 1).flatten(1) * m1
        w2 = pred.conf_in_other_view.detach().float().flatten(0, 1).flatten(1) * m2
        r1, t1, s1 = register_points(x1, p1, w1)
        r2, t2, _ = register_points(y2, p2, w2)
        r_rel = r1.transpose(-1, -2) @ r2  # camera j -> camera i in the prediction, registered on view 1
        t_rel = (r1.transpose(-1, -2) @ (t2 - t1)[..., None])[..., 0] / s1[:, None]
        rot_chord = (r_rel - r_gt).flatten(1).norm(dim=-1)
        scene = (x1.norm(dim=-1) * m1).sum(-1) / m1.sum(-1).clamp_min(1.0)
        has_baseline = t_gt.norm(dim=-1) >= min_baseline * scene
        dir_pred = t_rel / t_rel.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        dir_gt = t_gt / t_gt.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        dir_chord = (dir_pred - dir_gt).norm(dim=-1)
        loss = rot_chord.mean() + (dir_chord * has_baseline).sum() / has_baseline.sum().clamp_min(1)
        with torch.no_grad():
            rot_deg = torch.rad2deg(roma.rotmat_geodesic_distance(r_rel, r_gt))
            trans_deg = torch.rad2deg(torch.arccos((dir_pred * dir_gt).sum(-1).clamp(-1, 1)))[has_baseline]
    return {
        "loss": loss,
        "pose_rot_deg": rot_deg.median(),
        "pose_trans_deg": trans_deg.median() if trans_deg.numel() else torch.tensor(float("nan")),
    }


def total_loss(
    l_gen: torch.Tensor | None, l_rec: torch.Tensor | None, lam: float = 1.0
) -> torch.Tensor:
    """``L_total = L_gen + lambda * L_rec`` (JOG3R Sec. 3.2; the paper sets ``lambda = 1``).

    Either term may be ``None`` for the paper's ablations (``L_gen`` only: fine-tuned OS; ``L_rec`` only:
    "+ rec" rows of Tables 1-2).

    Args:
        l_gen: 0-d generation loss or ``None``.
        l_rec: 0-d reconstruction loss (``reconstruction_loss(...)["loss"]``) or ``None``.
        lam: weight ``lambda >= 0`` of ``L_rec``.

    Returns:
        0-d tensor.

    Raises:
        ValueError: if both terms are ``None``, a term is not a scalar, or ``lam`` is negative / not finite.
    """
    if not (lam >= 0 and math.isfinite(lam)):
        raise ValueError(f"lambda must be a finite number >= 0, got {lam}")
    if l_gen is None and l_rec is None:
        raise ValueError("total_loss needs at least one of l_gen, l_rec")
    for name, term in (("l_gen", l_gen), ("l_rec", l_rec)):
        if term is not None and term.ndim != 0:
            raise ValueError(f"{name} must be a 0-d tensor (reduce it first), got shape {tuple(term.shape)}")
    if l_rec is None:
        return l_gen
    if l_gen is None:
        return lam * l_rec
    return l_gen + lam * l_rec
