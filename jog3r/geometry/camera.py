"""Camera math, and THE place where the package's conventions are stated.

Conventions (every other module links here instead of restating them):

* **Camera axes: OpenCV** - x right, y down, z forward (the camera looks along +z). Files in other conventions
  (nerfstudio/Blender/OpenGL: x right, y up, z backward) are converted at the file boundary in :mod:`jog3r.io`.
* **Poses:** ``cam2world`` maps camera coordinates to world coordinates, ``world2cam`` is its inverse. Both are
  float32 ``[..., 4, 4]`` with bottom row ``[0, 0, 0, 1]``; points are column vectors, ``X_w = cam2world @ X_c``.
  Never bare "pose" / "extrinsic" / "RT".
* **Intrinsics:** ``K`` ``[..., 3, 3]`` in pixels, ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``; ``focal`` is in
  pixels.
* **Pixel coordinates:** pixel ``(u, v)`` (column ``u``, row ``v``, integer indices) has its **centre at the
  continuous coordinate (u + 0.5, v + 0.5)**; the image covers ``[0, W] x [0, H]``, so a centred principal
  point is ``(W / 2, H / 2)`` (the RealEstate10K ``cx = 0.5`` convention).
* **Quaternions:** XYZW (scalar last, roma's order) everywhere inside ``jog3r``; viser's ``wxyz`` appears only
  in :mod:`jog3r.viz.viewer`, COLMAP's ``QW QX QY QZ`` only in :mod:`jog3r.io`.
* **Angles:** radians inside the package; degrees only at the metric API (``RRA@5``, errors in degrees).
* **Units:** scene scale is arbitrary ("up to scale") unless a dataset says it is metric; depth is z-depth
  (distance along +z), not ray length.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import roma
import torch

__all__ = [
    "inverse_se3",
    "compose",
    "transform_points",
    "pixel_grid",
    "project",
    "unproject_depth",
    "depth_to_world_points",
    "focal_from_fov",
    "fov_from_focal",
    "intrinsics_from_focal",
    "opencv_to_opengl",
    "opengl_to_opencv",
    "quat_to_matrix",
    "matrix_to_quat",
    "estimate_focal",
    "resize_crop_geometry",
    "adjust_intrinsics",
]

# OpenCV (x right, y down, z forward) <-> OpenGL (x right, y up, z backward): flip the camera's y and z axes.
_CV_GL_FLIP = (1.0, -1.0, -1.0)


def inverse_se3(transform: torch.Tensor) -> torch.Tensor:
    """Invert rigid transforms in closed form (``R^T``, ``-R^T t``), e.g. ``cam2world -> world2cam``.

    Args:
        transform: ``[..., 4, 4]`` rigid transforms (rotation block orthonormal, bottom row ``[0, 0, 0, 1]``).

    Returns:
        ``[..., 4, 4]`` inverses, same dtype and device.

    Raises:
        ValueError: if the last two dimensions are not ``4 x 4``.
    """
    if transform.shape[-2:] != (4, 4):
        raise ValueError(f"expected [..., 4, 4] transforms, got shape {tuple(transform.shape)}")
    rot_t = transform[..., :3, :3].transpose(-1, -2)
    trans = -(rot_t @ transform[..., :3, 3:4])
    out = torch.zeros_like(transform)
    out[..., :3, :3] = rot_t
    out[..., :3, 3:4] = trans
    out[..., 3, 3] = 1.0
    return out


def compose(a2b: torch.Tensor, b2c: torch.Tensor) -> torch.Tensor:
    """Chain two transforms: the result maps frame ``a`` to frame ``c`` (``b2c @ a2b``).

    Args:
        a2b: ``[..., 4, 4]`` transform from frame ``a`` to frame ``b``.
        b2c: ``[..., 4, 4]`` transform from frame ``b`` to frame ``c`` (broadcast against ``a2b``).

    Returns:
        ``[..., 4, 4]`` transform ``a2c = b2c @ a2b`` (column-vector convention, see the module docstring).
    """
    return b2c @ a2b


def transform_points(transform: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """Apply ``[..., 4, 4]`` (or ``[..., 3, 4]``) transforms to ``[..., N, 3]`` or ``[..., H, W, 3]`` points.

    Args:
        transform: ``[B..., 4, 4]`` affine transforms (rotation may be scaled: similarities are fine).
        pts: ``[B..., *S, 3]`` points; the leading ``B...`` axes must broadcast against ``transform``'s and ``S``
            is any number of spatial axes (``N`` or ``H, W``).

    Returns:
        ``[B..., *S, 3]`` transformed points ``X' = M[:3, :3] X + M[:3, 3]``.
    """
    lead = transform.shape[:-2]
    spatial = pts.shape[len(lead) : -1]
    flat = pts.reshape(*pts.shape[: len(lead)], -1, 3)
    out = flat @ transform[..., :3, :3].transpose(-1, -2) + transform[..., None, :3, 3]
    return out.reshape(*out.shape[:-2], *spatial, 3)


def pixel_grid(
    H: int, W: int, *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Continuous coordinates of pixel centres, ``(u + 0.5, v + 0.5)`` (module docstring convention).

    Args:
        H: image height in pixels.
        W: image width in pixels.
        device: device of the result.
        dtype: floating dtype of the result.

    Returns:
        ``[H, W, 2]`` with ``out[v, u] = (u + 0.5, v + 0.5)`` (x first, then y).
    """
    v, u = torch.meshgrid(
        torch.arange(H, device=device, dtype=dtype), torch.arange(W, device=device, dtype=dtype), indexing="ij"
    )
    return torch.stack((u + 0.5, v + 0.5), dim=-1)


