"""Camera-pose metrics of the PoseDiffusion protocol (REFERENCE D; PD ``pose_diffusion/util/metric.py``), as
reported by JOG3R (Sec. 4.1: Rot. err., Trans. err., RRA@5, RTA@5, mAA@30).

Errors are in degrees (the metric API is the one place where degrees appear, see
:mod:`jog3r.geometry.camera`). All computations run in float64.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import torch

__all__ = ["frame_pairs", "relative_pose_errors", "rra", "rta", "maa", "maa30", "pose_metrics"]

logger = logging.getLogger(__name__)

#: Value given to a translation error that is undefined (a zero-length relative translation), as in PoseDiffusion.
UNDEFINED_ERROR_DEG = 1e6


def frame_pairs(num_frames: int, pairs: Literal["all", "first"] = "all") -> torch.Tensor:
    """Frame pairs over which the metrics are averaged.

    Args:
        num_frames: ``F >= 2``.
        pairs: ``"all"`` = every ``(i, j), i < j`` (PoseDiffusion ``batched_all_pairs``); ``"first"`` = the paper's
            ``(1 -> f)`` pairs, i.e. ``(0, f)`` for ``f = 1..F-1`` (0-based).

    Returns:
        ``[Q, 2]`` int64 pairs.

    Raises:
        ValueError: if ``num_frames < 2`` or ``pairs`` is unknown.
    """
    if num_frames < 2:
        raise ValueError(f"pose metrics need at least 2 frames, got {num_frames}")
    if pairs == "all":
        return torch.combinations(torch.arange(num_frames), r=2)
    if pairs == "first":
        return torch.stack((torch.zeros(num_frames - 1, dtype=torch.int64), torch.arange(1, num_frames)), dim=1)
    raise ValueError(f"pairs must be 'all' or 'first', got {pairs!r}")


def _rotation_angle_deg(R: torch.Tensor) -> torch.Tensor:
    """Angle of rotation matrices ``[..., 3, 3]`` in degrees, via atan2 (accurate near 0 and 180 degrees)."""
    skew = R - R.transpose(-1, -2)
    sin = 0.5 * torch.stack((skew[..., 2, 1], skew[..., 0, 2], skew[..., 1, 0]), dim=-1).norm(dim=-1)
    cos = 0.5 * (R.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0)
    return torch.rad2deg(torch.atan2(sin, cos))


def relative_pose_errors(
    pred_cam2world: torch.Tensor, gt_cam2world: torch.Tensor, pairs: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair relative rotation error and sign-free translation-direction error (PoseDiffusion).

    With world-to-camera ``(R_k, t_k)``, the relative pose of pair ``(i, j)`` is ``R_ij = R_j R_i^T``,
    ``t_ij = t_j - R_ij t_i`` (REFERENCE D). Then ``e_R = angle(R_ij^gt (R_ij^pred)^T)`` and
    ``e_t = arccos(|<t_ij^gt / ||t_ij^gt||, t_ij^pred / ||t_ij^pred||>|)`` in ``[0, 90]`` degrees (the sign is
    ignored, PD ``translation_angle``); an undefined ``e_t`` (zero-length translation) is set to
    :data:`UNDEFINED_ERROR_DEG` (PD uses 1e6), so it counts as a failure.

    Args:
        pred_cam2world: ``[F, 4, 4]`` predicted camera-to-world (any global similarity is irrelevant).
        gt_cam2world: ``[F, 4, 4]`` ground-truth camera-to-world.
        pairs: ``[Q, 2]`` int64 frame pairs ``(i, j)``.

    Returns:
        ``(rot_err_deg [Q], trans_err_deg [Q])`` float64.

    Raises:
        ValueError: if the two pose tensors differ in shape or are not ``[F, 4, 4]``.
    """
    if pred_cam2world.shape != gt_cam2world.shape or pred_cam2world.shape[-2:] != (4, 4) or pred_cam2world.ndim != 3:
        raise ValueError(
            f"pred {tuple(pred_cam2world.shape)} and gt {tuple(gt_cam2world.shape)} must both be [F, 4, 4]"
        )

    def relative(cam2world: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c2w = cam2world.double()
        R_w2c = c2w[:, :3, :3].transpose(1, 2)
        t_w2c = -(R_w2c @ c2w[:, :3, 3:4])[..., 0]
        Ri, Rj = R_w2c[pairs[:, 0]], R_w2c[pairs[:, 1]]
        R_ij = Rj @ Ri.transpose(1, 2)
        t_ij = t_w2c[pairs[:, 1]] - (R_ij @ t_w2c[pairs[:, 0], :, None])[..., 0]
        return R_ij, t_ij

    R_pred, t_pred = relative(pred_cam2world)
    R_gt, t_gt = relative(gt_cam2world.to(pred_cam2world.device))
    rot_err = _rotation_angle_deg(R_gt @ R_pred.transpose(1, 2))
    cross = torch.linalg.cross(t_gt, t_pred).norm(dim=-1)
    dot = (t_gt * t_pred).sum(-1).abs()
    trans_err = torch.rad2deg(torch.atan2(cross, dot))
    undefined = (t_gt.norm(dim=-1) == 0) | (t_pred.norm(dim=-1) == 0) | ~torch.isfinite(trans_err)
    if bool(undefined.any()):
        logger.warning("%d pairs have an undefined translation direction; error set to %g", int(undefined.sum()),
                       UNDEFINED_ERROR_DEG)
        trans_err = torch.where(undefined, torch.full_like(trans_err, UNDEFINED_ERROR_DEG), trans_err)
    rot_err = torch.where(torch.isfinite(rot_err), rot_err, torch.full_like(rot_err, UNDEFINED_ERROR_DEG))
    return rot_err, trans_err


def rra(rot_err_deg: torch.Tensor | np.ndarray, tau: float = 5.0) -> float:
    """Relative Rotation Accuracy: percentage of pairs with rotation error ``< tau`` degrees.

    Args:
        rot_err_deg: ``[Q]`` per-pair rotation errors in degrees.
        tau: threshold in degrees (JOG3R reports 5).

    Returns:
        ``100 * mean(err < tau)`` in ``[0, 100]``.
    """
    err = torch.as_tensor(rot_err_deg, dtype=torch.float64)
    return float(100.0 * (err < tau).double().mean())


def rta(trans_err_deg: torch.Tensor | np.ndarray, tau: float = 5.0) -> float:
    """Relative Translation Accuracy: percentage of pairs with translation-direction error ``< tau`` degrees.

    Args:
        trans_err_deg: ``[Q]`` per-pair translation-direction errors in degrees.
        tau: threshold in degrees.

    Returns:
        ``100 * mean(err < tau)`` in ``[0, 100]``.
    """
    return rra(trans_err_deg, tau)


def maa(rot_err_deg: torch.Tensor | np.ndarray, trans_err_deg: torch.Tensor | np.ndarray, max_threshold: int = 30) -> float:
    """Mean Average Accuracy up to ``max_threshold`` degrees (PD ``calculate_auc_np``), in percent.

    ``e = max(e_R, e_t)`` per pair; histogram with integer bin edges ``0, 1, ..., max_threshold`` (last bin
    closed) divided by the number of *all* pairs, so pairs above the threshold count as failures; the mean of the
    cumulative histogram is the area under the accuracy curve.

    Args:
        rot_err_deg: ``[Q]`` rotation errors in degrees.
        trans_err_deg: ``[Q]`` translation-direction errors in degrees.
        max_threshold: largest threshold in whole degrees.

    Returns:
        mAA in ``[0, 100]``.

    Raises:
        ValueError: if the two error arrays differ in length or are empty.
    """
    r = np.asarray(torch.as_tensor(rot_err_deg, dtype=torch.float64))
    t = np.asarray(torch.as_tensor(trans_err_deg, dtype=torch.float64))
    if r.shape != t.shape or r.size == 0:
        raise ValueError(f"need equal non-empty error arrays, got {r.shape} and {t.shape}")
    worst = np.maximum(r, t)
    hist, _ = np.histogram(worst, bins=np.arange(max_threshold + 1))
    return float(100.0 * np.mean(np.cumsum(hist / float(worst.size))))


def maa30(rot_err_deg: torch.Tensor | np.ndarray, trans_err_deg: torch.Tensor | np.ndarray) -> float:
    """mAA@30 in percent, :func:`maa` with ``max_threshold = 30`` (JOG3R Table 2).

    Args:
        rot_err_deg: ``[Q]`` rotation errors in degrees.
        trans_err_deg: ``[Q]`` translation-direction errors in degrees.

    Returns:
        mAA@30 in ``[0, 100]``.
    """
    return maa(rot_err_deg, trans_err_deg, 30)


def pose_metrics(
    pred_cam2world: torch.Tensor,
    gt_cam2world: torch.Tensor,
    pairs: Literal["all", "first"] = "all",
    tau: float = 5.0,
) -> dict[str, float | torch.Tensor]:
    """JOG3R's camera-pose table row for one sequence.

    Args:
        pred_cam2world: ``[F, 4, 4]`` predicted camera-to-world (OpenCV axes, any scale).
        gt_cam2world: ``[F, 4, 4]`` ground-truth camera-to-world.
        pairs: ``"all"`` (PoseDiffusion, every ``i < j``) or ``"first"`` (the paper's ``(1 -> f)`` pairs).
        tau: RRA/RTA threshold in degrees.

    Returns:
        dict with ``"Rot. err."``, ``"Trans. err."`` (means in degrees), ``f"RRA@{tau:g}"``, ``f"RTA@{tau:g}"``,
        ``"mAA@30"`` (percent), and the per-pair arrays ``"rot_err"``, ``"trans_err"`` (``[Q]`` float64) and
        ``"pairs"`` (``[Q, 2]``).
    """
    idx = frame_pairs(pred_cam2world.shape[0], pairs).to(pred_cam2world.device)
    rot_err, trans_err = relative_pose_errors(pred_cam2world, gt_cam2world, idx)
    return {
        "Rot. err.": float(rot_err.mean()),
        "Trans. err.": float(trans_err.mean()),
        f"RRA@{tau:g}": rra(rot_err, tau),
        f"RTA@{tau:g}": rta(trans_err, tau),
        "mAA@30": maa30(rot_err, trans_err),
        "rot_err": rot_err,
        "trans_err": trans_err,
        "pairs": idx,
    }
