"""Order an unordered photo set by its match graph before V2C (V2C's pairs ``(1 -> f)`` and temporal terms assume a
sequence).

:func:`order_by_matches`: SIFT features on every frame (OpenCV), mutual nearest neighbours with Lowe's ratio test and
a fundamental-matrix MAGSAC++ RANSAC on every frame pair (as :func:`jog3r.align.refine.match_frames`); the pair
distance is ``1 / (1 + inliers)``. The order is the shortest Hamiltonian path found by nearest-neighbour chains from
every start, improved by 2-opt moves. The given order is kept when it is not clearly worse than the best path found
(``keep_ratio``): a sequence stays in order. The direction of a new order puts the smaller input index first.
"""

from __future__ import annotations

import itertools
import logging

import cv2
import numpy as np
import torch

from jog3r.align.refine import gray_uint8

logger = logging.getLogger(__name__)

__all__ = ["match_graph", "order_by_matches", "path_cost"]


def match_graph(frames: torch.Tensor, *, min_side: int = 256, ratio: float = 0.8, ransac_px: float = 2.0
                ) -> np.ndarray:
    """Inlier counts ``[F, F]`` (symmetric, int) of every frame pair.

    Args:
        frames: ``[F, 3, H, W]`` float RGB in ``[0, 1]``.
        min_side: frames are upscaled (integer factor) until their short side is at least this many pixels.
        ratio: Lowe's ratio-test threshold.
        ransac_px: fundamental-matrix RANSAC threshold in pixels of the upscaled frames.
    """
    num = frames.shape[0]
    up = max(1, -(-min_side // min(frames.shape[-2:])))
    sift = cv2.SIFT_create(nfeatures=1500)
    grays = [gray_uint8(f, up) for f in frames]
    down = max(min_side, 1) / min(grays[0].shape)
    if down < 0.5:  # large frames: SIFT at about min_side pixels (the order needs no more)
        grays = [cv2.resize(g, None, fx=down, fy=down, interpolation=cv2.INTER_AREA) for g in grays]
    feats = [sift.detectAndCompute(g, None) for g in grays]
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    counts = np.zeros((num, num), dtype=np.int64)
    for i, j in itertools.combinations(range(num), 2):
        (ki, di), (kj, dj) = feats[i], feats[j]
        if di is None or dj is None or len(ki) < 8 or len(kj) < 8:
            continue
        fwd = matcher.knnMatch(di, dj, k=2)
        bwd = {m.queryIdx: m.trainIdx for m, *_ in matcher.knnMatch(dj, di, k=1)}
        good = [m for m, *rest in fwd
                if rest and m.distance < ratio * rest[0].distance and bwd.get(m.trainIdx) == m.queryIdx]
        if len(good) < 8:
            continue
        pi = np.float64([ki[m.queryIdx].pt for m in good])
        pj = np.float64([kj[m.trainIdx].pt for m in good])
        try:
            _, inl = cv2.findFundamentalMat(pi, pj, cv2.USAC_MAGSAC, ransac_px, 0.999, 2000)
        except cv2.error:
            continue
        counts[i, j] = counts[j, i] = 0 if inl is None else int(inl.sum())
    return counts


def path_cost(order: list[int], dist: np.ndarray) -> float:
    """Sum of ``dist`` over consecutive frames of ``order``."""
    return float(sum(dist[a, b] for a, b in zip(order[:-1], order[1:])))


def _two_opt(order: list[int], dist: np.ndarray) -> list[int]:
    best, improved = list(order), True
    while improved:
        improved = False
        for a in range(len(best) - 1):
            for b in range(a + 2, len(best) + 1):
                cand = best[:a] + best[a:b][::-1] + best[b:]
                if path_cost(cand, dist) < path_cost(best, dist) - 1e-12:
                    best, improved = cand, True
    return best


def order_by_matches(frames: torch.Tensor, *, keep_ratio: float = 1.25, counts: np.ndarray | None = None
                     ) -> tuple[list[int], dict]:
    """The order in which to read ``frames`` (see the module docstring).

    Args:
        frames: ``[F, 3, H, W]`` float RGB in ``[0, 1]``, in the given (e.g. file-name) order.
        keep_ratio: keep the given order when its path cost is at most this times the best path's.
        counts: precomputed :func:`match_graph` (else computed here).

    Returns:
        ``(order, info)``: ``order`` a permutation of ``range(F)`` (the identity when kept) and ``info`` with
        ``reordered`` (bool), ``cost_given`` / ``cost_best`` (path costs) and ``weak_links`` (consecutive frames of
        the result with fewer than 15 inliers: the set may hold unrelated views).
    """
    num = frames.shape[0]
    if counts is None:
        counts = match_graph(frames)
    dist = 1.0 / (1.0 + counts.astype(np.float64))
    given = list(range(num))
    best = given
    for start in range(num):  # nearest-neighbour chains, then 2-opt
        order, left = [start], set(range(num)) - {start}
        while left:
            nxt = min(left, key=lambda k: (dist[order[-1], k], k))
            order.append(nxt)
            left.remove(nxt)
        if path_cost(order, dist) < path_cost(best, dist) - 1e-12:
            best = order
    best = _two_opt(best, dist) if num <= 32 else best
    cost_given, cost_best = path_cost(given, dist), path_cost(best, dist)
    reordered = cost_given > keep_ratio * cost_best
    order = (best if best[0] < best[-1] else best[::-1]) if reordered else given
    weak = sum(1 for a, b in zip(order[:-1], order[1:]) if counts[a, b] < 15)
    if reordered:
        logger.info("frames reordered by their match graph: %s", order)
    return order, {"reordered": reordered, "cost_given": cost_given, "cost_best": cost_best, "weak_links": weak}
