"""Two-view cameras from image correspondences: the initialisation of the V2C default
(:func:`jog3r.align.joint.joint_align`), and its matching.

JOG3R's global alignment (:func:`jog3r.align.fit.fit`) places the cameras from the model's point maps alone, as the
paper does. :func:`jog3r.align.joint.joint_align` (not the paper's) adds SIFT correspondences to that objective; it
starts from the cameras of this module: the model supplies the intrinsics (focal and pixel aspect, estimated by the
alignment, or the ones the user gave) and the scene scale, the relative rotations and translation directions come
from classical two-view geometry on SIFT matches. :func:`refine_with_matches` returns these cameras alone (until
issue 15 an optional stage of the pipeline; now only the init and a diagnostic, no pipeline path uses it).

:func:`refine_with_matches`:

1. **Correspondences** (:func:`match_frames`): OpenCV SIFT on the frames (best at the source resolution: the
   pipeline passes the source frames centre-cropped like the model's, not the model's small frames), upscaled so
   the short side is at least ``min_side`` pixels; mutual nearest neighbours passing Lowe's ratio test, filtered
   by a fundamental-matrix RANSAC (``cv2.USAC_MAGSAC``, which needs no intrinsics). Frames ``i < j <= i + window``
   are matched.
2. **Two-view geometry** of every matched pair (:func:`pair_poses`): a pure-rotation fit first (Kabsch on the
   bearings, roma); if it leaves less than ``min_parallax_px`` of median image motion the pair is a rotation
   (pan in place, static camera) with no usable translation; otherwise the essential matrix
   (``cv2.findEssentialMat``, MAGSAC++) on the matches normalised with the reconstruction's ``K``, decomposed by
   ``cv2.recoverPose``; the sign of its translation is checked against the reconstruction's depth
   (:func:`depth_translation`, ``RefineConfig.depth_sign``), since cheirality guesses it when most points are far.
3. **Rotations** (:func:`chain_cameras`): consecutive relative rotations chained from frame 0. A consecutive pair
   without a two-view pose keeps the alignment's relative pose (``info["fallback_steps"]``).
4. **Camera centres** (:func:`solve_centres`): robust linear least squares (IRLS, Huber) over every pair's
   baseline vector ``c_j - c_i``: its direction from step 2, rotated into the world by the chained rotation of
   frame ``i``; its length the sum of the spanned steps (the alignment's median moving step for a step with
   parallax, the alignment's own step for one without). Consecutive pairs without parallax or without a pose
   contribute the alignment's displacement instead, so a pan, a stop or a static video gets no invented baseline.
   Using every pair within ``window`` rather than a chain of consecutive pairs averages out the noise of short
   baselines.
5. **Output**: the reconstruction with the new ``cam2world`` (frame 0 keeps its pose); ``K`` and ``depth`` are
   the alignment's and the point cloud is re-unprojected with the new cameras. When no consecutive pair has enough
   correspondences (texture-less video) the input is returned unchanged with a warning.

Measured with the embedded default (``benchmarks/v2c_real.py``, ``docs/notes/align.md``): these cameras alone
score 73.1 / 83.2 / 85.7 mAA@30 on the three RealEstate10K windows (before the translation-sign check); the joint alignment started from them scores
higher (see the notes).

Conventions are those of :mod:`jog3r.geometry.camera` (OpenCV axes, ``cam2world``, pixel centres at ``+0.5``).
"""

from __future__ import annotations

import dataclasses
import logging
import math

import cv2
import numpy as np
import roma
import torch