def project(pts_cam: torch.Tensor, K: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pinhole projection of camera-frame points to continuous pixel coordinates.

    Args:
        pts_cam: ``[B..., *S, 3]`` points in the OpenCV camera frame (``z > 0`` in front).
        K: ``[B..., 3, 3]`` intrinsics in pixels (leading axes broadcast against ``pts_cam``'s).
        eps: lower bound on ``|z|`` to avoid division by zero (the sign of ``z`` is kept).

    Returns:
        ``[B..., *S, 2]`` coordinates ``(x, y)``; the centre of pixel ``(u, v)`` is ``(u + 0.5, v + 0.5)``.
    """
    lead = K.shape[:-2]
    flat = pts_cam.reshape(*pts_cam.shape[: len(lead)], -1, 3)
    z = flat[..., 2:3]
    z = torch.where(z >= 0, z.clamp(min=eps), z.clamp(max=-eps))
    xy = flat[..., :2] / z
    fxy = torch.stack((K[..., 0, 0], K[..., 1, 1]), dim=-1)[..., None, :]
    cxy = K[..., :2, 2][..., None, :]
    out = xy * fxy + cxy
    return out.reshape(*pts_cam.shape[:-1], 2)


def unproject_depth(depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Back-project a z-depth map to camera-frame points (inverse of :func:`project` at pixel centres).

    Args:
        depth: ``[B..., H, W]`` z-depth (distance along the camera's +z axis).
        K: ``[B..., 3, 3]`` intrinsics in pixels (skew ignored).

    Returns:
        ``[B..., H, W, 3]`` points ``depth * ((u + 0.5 - cx) / fx, (v + 0.5 - cy) / fy, 1)`` in the OpenCV frame.
    """
    H, W = depth.shape[-2:]
    grid = pixel_grid(H, W, device=depth.device, dtype=depth.dtype)
    fxy = torch.stack((K[..., 0, 0], K[..., 1, 1]), dim=-1)[..., None, None, :]
    cxy = K[..., :2, 2][..., None, None, :]
    xy = (grid - cxy) / fxy
    d = depth.unsqueeze(-1)
    return torch.cat((xy * d, d), dim=-1)


def depth_to_world_points(depth: torch.Tensor, K: torch.Tensor, cam2world: torch.Tensor) -> torch.Tensor:
    """World points of every pixel of z-depth maps.

    Args:
        depth: ``[B..., H, W]`` z-depth.
        K: ``[B..., 3, 3]`` intrinsics in pixels.
        cam2world: ``[B..., 4, 4]`` camera-to-world transforms (OpenCV axes).

    Returns:
        ``[B..., H, W, 3]`` world points.
    """
    return transform_points(cam2world, unproject_depth(depth, K))


def focal_from_fov(fov: torch.Tensor | float, size: torch.Tensor | float) -> torch.Tensor | float:
    """Focal length in pixels from a full field of view, ``f = size / (2 tan(fov / 2))``.

    Args:
        fov: full field of view in radians (horizontal if ``size`` is the width, vertical if the height).
        size: image width or height in pixels.

    Returns:
        focal length in pixels (a tensor if either input is one).
    """
    if isinstance(fov, torch.Tensor) or isinstance(size, torch.Tensor):
        return size / (2.0 * torch.tan(torch.as_tensor(fov) / 2.0))
    return size / (2.0 * math.tan(fov / 2.0))


def fov_from_focal(focal: torch.Tensor | float, size: torch.Tensor | float) -> torch.Tensor | float:
    """Full field of view in radians from a focal length, ``fov = 2 atan(size / (2 f))``.

    Args:
        focal: focal length in pixels.
        size: image width (horizontal FoV) or height (vertical FoV) in pixels.

    Returns:
        full field of view in radians (a tensor if either input is one).
    """
    if isinstance(focal, torch.Tensor) or isinstance(size, torch.Tensor):
        return 2.0 * torch.atan(torch.as_tensor(size) / (2.0 * focal))
    return 2.0 * math.atan(size / (2.0 * focal))


def intrinsics_from_focal(
    focal: torch.Tensor | float, H: int, W: int, pp: torch.Tensor | tuple[float, float] | None = None
) -> torch.Tensor:
    """Build pinhole intrinsics with square pixels.

    Args:
        focal: ``[B...]`` (or scalar) focal length in pixels.
        H: image height in pixels.
        W: image width in pixels.
        pp: ``[B..., 2]`` principal point ``(cx, cy)`` in pixels; ``None`` = image centre ``(W / 2, H / 2)``.

    Returns:
        ``[B..., 3, 3]`` float32 (or ``focal``'s floating dtype) intrinsics ``[[f, 0, cx], [0, f, cy], [0, 0, 1]]``.
    """
    focal = torch.as_tensor(focal)
    if not focal.is_floating_point():
        focal = focal.float()
    if pp is None:
        pp = torch.tensor((W / 2.0, H / 2.0), dtype=focal.dtype, device=focal.device)
    pp = torch.as_tensor(pp, dtype=focal.dtype, device=focal.device)
    lead = torch.broadcast_shapes(focal.shape, pp.shape[:-1])
    K = torch.zeros(*lead, 3, 3, dtype=focal.dtype, device=focal.device)
    K[..., 0, 0] = focal
    K[..., 1, 1] = focal
    K[..., 0, 2] = pp[..., 0]
    K[..., 1, 2] = pp[..., 1]
    K[..., 2, 2] = 1.0
    return K


def opencv_to_opengl(cam2world: torch.Tensor) -> torch.Tensor:
    """Convert OpenCV-axes camera-to-world matrices to OpenGL/Blender/nerfstudio axes (y up, z backward).

    Args:
        cam2world: ``[..., 4, 4]`` camera-to-world, OpenCV camera axes.

    Returns:
        ``[..., 4, 4]`` camera-to-world with the camera's y and z columns negated (an involution).
    """
    flip = torch.tensor((*_CV_GL_FLIP, 1.0), dtype=cam2world.dtype, device=cam2world.device)
    return cam2world * flip


def opengl_to_opencv(cam2world: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`opencv_to_opengl` (the same column flip).

    Args:
        cam2world: ``[..., 4, 4]`` camera-to-world, OpenGL camera axes (x right, y up, z backward).

    Returns:
        ``[..., 4, 4]`` camera-to-world, OpenCV camera axes.
    """
    return opencv_to_opengl(cam2world)


def quat_to_matrix(quat_xyzw: torch.Tensor) -> torch.Tensor:
    """Rotation matrices of (not necessarily normalised) quaternions, scalar last (roma's XYZW order).

    Args:
        quat_xyzw: ``[..., 4]`` quaternions ``(x, y, z, w)``; normalised here.

    Returns:
        ``[..., 3, 3]`` rotation matrices.
    """
    return roma.unitquat_to_rotmat(quat_xyzw / quat_xyzw.norm(dim=-1, keepdim=True))


def matrix_to_quat(rotmat: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (XYZW, scalar last) of rotation matrices, via :func:`roma.rotmat_to_unitquat`.

    Args:
        rotmat: ``[..., 3, 3]`` rotation matrices.

    Returns:
        ``[..., 4]`` unit quaternions ``(x, y, z, w)`` (sign as returned by roma).
    """
    return roma.rotmat_to_unitquat(rotmat)


def estimate_focal(
    pts3d: torch.Tensor,
    pp: torch.Tensor | tuple[float, float] | None = None,
    mode: Literal["weiszfeld", "median"] = "weiszfeld",
    *,
    min_focal: float = 0.0,
    max_focal: float = math.inf,
    weiszfeld_iters: int = 10,
) -> torch.Tensor:
    """Focal length of a camera-frame point map with a known principal point.

    DUSt3R ``estimate_focal_knowing_depth`` (D3 ``dust3r/post_process.py``, REFERENCE B.5), re-expressed in this
    module's pixel-centre convention: with ``p = (u + 0.5 - cx, v + 0.5 - cy)`` and ``r = (x / z, y / z)``,

    * ``"weiszfeld"``: ``f = argmin sum_p ||p - f r||`` by iteratively re-weighted least squares, starting from the
      L2 solution ``mean(r . p) / mean(||r||^2)``, weights ``1 / max(||p - f r||, 1e-8)``;
    * ``"median"``: the median of the per-axis votes ``p_x z / x`` and ``p_y z / y``.

    The result is clipped to ``[min_focal, max_focal] * max(H, W) / (2 tan 30deg)`` (DUSt3R's 60-degree base).

    Args:
        pts3d: ``[B..., H, W, 3]`` points in the camera frame of the image they index.
        pp: ``[B..., 2]`` principal point in pixels; ``None`` = ``(W / 2, H / 2)``.
        mode: ``"weiszfeld"`` (robust, DUSt3R's choice for the MST init) or ``"median"``.
        min_focal: lower clip, in units of the 60-degree focal.
        max_focal: upper clip, in units of the 60-degree focal.
        weiszfeld_iters: number of IRLS iterations (DUSt3R uses 10).

    Returns:
        ``[B...]`` focal lengths in pixels, in ``pts3d``'s dtype.

    Raises:
        ValueError: if ``pts3d`` is not ``[..., H, W, 3]`` or ``mode`` is unknown.
    """
    if pts3d.ndim < 3 or pts3d.shape[-1] != 3:
        raise ValueError(f"expected a [..., H, W, 3] point map, got shape {tuple(pts3d.shape)}")
    H, W = pts3d.shape[-3:-1]
    if pp is None:
        pp = (W / 2.0, H / 2.0)
    pp = torch.as_tensor(pp, dtype=pts3d.dtype, device=pts3d.device)
    lead = pts3d.shape[:-3]
    pixels = (pixel_grid(H, W, device=pts3d.device, dtype=pts3d.dtype) - pp[..., None, None, :]).expand(
        *lead, H, W, 2
    )
    pixels = pixels.reshape(*lead, H * W, 2)
    pts = pts3d.reshape(*lead, H * W, 3)
    if mode == "weiszfeld":
        xy_over_z = (pts[..., :2] / pts[..., 2:3]).nan_to_num(posinf=0.0, neginf=0.0)
        dot_xy_px = (xy_over_z * pixels).sum(dim=-1)
        dot_xy_xy = xy_over_z.square().sum(dim=-1)
        focal = dot_xy_px.mean(dim=-1) / dot_xy_xy.mean(dim=-1)
        for _ in range(weiszfeld_iters):
            dist = (pixels - focal[..., None, None] * xy_over_z).norm(dim=-1)
            w = dist.clamp(min=1e-8).reciprocal()
            focal = (w * dot_xy_px).mean(dim=-1) / (w * dot_xy_xy).mean(dim=-1)
    elif mode == "median":
        votes = torch.cat(
            (pixels[..., 0] * pts[..., 2] / pts[..., 0], pixels[..., 1] * pts[..., 2] / pts[..., 1]), dim=-1
        )
        focal = torch.nanmedian(votes.masked_fill(~torch.isfinite(votes), float("nan")), dim=-1).values
    else:
        raise ValueError(f"unknown focal estimation mode {mode!r}; use 'weiszfeld' or 'median'")
    focal_base = max(H, W) / (2.0 * math.tan(math.radians(30.0)))
    return focal.clamp(min=min_focal * focal_base, max=max_focal * focal_base)


def estimate_pixel_aspect(
    pts3d: torch.Tensor, pp: torch.Tensor | tuple[float, float] | None = None, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Pixel aspect ``fy / fx`` of camera-frame point maps with a known principal point.

    Per axis, the focal is the L1 fit of ``p_x = fx * x / z`` (resp. ``p_y = fy * y / z``) with
    ``p = (u + 0.5 - cx, v + 0.5 - cy)``: the weighted median of ``p_x z / x`` with weights ``w |x / z|`` (robust
    to outliers like DUSt3R's Weiszfeld focal, but one value per axis). Frames resized without cropping (e.g.
    RealEstate10K's 16:9 videos stored at 384x256) have ``fy / fx`` of about 1.19, which a square-pixel model
    cannot fit. Our addition to DUSt3R's alignment.

    Args:
        pts3d: ``[B, H, W, 3]`` points in the camera frame of the image they index (``z > 0`` where valid).
        pp: ``(cx, cy)`` in pixels (or ``[B, 2]``); ``None`` = ``(W / 2, H / 2)``.
        weights: optional ``[B, H, W]`` non-negative pixel weights (e.g. confidences).

    Returns:
        ``[B]`` aspects ``fy / fx`` (NaN for a map without usable points).
    """
    B, H, W, _ = pts3d.shape
    if pp is None:
        pp = (W / 2.0, H / 2.0)
    pp = torch.as_tensor(pp, dtype=pts3d.dtype, device=pts3d.device).expand(B, 2)
    pix = pixel_grid(H, W, device=pts3d.device, dtype=pts3d.dtype)[None] - pp[:, None, None, :]
    r = pts3d[..., :2] / pts3d[..., 2:3]
    w = torch.ones(B, H, W, dtype=pts3d.dtype, device=pts3d.device) if weights is None else weights.to(pts3d)
    out = torch.full((B,), float("nan"), dtype=pts3d.dtype, device=pts3d.device)
    for b in range(B):
        f = []
        for axis in range(2):
            votes = (pix[b, ..., axis] / r[b, ..., axis]).flatten()
            wb = (w[b] * r[b, ..., axis].abs()).flatten()
            ok = torch.isfinite(votes) & torch.isfinite(wb) & (votes > 0) & (wb > 0) & (pts3d[b, ..., 2].flatten() > 0)
            if int(ok.sum()) < 8:
                break
            v, order = votes[ok].sort()
            cw = wb[ok][order].cumsum(0)
            f.append(v[torch.searchsorted(cw, 0.5 * cw[-1]).clamp(max=v.numel() - 1)])
        if len(f) == 2:
            out[b] = f[1] / f[0]
    return out


def resize_crop_geometry(
    src_size: tuple[int, int], dst_size: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Resized size and crop offset of :func:`jog3r.io.video.resize_and_center_crop`.

    Args:
        src_size: ``(H, W)`` of the input.
        dst_size: ``(H', W')`` wanted.

    Returns:
        ``((H_r, W_r), (top, left))``: the image is resized to ``H_r x W_r`` with one scale
        ``s = max(H' / H, W' / W)`` (rounded, never below ``H' x W'``), then ``[top:top + H', left:left +
        W']`` is kept.
    """
    (H, W), (h, w) = src_size, dst_size
    scale = max(h / H, w / W)
    resized = (max(h, round(H * scale)), max(w, round(W * scale)))
    return resized, ((resized[0] - h) // 2, (resized[1] - w) // 2)


def adjust_intrinsics(K: torch.Tensor | np.ndarray, src_size: tuple[int, int], dst_size: tuple[int, int]):
    """Intrinsics of frames after :func:`jog3r.io.video.resize_and_center_crop` from ``src_size`` to ``dst_size``.

    Scale row 0 (``fx, cx``) by ``W_r / W`` and row 1 (``fy, cy``) by ``H_r / H`` (the short-side factor, up
    to rounding of the resized size), then subtract the crop offset: ``cx -= left``, ``cy -= top``. Exact
    under the package's pixel-centre convention (this module's docstring).

    Args:
        K: ``[..., 3, 3]`` intrinsics in pixels of ``src_size`` images.
        src_size: ``(H, W)`` before.
        dst_size: ``(H', W')`` after.

    Returns:
        ``[..., 3, 3]`` intrinsics in pixels of ``dst_size`` images, same type and dtype as ``K``.
    """
    (Hr, Wr), (top, left) = resize_crop_geometry(src_size, dst_size)
    out = K.clone() if isinstance(K, torch.Tensor) else np.array(K, copy=True)
    out[..., 0, :] *= Wr / src_size[1]
    out[..., 1, :] *= Hr / src_size[0]
    out[..., 0, 2] -= left
    out[..., 1, 2] -= top
    return out
