"""Point-map utilities: normalisation by average distance, points expressed in another camera's frame.

Conventions (OpenCV camera axes, ``cam2world`` 4x4) are those of :mod:`jog3r.geometry.camera`.
"""

from __future__ import annotations

import torch

from jog3r.geometry.camera import compose, inverse_se3, transform_points

__all__ = ["avg_distance", "normalize_pointmaps", "pts3d_in_other_view", "camera_frame_depth"]


def avg_distance(pts3d: torch.Tensor, valid: torch.Tensor | None = None, eps: float = 1e-8) -> torch.Tensor:
    """Mean Euclidean distance of points to the origin, DUSt3R's ``avg_dis`` normaliser (REFERENCE B.3).

    Args:
        pts3d: ``[B, *S, 3]`` points (``S`` = any spatial axes, e.g. ``H, W`` or ``P, H, W``).
        valid: ``[B, *S]`` bool mask of the points to count; ``None`` = all.
        eps: lower clip of the result.

    Returns:
        ``[B]`` mean distance over the valid points of each batch element, ``>= eps``.
    """
    dist = pts3d.norm(dim=-1).flatten(1)
    if valid is None:
        return dist.mean(dim=1).clamp(min=eps)
    mask = valid.flatten(1).to(dist.dtype)
    return ((dist * mask).sum(dim=1) / (mask.sum(dim=1) + 1e-8)).clamp(min=eps)


def normalize_pointmaps(
    *pts3d: torch.Tensor, valid: tuple[torch.Tensor, ...] | None = None
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Divide several point maps by their joint average distance to the origin (DUSt3R ``normalize_pointcloud``).

    DUSt3R normalises the two views of a pair together: ``z = sum ||X|| / (|M1| + |M2|)`` over the valid pixels
    of both views, then ``X_v / z`` (REFERENCE B.3).

    Args:
        *pts3d: one or more ``[B, H, W, 3]`` point maps in the same frame.
        valid: optional ``[B, H, W]`` bool masks, one per point map.

    Returns:
        ``(normalised point maps, z)`` with ``z`` ``[B]`` the joint average distance.

    Raises:
        ValueError: if no point map is given or the number of masks differs from the number of maps.
    """
    if not pts3d:
        raise ValueError("normalize_pointmaps needs at least one point map")
    if valid is not None and len(valid) != len(pts3d):
        raise ValueError(f"got {len(valid)} masks for {len(pts3d)} point maps")
    B = pts3d[0].shape[0]
    total = torch.zeros(B, dtype=pts3d[0].dtype, device=pts3d[0].device)
    count = torch.zeros_like(total)
    for k, pts in enumerate(pts3d):
        dist = pts.norm(dim=-1).reshape(B, -1)
        mask = torch.ones_like(dist) if valid is None else valid[k].reshape(B, -1).to(dist.dtype)
        total = total + (dist * mask).sum(dim=1)
        count = count + mask.sum(dim=1)
    z = (total / (count + 1e-8)).clamp(min=1e-8)
    return tuple(pts / z.view(B, *([1] * (pts.ndim - 1))) for pts in pts3d), z


def pts3d_in_other_view(pts3d: torch.Tensor, src_cam2world: torch.Tensor, dst_cam2world: torch.Tensor) -> torch.Tensor:
    """Express points given in camera ``src``'s frame in camera ``dst``'s frame.

    ``X_dst = world2cam_dst @ cam2world_src @ X_src`` (the relation between DUSt3R's ``pts3d`` and
    ``pts3d_in_other_view``).

    Args:
        pts3d: ``[B..., *S, 3]`` points in the ``src`` camera frame.
        src_cam2world: ``[B..., 4, 4]`` camera-to-world of the source camera.
        dst_cam2world: ``[B..., 4, 4]`` camera-to-world of the destination camera.

    Returns:
        ``[B..., *S, 3]`` the same points in the ``dst`` camera frame.
    """
    src2dst = compose(src_cam2world, inverse_se3(dst_cam2world))
    return transform_points(src2dst, pts3d)


def camera_frame_depth(pts3d_world: torch.Tensor, cam2world: torch.Tensor) -> torch.Tensor:
    """z-depth of world points seen from a camera.

    Args:
        pts3d_world: ``[B..., H, W, 3]`` world points.
        cam2world: ``[B..., 4, 4]`` camera-to-world.

    Returns:
        ``[B..., H, W]`` z coordinate in the camera frame (negative behind the camera).
    """
    return transform_points(inverse_se3(cam2world), pts3d_world)[..., 2]
