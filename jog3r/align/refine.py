"""Optional camera refinement of a V2C reconstruction from image correspondences (``refine=True``).

JOG3R's global alignment (:func:`jog3r.align.fit.fit`) places the cameras from the model's point maps alone, as the
paper does. This module is an optional second stage, NOT part of the paper's V2C, in the spirit of the
correspondence-based refinement that point-map systems offer after their feed-forward pass (VGGT's bundle
adjustment, MASt3R-SfM): the model supplies the intrinsics (focal and pixel aspect, estimated by the alignment, or
the ones the user gave), the depth maps and the scene scale; the relative rotations and translation directions of
consecutive frames come from classical two-view geometry on SIFT matches.

:func:`refine_with_matches`:

1. **Correspondences** (:func:`match_frames`): OpenCV SIFT on frames upscaled ``upsample`` times (the model's frames
   are small), mutual nearest neighbours passing Lowe's ratio test, filtered by a fundamental-matrix RANSAC
   (``cv2.USAC_MAGSAC``, which needs no intrinsics).
2. **Two-view poses**: for every consecutive pair, the essential matrix (``cv2.findEssentialMat``, MAGSAC++) on the
   matches normalised with the reconstruction's ``K``, decomposed by ``cv2.recoverPose``. Two-view translation has
   no scale: every step gets the alignment's median step length, so the scene keeps the alignment's scale. A pair
   without enough matches keeps the alignment's relative pose for that step (``info["fallback_steps"]``); a pair
   without parallax (pan in place, static camera) keeps the alignment's translation (``info["low_parallax_steps"]``).
3. **Output**: the reconstruction with the chained ``cam2world`` (frame 0 keeps its pose); ``K`` and ``depth`` are
   the alignment's and the point cloud is re-unprojected with the new cameras. When no consecutive pair has enough
   correspondences (texture-less video) the input is returned unchanged with a warning.

Measured with the embedded default (``jog3r eval --refine-matches``; see the model card): it is the
correspondences, not the point maps, that carry the camera accuracy of this stage.

Conventions are those of :mod:`jog3r.geometry.camera` (OpenCV axes, ``cam2world``, pixel centres at ``+0.5``).
"""

from __future__ import annotations

import dataclasses
import logging

import cv2
import numpy as np
import roma
import torch

from jog3r.geometry.camera import depth_to_world_points
from jog3r.types import Reconstruction
from jog3r.viz.colors import to_uint8

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class RefineConfig:
    """Settings of :func:`refine_with_matches` and :func:`match_frames`."""

    window: int = 1
    """Frames ``i`` and ``j`` are matched when ``0 < j - i <= window`` (the chain uses consecutive pairs)."""
    ratio: float = 0.8
    """Lowe's ratio-test threshold of the SIFT matches."""
    ransac_px: float = 1.0
    """Inlier threshold in pixels of the fundamental-matrix and essential-matrix RANSACs."""
    min_matches: int = 15
    """A frame pair with fewer RANSAC inliers contributes no matches."""
    max_matches: int = 400
    """Keep at most this many inliers per pair, the most distinctive (lowest ratio-test distance ratio)."""
    upsample: int = 2
    """Detect SIFT on frames upscaled by this factor (the model's frames are small, e.g. 128 x 192)."""
    min_parallax_px: float = 0.3
    """A step whose rotation-compensated median image motion is below this (pixels) takes its rotation from the
    matches and its translation from the alignment (two-view translation is undefined without parallax)."""

    def __post_init__(self) -> None:
        if self.window < 1 or self.upsample < 1:
            raise ValueError(f"window and upsample must be >= 1, got {self.window}, {self.upsample}")
        if not 0 < self.ratio <= 1 or not self.ransac_px > 0 or self.min_parallax_px < 0:
            raise ValueError(f"need 0 < ratio <= 1, ransac_px > 0, min_parallax_px >= 0; got {self.ratio}, "
                             f"{self.ransac_px}, {self.min_parallax_px}")
        if self.min_matches < 8 or self.max_matches < self.min_matches:
            raise ValueError(f"need min_matches >= 8 (the fundamental-matrix fit) and max_matches >= min_matches; "
                             f"got {self.min_matches}, {self.max_matches}")


def gray_uint8(frame: torch.Tensor, upsample: int = 1) -> np.ndarray:
    """8-bit grey image ``[H * upsample, W * upsample]`` of one ``[3, H, W]`` float RGB frame in ``[0, 1]`` (for SIFT);
    upscaled with bicubic interpolation when ``upsample > 1``."""
    gray = cv2.cvtColor(to_uint8(frame.permute(1, 2, 0).cpu().numpy()), cv2.COLOR_RGB2GRAY)
    if upsample > 1:
        gray = cv2.resize(gray, None, fx=upsample, fy=upsample, interpolation=cv2.INTER_CUBIC)
    return gray


