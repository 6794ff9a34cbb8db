"""Similarity / rigid registration of point sets: thin wrappers over :func:`roma.rigid_points_registration`.

Weighted Procrustes with optional scale (Umeyama 1991, Kabsch 1976): ``argmin sum_n w_n ||s R x_n + t - y_n||^2``.
Used by the global-alignment init (:mod:`jog3r.align.init`, DUSt3R ``rigid_points_registration``) and by the
metrics. Conventions are those of :mod:`jog3r.geometry.camera`.
"""

from __future__ import annotations

import roma
import torch

from jog3r.geometry.camera import transform_points

__all__ = ["Sim3", "register_points", "sim3_matrix", "align_camera_centers"]


class Sim3(tuple):
    """``(R, t, s)`` of a similarity ``y = s R x + t``: ``R`` ``[..., 3, 3]``, ``t`` ``[..., 3]``, ``s`` ``[...]``."""

    __slots__ = ()

    def __new__(cls, R: torch.Tensor, t: torch.Tensor, s: torch.Tensor):
        """Build from rotation ``R``, translation ``t`` and scale ``s`` (see the class docstring)."""
        return super().__new__(cls, (R, t, s))

    @property
    def R(self) -> torch.Tensor:
        """``[..., 3, 3]`` rotation."""
        return self[0]

    @property
    def t(self) -> torch.Tensor:
        """``[..., 3]`` translation (not multiplied by ``s``)."""
        return self[1]

    @property
    def s(self) -> torch.Tensor:
        """``[...]`` scale (``1`` for rigid registrations)."""
        return self[2]

    def matrix(self) -> torch.Tensor:
        """``[..., 4, 4]`` homogeneous matrix ``[[s R, t], [0, 1]]``."""
        return sim3_matrix(self.R, self.t, self.s)


def register_points(
    src: torch.Tensor, dst: torch.Tensor, weights: torch.Tensor | None = None, with_scale: bool = True
) -> Sim3:
    """Weighted Procrustes: the similarity (or rigid transform) that best maps ``src`` onto ``dst``.

    Minimises ``sum_n w_n ||s R src_n + t - dst_n||^2`` (Umeyama) through :func:`roma.rigid_points_registration`.
    Computed in float32 at least (float64 inputs stay float64).

    Args:
        src: ``[B..., N, 3]`` source points (flatten ``H, W`` point maps to ``N`` first).
        dst: ``[B..., N, 3]`` target points.
        weights: ``[B..., N]`` non-negative weights; ``None`` = uniform.
        with_scale: estimate ``s`` (Umeyama) or keep ``s = 1`` (Kabsch).

    Returns:
        :class:`Sim3` ``(R [B..., 3, 3], t [B..., 3], s [B...])`` with ``dst ~= s R src + t``.

    Raises:
        ValueError: if shapes differ or the weights of a batch element sum to zero.
    """
    if src.shape != dst.shape or src.shape[-1] != 3:
        raise ValueError(f"src {tuple(src.shape)} and dst {tuple(dst.shape)} must be equal [..., N, 3] shapes")
    if weights is not None and weights.shape != src.shape[:-1]:
        raise ValueError(f"weights {tuple(weights.shape)} must have shape {tuple(src.shape[:-1])}")
    dtype = torch.promote_types(src.dtype, torch.float32)
    src, dst = src.to(dtype), dst.to(dtype)
    if weights is not None:
        weights = weights.to(dtype)
        if bool((weights.sum(dim=-1) <= 0).any()):
            raise ValueError("registration weights sum to zero for at least one point set")
    if with_scale:
        R, t, s = roma.rigid_points_registration(src, dst, weights=weights, compute_scaling=True)
    else:
        R, t = roma.rigid_points_registration(src, dst, weights=weights, compute_scaling=False)
        s = torch.ones(R.shape[:-2], dtype=R.dtype, device=R.device)
    return Sim3(R, t, s)


def sim3_matrix(R: torch.Tensor, t: torch.Tensor, s: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Homogeneous matrix of a similarity ``y = s R x + t``.

    Args:
        R: ``[..., 3, 3]`` rotations.
        t: ``[..., 3]`` translations.
        s: ``[...]`` scales (or a float).

    Returns:
        ``[..., 4, 4]`` matrices ``[[s R, t], [0, 0, 0, 1]]``.
    """
    s = torch.as_tensor(s, dtype=R.dtype, device=R.device)
    out = torch.zeros(*R.shape[:-2], 4, 4, dtype=R.dtype, device=R.device)
    out[..., :3, :3] = R * s[..., None, None]
    out[..., :3, 3] = t
    out[..., 3, 3] = 1.0
    return out


def align_camera_centers(pred_cam2world: torch.Tensor, gt_cam2world: torch.Tensor) -> tuple[Sim3, torch.Tensor]:
    """Similarity that best maps predicted camera centres onto ground-truth ones, and the aligned centres.

    Args:
        pred_cam2world: ``[F, 4, 4]`` predicted camera-to-world.
        gt_cam2world: ``[F, 4, 4]`` ground-truth camera-to-world.

    Returns:
        ``(sim3, aligned_centres [F, 3])`` with ``aligned = s R c_pred + t`` (use it for an ATE).

    Raises:
        ValueError: if fewer than 3 cameras are given (the similarity is then underdetermined).
    """
    if pred_cam2world.shape[0] < 3:
        raise ValueError(f"need >= 3 cameras to align centres, got {pred_cam2world.shape[0]}")
    c_pred = pred_cam2world[:, :3, 3]
    c_gt = gt_cam2world[:, :3, 3].to(c_pred.dtype)
    sim = register_points(c_pred, c_gt, with_scale=True)
    aligned = transform_points(sim.matrix(), c_pred)
    return sim, aligned