from jog3r.geometry.camera import depth_to_world_points
from jog3r.types import Reconstruction
from jog3r.io.video import crop_to_aspect
from jog3r.pixels import to_uint8

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class RefineConfig:
    """Settings of :func:`refine_with_matches` and :func:`match_frames`. Pixel thresholds are in pixels of the
    frames given to :func:`refine_with_matches` (before the ``upsample`` for SIFT)."""

    window: int = 3
    """Frames ``i`` and ``j`` are matched when ``0 < j - i <= window``: consecutive pairs give the rotations, all
    pairs vote on the camera centres (3 scored best of 1, 3, 5 on the RealEstate10K clips)."""
    ratio: float = 0.8
    """Lowe's ratio-test threshold of the SIFT matches."""
    ransac_px: float = 1.0
    """Inlier threshold in pixels of the fundamental-matrix and essential-matrix RANSACs."""
    min_matches: int = 15
    """A frame pair with fewer RANSAC inliers contributes no matches."""
    max_matches: int = 400
    """Keep at most this many inliers per pair, the most distinctive (lowest ratio-test distance ratio)."""
    upsample: int | None = None
    """Detect SIFT on frames upscaled by this integer factor; ``None``: the smallest factor that brings the short
    side to at least ``min_side`` pixels (the model's 128 x 192 frames -> 4, a 320-pixel source -> 2)."""
    min_side: int = 512
    """See ``upsample``."""
    min_parallax_px: float = 0.3
    """A pair whose rotation-compensated median image motion is below this is treated as a pure rotation: its
    rotation comes from the matches, its translation (undefined without parallax) from the alignment."""
    weak_matches: int = 50
    """A consecutive pair with an essential-matrix pose but fewer inliers than this is counted in
    ``info["weak_steps"]`` and warned about (e.g. frames sampled far apart in a long video); its pose is used."""
    huber_scale: float = 1.5
    """Huber threshold of the centre solve, in robust standard deviations (1.4826 MAD) of the residual norms."""
    rotation_averaging: bool = True
    """Start the joint alignment from rotations averaged over every matched pair (:func:`average_rotations`,
    started from the chain) instead of the chain of consecutive pairs alone (:func:`chain_cameras`; ``False``).
    ``jog3r eval --synth-test 4 --t2v-prompts 0`` on the RealEstate10K clips: mAA@30 87.39 / 88.87 / 89.08 and
    synthetic 28.70 (the chain 86.98 / 85.10 / 85.97 and 25.78), the same as a replay of the benchmark's calls; an
    eval before a determinism fix gave 87.18 / 88.87 / 85.19 (``docs/notes/align.md``). Only
    :func:`jog3r.align.joint.joint_align` reads it; :func:`refine_with_matches` keeps the chain."""
    rotation_match_weights: bool = False
    """In the rotation averaging, weight each pair by the square root of its verified inlier count ``n_ij``
    (``pose["matches"]``) times its Huber weight, instead of weighting every pair alike (``False``): a two-view
    rotation from 30 matches on a blurred close-up is less certain than one from 300 (the standard error of a
    least-squares estimate falls as ``1 / sqrt(n)``; ``sqrt(n)`` is the milder of the weights tried). Off by
    default: replayed on the cached inputs of ``jog3r eval`` it gave mAA@30 88.52 / 90.16 / 89.10 on the
    RealEstate10K windows (pairs alike 87.39 / 88.87 / 89.08) but 27.71 on the synthetic split (28.70), and most of
    its gain on the hard clip depends on which minimum the joint alignment lands in (``docs/notes/align.md``,
    issue 15 follow-up). Only :func:`jog3r.align.joint.joint_align` reads it."""

    depth_sign: bool = True
    """Check the sign of each essential-matrix translation against the model's depth (:func:`depth_translation`)
    and flip it where the two directions disagree (cosine below :data:`DEPTH_SIGN_COS`). ``cv2.recoverPose``
    decides the sign by cheirality, which is a coin toss when most matched points are far (a window onto a garden):
    there the residual flow of a 0.3-deg rotation error can outweigh the translation's. Measured, not guaranteed
    (``docs/notes/align.md``, session 11): on the 715 pairs of the six RealEstate10K clips x three windows with an
    essential matrix it fixed 7 of the 8 signs cheirality got wrong (every pair of 0c11dbe7's last frame in two
    windows, 177-178 deg off) and turned 1 right one; on the 159 pairs of ``jog3r eval``'s synthetic split, whose
    clips barely translate, it fixed 8 and turned 16 (mAA@30 36.44 -> 35.33); with exact depth on synthetic clips
    it also turns some right ones, more when far background gets a large finite depth than when it is skipped
    (depth 0). ``False`` keeps cheirality's sign; long runs use ``False``
    (:func:`jog3r.long_v2c.long_config`: on the synthetic walkthrough it turned 21 right signs and fixed 6)."""

    def __post_init__(self) -> None:
        if self.window < 1 or (self.upsample is not None and self.upsample < 1) or self.min_side < 1:
            raise ValueError(f"window, upsample and min_side must be >= 1, got {self.window}, {self.upsample}, "
                             f"{self.min_side}")
        if not 0 < self.ratio <= 1 or not self.ransac_px > 0 or self.min_parallax_px < 0:
            raise ValueError(f"need 0 < ratio <= 1, ransac_px > 0, min_parallax_px >= 0; got {self.ratio}, "
                             f"{self.ransac_px}, {self.min_parallax_px}")
        if self.min_matches < 8 or self.max_matches < self.min_matches:
            raise ValueError(f"need min_matches >= 8 (the fundamental-matrix fit) and max_matches >= min_matches; "
                             f"got {self.min_matches}, {self.max_matches}")
        if not self.huber_scale > 0 or self.weak_matches < 0:
            raise ValueError(f"need huber_scale > 0 and weak_matches >= 0, got {self.huber_scale}, {self.weak_matches}")

    def upsample_for(self, size: tuple[int, int]) -> int:
        """The SIFT upscaling factor for frames of ``(H, W)`` pixels (see ``upsample``)."""
        return int(self.upsample) if self.upsample is not None else max(1, math.ceil(self.min_side / min(size)))


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
        config: matching settings (``window``, ``ratio``, ``ransac_px``, ``min_matches``, ``upsample``, ...).

    Returns:
        A list of ``(i, j, uv_i, uv_j)`` with ``uv`` ``[M, 2]`` float64 pixel coordinates in our convention (pixel
        centres at ``+0.5``) of the ``H x W`` frames, for every pair with at least ``min_matches`` inliers.
    """
    config = config or RefineConfig()
    up = config.upsample_for(tuple(frames.shape[-2:]))
    sift = cv2.SIFT_create()
    feats = [sift.detectAndCompute(gray_uint8(f, up), None) for f in frames]
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    out = []
    num = frames.shape[0]
    for i in range(num):
        for j in range(i + 1, min(num, i + config.window + 1)):
            pair = match_pair(feats[i], feats[j], config, up, matcher, (i, j))
            if pair is not None:
                out.append((i, j, *pair))
    return out


def match_pair(feat_i: tuple, feat_j: tuple, config: RefineConfig, up: int, matcher=None, names=(0, 1)
               ) -> tuple[np.ndarray, np.ndarray] | None:
    """Correspondences of one frame pair from their SIFT ``(keypoints, descriptors)`` (detected on frames upscaled
    ``up`` times): mutual nearest neighbours with the ratio test, a fundamental-matrix MAGSAC++ filter, at most
    ``config.max_matches`` (the lowest distance ratios). Returns ``(uv_i, uv_j)`` ``[M, 2]`` float64 pixels of the
    frames before the upscaling (centres at ``+0.5``), or ``None`` below ``config.min_matches``."""
    matcher = matcher or cv2.BFMatcher(cv2.NORM_L2)
    (ki, di), (kj, dj) = feat_i, feat_j
    if di is None or dj is None or len(ki) < 8 or len(kj) < 8:
        return None
    fwd = matcher.knnMatch(di, dj, k=2)
    bwd = {m.queryIdx: m.trainIdx for m, *_ in matcher.knnMatch(dj, di, k=1)}
    good = [(m, m.distance / max(rest[0].distance, 1e-9)) for m, *rest in fwd
            if rest and m.distance < config.ratio * rest[0].distance and bwd.get(m.trainIdx) == m.queryIdx]
    if len(good) < config.min_matches:
        return None
    # cv2 keypoints: pixel centres at integers, at `up` times the resolution -> our +0.5 convention
    pi = np.float64([ki[m.queryIdx].pt for m, _ in good]) + 0.5
    pj = np.float64([kj[m.trainIdx].pt for m, _ in good]) + 0.5
    pi, pj = pi / up, pj / up
    try:
        _, inl = cv2.findFundamentalMat(pi, pj, cv2.USAC_MAGSAC, config.ransac_px, 0.999, 10000)
    except cv2.error as err:  # degenerate configuration (e.g. all matches on one plane / no motion)
        logger.debug("frames %d-%d: fundamental matrix failed (%s)", names[0], names[1], err)
        return None
    if inl is None:
        return None
    keep = np.flatnonzero(inl[:, 0])
    if keep.size < config.min_matches:
        return None
    scores = np.array([r for _, r in good])[keep]  # distance ratios: lower is more distinctive
    keep = keep[np.argsort(scores, kind="stable")[: config.max_matches]]
    return pi[keep], pj[keep]


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


DEPTH_SIGN_COS = -0.5
""":func:`pair_poses` flips an essential-matrix translation whose cosine with :func:`depth_translation` is below
this (a clear disagreement; weaker ones are left to cheirality)."""


def sample_bilinear(img: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear sample of ``img [H, W]`` at pixels ``uv [N, 2]`` (centres at ``+0.5``, the package's convention),
    border-clamped; ``[N]`` in ``img``'s dtype."""
    h, w = img.shape
    grid = torch.stack((uv[:, 0] / w * 2 - 1, uv[:, 1] / h * 2 - 1), -1)[None, None].to(img.dtype)
    return torch.nn.functional.grid_sample(img[None, None], grid, mode="bilinear", padding_mode="border",
                                           align_corners=False)[0, 0, 0]