def match_frames(frames: torch.Tensor, config: RefineConfig | None = None
                 ) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """SIFT correspondences between nearby frames, filtered by a fundamental-matrix RANSAC.

    Args:
        frames: ``[F, 3, H, W]`` float RGB in ``[0, 1]``.
        config: matching settings (``window``, ``ratio``, ``ransac_px``, ``min_matches``, ...).

    Returns:
        A list of ``(i, j, uv_i, uv_j)`` with ``uv`` ``[M, 2]`` float64 pixel coordinates in our convention (pixel
        centres at ``+0.5``) of the ``H x W`` frames, for every pair with at least ``min_matches`` inliers.
    """
    config = config or RefineConfig()
    up = int(config.upsample)
    sift = cv2.SIFT_create()
    feats = [sift.detectAndCompute(gray_uint8(f, up), None) for f in frames]
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    out = []
    num = frames.shape[0]
    for i in range(num):
        ki, di = feats[i]
        for j in range(i + 1, min(num, i + config.window + 1)):
            kj, dj = feats[j]
            if di is None or dj is None or len(ki) < 8 or len(kj) < 8:
                continue
            fwd = matcher.knnMatch(di, dj, k=2)
            bwd = {m.queryIdx: m.trainIdx for m, *_ in matcher.knnMatch(dj, di, k=1)}
            good = [(m, m.distance / max(rest[0].distance, 1e-9)) for m, *rest in fwd
                    if rest and m.distance < config.ratio * rest[0].distance and bwd.get(m.trainIdx) == m.queryIdx]
            if len(good) < config.min_matches:
                continue
            # cv2 keypoints: pixel centres at integers, at `up` times the resolution -> our +0.5 convention
            pi = np.float64([ki[m.queryIdx].pt for m, _ in good]) + 0.5
            pj = np.float64([kj[m.trainIdx].pt for m, _ in good]) + 0.5
            pi, pj = pi / up, pj / up
            try:
                _, inl = cv2.findFundamentalMat(pi, pj, cv2.USAC_MAGSAC, config.ransac_px, 0.999, 10000)
            except cv2.error as err:  # degenerate configuration (e.g. all matches on one plane / no motion)
                logger.debug("frames %d-%d: fundamental matrix failed (%s)", i, j, err)
                continue
            if inl is None:
                continue
            keep = np.flatnonzero(inl[:, 0])
            if keep.size < config.min_matches:
                continue
            scores = np.array([r for _, r in good])[keep]  # distance ratios: lower is more distinctive
            keep = keep[np.argsort(scores, kind="stable")[: config.max_matches]]
            out.append((i, j, pi[keep], pj[keep]))
    return out


def _rotation_only(na: np.ndarray, nb: np.ndarray, focal: float) -> tuple[np.ndarray, float]:
    """Best pure rotation ``x_b ~ R x_a`` of normalised matches (Kabsch on unit bearings, roma) and the median
    residual image motion it leaves, in pixels (the pair's parallax)."""
    ba = np.concatenate([na, np.ones((len(na), 1))], 1)
    bb = np.concatenate([nb, np.ones((len(nb), 1))], 1)
    ba /= np.linalg.norm(ba, axis=1, keepdims=True)
    bb /= np.linalg.norm(bb, axis=1, keepdims=True)
    R = roma.rigid_vectors_registration(torch.from_numpy(ba), torch.from_numpy(bb)).numpy()
    pa = ba @ R.T
    residual = nb - pa[:, :2] / pa[:, 2:]
    return R, float(np.median(np.linalg.norm(residual, axis=1))) * focal


