"""V2C for long videos: overlapping windows of the model, one sparse global alignment over every frame (issue 16).

JOG3R's STDiT is a 16-frame model. A video of ``N`` sampled frames (hundreds) is cut into overlapping windows
(:func:`plan_windows`, default 16 frames with stride 12: 4 frames shared with the previous window); each window
goes through the model and the point-map alignment (:func:`jog3r.align.fit.fit`) as a short video does, and
:class:`WindowedAligner` keeps of it only what the final alignment needs:

* per frame, at the model's resolution: depth (float32), confidence (float32), colours (uint8), intrinsics;
  frames shared with an earlier window keep the earlier window's values;
* per point-map edge view, ``pm_pixels`` confident pixels (pixel, point, weight) for the point-map term;
* a first estimate of every camera: each window's cameras placed by the similarity that maps its shared frames
  onto the cameras already placed (scale from the ratio of their depth maps, rotation by a chordal mean, the
  translation by the mean of the shared centres): the windows are *linked through their shared frames*.

Correspondences are matched while the frames stream in (:class:`StreamMatcher`: SIFT of each frame kept only for
the next ``window`` frames, the default alignment's matching of :func:`jog3r.align.refine.match_pair`), so the
cost and the memory of the matching are linear in ``N``.

:meth:`WindowedAligner.solve` then runs the objective of :func:`jog3r.align.joint.joint_align` (same terms, same
weights, plus for a video the constant-angular-velocity prior ``JointConfig.w_rot`` of
:func:`jog3r.long_v2c.long_config`; init: the rotation chain refined by rotation averaging over all matched pairs, then translation averaging of
the correspondences) over all ``N`` frames at once (the matches may include the KLT tracks' wide-baseline pairs of
:mod:`jog3r.align.tracks`, up to 16 frames apart):
the normal equations are assembled as a sparse matrix (7 + 12 unknowns per frame, 7 per edge; the matched frame
pairs and the temporal terms couple frames at most the widest pair's gap apart, the edges only their two frames) and solved
by a sparse LU (SuperLU) in frame order, where the matrix is a band, so one Levenberg-Marquardt step costs O(N)
instead of the dense O(N^3).

Memory: the model's activations of one window at a time, the source frames of ``window + 1`` frames for the
matching, and per frame ~0.3 MB at 128 x 192 (depth, confidence, colours, the point cloud of the output) plus its
correspondences (at most ``max_matches`` per pair, ``window`` pairs).

Conventions: :mod:`jog3r.geometry.camera` (OpenCV axes, ``cam2world``, pixel centres at ``+0.5``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import cv2
import numpy as np
import roma
import scipy.sparse
import scipy.sparse.linalg
import torch

from jog3r.align.joint import (
    METHOD_JOINT,
    JointConfig,
    _grid_basis,
    _huber_w,
    _cauchy_w,
    _Problem,
    cloud_reprojection_px,
    levenberg_marquardt,
    sample_pointmap_pixels,
)
from jog3r.align.refine import (
    RefineConfig,
    _rotation_only,
    baseline_rows,
    chain_cameras,
    gray_uint8,
    match_pair,
    pair_poses,
)
from jog3r.align.solver import torch_threads
from jog3r.align.tracks import average_rotations
from jog3r.geometry.camera import depth_to_world_points
from jog3r.types import PairwisePointmaps, Reconstruction

logger = logging.getLogger(__name__)

WINDOW = 16
"""Frames per window (the model's ``F``)."""
STRIDE = 12
"""Step between window starts: ``WINDOW - STRIDE`` = 4 frames shared by consecutive windows."""
MAX_LINK_SPREAD_DEG = 20.0
"""A window whose shared frames' rotation offsets disagree by more than this is rejected (its alignment broke)."""
MAX_LINK_SCALE = 5.0
"""... or whose scale to the placed frames is outside ``[1 / MAX_LINK_SCALE, MAX_LINK_SCALE]``."""


def plan_windows(num_frames: int, window: int = WINDOW, stride: int = STRIDE) -> list[tuple[int, int]]:
    """Windows ``[(start, end), ...]`` (end exclusive) covering frames ``0 .. num_frames - 1``.

    Starts at ``0, stride, 2 stride, ...``; the last window ends at ``num_frames`` (it may share more than
    ``window - stride`` frames with the one before). One window ``(0, num_frames)`` when ``num_frames <= window``.

    Raises:
        ValueError: ``num_frames < 2``, ``window < 2`` or ``stride`` outside ``[1, window - 1]`` (consecutive
            windows must share at least one frame).
    """
    if num_frames < 2:
        raise ValueError(f"camera estimation needs at least 2 frames, got {num_frames}")
    if window < 2 or not 1 <= stride <= window - 1:
        raise ValueError(f"need window >= 2 and 1 <= stride <= window - 1 (shared frames link the windows), got "
                         f"window {window}, stride {stride}")
    if num_frames <= window:
        return [(0, num_frames)]
    out = []
    start = 0
    while start + window < num_frames:
        out.append((start, start + window))
        start += stride
    out.append((num_frames - window, num_frames))
    return out


# ---------------------------------------------------------------------------------------------- matching
class StreamMatcher:
    """SIFT correspondences of a frame stream, frame ``j`` against frames ``j - window .. j - 1``.

    The same matches as :func:`jog3r.align.refine.match_frames` on the whole stack (same detector, ratio test,
    RANSAC, cap per pair), with the features of only the last ``window`` frames kept.

    Args:
        config: :class:`~jog3r.align.refine.RefineConfig` (``window``, ``max_matches``, ``upsample``, ...).
        size: ``(H', W')`` of the matched frames (fixes the SIFT upscaling).
    """

    def __init__(self, config: RefineConfig, size: tuple[int, int]):
        self.config = config
        self.up = config.upsample_for(tuple(size))
        self.size = tuple(size)
        self.sift = cv2.SIFT_create()
        self.matcher = cv2.BFMatcher(cv2.NORM_L2)
        self.recent: list[tuple[int, tuple]] = []
        self.matches: list[tuple[int, int, np.ndarray, np.ndarray]] = []
        self.count = 0

    def push(self, frame: torch.Tensor) -> None:
        """Add the next frame (``[3, H', W']`` float RGB in ``[0, 1]``, or uint8) and match it with the recent ones."""
        if tuple(frame.shape[-2:]) != self.size:
            raise ValueError(f"frame {self.count} is {tuple(frame.shape[-2:])}, the stream's frames {self.size}")
        if frame.dtype == torch.uint8:
            frame = frame.float() / 255
        feat = self.sift.detectAndCompute(gray_uint8(frame, self.up), None)
        j = self.count
        for i, fi in self.recent:
            pair = match_pair(fi, feat, self.config, self.up, self.matcher, (i, j))
            if pair is not None:
                self.matches.append((i, j, *pair))
        self.recent = (self.recent + [(j, feat)])[-self.config.window:]
        self.count += 1


# ---------------------------------------------------------------------------------------------- accumulation
class WindowedAligner:
    """Collects the windows of a long video (:meth:`add_window`) and solves one alignment (:meth:`solve`).

    Args:
        num_frames: ``N`` frames of the video.
        size: ``(H, W)`` of the model's frames (the windows' reconstructions).
        config: :class:`~jog3r.align.joint.JointConfig` of the final alignment (``pm_pixels`` per edge view are
            kept of each window's point maps).
        rotation_fallback: consecutive pairs whose essential matrix fails start from their correspondences' pure
            rotation (:func:`rotation_only_fallback`); ``False``: from the linked windows' relative rotation, as
            :func:`jog3r.align.joint.joint_align` does.
        rotation_averaging: the initial rotations are averaged over every matched pair's relative rotation
            (:func:`jog3r.align.tracks.average_rotations`, started from the consecutive chain), so that a step
            without correspondences is bridged by the wider pairs; ``False``: the chain alone.
    """

    def __init__(self, num_frames: int, size: tuple[int, int], config: JointConfig | None = None, *,
                 rotation_fallback: bool = True, rotation_averaging: bool = True):
        self.N, (self.H, self.W) = int(num_frames), tuple(size)
        self.rotation_fallback = rotation_fallback
        self.rotation_averaging = rotation_averaging
        self.cfg = config or JointConfig()
        N, H, W = self.N, self.H, self.W
        self.depth = torch.zeros(N, H, W)
        self.conf = torch.zeros(N, H, W)
        self.colors = torch.zeros(N, H, W, 3, dtype=torch.uint8)
        self.K = torch.zeros(N, 3, 3)
        self.c2w = torch.eye(4, dtype=torch.float64).repeat(N, 1, 1)
        self.filled = torch.zeros(N, dtype=torch.bool)
        self.trusted = torch.zeros(N, dtype=torch.bool)
        self.pm_groups: list[dict] = []
        self.num_edges = 0
        self.windows: list[tuple[int, int]] = []
        self.link: list[dict] = []
        self._gen = torch.Generator().manual_seed(0)

    def add_window(self, start: int, recon: Reconstruction, pointmaps: PairwisePointmaps | None = None) -> dict:
        """Add the point-map alignment ``recon`` of frames ``start .. start + n - 1`` and its point maps.

        The window is linked to the frames already placed through the frames it shares with them (all but the
        first window must share at least one). Returns the link: ``shared`` frames, ``scale`` (global / window
        units) and ``rot_spread_deg`` (largest angle between the shared frames' rotation offsets: how much the
        two windows disagree) and ``rejected``: a spread above :data:`MAX_LINK_SPREAD_DEG` or a scale outside
        ``[1 / MAX_LINK_SCALE, MAX_LINK_SCALE]`` means the window's own alignment broke; its new frames then continue
        the last placed motion (untrusted, replaced by the next window that links well; no point maps kept).

        Raises:
            ValueError: the window leaves the video, shares no frame with the placed ones (not the first), or its
                frames are not ``H x W``.
        """
        n = recon.num_frames
        end = start + n
        if start < 0 or end > self.N or recon.image_size != (self.H, self.W):
            raise ValueError(f"window {start}..{end - 1} of {tuple(recon.depth.shape)} does not fit a video of "
                             f"{self.N} frames of {self.H}x{self.W}")
        idx = torch.arange(start, end)
        placed = self.filled[idx]
        shared = idx[placed]
        c2w_w = recon.cam2world.double().cpu()
        depth_w = recon.depth.float().cpu()
        if shared.numel() == 0 and bool(self.filled.any()):
            raise ValueError(f"window {start}..{end - 1} shares no frame with the frames already placed")
        if shared.numel() == 0:
            scale, R_sim, t_sim, spread = 1.0, torch.eye(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), 0.0
        else:
            scale, R_sim, t_sim, spread = self._similarity(shared, shared - start, c2w_w, depth_w)
        # shared frames that only continue a rejected window's motion are guesses: a window linked to them alone is
        # accepted whatever its spread (the correspondences refine the link); else one bad window rejected every
        # later one (a 240-frame walk: 11 of 20 windows, then a non-finite global solve)
        guessed_link = shared.numel() > 0 and not bool(self.trusted[shared].any())
        if guessed_link and np.isfinite(scale):
            scale = float(np.clip(scale, 1 / MAX_LINK_SCALE, MAX_LINK_SCALE))
        ok = bool(np.isfinite(scale) and torch.isfinite(c2w_w).all() and (guessed_link or (
            1 / MAX_LINK_SCALE <= scale <= MAX_LINK_SCALE and spread <= MAX_LINK_SPREAD_DEG)))
        if not ok:
            # the window disagrees with the placed frames (its point-map alignment broke, e.g. a flipped or
            # collapsed window): its new frames continue the last placed motion, untrusted (no depth, no point
            # maps); a later window that links well replaces them, the correspondences refine them
            new = idx[~placed]
            self._extrapolate(new)
            info = {"start": start, "end": end, "shared": int(shared.numel()), "scale": scale,
                    "rot_spread_deg": spread, "rejected": True}
            logger.warning("long-video V2C: window %d..%d rejected (scale %.3g, rotation spread %.1f deg): its "
                           "frames continue the previous motion", start, end - 1, scale, spread)
            self.windows.append((start, end))
            self.link.append(info)
            return info
        new = idx[~(placed & self.trusted[idx])]  # frames of rejected windows are replaced
        loc = new - start
        self.c2w[new, :3, :3] = R_sim @ c2w_w[loc, :3, :3]
        self.c2w[new, :3, 3] = scale * c2w_w[loc, :3, 3] @ R_sim.T + t_sim
        self.depth[new] = scale * depth_w[loc]
        self.conf[new] = recon.conf.float().cpu()[loc]
        self.colors[new] = (recon.colors.float().cpu()[loc].clamp(0, 1) * 255).round().to(torch.uint8)
        self.K[new] = recon.K.float().cpu()[loc]
        self.filled[new] = True
        self.trusted[new] = True
        if pointmaps is not None:
            self._add_pointmaps(start, pointmaps)
        info = {"start": start, "end": end, "shared": int(shared.numel()), "scale": scale, "rot_spread_deg": spread,
                "rejected": False, "linked_to_guesses": guessed_link}
        self.windows.append((start, end))
        self.link.append(info)
        return info

    def _similarity(self, shared, loc, c2w_w, depth_w):
        """``(scale, R, t, spread_deg)`` mapping the window's cameras onto the placed ones of the ``shared`` frames.

        Scale from the depth ratio over the trusted shared frames; where none is trusted (all shared frames
        continue a rejected window's motion), from the ratio of the shared cameras' path lengths."""
        trusted = self.trusted[shared]
        if bool(trusted.any()):
            ratios = []
            for f, k in zip(shared[trusted].tolist(), loc[trusted].tolist()):
                ok = (self.depth[f] > 0) & (depth_w[k] > 0) & torch.isfinite(depth_w[k])
                ratios.append(float((self.depth[f][ok] / depth_w[k][ok]).median()) if bool(ok.any()) else math.nan)
            scale = float(np.nanmedian(ratios)) if np.isfinite(ratios).any() else math.nan
        else:
            glob = self.c2w[shared, :3, 3].diff(dim=0).norm(dim=1).sum()
            win = c2w_w[loc, :3, 3].diff(dim=0).norm(dim=1).sum()
            scale = float(glob / win) if float(win) > 0 else 1.0
        offs = self.c2w[shared, :3, :3] @ c2w_w[loc, :3, :3].transpose(1, 2)  # R_glob R_win^T per shared frame
        R_sim = roma.special_procrustes(offs.sum(0))
        spread = float(torch.rad2deg(roma.rotmat_geodesic_distance(offs, R_sim[None].expand_as(offs))).max())
        t_sim = (self.c2w[shared, :3, 3] - (scale if math.isfinite(scale) else 1.0) * c2w_w[loc, :3, 3] @ R_sim.T
                 ).mean(0)
        return scale, R_sim, t_sim, spread

    def _extrapolate(self, new: torch.Tensor) -> None:
        """Place ``new`` frames (after the placed ones) by continuing the last placed step: the same relative
        rotation and the same displacement in the camera's axes (constant velocity); the previous frame's depth with
        confidence 0."""
        for f in sorted(new.tolist()):
            a, b = f - 2, f - 1
            if b < 0 or not bool(self.filled[b]):
                raise ValueError(f"frame {f} cannot be placed: frame {b} is not placed")
            if a < 0:
                self.c2w[f] = self.c2w[b]
            else:
                Ra, Rb = self.c2w[a, :3, :3], self.c2w[b, :3, :3]
                step = Ra.T @ Rb  # R_b = R_a step
                self.c2w[f, :3, :3] = Rb @ step
                self.c2w[f, :3, 3] = self.c2w[b, :3, 3] + Rb @ (Ra.T @ (self.c2w[b, :3, 3] - self.c2w[a, :3, 3]))
            self.depth[f] = self.depth[b]
            self.conf[f] = 0
            self.K[f] = self.K[b]
            self.filled[f] = True
            self.trusted[f] = False

    def _add_pointmaps(self, start: int, pm: PairwisePointmaps) -> None:
        """Keep ``pm_pixels`` confident pixels of every edge view (as ``joint.py``'s point-map term picks them)."""
        k = self.cfg.pm_pixels
        if self.cfg.w_pm <= 0 or k <= 0:
            return
        for sample in sample_pointmap_pixels(pm, k, self._gen):
            del sample["pick"]
            self.pm_groups.append({**sample, "e": self.num_edges + sample["e"], "f": start + sample["f"]})
        self.num_edges += int(pm.edges.shape[0])

    def reconstruction(self, cam2world: torch.Tensor | None = None) -> Reconstruction:
        """The accumulated frames as a :class:`~jog3r.types.Reconstruction` (the linked windows' cameras unless
        ``cam2world`` is given). Raises ``ValueError`` while a frame has not been placed."""
        if not bool(self.filled.all()):
            missing = torch.nonzero(~self.filled).flatten()
            raise ValueError(f"{missing.numel()} frames are in no window (first: {int(missing[0])})")
        c2w = (self.c2w if cam2world is None else cam2world).float()
        return Reconstruction(cam2world=c2w, K=self.common_K(), depth=self.depth,
                              pts3d=depth_to_world_points(self.depth, self.K, c2w), conf=self.conf,
                              colors=self.colors.float() / 255)

    def common_K(self) -> torch.Tensor:
        """``[N, 3, 3]``: each frame's focal ``sqrt(fx fy)`` with one pixel aspect ``fy / fx`` and principal point
        for the video (medians over the frames): the joint alignment optimises the focal only, and windows that
        estimated slightly different aspects would otherwise disagree for good."""
        K = self.K.clone()
        f = (K[:, 0, 0] * K[:, 1, 1]).sqrt()
        a = (K[:, 1, 1] / K[:, 0, 0]).median()
        K[:, 0, 0], K[:, 1, 1] = f / a.sqrt(), f * a.sqrt()
        K[:, 0, 2], K[:, 1, 2] = K[:, 0, 2].median(), K[:, 1, 2].median()
        return K

    def solve(self, matches: list, match_scale: float = 1.0, *, known_K: bool = False,
              progress=None) -> tuple[Reconstruction, dict]:
        """One correspondence-aware alignment over all frames (:func:`joint_align`'s objective, sparse solve).

        Args:
            matches: ``(i, j, uv_i, uv_j)`` of the whole video (e.g. :attr:`StreamMatcher.matches`), in pixels of
                frames ``match_scale`` times the model's size.
            match_scale: see ``matches``.
            known_K: the intrinsics were given: the focals are not optimised.
            progress: optional ``(fraction, description)`` callback, called after each accepted step.

        Returns:
            ``(reconstruction, info)`` as :func:`jog3r.align.joint.joint_align`; with ``status`` ``"fallback:
            ..."`` the cameras are the linked windows' point-map cameras.
        """
        with torch_threads(1):
            return self._solve(matches, match_scale, known_K, progress or (lambda f, d: None))

    def _solve(self, matches, scale, known_K, progress):
        cfg = self.cfg
        linked = self.reconstruction()
        num = self.N
        times: dict[str, float] = {}
        info: dict = {"method": METHOD_JOINT, "pairs": len(matches), "matches": int(sum(len(m[2]) for m in matches)),
                      "windows": len(self.windows), "edges": self.num_edges}
        info["cloud_reprojection_px_before"] = cloud_reprojection_px(linked, matches, scale)
        if not (bool(torch.isfinite(linked.cam2world).all()) and bool(torch.isfinite(linked.K).all())):
            return linked, {**info, "status": "fallback: the point-map alignment is not finite", "seconds": times}
        consecutive = {i for i, j, *_ in matches if j == i + 1}
        if not consecutive:
            return linked, {**info, "status": "fallback: no correspondences (texture-less or unrelated frames?)",
                            "cloud_reprojection_px": info["cloud_reprojection_px_before"], "seconds": times}
        t0 = time.perf_counter()
        poses = pair_poses(linked, matches, cfg.matching, match_scale=scale)
        info["rotation_only_steps"] = (rotation_only_fallback(linked, matches, poses, scale)
                                       if self.rotation_fallback else 0)
        c2w, chain_info = chain_cameras(linked, poses)
        if self.rotation_averaging:
            c2w[:, :3, :3], rot_info = average_rotations(c2w[:, :3, :3], poses)
            info.update(rot_info)
        c2w[:, :3, 3], centre_info = solve_centres_sparse(linked, c2w[:, :3, :3], poses, cfg.matching)
        info.update(chain_info)
        info.update(centre_info)
        info["unmatched_steps"] = num - 1 - len(consecutive)
        if not np.isfinite(c2w).all():
            c2w = linked.cam2world.double().numpy()
        times["init"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        prob = _SparseProblem(linked, self.pm_groups, self.num_edges, matches, scale, c2w, cfg, known_K)
        res, first, it = levenberg_marquardt(prob, cfg, progress)
        times["optimize"] = time.perf_counter() - t0
        h, w = self.H, self.W
        cam2world = torch.eye(4, dtype=torch.float64).repeat(num, 1, 1)
        cam2world[:, :3, :3], cam2world[:, :3, 3] = prob.R, prob.c
        K = linked.K.double().clone()
        fx_fy = prob.K4(torch.arange(num))
        K[:, 0, 0], K[:, 1, 1] = fx_fy[:, 0], fx_fy[:, 1]
        yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5,
                                torch.arange(w, dtype=torch.float64) + 0.5, indexing="ij")
        basis = _grid_basis(torch.stack((xx.flatten(), yy.flatten()), -1), (h, w), cfg.grid).float()  # [H W, G]
        depth = self.depth * torch.exp((prob.kappa.float() @ basis.T).view(num, h, w))
        if not (torch.isfinite(cam2world).all() and torch.isfinite(depth).all() and torch.isfinite(K).all()):
            logger.warning("long-video alignment diverged: keeping the linked windows' cameras")
            return linked, {**info, "status": "fallback: non-finite result", "seconds": times}
        cam2world, K = cam2world.float(), K.float()
        out = dataclasses.replace(linked, cam2world=cam2world, K=K, depth=depth,
                                  pts3d=depth_to_world_points(depth, K, cam2world))
        rp = res["match"][:, :2].norm(dim=1) * cfg.sigma_px
        info.update(status="aligned", iterations=it, loss=[first, res["total"]], terms=res["terms"],
                    reprojection_px=float(rp.median()),
                    cloud_reprojection_px=cloud_reprojection_px(out, matches, scale), seconds=times,
                    unknowns=int(prob.num_unknowns))
        return out, info


def rotation_only_fallback(recon: Reconstruction, matches: list, poses: dict, match_scale: float = 1.0) -> int:
    """Consecutive pairs whose essential matrix failed but that have correspondences get the pure rotation that
    best explains them (``kind`` ``"rotation"``, in place), instead of the point-map alignment's relative rotation
    in :func:`chain_cameras`. Returns how many.

    On the long synthetic walkthrough (``benchmarks/v2c_long.py``, 60 frames, ~23-80 matches per pair with
    0.5-8 px parallax) 42 of 59 consecutive essential fits fail; the rotation-only estimate of those steps is off
    by 0.1-2.8 deg (median 0.4), the windows' point-map steps by 2-4 deg for true steps of ~3 deg."""
    K = recon.K.double().cpu().numpy().copy()
    K[:, :2] *= match_scale
    count = 0
    for i, j, a, b in matches:
        if j != i + 1 or poses.get((i, j), {}).get("kind") != "failed":
            continue
        na = (a - K[i, :2, 2]) / np.diag(K[i])[:2]
        nb = (b - K[j, :2, 2]) / np.diag(K[j])[:2]
        R, parallax = _rotation_only(na, nb, float(np.sqrt(K[i, 0, 0] * K[i, 1, 1])))
        poses[(i, j)] = {"kind": "rotation", "R": R, "parallax_px": parallax, "fallback": True}
        count += 1
    return count


def solve_centres_sparse(recon: Reconstruction, rotations: np.ndarray, poses: dict, config: RefineConfig
                         ) -> tuple[np.ndarray, dict]:
    """:func:`jog3r.align.refine.solve_centres` (same rows, Huber IRLS, ``c_0`` fixed) with sparse normal equations,
    so its cost is linear in the number of frames. Returns ``(centres [F, 3] float64, info)``."""
    c2w_ga = recon.cam2world.double().cpu().numpy()
    num = c2w_ga.shape[0]
    rows, directions = baseline_rows(c2w_ga, rotations, poses)
    ii = np.array([r[0] for r in rows])
    jj = np.array([r[1] for r in rows])
    y = np.stack([r[2] for r in rows])  # [R, 3]
    nr = len(rows)
    # difference operator over the unknown centres c_1..c_{F-1} (c_0 fixed): row k = c_j - c_i
    data = np.concatenate((np.ones(nr), -np.ones(int((ii > 0).sum()))))
    rr = np.concatenate((np.arange(nr), np.flatnonzero(ii > 0)))
    cc = np.concatenate((jj - 1, ii[ii > 0] - 1))
    A = scipy.sparse.csr_matrix((data, (rr, cc)), shape=(nr, num - 1))
    weights = np.ones(nr)
    x = np.zeros((num - 1, 3))
    for _ in range(10):
        Aw = A.multiply(weights[:, None]).tocsr()
        N = (A.T @ Aw).tocsc()
        x = scipy.sparse.linalg.splu(N).solve(np.ascontiguousarray(Aw.T @ y))
        res = np.linalg.norm(A @ x - y, axis=1)
        sigma = 1.4826 * float(np.median(res))
        if sigma <= 1e-12:
            break
        weights = np.minimum(1.0, config.huber_scale * sigma / np.maximum(res, 1e-12))
    centres = np.concatenate([np.zeros((1, 3)), x]) + c2w_ga[0, :3, 3]
    return centres, {"translation_pairs": directions}


# ---------------------------------------------------------------------------------------------- sparse problem
class _SparseProblem(_Problem):
    """:class:`jog3r.align.joint._Problem` over many frames: point-map samples given per edge view (not full point
    maps), normal equations assembled sparse and solved by SuperLU."""

    def __init__(self, recon, pm_groups, num_edges, matches, scale, c2w0, cfg, known_K):
        super().__init__(recon, None, matches, scale, c2w0, cfg, known_K)
        self._order: np.ndarray | None = None  # the band order of the active unknowns (_band_order)
        self._pair_slices = [slice(int(self.offsets[k]), int(self.offsets[k + 1])) for k in range(len(self.pairs))]
        if not pm_groups or cfg.w_pm <= 0:
            return
        H, W = self.H, self.W
        for g in pm_groups:
            pick = ((g["uv"][:, 1] - 0.5).long() * W + (g["uv"][:, 0] - 0.5).long())
            self.pm.append({**g, "b": _grid_basis(g["uv"], (H, W), cfg.grid),
                            "ld": self.log_d_pm[g["f"]].reshape(-1)[pick]})
        self._batch_pointmaps(int(num_edges))

    @property
    def num_unknowns(self) -> int:
        return int(self._index()[1].sum())

    def _rot_steps(self) -> torch.Tensor:
        """``[F - 1, 3]`` world-frame rotation steps ``log(R_{k+1} R_k^T)`` (radians)."""
        return roma.rotmat_to_rotvec(self.R[1:] @ self.R[:-1].transpose(1, 2))

    def residuals(self, jacobian: bool = False) -> dict:
        out = super().residuals(jacobian)
        if self.cfg.w_rot > 0 and self.F > 2:
            a = self._rot_steps()
            e_rot = self.cfg.w_rot * float((a[1:] - a[:-1]).square().sum())
            out["terms"]["rot"] = e_rot
            out["total"] += e_rot
        return out

    def normal_equations(self, res: dict):
        cfg = self.cfg
        F, G = self.F, self.G
        nf, active = self._index()
        n = active.numel()
        g = torch.zeros(n, dtype=torch.float64)
        rows, cols, vals = [], [], []

        def add(idx: torch.Tensor, blk: torch.Tensor) -> None:
            m = idx.numel()
            rows.append(idx.repeat_interleave(m))
            cols.append(idx.repeat(m))
            vals.append(blk.reshape(-1))

        M = max(self.M, 1)
        r, J = res["match"], res["match_J"]
        wp = _cauchy_w(r[:, :2].square().sum(1))
        wd = cfg.w_depth * torch.stack((_huber_w(r[:, 2]), _huber_w(r[:, 3])), 1)
        Wr = torch.cat((wp[:, None].expand(-1, 2) * 2.0, wd), 1) / M
        Jl = J[:, :, 16]
        hll = (Jl * Jl * Wr).sum(1) + 1e-9
        gl = (Jl * Wr * r).sum(1)
        bgl = torch.empty(self.M, 2 * nf, dtype=torch.float64)
        for pid, (i, j) in enumerate(self.pairs):  # per pair: the [m, 4, 2 nf] Jacobian of this pair only
            sel = self._pair_slices[pid]
            Js, Ws, rs = J[sel], Wr[sel], r[sel]
            Jg = torch.cat((Js[:, :, 0:7], Js[:, :, 7:8] * self.bp[sel][:, None, :], Js[:, :, 8:15],
                            Js[:, :, 15:16] * self.bq[sel][:, None, :]), 2)
            WJg = Jg * Ws[:, :, None]
            b = (WJg * Jl[sel][:, :, None]).sum(1)
            bgl[sel] = b
            idx = torch.cat((torch.arange(i * nf, (i + 1) * nf), torch.arange(j * nf, (j + 1) * nf)))
            A, WA = Jg.reshape(-1, 2 * nf), WJg.reshape(-1, 2 * nf)
            add(idx, A.T @ WA - (b / hll[sel, None]).T @ b)
            g[idx] += (WJg * rs[:, :, None]).sum((0, 1)) - (b * (gl[sel] / hll[sel])[:, None]).sum(0)
        self._elim = (hll, bgl, gl)
        if self.pm:
            rr, Jp = res["pm"], res["pm_J"]
            pm = self.pmb
            a = cfg.w_pm / (self.scene * self.pm_wsum) * pm["w"] / rr.norm(dim=1).clamp(min=1e-6 * self.scene)
            for k, grp in enumerate(self.pm):
                sel = slice(int(self.pm_offsets[k]), int(self.pm_offsets[k + 1]))
                Js = Jp[sel]
                Jf = torch.cat((Js[:, :, 0:7], Js[:, :, 7:8] * pm["b"][sel][:, None, :], Js[:, :, 8:15]), 2)
                WJ = Jf * a[sel][:, None, None]
                f, e = grp["f"], grp["e"]
                idx = torch.cat((torch.arange(f * nf, (f + 1) * nf), F * nf + 7 * e + torch.arange(7)))
                A, WA = Jf.reshape(-1, nf + 7), WJ.reshape(-1, nf + 7)
                add(idx, A.T @ WA)
                g[idx] += WA.T @ rr[sel].reshape(-1)
        # temporal terms: banded (first and second differences of the centres and, with w_rot, of the rotation
        # steps; first differences of the focals)
        d1 = scipy.sparse.diags([-np.ones(F - 1), np.ones(F - 1)], [0, 1], shape=(F - 1, F), format="csr")

        def add_frames(column: int, M) -> torch.Tensor:
            """Add the ``[F, F]`` sparse block ``M`` on unknown ``column`` of every frame; returns those indices."""
            M, t = M.tocoo(), nf * torch.arange(F) + column
            rows.append(t[torch.as_tensor(M.row)])
            cols.append(t[torch.as_tensor(M.col)])
            vals.append(torch.as_tensor(M.data))
            return t

        if cfg.w_transl > 0 and F > 1:
            L = scipy.sparse.vstack((d1, d1[1:] - d1[:-1])).tocsr()
            LtL = 2.0 * cfg.w_transl / self.scene ** 2 * (L.T @ L)
            for k in range(3):
                g[add_frames(3 + k, LtL)] += torch.as_tensor(LtL @ self.c[:, k].numpy())
        if cfg.w_rot > 0 and F > 2:
            # Gauss-Newton on s = a[1:] - a[:-1]: for small steps d a_k / d(w_{k+1}, w_k) ~ (I, -I) under the
            # left increments R <- exp(w) R, so J = the second-difference operator on each axis of w
            L2 = (d1[1:] - d1[:-1]).tocsr()
            LtL = 2.0 * cfg.w_rot * (L2.T @ L2)
            a = self._rot_steps().numpy()
            s2 = a[1:] - a[:-1]
            for k in range(3):
                g[add_frames(k, LtL)] += torch.as_tensor(2.0 * cfg.w_rot * (L2.T @ s2[:, k]))
        if cfg.w_fl > 0 and F > 1:
            lf = (torch.exp(self.phi) / max(self.H, self.W)).numpy()
            Jf = d1.multiply(lf[None, :]).tocsr()
            g[add_frames(6, 2.0 * cfg.w_fl * (Jf.T @ Jf))] += torch.as_tensor(2.0 * cfg.w_fl * (Jf.T @ (d1 @ lf)))
        if cfg.w_kappa > 0:
            kidx = (nf * torch.arange(F)[:, None] + 7 + torch.arange(G)[None]).flatten()
            rows.append(kidx)
            cols.append(kidx)
            vals.append(torch.full((kidx.numel(),), 2.0 * cfg.w_kappa / (F * G), dtype=torch.float64))
            g[kidx] += 2.0 * cfg.w_kappa / (F * G) * self.kappa.flatten()
        Hm = scipy.sparse.coo_matrix((torch.cat(vals).numpy(), (torch.cat(rows).numpy(), torch.cat(cols).numpy())),
                                     shape=(n, n)).tocsr()
        act = torch.nonzero(active).flatten().numpy()
        return Hm[act][:, act].tocsc(), g[active], active

    def step(self, res: dict, damping: float) -> torch.Tensor:
        if "match_J" not in res or res["match_J"] is None:
            res.update(self.residuals(jacobian=True))
        Hm, g, active = self.normal_equations(res)
        diag = Hm.diagonal()
        diag = np.maximum(diag, 1e-12 * float(np.abs(diag).max()))
        A = (Hm + scipy.sparse.diags(damping * diag + 1e-12 * float(diag.max()))).tocsc()
        order = self._band_order(active)
        delta = np.empty(order.size)
        delta[order] = scipy.sparse.linalg.splu(A[order][:, order].tocsc(), permc_spec="NATURAL").solve(
            -g.numpy()[order])
        full = torch.zeros(active.numel(), dtype=torch.float64)
        full[active] = torch.as_tensor(delta)
        return full

    def _band_order(self, active: torch.Tensor) -> np.ndarray:
        """Permutation of the active unknowns that makes the normal matrix banded: frames in video order, each
        edge's 7 unknowns right after the first frame it touches. Every coupling (matched pairs, temporal terms, an
        edge and its two frames, at most a window apart) then lies within ``(max(widest matched gap, window) + 1) x
        (frame + edge unknowns)`` of the diagonal, whatever the number of frames, and an LU in this order (no further pivoting of columns) fills only the band: O(N) per step.

        SuperLU's own orderings on the 240-frame walkthrough (6234 unknowns): ``MMD_AT_PLUS_A`` 3.35 s per
        factorisation (153 s of the 289 s run), ``COLAMD`` 0.31 s, this order 0.25 s, the same step to 1e-8."""
        if self._order is None:
            F, nf = self.F, 7 + self.G
            key = np.concatenate((np.repeat(np.arange(F, dtype=np.float64), nf),
                                  np.full(active.numel() - F * nf, float(F))))
            first = {}
            for grp in self.pm:
                e = int(grp["e"])
                first[e] = min(first.get(e, F), int(grp["f"]))
            for e, f in first.items():
                key[F * nf + 7 * e: F * nf + 7 * e + 7] = f + 0.5
            self._order = np.argsort(key[active.numpy()], kind="stable")
        return self._order


__all__ = ["MAX_LINK_SCALE", "MAX_LINK_SPREAD_DEG", "STRIDE", "WINDOW", "StreamMatcher", "WindowedAligner", "plan_windows", "rotation_only_fallback", "solve_centres_sparse"]