def skew(v: torch.Tensor) -> torch.Tensor:
    """``[N, 3, 3]`` cross-product matrices ``[v]x`` of ``v [N, 3]``."""
    z = torch.zeros_like(v[:, 0])
    return torch.stack((torch.stack((z, -v[:, 2], v[:, 1]), -1), torch.stack((v[:, 2], z, -v[:, 0]), -1),
                        torch.stack((-v[:, 1], v[:, 0], z), -1)), 1)


def depth_translation(R: np.ndarray, na: np.ndarray, nb: np.ndarray, depth: np.ndarray) -> np.ndarray | None:
    """Translation ``t`` of ``x_b ~ R X_a + t`` given frame a's depth: ``X_a = depth (na, 1)``, and each match gives
    ``[x_b]_x (R X_a + t) = 0``, linear in ``t``; least squares over the matches (algebraic error), in the units of
    ``depth``.

    Args:
        R: ``[3, 3]`` rotation of frame b relative to frame a.
        na, nb: ``[N, 2]`` normalised image coordinates (``K^-1`` applied) of the matches in frames a and b.
        depth: ``[N]`` z-depth of frame a at ``na`` (the model's, any scale); non-finite or non-positive ones are
            skipped.

    Returns:
        ``t [3]``, or ``None`` with fewer than 8 usable matches.
    """
    ok = np.isfinite(depth) & (depth > 0)
    if int(ok.sum()) < 8:
        return None
    xb = np.concatenate((nb[ok], np.ones((int(ok.sum()), 1))), 1)
    X = depth[ok, None] * np.concatenate((na[ok], np.ones((int(ok.sum()), 1))), 1)
    S = skew(torch.from_numpy(xb)).numpy()  # [N, 3, 3] cross-product matrices of x_b
    # algebraic rows with the essential matrix's rotation held fixed. Tried (docs/notes/align.md, session 11): rows
    # divided by the depth (the image-plane form) fixed 6 of the 8 wrong RealEstate10K signs but gave mAA@30 28.6
    # instead of 35.3 on the synthetic split; a small rotation correction solved with t (6 unknowns) fixed 0-1 of
    # the 8, since on far-dominated pairs the rotation then absorbs the translation's flow
    y = -(S @ (X @ R.T)[..., None])[..., 0]
    t = np.linalg.lstsq(S.reshape(-1, 3), y.reshape(-1), rcond=None)[0]
    return t if np.isfinite(t).all() else None