def _essential_pose(na: np.ndarray, nb: np.ndarray, focal: float, ransac_px: float
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """``(R, t_unit)`` of frame b relative to frame a from the essential matrix, or None on failure."""
    try:
        E, inl = cv2.findEssentialMat(na, nb, np.eye(3), method=cv2.USAC_MAGSAC, prob=0.9999,
                                      threshold=ransac_px / focal)
        if E is None or E.shape != (3, 3):
            return None
        good, R, t, _ = cv2.recoverPose(E, na, nb, np.eye(3), mask=inl)
    except cv2.error as err:  # degenerate configurations
        logger.debug("essential matrix failed: %s", err)
        return None
    if good < 8:  # too few essential-matrix inliers in front of both cameras to trust the pose
        return None
    return R, t[:, 0] / max(float(np.linalg.norm(t)), 1e-12)


def chain_cameras(recon: Reconstruction, matches: list, config: RefineConfig | None = None
                  ) -> tuple[np.ndarray, dict]:
    """Chain consecutive two-view poses (step 2 of :func:`refine_with_matches`).

    Args:
        recon: the alignment's reconstruction (its ``K``, and its cameras for the scale and the fallback steps).
        matches: output of :func:`match_frames` (only consecutive pairs are used).
        config: :class:`RefineConfig` (``ransac_px``, ``min_matches``, ``min_parallax_px``).

    Returns:
        ``(cam2world [F, 4, 4] float64, info)``: frame 0 keeps the alignment's pose. ``info["fallback_steps"]``
        counts the steps that kept the alignment's relative pose (fewer than ``min_matches`` matches, a failed
        essential matrix, or fewer than 8 of its inliers in front of both cameras);
        ``info["low_parallax_steps"]`` those that a pure rotation explains to within ``min_parallax_px`` (median
        residual; pan in place, static camera, where two-view translation is undefined): their rotation is the
        matches' best rotation (Kabsch on the bearings) and their camera-centre displacement the alignment's.
    """
    cfg = config or RefineConfig()
    c2w_ga = recon.cam2world.double().cpu().numpy()
    K = recon.K.double().cpu().numpy()
    num = c2w_ga.shape[0]
    steps = np.linalg.norm(np.diff(c2w_ga[:, :3, 3], axis=0), axis=1)
    step_len = float(np.median(steps)) if np.isfinite(steps).all() else 0.0  # 0 for a static alignment
    consecutive = {(i, j): (a, b) for i, j, a, b in matches if j == i + 1}
    w2c = [np.linalg.inv(c2w_ga[0])]
    fallback = low_parallax = 0
    for i in range(num - 1):
        rel_ga = np.linalg.inv(c2w_ga[i + 1]) @ c2w_ga[i]  # world2cam of frame i+1 relative to frame i
        rel = None
        if (i, i + 1) in consecutive:
            a, b = consecutive[(i, i + 1)]
            na = (a - K[i, :2, 2]) / np.diag(K[i])[:2]
            nb = (b - K[i + 1, :2, 2]) / np.diag(K[i + 1])[:2]
            focal = float(np.sqrt(K[i, 0, 0] * K[i, 1, 1]))
            R_rot, parallax = _rotation_only(na, nb, focal)
            rel = np.eye(4)
            if parallax < cfg.min_parallax_px:  # no baseline to see: rotation only, the alignment's translation
                low_parallax += 1
                centre = -rel_ga[:3, :3].T @ rel_ga[:3, 3]  # centre of frame i+1 in frame i's coordinates
                rel[:3, :3], rel[:3, 3] = R_rot, -R_rot @ centre
            elif (pose := _essential_pose(na, nb, focal, cfg.ransac_px)) is not None:
                rel[:3, :3], rel[:3, 3] = pose[0], step_len * pose[1]
            else:
                rel = None
        if rel is None:
            fallback += 1
            rel = rel_ga
        w2c.append(rel @ w2c[-1])
    return np.linalg.inv(np.stack(w2c)), {"fallback_steps": fallback, "low_parallax_steps": low_parallax}


def refine_with_matches(recon: Reconstruction, frames: torch.Tensor, config: RefineConfig | None = None
                        ) -> tuple[Reconstruction, dict]:
    """Replace a reconstruction's cameras by a chain of two-view poses from SIFT correspondences.

    Args:
        recon: the global alignment's :class:`~jog3r.types.Reconstruction` (``F`` frames of ``H x W``).
        frames: ``[F, 3, H, W]`` float RGB in ``[0, 1]``, the frames ``recon`` was computed from.
        config: :class:`RefineConfig` (default settings if ``None``).

    Returns:
        ``(refined, info)``: the reconstruction with new ``cam2world`` and ``pts3d`` (``K``, ``depth``, ``conf``,
        ``colors`` kept) and a dict with ``pairs`` (matched frame pairs within ``window``), ``matches`` (their
        inliers in all), ``fallback_steps`` and ``low_parallax_steps`` (see :func:`chain_cameras`) and ``status``
        (``"refined"``, or ``"skipped: ..."`` when the input was returned unchanged).

    Raises:
        ValueError: ``frames`` does not match the reconstruction's frame count and size, or is not finite
            floating-point.
    """
    cfg = config or RefineConfig()
    num, h, w = recon.depth.shape
    if tuple(frames.shape) != (num, 3, h, w):
        raise ValueError(f"frames must be [F={num}, 3, H={h}, W={w}], got {tuple(frames.shape)}")
    if not frames.is_floating_point() or not bool(torch.isfinite(frames).all()):
        raise ValueError("frames must be finite floating-point RGB in [0, 1] (got "
                         f"{frames.dtype}, or non-finite values); convert uint8 with / 255")
    matches = match_frames(frames, cfg)
    info: dict = {"pairs": len(matches), "matches": int(sum(len(m[2]) for m in matches))}
    if not any(j == i + 1 for i, j, *_ in matches):
        logger.warning("match refinement skipped: no consecutive frames have enough correspondences")
        return recon, {**info, "fallback_steps": num - 1, "low_parallax_steps": 0,
                       "status": "skipped: no correspondences"}
    c2w, chain_info = chain_cameras(recon, matches, cfg)
    info.update(chain_info)
    if not np.isfinite(c2w).all():
        logger.warning("match refinement skipped: non-finite chained cameras")
        return recon, {**info, "status": "skipped: non-finite cameras"}
    if chain_info["fallback_steps"]:
        logger.warning("match refinement: %d of %d steps kept the global alignment's relative pose",
                       chain_info["fallback_steps"], num - 1)
    cam2world = torch.as_tensor(c2w, dtype=recon.cam2world.dtype, device=recon.cam2world.device)
    pts3d = depth_to_world_points(recon.depth, recon.K, cam2world)
    return dataclasses.replace(recon, cam2world=cam2world, pts3d=pts3d), {**info, "status": "refined"}


__all__ = ["RefineConfig", "chain_cameras", "gray_uint8", "match_frames", "refine_with_matches"]
