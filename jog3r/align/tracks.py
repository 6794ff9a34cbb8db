"""Wide-baseline correspondences of a frame stream from KLT tracks, and rotation averaging (issue 16).

Long-video V2C (:mod:`jog3r.align.windows`) needs correspondences between frames far enough apart to see the
direction of travel: on a walkthrough the baseline of frames 1-3 apart is a few pixels, and SIFT finds few matches
on weakly textured renders. Classical visual odometry tracks corners instead:

* :class:`TrackStream`: Shi-Tomasi corners (``cv2.goodFeaturesToTrack``) tracked from frame to frame by pyramidal
  Lucas-Kanade (``cv2.calcOpticalFlowPyrLK``) with a forward-backward check, replenished where the tracks thin out.
  Each track's positions in the last ``max(gaps)`` frames are kept, so frame ``j`` yields correspondences with frames
  ``j - k`` for every ``k`` in ``gaps`` (default 1, 2, 4, 8, 16: a geometric set, cost linear in the frames),
  filtered by a fundamental-matrix MAGSAC++ (as the SIFT matches of :func:`jog3r.align.refine.match_pair`).
* :func:`average_rotations`: camera rotations from all pairs' relative rotations at once (Lie-algebraic averaging with
  Huber IRLS, sparse), so that a step without correspondences is bridged by the wider pairs instead of drifting.
* :func:`parallax_translation_rows`: translation-averaging rows only from pairs with enough rotation-compensated
  parallax (the direction of a pair with a few pixels of parallax is noise).

Conventions: pixel coordinates with pixel centres at ``+0.5`` (``uv`` ``[M, 2]`` float64, x right, y down);
relative poses as :func:`jog3r.align.refine.pair_poses` (``x_j ~ R x_i + t`` in camera coordinates, OpenCV axes);
camera-to-world rotations ``[N, 3, 3]`` float64.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque

import cv2
import numpy as np
import roma
import scipy.sparse
import scipy.sparse.linalg
import torch

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class TrackConfig:
    """Settings of :class:`TrackStream`. Pixel values are in pixels of the tracked frames."""

    gaps: tuple[int, ...] = (1, 2, 4, 8, 16)
    """Frame ``j`` is paired with frames ``j - k`` for these ``k``."""
    max_corners: int = 800
    """Tracks kept alive at most (new corners are detected where fewer are alive)."""
    quality: float = 0.005
    """``qualityLevel`` of ``cv2.goodFeaturesToTrack`` (relative to the strongest corner; low for weak texture)."""
    min_distance: int = 8
    """Least distance between two tracks (pixels)."""
    win_size: int = 21
    """Lucas-Kanade window (pixels) per pyramid level."""
    levels: int = 3
    """Pyramid levels above the full resolution."""
    fb_px: float = 0.5
    """A track step whose forward-backward round trip misses its start by more than this is dropped."""
    ransac_px: float = 1.0
    """Inlier threshold of the fundamental-matrix MAGSAC++ per pair."""
    min_matches: int = 15
    """A pair with fewer inliers contributes no correspondences."""
    max_matches: int = 200
    """At most this many correspondences per pair (a seeded, spatially spread subset of the inliers)."""

    def __post_init__(self) -> None:
        if not self.gaps or min(self.gaps) < 1:
            raise ValueError(f"gaps must be frame distances >= 1, got {self.gaps}")
        if self.min_matches < 8 or self.max_matches < self.min_matches or self.max_corners < self.min_matches:
            raise ValueError(f"need min_matches >= 8, max_matches >= min_matches and max_corners >= min_matches, got "
                             f"{self.min_matches}, {self.max_matches}, {self.max_corners}")
        if not self.fb_px > 0 or not self.ransac_px > 0 or self.win_size < 3 or self.levels < 0:
            raise ValueError("need fb_px > 0, ransac_px > 0, win_size >= 3, levels >= 0")


def _gray(frame) -> np.ndarray:
    """``[H, W]`` uint8 grey image of a ``[3, H, W]`` RGB frame (float in ``[0, 1]`` or uint8, tensor or array)."""
    a = frame.detach().cpu().numpy() if isinstance(frame, torch.Tensor) else np.asarray(frame)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(a.transpose(1, 2, 0)), cv2.COLOR_RGB2GRAY)


class TrackStream:
    """KLT tracks of a frame stream and the correspondences they give between frames ``gaps`` apart.

    Memory: the previous grey frame and, per kept frame (``max(gaps) + 1``), the ids and positions of its tracks.

    Args:
        config: :class:`TrackConfig`.
        size: ``(H, W)`` of the frames.
        seed: seed of the subsampling to ``max_matches`` per pair.

    Attributes:
        matches: ``[(i, j, uv_i, uv_j), ...]`` (``uv`` ``[M, 2]`` float64, centres at ``+0.5``) of every pair so far.
        count: frames pushed.
    """

    def __init__(self, config: TrackConfig | None = None, size: tuple[int, int] | None = None, seed: int = 0):
        self.config = config or TrackConfig()
        self.size = None if size is None else tuple(size)
        self.matches: list[tuple[int, int, np.ndarray, np.ndarray]] = []
        self.count = 0
        self._prev: np.ndarray | None = None
        self._ids = np.zeros(0, dtype=np.int64)
        self._pts = np.zeros((0, 2), dtype=np.float32)  # cv2 convention (centres at integers)
        self._next_id = 0
        self._history: deque = deque(maxlen=max(self.config.gaps) + 1)  # (frame, ids, pts)
        self._rng = np.random.default_rng(seed)
        self._lk = dict(winSize=(self.config.win_size, self.config.win_size), maxLevel=self.config.levels,
                        criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))

    def push(self, frame) -> None:
        """Track into the next frame (``[3, H, W]`` RGB, float in ``[0, 1]`` or uint8) and pair it with the earlier
        frames ``gaps`` back.

        Raises:
            ValueError: the frame's size differs from the stream's.
        """
        gray = _gray(frame)
        if self.size is None:
            self.size = gray.shape
        if gray.shape != self.size:
            raise ValueError(f"frame {self.count} is {gray.shape}, the stream's frames {self.size}")
        cfg = self.config
        if self._prev is not None and len(self._pts):
            p0 = self._pts.reshape(-1, 1, 2)
            p1, st, _ = cv2.calcOpticalFlowPyrLK(self._prev, gray, p0, None, **self._lk)
            pb, stb, _ = cv2.calcOpticalFlowPyrLK(gray, self._prev, p1, None, **self._lk)
            h, w = self.size
            p1, pb = p1.reshape(-1, 2), pb.reshape(-1, 2)
            ok = (st[:, 0] == 1) & (stb[:, 0] == 1) & (np.linalg.norm(pb - self._pts, axis=1) < cfg.fb_px)
            ok &= (p1[:, 0] >= 0) & (p1[:, 0] <= w - 1) & (p1[:, 1] >= 0) & (p1[:, 1] <= h - 1)
            self._ids, self._pts = self._ids[ok], p1[ok]
        if len(self._pts) < cfg.max_corners:
            self._detect(gray)
        self._prev = gray
        j = self.count
        self._history.append((j, self._ids.copy(), self._pts.copy()))
        for k in sorted(set(cfg.gaps)):
            if j - k < 0:
                break
            past = self._history[-1 - k]
            self._pair(past, self._history[-1])
        self.count += 1

    def _detect(self, gray: np.ndarray) -> None:
        cfg = self.config
        mask = np.full(gray.shape, 255, dtype=np.uint8)
        for x, y in self._pts:
            cv2.circle(mask, (int(round(x)), int(round(y))), cfg.min_distance, 0, -1)
        new = cv2.goodFeaturesToTrack(gray, cfg.max_corners - len(self._pts), cfg.quality, cfg.min_distance,
                                      mask=mask, blockSize=7)
        if new is None:
            return
        new = new.reshape(-1, 2).astype(np.float32)
        self._ids = np.concatenate((self._ids, np.arange(self._next_id, self._next_id + len(new))))
        self._pts = np.concatenate((self._pts, new))
        self._next_id += len(new)

    def _pair(self, a: tuple, b: tuple) -> None:
        cfg = self.config
        (i, ids_i, pts_i), (j, ids_j, pts_j) = a, b
        common, ia, ib = np.intersect1d(ids_i, ids_j, assume_unique=True, return_indices=True)
        if len(common) < cfg.min_matches:
            return
        pi = pts_i[ia].astype(np.float64) + 0.5
        pj = pts_j[ib].astype(np.float64) + 0.5
        try:
            _, inl = cv2.findFundamentalMat(pi, pj, cv2.USAC_MAGSAC, cfg.ransac_px, 0.999, 10000)
        except cv2.error as err:  # degenerate (no motion, all on a plane)
            logger.debug("tracks %d-%d: fundamental matrix failed (%s)", i, j, err)
            return
        if inl is None:
            return
        keep = np.flatnonzero(inl[:, 0])
        if keep.size < cfg.min_matches:
            return
        if keep.size > cfg.max_matches:
            keep = np.sort(self._rng.choice(keep, cfg.max_matches, replace=False))
        self.matches.append((i, j, pi[keep], pj[keep]))


def merge_matches(*lists: list) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """One entry per frame pair: the correspondences of several ``[(i, j, uv_i, uv_j), ...]`` lists concatenated,
    sorted by ``(i, j)``."""
    acc: dict[tuple[int, int], list] = {}
    for lst in lists:
        for i, j, a, b in lst:
            acc.setdefault((int(i), int(j)), []).append((a, b))
    return [(i, j, np.concatenate([x[0] for x in v]), np.concatenate([x[1] for x in v]))
            for (i, j), v in sorted(acc.items())]


def average_rotations(init: np.ndarray, poses: dict, *, iters: int = 10, huber_deg: float = 2.0,
                      fixed: int = 0) -> tuple[np.ndarray, dict]:
    """Camera rotations that agree best with all pairs' relative rotations (Lie-algebraic rotation averaging).

    Each pair ``(i, j)`` with a rotation (``pose["kind"]`` ``"essential"`` or ``"rotation"``, ``x_j ~ R x_i``) asks
    ``Q_j R Q_i^T = I`` for the camera-to-world rotations ``Q``. Gauss-Newton with world-frame increments
    ``Q_i <- exp(w_i) Q_i``: ``w_j - w_i = -log(Q_j R Q_i^T)``, a sparse linear least-squares problem with
    ``w_fixed = 0``, Huber-weighted (threshold ``huber_deg``), ``iters`` times.

    Args:
        init: ``[N, 3, 3]`` float64 camera-to-world rotations to start from (e.g. the chained ones).
        poses: ``{(i, j): pose}`` as :func:`jog3r.align.refine.pair_poses`.
        iters: Gauss-Newton iterations.
        huber_deg: Huber threshold of the residual angle, degrees.
        fixed: the frame whose rotation is kept.

    Returns:
        ``(rotations [N, 3, 3] float64, info)``; ``info["rotation_pairs"]`` pairs used, ``info["rotation_residual_deg"]``
        their median residual angle after the solve. Frames in no pair keep ``init``.
    """
    Q = np.array(init, dtype=np.float64, copy=True)
    num = Q.shape[0]
    pairs = [(i, j, p["R"]) for (i, j), p in sorted(poses.items()) if p.get("kind") in ("essential", "rotation")]
    if not pairs:
        return Q, {"rotation_pairs": 0, "rotation_residual_deg": None}
    ii = np.array([p[0] for p in pairs])
    jj = np.array([p[1] for p in pairs])
    Rr = torch.as_tensor(np.stack([p[2] for p in pairs]), dtype=torch.float64)
    m = len(pairs)
    D = scipy.sparse.csr_matrix((np.concatenate((np.ones(m), -np.ones(m))),
                                 (np.concatenate((np.arange(m), np.arange(m))), np.concatenate((jj, ii)))),
                                shape=(m, num))
    free = np.setdiff1d(np.arange(num), [fixed])
    touched = np.zeros(num, dtype=bool)
    touched[ii] = touched[jj] = True
    free = free[touched[free]]
    D = D[:, free].tocsc()
    h = np.deg2rad(huber_deg)

    def residual(Qt):
        E = Qt[jj] @ Rr @ Qt[ii].transpose(1, 2)
        return roma.rotmat_to_rotvec(E).numpy()  # [m, 3]

    for _ in range(iters):
        Qt = torch.as_tensor(Q)
        r = residual(Qt)
        n = np.linalg.norm(r, axis=1)
        wgt = np.minimum(1.0, h / np.maximum(n, 1e-12))
        A = D.multiply(wgt[:, None]).tocsc()
        N = (D.T @ A).tocsc() + scipy.sparse.identity(len(free)) * 1e-9
        x = scipy.sparse.linalg.splu(N).solve(np.ascontiguousarray(-(A.T @ r)))
        W = np.zeros((num, 3))
        W[free] = x
        Q = (roma.rotvec_to_rotmat(torch.as_tensor(W)) @ Qt).numpy()
        if float(np.abs(x).max(initial=0.0)) < 1e-9:
            break
    res = np.rad2deg(np.linalg.norm(residual(torch.as_tensor(Q)), axis=1))
    return Q, {"rotation_pairs": m, "rotation_residual_deg": float(np.median(res))}


__all__ = ["TrackConfig", "TrackStream", "average_rotations", "merge_matches"]