def _essential_pose(na: np.ndarray, nb: np.ndarray, focal: float, ransac_px: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(R, t_unit, inliers)`` of frame b relative to frame a (``x_b ~ R x_a + t``) from the essential matrix (the
    RANSAC's inlier mask ``[N]`` bool), or None on failure."""
    try:
        E, inl = cv2.findEssentialMat(na, nb, np.eye(3), method=cv2.USAC_MAGSAC, prob=0.9999,
                                      threshold=ransac_px / focal)
        if E is None or E.shape != (3, 3):
            return None
        good, R, t, _ = cv2.recoverPose(E, na, nb, np.eye(3), mask=inl.copy())  # it overwrites the mask
    except cv2.error as err:  # degenerate configurations
        logger.debug("essential matrix failed: %s", err)
        return None
    if good < 8:  # too few essential-matrix inliers in front of both cameras to trust the pose
        return None
    return R, t[:, 0] / max(float(np.linalg.norm(t)), 1e-12), inl.ravel() > 0


def pair_poses(recon: Reconstruction, matches: list, config: RefineConfig | None = None, match_scale: float = 1.0
               ) -> dict[tuple[int, int], dict]:
    """Two-view geometry of every matched pair (step 2 of :func:`refine_with_matches`).

    Args:
        recon: the alignment's reconstruction (its ``K [F, 3, 3]``, at the model's size).
        matches: output of :func:`match_frames`, in pixels of frames ``match_scale`` times the model's size.
        config: :class:`RefineConfig` (``ransac_px``, ``min_parallax_px``, ``depth_sign``).
        match_scale: size of the matched frames over the model's (``W' / W``).

    Returns:
        ``{(i, j): pose}`` with ``pose["kind"]`` ``"rotation"`` (no parallax: ``R`` only), ``"essential"`` (``R``
        and unit ``t`` with ``x_j ~ R x_i + t`` in camera coordinates; ``"sign_from_depth": True`` where
        ``depth_sign`` flipped cheirality's sign) or ``"failed"``, ``parallax_px`` and ``matches`` (the pair's
        correspondence count, int).
    """
    cfg = config or RefineConfig()
    K = recon.K.double().cpu().numpy().copy()
    K[:, :2] *= match_scale
    depth = recon.depth if cfg.depth_sign and recon.depth is not None else None
    # frames a long run guessed (a rejected window's, confidence 0) carry a copied depth map: no sign check there
    trusted = ([bool((c > 0).any()) for c in recon.conf] if recon.conf is not None else [True] * K.shape[0])
    out = {}
    for i, j, a, b in matches:
        n = len(a)
        na = (a - K[i, :2, 2]) / np.diag(K[i])[:2]
        nb = (b - K[j, :2, 2]) / np.diag(K[j])[:2]
        focal = float(np.sqrt(K[i, 0, 0] * K[i, 1, 1]))
        R_rot, parallax = _rotation_only(na, nb, focal)
        if parallax < cfg.min_parallax_px:
            out[(i, j)] = {"kind": "rotation", "R": R_rot, "parallax_px": parallax, "matches": n}
            continue
        pose = _essential_pose(na, nb, focal, cfg.ransac_px)
        if pose is None:
            out[(i, j)] = {"kind": "failed", "parallax_px": parallax, "matches": n}
            continue
        R, t, inliers = pose
        flipped = False
        if depth is not None and trusted[i]:
            d = sample_bilinear(depth[i].double().cpu(), torch.as_tensor(a[inliers] / match_scale,
                                                                         dtype=torch.float64)).numpy()
            t_depth = depth_translation(R, na[inliers], nb[inliers], d)
            norm = float(np.linalg.norm(t_depth)) if t_depth is not None else 0.0
            if norm > 0 and float(t_depth @ t) / norm < DEPTH_SIGN_COS:
                t, flipped = -t, True
        out[(i, j)] = {"kind": "essential", "R": R, "t": t, "parallax_px": parallax, "matches": n}
        if flipped:
            out[(i, j)]["sign_from_depth"] = True
    return out


def chain_cameras(recon: Reconstruction, poses: dict[tuple[int, int], dict]) -> tuple[np.ndarray, dict]:
    """Camera rotations chained over consecutive pairs (step 3 of :func:`refine_with_matches`).

    Args:
        recon: the alignment's reconstruction (its cameras for frame 0 and the fallback steps).
        poses: output of :func:`pair_poses` (only consecutive pairs are used).

    Returns:
        ``(cam2world [F, 4, 4] float64, info)``: rotations chained from frame 0's (which keeps the alignment's
        pose); the centres are the alignment's, moved rigidly with each frame's rotation (replaced by
        :func:`solve_centres`). ``info["fallback_steps"]`` counts the consecutive pairs that kept the alignment's
        relative rotation (no matches, a failed essential matrix, or fewer than 8 of its inliers in front of both
        cameras); ``info["low_parallax_steps"]`` those that a pure rotation explains (pan in place, static camera);
        ``info["depth_sign_flips"]`` the pairs (all of them, not only consecutive) whose translation sign
        :func:`pair_poses` took from the depth.
    """
    c2w_ga = recon.cam2world.double().cpu().numpy()
    num = c2w_ga.shape[0]
    rot = [c2w_ga[0, :3, :3]]
    fallback = low_parallax = 0
    for i in range(num - 1):
        pose = poses.get((i, i + 1), {"kind": "failed"})
        if pose["kind"] == "failed":
            fallback += 1
            rel = c2w_ga[i + 1, :3, :3].T @ c2w_ga[i, :3, :3]  # world2cam rotation of i+1 relative to i
        else:
            low_parallax += pose["kind"] == "rotation"
            rel = pose["R"]
        rot.append(rot[-1] @ rel.T)  # cam2world_{i+1} = cam2world_i R_rel^T
    c2w = c2w_ga.copy()
    c2w[:, :3, :3] = np.stack(rot)
    flips = sum(1 for p in poses.values() if p.get("sign_from_depth"))
    return c2w, {"fallback_steps": fallback, "low_parallax_steps": low_parallax, "depth_sign_flips": flips}


def average_rotations(rotations: np.ndarray, poses: dict[tuple[int, int], dict], iters: int = 10,
                      huber_deg: float = 1.0, match_weights: bool = False) -> tuple[np.ndarray, dict]:
    """Robust rotation averaging over every matched pair, started from ``rotations`` (e.g. :func:`chain_cameras`).

    Every pair ``(i, j)`` with a two-view rotation ``R_ij`` (``x_j ~ R_ij x_i``: ``"essential"`` or ``"rotation"``
    poses) gives the residual ``r_ij = Log(R_ij^T C_j^T C_i)`` (axis-angle, radians) of the camera-to-world
    rotations ``C``. Gauss-Newton in the Lie algebra (``C_f <- Exp(w_f) C_f``, frame 0 fixed, first-order
    Jacobian ``dr_ij = C_i^T (w_i - w_j)``) with Huber weights on ``|r_ij|`` (iteratively reweighted least
    squares, the L2 step of Chatterjee and Govindu's robust relative-rotation averaging), ``iters`` steps.
    A chain uses only the consecutive pairs, so one bad step rotates every later frame; the longer pairs average
    that out. With ``match_weights`` each pair's weight is ``sqrt(n_ij)`` times its Huber weight (``n_ij`` =
    ``pose["matches"]``, 1 where absent; :attr:`RefineConfig.rotation_match_weights`), so where a frame's pairs
    disagree the better supported ones win (beyond the Huber threshold the solve is a weighted L1 fit: a weighted
    median of the pairs' votes).

    Args:
        rotations: ``[F, 3, 3]`` float64 camera-to-world rotations to start from (frame 0 is kept).
        poses: output of :func:`pair_poses`.
        iters: Gauss-Newton / reweighting steps.
        huber_deg: Huber threshold on a pair's residual angle, in degrees.
        match_weights: weight pairs by the square root of their correspondence count (see above).

    Returns:
        ``(rotations [F, 3, 3] float64, info)`` with ``rotation_pairs`` (the pairs used) and
        ``rotation_residual_deg`` (median pair residual after the last step).
    """
    num = rotations.shape[0]
    pairs = [(i, j, p["R"], math.sqrt(p.get("matches", 1)) if match_weights else 1.0)
             for (i, j), p in sorted(poses.items()) if "R" in p and p["kind"] != "failed"]
    C = torch.as_tensor(np.asarray(rotations, dtype=np.float64)).clone()
    if num < 2 or not pairs:
        return C.numpy(), {"rotation_pairs": len(pairs), "rotation_residual_deg": 0.0}
    ii = torch.tensor([p[0] for p in pairs])
    jj = torch.tensor([p[1] for p in pairs])
    Rm = torch.as_tensor(np.stack([p[2] for p in pairs]), dtype=torch.float64)
    prior = torch.tensor([p[3] for p in pairs], dtype=torch.float64)  # evidence weights (1 without match_weights)
    thr = math.radians(huber_deg)

    def residuals(C: torch.Tensor) -> torch.Tensor:  # [P, 3] axis-angle
        return roma.rotmat_to_rotvec(Rm.transpose(1, 2) @ C[jj].transpose(1, 2) @ C[ii])

    for _ in range(iters):
        r = residuals(C)
        wts = prior * thr / r.norm(dim=1).clamp(min=thr)  # Huber IRLS weights, times the evidence weights
        A = torch.zeros(len(pairs), 3, 3 * num, dtype=torch.float64)
        for k, (i, j) in enumerate(zip(ii.tolist(), jj.tolist())):
            A[k, :, 3 * i:3 * i + 3] = C[i].T
            A[k, :, 3 * j:3 * j + 3] = -C[i].T
        A = A[:, :, 3:].reshape(-1, 3 * (num - 1)).numpy()  # frame 0 fixed
        sw = wts.sqrt().repeat_interleave(3).numpy()
        # numpy's lstsq: torch.linalg.lstsq gave results differing by 1e-16 between identical calls, which the
        # Levenberg-Marquardt amplified into a different minimum on one clip (docs/notes/align.md)
        w = np.linalg.lstsq(A * sw[:, None], -(r.reshape(-1).numpy() * sw), rcond=None)[0]
        if not np.isfinite(w).all():
            break
        C[1:] = roma.rotvec_to_rotmat(torch.from_numpy(w).view(-1, 3)) @ C[1:]
    res = float(torch.rad2deg(residuals(C).norm(dim=1)).median())
    return C.numpy(), {"rotation_pairs": len(pairs), "rotation_residual_deg": res}


def baseline_rows(c2w_ga: np.ndarray, rotations: np.ndarray, poses: dict[tuple[int, int], dict]
                  ) -> tuple[list[tuple[int, int, np.ndarray]], int]:
    """The rows ``c_j - c_i = v`` of the translation averaging (see :func:`solve_centres`).

    Args:
        c2w_ga: ``[F, 4, 4]`` float64 cameras of the point-map alignment (step lengths, steps without parallax).
        rotations: ``[F, 3, 3]`` camera-to-world rotations (from :func:`chain_cameras`).
        poses: output of :func:`pair_poses`.

    Returns:
        ``(rows, directions)``: ``(i, j, v [3])`` per row, in world axes; the first ``directions`` rows come from
        essential-matrix poses, the others are consecutive steps without one (the alignment's displacement).
    """
    num = c2w_ga.shape[0]
    steps = np.linalg.norm(np.diff(c2w_ga[:, :3, 3], axis=0), axis=1)
    moving = steps[steps > 1e-9 * max(float(steps.max(initial=0.0)), 1e-30)]
    step_len = float(np.median(moving)) if moving.size else 0.0  # 0 for a static alignment
    essential = [poses.get((k, k + 1), {"kind": "failed"})["kind"] == "essential" for k in range(num - 1)]
    lengths = np.where(essential, step_len, steps)  # per consecutive step
    rows: list[tuple[int, int, np.ndarray]] = []
    for (i, j), pose in poses.items():
        if pose["kind"] == "essential":
            rows.append((i, j, float(lengths[i:j].sum()) * (rotations[i] @ (-pose["R"].T @ pose["t"]))))
    directions = len(rows)
    for i in range(num - 1):
        if not essential[i]:
            centre = c2w_ga[i, :3, :3].T @ (c2w_ga[i + 1, :3, 3] - c2w_ga[i, :3, 3])  # in frame i's axes
            rows.append((i, i + 1, rotations[i] @ centre))
    return rows, directions


def solve_centres(recon: Reconstruction, rotations: np.ndarray, poses: dict[tuple[int, int], dict],
                  config: RefineConfig | None = None) -> tuple[np.ndarray, dict]:
    """Camera centres from every pair's baseline vector (step 4 of :func:`refine_with_matches`).

    Each pair ``(i, j)`` with an essential-matrix pose gives ``c_j - c_i = L_ij C_i (-R_ij^T t_ij)`` (``C_i`` the
    camera-to-world rotation of frame ``i`` from :func:`chain_cameras`). Two-view geometry has no scale, so
    ``L_ij`` is the sum of the spanned steps' lengths: the alignment's median moving step ``L`` for a step with an
    essential-matrix pose, the alignment's own step length for a step without parallax or without a pose (so a
    stretch where the camera stops or only turns adds no length). Lengths from the model's depth were tried
    instead; they scored no better and were inflated on short baselines (``docs/notes/align.md``). A consecutive
    pair without an essential-matrix pose gives the alignment's displacement, expressed the same way. The
    overdetermined linear system (``c_0`` fixed at the alignment's) is solved by iteratively reweighted least
    squares with Huber weights on the residual norms (10 iterations); every frame has its consecutive row, so it
    is always full rank.

    Args:
        recon: the alignment's reconstruction.
        rotations: ``[F, 3, 3]`` camera-to-world rotations (from :func:`chain_cameras`).
        poses: output of :func:`pair_poses`.
        config: :class:`RefineConfig` (``huber_scale``).

    Returns:
        ``(centres [F, 3] float64, info)`` with ``translation_pairs``: the pairs with an essential-matrix direction.
    """
    cfg = config or RefineConfig()
    c2w_ga = recon.cam2world.double().cpu().numpy()
    num = c2w_ga.shape[0]
    rows, directions = baseline_rows(c2w_ga, rotations, poses)
    A = np.zeros((3 * len(rows), 3 * (num - 1)))
    y = np.zeros(3 * len(rows))
    for k, (i, j, vec) in enumerate(rows):
        if i > 0:
            A[3 * k:3 * k + 3, 3 * (i - 1):3 * i] = -np.eye(3)
        A[3 * k:3 * k + 3, 3 * (j - 1):3 * j] = np.eye(3)
        y[3 * k:3 * k + 3] = vec
    weights = np.ones(len(rows))
    for _ in range(10):
        sw = np.repeat(np.sqrt(weights), 3)
        x = np.linalg.lstsq(A * sw[:, None], y * sw, rcond=None)[0]
        res = np.linalg.norm((A @ x - y).reshape(-1, 3), axis=1)
        sigma = 1.4826 * float(np.median(res))
        if sigma <= 1e-12:
            break
        weights = np.minimum(1.0, cfg.huber_scale * sigma / np.maximum(res, 1e-12))
    centres = np.concatenate([np.zeros((1, 3)), x.reshape(-1, 3)]) + c2w_ga[0, :3, 3]
    return centres, {"translation_pairs": directions}


def matching_frames(model_frames: torch.Tensor, source_frames: torch.Tensor | None) -> torch.Tensor:
    """The frames :func:`refine_with_matches` should match on: ``source_frames`` centre-cropped to the model's aspect
    ratio (:func:`jog3r.io.video.crop_to_aspect`) when that is larger than the model's frames, else the model's.

    Args:
        model_frames: ``[F, 3, H, W]`` the frames the model saw.
        source_frames: ``[F, 3, H_s, W_s]`` the same frames at their source resolution, or ``None``.

    Raises:
        ValueError: ``source_frames`` has another frame count.
    """
    if source_frames is None:
        return model_frames
    if source_frames.shape[0] != model_frames.shape[0]:
        raise ValueError(f"source_frames has {source_frames.shape[0]} frames, the video {model_frames.shape[0]}")
    crop = crop_to_aspect(source_frames, tuple(model_frames.shape[-2:]))
    return crop if crop.shape[-1] > model_frames.shape[-1] else model_frames


def check_matching_frames(frames: torch.Tensor | None, num: int, h: int, w: int) -> torch.Tensor:
    """Check the frames to match on: ``[num, 3, H', W']`` finite float RGB in ``[0, 1]``, the model's ``h x w`` crop
    at the same or a higher resolution (aspect within 2 %); returns ``frames``.

    Raises:
        ValueError: naming the expected shape, aspect or dtype.
    """
    if frames is None or frames.ndim != 4 or frames.shape[:2] != (num, 3):
        raise ValueError(f"frames must be [F={num}, 3, H', W'], got {None if frames is None else tuple(frames.shape)}")
    scale = frames.shape[-1] / w
    if abs(frames.shape[-2] / h - scale) > 0.02 * scale or scale < 1:
        raise ValueError(f"frames must be [F={num}, 3, H', W'] with H'/W' = {h}/{w} (the same crop as the "
                         f"model's frames) and at least {h}x{w}, got {tuple(frames.shape)}")
    if not frames.is_floating_point() or not bool(torch.isfinite(frames).all()):
        raise ValueError("frames must be finite floating-point RGB in [0, 1] (got "
                         f"{frames.dtype}, or non-finite values); convert uint8 with / 255")
    return frames


def refine_with_matches(recon: Reconstruction, frames: torch.Tensor, config: RefineConfig | None = None
                        ) -> tuple[Reconstruction, dict]:
    """Replace a reconstruction's cameras by cameras from SIFT correspondences (module docstring, steps 1-5).

    Args:
        recon: the global alignment's :class:`~jog3r.types.Reconstruction` (``F`` frames of ``H x W``).
        frames: ``[F, 3, H', W']`` float RGB in ``[0, 1]``: the frames ``recon`` was computed from, at the model's
            size or, better, larger with the same field of view (the source frames centre-cropped to the model's
            aspect ratio, as :meth:`jog3r.pipeline.JOG3RPipeline.video_to_cameras` passes them); ``K`` is scaled by
            ``W' / W``.
        config: :class:`RefineConfig` (default settings if ``None``).

    Returns:
        ``(refined, info)``: the reconstruction with new ``cam2world`` and ``pts3d`` (``K``, ``depth``, ``conf``,
        ``colors`` kept) and a dict with ``match_size`` (``[H', W']`` before the SIFT ``upsample``), ``pairs``
        (matched frame pairs within ``window``), ``matches`` (their inliers in all), ``fallback_steps`` and
        ``low_parallax_steps`` (:func:`chain_cameras`), ``translation_pairs`` (:func:`solve_centres`),
        ``weak_steps`` (see :attr:`RefineConfig.weak_matches`) and ``status`` (``"refined"``, or
        ``"skipped: ..."`` when the input was returned unchanged).

    Raises:
        ValueError: ``frames`` does not match the reconstruction's frame count or aspect ratio (more than 2 %
            apart), is smaller than the model's frames, or is not finite floating-point.
    """
    cfg = config or RefineConfig()
    num, h, w = recon.depth.shape
    check_matching_frames(frames, num, h, w)
    scale = frames.shape[-1] / w  # source pixels per model pixel
    if not (bool(torch.isfinite(recon.cam2world).all()) and bool(torch.isfinite(recon.K).all())):
        logger.warning("match refinement skipped: the alignment's cameras or intrinsics are not finite")
        return recon, {"match_size": list(frames.shape[-2:]), "pairs": 0, "matches": 0, "fallback_steps": num - 1,
                       "low_parallax_steps": 0, "translation_pairs": 0, "weak_steps": 0,
                       "status": "skipped: non-finite alignment"}
    matches = match_frames(frames, cfg)
    info: dict = {"match_size": list(frames.shape[-2:]), "pairs": len(matches),
                  "matches": int(sum(len(m[2]) for m in matches))}
    if not any(j == i + 1 for i, j, *_ in matches):
        logger.warning("match refinement skipped: no consecutive frames have enough correspondences")
        return recon, {**info, "fallback_steps": num - 1, "low_parallax_steps": 0, "translation_pairs": 0,
                       "weak_steps": 0, "status": "skipped: no correspondences"}
    poses = pair_poses(recon, matches, cfg, match_scale=scale)
    c2w, chain_info = chain_cameras(recon, poses)
    c2w[:, :3, 3], centre_info = solve_centres(recon, c2w[:, :3, :3], poses, cfg)
    info.update(chain_info)
    info.update(centre_info)
    counts = {(i, j): len(a) for i, j, a, _ in matches}
    info["weak_steps"] = sum(1 for k in range(num - 1) if poses.get((k, k + 1), {}).get("kind") == "essential"
                             and counts[(k, k + 1)] < cfg.weak_matches)
    if info["weak_steps"]:
        logger.warning("match refinement: %d of %d steps rest on fewer than %d correspondences (frames far apart or "
                       "little texture?); their cameras may be worse than the alignment's", info["weak_steps"],
                       num - 1, cfg.weak_matches)
    if not np.isfinite(c2w).all():
        logger.warning("match refinement skipped: non-finite cameras")
        return recon, {**info, "status": "skipped: non-finite cameras"}
    if chain_info["fallback_steps"]:
        logger.warning("match refinement: %d of %d steps kept the global alignment's relative pose",
                       chain_info["fallback_steps"], num - 1)
    cam2world = torch.as_tensor(c2w, dtype=recon.cam2world.dtype, device=recon.cam2world.device)
    pts3d = depth_to_world_points(recon.depth, recon.K, cam2world)
    return dataclasses.replace(recon, cam2world=cam2world, pts3d=pts3d), {**info, "status": "refined"}


__all__ = ["RefineConfig", "average_rotations", "baseline_rows", "chain_cameras", "check_matching_frames", "gray_uint8",
           "depth_translation", "match_frames", "matching_frames", "pair_poses", "refine_with_matches",
           "sample_bilinear", "skew", "solve_centres"]
