"""Reference camera trajectories that put V2C numbers in context (``jog3r eval --baselines``).

* :func:`never_turns_trajectory`: the trivial prior "the camera never turns and walks straight ahead": identity
  rotations and a constant step along the camera's optical axis (+z, OpenCV). On the six 16-frame RealEstate10K
  clips it scores mAA@30 31.7 (all pairs), the floor named in the training issue.
* :func:`classical_chain_trajectory`: a classical two-view chain with the KNOWN intrinsics: OpenCV SIFT, Lowe's
  ratio test, the essential matrix with RANSAC (``cv2.findEssentialMat``), ``cv2.recoverPose``; consecutive
  relative poses chained with unit-length steps (two-view translation has no scale). It is what a learned model
  that is *not* told the intrinsics is compared against.

Both return ``[F, 4, 4]`` float32 OpenCV camera-to-world matrices for :func:`jog3r.metrics.pose.pose_metrics`.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import torch

from jog3r.align.refine import gray_uint8

logger = logging.getLogger(__name__)


def never_turns_trajectory(num_frames: int) -> torch.Tensor:
    """The "camera never turns" prior: ``R = I`` and camera ``i`` at ``(0, 0, i)`` (one unit forward per frame).

    Args:
        num_frames: F.

    Returns:
        ``[F, 4, 4]`` float32 cam2world.
    """
    c2w = torch.eye(4).repeat(num_frames, 1, 1)
    c2w[:, 2, 3] = torch.arange(num_frames, dtype=torch.float32)
    return c2w


def _relative_pose(img0: np.ndarray, img1: np.ndarray, K0: np.ndarray, K1: np.ndarray, sift, ratio: float,
                   ransac_px: float) -> np.ndarray | None:
    """``world2cam`` of frame 1 in frame 0's camera (4x4, unit translation), or None when it cannot be estimated."""
    k0, d0 = sift.detectAndCompute(img0, None)
    k1, d1 = sift.detectAndCompute(img1, None)
    if d0 is None or d1 is None or len(k0) < 8 or len(k1) < 8:
        return None
    matches = cv2.BFMatcher(cv2.NORM_L2).knnMatch(d0, d1, k=2)
    good = [m for m, *rest in matches if rest and m.distance < ratio * rest[0].distance]
    if len(good) < 8:
        return None
    p0 = np.float64([k0[m.queryIdx].pt for m in good])
    p1 = np.float64([k1[m.trainIdx].pt for m in good])
    # normalise with each frame's K so that one essential matrix serves both (cv2 takes a single K)
    n0 = cv2.undistortPoints(p0[:, None], K0, None)[:, 0]
    n1 = cv2.undistortPoints(p1[:, None], K1, None)[:, 0]
    focal = float((K0[0, 0] + K0[1, 1]) / 2)
    E, inliers = cv2.findEssentialMat(n0, n1, np.eye(3), method=cv2.RANSAC, prob=0.999,
                                      threshold=ransac_px / focal)
    if E is None or E.shape != (3, 3):
        return None
    _, R, t, _ = cv2.recoverPose(E, n0, n1, np.eye(3), mask=inliers)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t[:, 0] / max(np.linalg.norm(t), 1e-12)
    return T


def classical_chain_trajectory(frames: torch.Tensor, K: torch.Tensor, *, ratio: float = 0.8,
                               ransac_px: float = 1.0) -> torch.Tensor:
    """SIFT + essential-matrix chain over consecutive frames, with known intrinsics.

    Args:
        frames: ``[F, 3, H, W]`` float RGB in ``[0, 1]``.
        K: ``[F, 3, 3]`` or ``[3, 3]`` pixel intrinsics of ``frames`` (OpenCV, pixel centres at +0.5).
        ratio: Lowe's ratio-test threshold.
        ransac_px: RANSAC inlier threshold in pixels.

    Returns:
        ``[F, 4, 4]`` float32 cam2world, frame 0 at the identity. A pair whose pose cannot be estimated (too few
        matches) repeats the previous step (logged); if that is the first pair, the "previous step" is the
        identity (the camera is held still).
    """
    num = frames.shape[0]
    Ks = (K if K.dim() == 3 else K.expand(num, 3, 3)).double().cpu().numpy()
    Ks = Ks.copy()
    Ks[:, :2, 2] -= 0.5  # OpenCV keypoints put pixel centres at integers
    gray = [gray_uint8(f) for f in frames]
    sift = cv2.SIFT_create()
    w2c = [np.eye(4)]
    step = np.eye(4)
    for i in range(num - 1):
        rel = _relative_pose(gray[i], gray[i + 1], Ks[i], Ks[i + 1], sift, ratio, ransac_px)
        if rel is None:
            logger.warning("classical chain: frames %d -> %d have too few matches; repeating the previous step",
                           i, i + 1)
        else:
            step = rel
        w2c.append(step @ w2c[-1])
    return torch.as_tensor(np.linalg.inv(np.stack(w2c)), dtype=torch.float32)


__all__ = ["never_turns_trajectory", "classical_chain_trajectory"]
