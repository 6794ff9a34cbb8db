"""Correspondence-aware global alignment: the model's point maps and image correspondences in one objective.

Not the paper's V2C (the paper aligns the point maps alone, :func:`jog3r.align.fit.fit`); this is the default of
:meth:`jog3r.pipeline.JOG3RPipeline.video_to_cameras` (``matches="sift"``), in the spirit of MASt3R-SfM's sparse
global alignment (learned point maps + correspondences, per-frame depth anchored on the network's depth) and of
COLMAP's bundle adjustment (robust reprojection error, Schur-eliminated point unknowns). Nothing is copied from
either; the objective below is this project's.

Unknowns:

* per frame ``f``: rotation ``R_f`` and centre ``c_f`` (``cam2world``; frame 0 fixed: the rigid gauge), log-focal
  ``phi_f`` (``f = sqrt(fx fy)``; the pixel aspect ``fy / fx`` and the principal point stay the point-map
  alignment's), and a log-depth correction ``kappa_f`` on a coarse ``grid`` of bilinear nodes: the frame's depth map
  is ``D_f(p) = D^pm_f(p) exp(b(p) . kappa_f)``, ``D^pm`` the point-map alignment's depth (the model's depth);
* per point-map edge ``e``: a similarity ``(R_e, t_e, sigma_e)`` placing the edge's point maps in the world;
* per correspondence ``k = (i, j, p, q)``: the log z-depth ``lambda_k`` of its point in camera ``i``
  (eliminated by a Schur complement at every step, as the per-pixel depths of :mod:`jog3r.align.gauss_newton`).

Objective (all terms dimensionless; ``M`` correspondences, ``s`` the scene's median depth at the init)::

    E = 1/M sum_k [ rho_C(||pi_j(X_k) - q_k||^2 / sigma_px^2)                         reprojection, Cauchy
                    + w_depth (rho_H((lambda_k - log D_i(p_k)) / sigma_d)               model depth as a prior,
                               + rho_H((log z_j(X_k) - log D_j(q_k)) / sigma_d)) ]       Huber, both views
      + w_pm * sum_{e,v,p} w ||chi_v(p) - (sigma_e R_e X^e_v(p) + t_e)|| / (s sum w)    the paper's point-map term
      + w_fl * L_fl + w_transl * L_transl(c / s)                                        JOG3R eq. 3-4
      + w_kappa * mean(kappa^2)                                                         depth stays near the model's

with ``X_k = c_i + exp(lambda_k) R_i K_i^-1 (p, 1)``, ``chi_v(p) = c_v + D_v(p) R_v K_v^-1 (p, 1)``, ``w = log
conf`` (DUSt3R), the point-map residual on ``pm_pixels`` confident pixels per edge view, ``L_fl`` on
``focal / max(H, W)`` and ``L_transl`` on the centres in units of ``s`` (so the weights do not depend on the scene's
scale). Weights (:class:`JointConfig`) were set on the RealEstate10K clips of ``tests/data`` and are reported with
the benchmark (``benchmarks/v2c_real.py``, ``docs/notes/align.md``).

Solver: Levenberg-Marquardt on the IRLS form of the robust terms (Cauchy weight ``1 / (1 + r^2 / sigma^2)``,
Huber weight ``min(1, 1 / |r|)``, point-map weight ``w / ||r||`` as in :mod:`jog3r.align.gauss_newton`); Jacobians
of every residual block by forward-mode autodiff over its few local unknowns (``torch.func``), assembled per frame
pair / edge view by one GEMM; the correspondence depths are eliminated (1 x 1 blocks). A step is kept only if the
objective decreases.

Init: rotations chained over consecutive frames, then robustly averaged over every matched pair
(:func:`jog3r.align.refine.average_rotations`; ``RefineConfig.rotation_averaging``, on by default), and centres from robust
translation averaging of the two-view geometry of the correspondences (:mod:`jog3r.align.refine`, steps 2-4) with
the point-map alignment's intrinsics and scale; correspondence depths by a few 1-D Gauss-Newton steps with the
cameras fixed.

Correspondences (:func:`jog3r.align.refine.match_frames`): SIFT at the source resolution (the source frames
centre-cropped like the model's), mutual nearest neighbours with Lowe's ratio test, a fundamental-matrix
MAGSAC++ RANSAC (OpenCV), frames ``0 < j - i <= window``.

Conventions: :mod:`jog3r.geometry.camera` (OpenCV axes, ``cam2world``, pixel centres at ``+0.5``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import numpy as np
import roma
import torch

from jog3r.align.refine import (RefineConfig, average_rotations, chain_cameras, check_matching_frames, match_frames,
                                pair_poses, sample_bilinear, skew, solve_centres)
from jog3r.align.solver import torch_threads
from jog3r.geometry.camera import depth_to_world_points
from jog3r.types import PairwisePointmaps, Reconstruction

logger = logging.getLogger(__name__)

METHOD_PAPER = "JOG3R V2C (paper)"
"""Name of the paper's V2C (point maps -> global alignment) in every output."""
METHOD_JOINT = "JOG3R point maps + correspondences (not the paper's)"
"""Name of this module's alignment in every output."""


@dataclasses.dataclass
class JointConfig:
    """Weights and settings of :func:`joint_align` (see the module docstring for the objective)."""

    matching: RefineConfig = dataclasses.field(default_factory=RefineConfig)
    """Correspondences and the two-view init (window, ratio test, RANSAC threshold, ...)."""
    sigma_px: float = 1.0
    """Cauchy scale of the reprojection error, in pixels of the matched (source-resolution) frames."""
    w_depth: float = 0.05
    """Weight of the depth prior (model depth, both views of every correspondence)."""
    sigma_d: float = 0.25
    """Huber scale of the depth prior, in log-depth (25 %)."""
    w_pm: float = 0.01
    """Weight of the paper's point-map term."""
    pm_pixels: int = 256
    """Confident pixels per edge view in the point-map term."""
    w_fl: float = 100.0
    """Weight of ``L_fl`` (JOG3R eq. 3; the paper's point-map alignment uses 10, the ``jog3r`` preset). A video's
    frames share one lens, and with 10 the per-frame focals drifted apart where the correspondences leave them
    weakly determined (forward motion): on the six RealEstate10K clips x three windows the final focal was 11 %
    off the truth on average (up to 37 %), with 100 7.8 % (up to 27 %), and mAA@30 rose in 11 of 12 windows x
    point-map pixel draws, the 12th equal (docs/notes/align.md, session 11)."""
    w_transl: float = 1e-3
    """Weight of ``L_transl`` (JOG3R eq. 4, as the ``jog3r`` preset) on centres in units of the scene depth."""
    w_kappa: float = 1e-3
    """Ridge weight on the depth corrections ``kappa``."""
    w_rot: float = 0.0
    """Weight of a constant-angular-velocity prior: ``w_rot * sum_k |a_{k+1} - a_k|^2`` with the world-frame steps
    ``a_k = log(R_{k+1} R_k^T)`` in radians. Off in :func:`joint_align` (16 frames, the paper's objective plus the
    correspondences); long videos (:mod:`jog3r.align.windows`) use it to carry the rotation through frames whose
    correspondences vanish (a blank wall) instead of the point maps' unconstrained rotation there."""
    grid: tuple[int, int] = (3, 4)
    """Rows x columns of the bilinear nodes of each frame's depth correction."""
    optimize_focal: bool = True
    """Optimise the focals (kept at the point-map alignment's, or the given ``K``, when False)."""
    niter: int = 15
    """Maximum number of accepted Levenberg-Marquardt steps."""
    rtol: float = 1e-5
    """Stop when a step lowers the objective by less than this relative amount."""

    def __post_init__(self) -> None:
        if not (self.sigma_px > 0 and self.sigma_d > 0 and min(self.w_depth, self.w_pm, self.w_fl, self.w_transl,
                                                                 self.w_kappa, self.w_rot) >= 0):
            raise ValueError("JointConfig: scales must be > 0 and weights >= 0")
        if self.niter < 0 or self.pm_pixels < 0 or min(self.grid) < 1:
            raise ValueError(f"JointConfig: need niter >= 0, pm_pixels >= 0, grid >= (1, 1); got {self.niter}, "
                             f"{self.pm_pixels}, {self.grid}")


# ---------------------------------------------------------------------------------------------- helpers
def _grid_basis(uv: torch.Tensor, size: tuple[int, int], grid: tuple[int, int]) -> torch.Tensor:
    """Bilinear weights ``[N, gh * gw]`` of pixels ``uv [N, 2]`` (pixel units of ``size = (H, W)``, centres at
    ``+0.5``) on a ``gh x gw`` node grid spanning the image (nodes at the corner pixels' centres)."""
    h, w = size
    gh, gw = grid
    x = ((uv[:, 0] - 0.5) / max(w - 1, 1) * (gw - 1)).clamp(0, gw - 1)
    y = ((uv[:, 1] - 0.5) / max(h - 1, 1) * (gh - 1)).clamp(0, gh - 1)
    out = torch.zeros(uv.shape[0], gh * gw, dtype=uv.dtype)
    for gy, wy in _tent(y, gh):
        for gx, wx in _tent(x, gw):
            out.scatter_add_(1, (gy * gw + gx)[:, None], (wy * wx)[:, None])
    return out


def _tent(x: torch.Tensor, n: int):
    if n == 1:
        yield torch.zeros_like(x, dtype=torch.long), torch.ones_like(x)
        return
    lo = x.floor().clamp(0, n - 2)
    frac = x - lo
    yield lo.long(), 1 - frac
    yield lo.long() + 1, frac


def _cauchy_w(s2: torch.Tensor) -> torch.Tensor:
    return 1.0 / (1.0 + s2)


def _huber_w(r: torch.Tensor) -> torch.Tensor:
    return 1.0 / r.abs().clamp(min=1.0)


# ---------------------------------------------------------------------------------------------- residual blocks
def _rays(uv: torch.Tensor, k4: torch.Tensor) -> torch.Tensor:
    """Camera rays ``[N, 3]`` ``((u - cx) / fx, (v - cy) / fy, 1)`` of pixels ``uv [N, 2]``, ``k4 [N, 4]``."""
    return torch.stack(((uv[:, 0] - k4[:, 2]) / k4[:, 0], (uv[:, 1] - k4[:, 3]) / k4[:, 1], torch.ones_like(uv[:, 0])),
                       -1)


def _match_block(Ri, ci, Rj, cj, ki, kj, p, q, ldi, ldj, di, dj, lam, sig_px, sig_d, jacobian=True):
    """Residuals ``[M, 4]`` of the correspondences (reprojection ``(2)`` / sigma_px, depth priors of views i, j /
    sigma_d) and their Jacobians ``[M, 4, 17]`` with respect to the increments
    ``(w_i, c_i, phi_i, delta_i, w_j, c_j, phi_j, delta_j, lambda)`` (rotations updated as ``Exp(w) R``)."""
    ray = _rays(p, ki)
    u = (Ri @ ray[..., None])[..., 0]
    d = torch.exp(lam)
    X = ci + d[:, None] * u
    RjT = Rj.transpose(1, 2)
    Y = (RjT @ (X - cj)[..., None])[..., 0]
    z = Y[:, 2].clamp(min=1e-9)
    uj = torch.stack((kj[:, 0] * Y[:, 0] / z + kj[:, 2], kj[:, 1] * Y[:, 1] / z + kj[:, 3]), -1)
    r = torch.cat(((uj - q) / sig_px, ((lam - ldi - di) / sig_d)[:, None],
                   ((torch.log(z) - ldj - dj) / sig_d)[:, None]), 1)
    if not jacobian:
        return r, None
    M = lam.numel()
    J = torch.zeros(M, 4, 17, dtype=r.dtype)
    dX = torch.zeros(M, 3, 9, dtype=r.dtype)  # d X / d (w_i, c_i, phi_i) and lambda in the last column
    dX[:, :, 0:3] = -skew(d[:, None] * u)
    dX[:, :, 3:6] = torch.eye(3, dtype=r.dtype)
    dray = torch.stack((-ray[:, 0], -ray[:, 1], torch.zeros_like(ray[:, 0])), -1)
    dX[:, :, 6] = d[:, None] * (Ri @ dray[..., None])[..., 0]
    dX[:, :, 8] = d[:, None] * u
    dY = torch.zeros(M, 3, 17, dtype=r.dtype)
    dYX = RjT @ dX
    dY[:, :, 0:7] = dYX[:, :, 0:7]
    dY[:, :, 16] = dYX[:, :, 8]
    dY[:, :, 8:11] = RjT @ skew(X - cj)
    dY[:, :, 11:14] = -RjT
    dproj = torch.zeros(M, 2, 3, dtype=r.dtype)
    dproj[:, 0, 0] = kj[:, 0] / z
    dproj[:, 0, 2] = -kj[:, 0] * Y[:, 0] / z ** 2
    dproj[:, 1, 1] = kj[:, 1] / z
    dproj[:, 1, 2] = -kj[:, 1] * Y[:, 1] / z ** 2
    J[:, 0:2] = (dproj @ dY) / sig_px
    J[:, 0, 14] = kj[:, 0] * Y[:, 0] / z / sig_px
    J[:, 1, 14] = kj[:, 1] * Y[:, 1] / z / sig_px
    J[:, 2, 16] = 1.0 / sig_d
    J[:, 2, 7] = -1.0 / sig_d
    J[:, 3] = dY[:, 2] / (z * sig_d)[:, None]
    J[:, 3, 15] = -1.0 / sig_d
    return r, J


def _pm_block(Rf, cf, kf, uv, ldf, df, Re, te, se, X, jacobian=True):
    """World residuals ``[N, 3]`` ``chi_f(p) - (sigma_e R_e X + t_e)`` of point-map pixels and their Jacobians
    ``[N, 3, 15]`` with respect to ``(w_f, c_f, phi_f, delta_f, w_e, t_e, log sigma_e)``."""
    ray = _rays(uv, kf)
    u = (Rf @ ray[..., None])[..., 0]
    D = torch.exp(ldf + df)
    chi = cf + D[:, None] * u
    sRX = torch.exp(se)[:, None] * (Re @ X[..., None])[..., 0]
    r = chi - sRX - te
    if not jacobian:
        return r, None
    N = r.shape[0]
    J = torch.zeros(N, 3, 15, dtype=r.dtype)
    J[:, :, 0:3] = -skew(D[:, None] * u)
    J[:, :, 3:6] = torch.eye(3, dtype=r.dtype)
    dray = torch.stack((-ray[:, 0], -ray[:, 1], torch.zeros_like(ray[:, 0])), -1)
    J[:, :, 6] = D[:, None] * (Rf @ dray[..., None])[..., 0]
    J[:, :, 7] = D[:, None] * u
    J[:, :, 8:11] = skew(sRX)
    J[:, :, 11:14] = -torch.eye(3, dtype=r.dtype)
    J[:, :, 14] = -sRX
    return r, J


# ---------------------------------------------------------------------------------------------- problem

def sample_pointmap_pixels(pm: PairwisePointmaps, k: int, gen: torch.Generator):
    """The point-map term's samples: for every edge view (``(i, j)``'s view 1 in frame ``i``, view 2 in frame ``j``)
    ``k`` pixels drawn at random among its ``4 k`` most confident finite ones (weight ``log conf``).

    Args:
        pm: point maps of one video (batch 1), ``pts3d`` ``[1, E, H, W, 3]``, ``conf`` ``[1, E, H, W]``.
        k: pixels per edge view.
        gen: the generator of the draws (consumed in edge, then view order).

    Yields:
        dicts ``{"e": edge, "f": frame, "uv": [k, 2] float64 pixel centres, "X": [k, 3] float64 points,
        "w": [k] weights, "pick": [k] flat pixel indices}``; edge views without a usable pixel are skipped.
    """
    W = pm.pts3d.shape[-2]
    for e, (i, j) in enumerate(pm.edges.tolist()):
        for frame, pts, conf in ((i, pm.pts3d[0, e], pm.conf[0, e]),
                                 (j, pm.pts3d_in_other_view[0, e], pm.conf_in_other_view[0, e])):
            pts = pts.double().cpu().reshape(-1, 3)
            w = conf.double().cpu().reshape(-1).clamp(min=1.0).log()
            ok = torch.isfinite(pts).all(-1) & (w > 0)
            idx = torch.nonzero(ok).flatten()
            if idx.numel() == 0:
                continue
            top = idx[torch.argsort(w[idx], descending=True)[: 4 * k]]
            pick = top[torch.randperm(top.numel(), generator=gen)[:k]]
            uv = torch.stack(((pick % W).double() + 0.5, (pick // W).double() + 0.5), -1)
            yield {"e": e, "f": frame, "uv": uv, "X": pts[pick], "w": w[pick], "pick": pick}

class _Problem:
    """State and normal equations of :func:`joint_align` (float64 on the CPU)."""

    def __init__(self, recon: Reconstruction, pointmaps: PairwisePointmaps | None, matches: list, scale: float,
                 c2w0: np.ndarray, cfg: JointConfig, known_K: bool):
        dt = torch.float64
        self.cfg = cfg
        F, H, W = recon.depth.shape
        self.F, self.H, self.W = F, H, W
        self.G = cfg.grid[0] * cfg.grid[1]
        K = recon.K.double().cpu()
        self.aspect = (K[:, 1, 1] / K[:, 0, 0])  # fy / fx per frame (kept)
        self.pp = K[:, :2, 2].clone()
        self.phi = torch.log(torch.sqrt(K[:, 0, 0] * K[:, 1, 1]))
        self.log_d_pm = recon.depth.double().cpu().clamp(min=1e-8).log()
        self.R = torch.as_tensor(c2w0[:, :3, :3], dtype=dt).clone()
        self.c = torch.as_tensor(c2w0[:, :3, 3], dtype=dt).clone()
        self.kappa = torch.zeros(F, self.G, dtype=dt)
        self.scene = float(recon.depth.double().median())
        self.optimize_focal = cfg.optimize_focal and not known_K
        self.match_scale = scale
        # correspondences: model-pixel coordinates for the depth maps, source pixels for the reprojection
        rows = []
        for pid, (i, j, a, b) in enumerate(matches):
            n = len(a)
            rows.append((torch.full((n,), i), torch.full((n,), j), torch.full((n,), pid), torch.as_tensor(a, dtype=dt),
                         torch.as_tensor(b, dtype=dt)))
        self.pairs = [(int(m[0]), int(m[1])) for m in matches]
        self.mi = torch.cat([r[0] for r in rows]).long()
        self.mj = torch.cat([r[1] for r in rows]).long()
        self.mpair = torch.cat([r[2] for r in rows]).long()
        self.p = torch.cat([r[3] for r in rows])
        self.q = torch.cat([r[4] for r in rows])
        self.M = int(self.mi.numel())
        self.offsets = torch.cumsum(torch.tensor([0] + [len(m[2]) for m in matches]), 0)
        pm_, qm_ = self.p / scale, self.q / scale
        self.bp = _grid_basis(pm_, (H, W), cfg.grid)
        self.bq = _grid_basis(qm_, (H, W), cfg.grid)
        self.ldp = self._sample_frames(self.log_d_pm, self.mi, pm_)
        self.ldq = self._sample_frames(self.log_d_pm, self.mj, qm_)
        self.lam = self.ldp.clone()
        # point-map term: pm_pixels confident pixels per edge view
        self.pm = []
        if pointmaps is not None and cfg.w_pm > 0 and cfg.pm_pixels > 0:
            self._init_pointmaps(pointmaps)

    @staticmethod
    def _sample_frames(img: torch.Tensor, frames: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
        out = torch.empty(frames.numel(), dtype=img.dtype)
        for f in frames.unique().tolist():
            sel = frames == f
            out[sel] = sample_bilinear(img[f], uv[sel])
        return out

    def _init_pointmaps(self, pm: PairwisePointmaps) -> None:
        H, W = self.H, self.W
        gen = torch.Generator().manual_seed(0)
        for sample in sample_pointmap_pixels(pm, self.cfg.pm_pixels, gen):
            pick = sample.pop("pick")
            self.pm.append({**sample, "b": _grid_basis(sample["uv"], (H, W), self.cfg.grid),
                            "ld": self.log_d_pm[sample["f"]].reshape(-1)[pick]})
        self._batch_pointmaps(int(pm.edges.shape[0]))

    def _batch_pointmaps(self, num_edges: int) -> None:
        """Concatenate the point-map samples of ``self.pm`` (one dict per edge view) and start each edge's
        similarity (rotation, translation, log scale) at the weighted Procrustes of its points onto the current world
        points (edges without samples keep the identity)."""
        self.pm_wsum = float(sum(float(g["w"].sum()) for g in self.pm)) or 1.0
        self.pm_offsets = torch.cumsum(torch.tensor([0] + [len(g["uv"]) for g in self.pm]), 0)
        self.pmb = {k: torch.cat([g[k] for g in self.pm]) for k in ("uv", "X", "w", "b", "ld")}
        self.pmb["f"] = torch.cat([torch.full((len(g["uv"]),), g["f"]) for g in self.pm]).long()
        self.pmb["e"] = torch.cat([torch.full((len(g["uv"]),), g["e"]) for g in self.pm]).long()
        self.Re = torch.eye(3, dtype=torch.float64).repeat(num_edges, 1, 1)
        self.te = torch.zeros(num_edges, 3, dtype=torch.float64)
        self.se = torch.zeros(num_edges, dtype=torch.float64)
        by_edge: dict[int, list[dict]] = {}
        for g in self.pm:
            by_edge.setdefault(g["e"], []).append(g)
        for e, groups in by_edge.items():
            src = torch.cat([g["X"] for g in groups])
            dst = torch.cat([self._chi(g) for g in groups])
            wts = torch.cat([g["w"] for g in groups])
            R, t, s = roma.rigid_points_registration(src, dst, weights=wts, compute_scaling=True)
            self.Re[e], self.te[e], self.se[e] = R, t, torch.log(s)

    # -------------------------------------------------------------- state access
    def K4(self, frames: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """``[N, 4] (fx, fy, cx, cy)`` at the current focals, times ``scale``."""
        f = torch.exp(self.phi[frames])
        a = self.aspect[frames]
        return torch.stack((f / a.sqrt(), f * a.sqrt(), self.pp[frames, 0], self.pp[frames, 1]), -1) * scale

    def _chi(self, g: dict) -> torch.Tensor:
        f = g["f"]
        k = self.K4(torch.tensor([f]))[0]
        ray = torch.stack(((g["uv"][:, 0] - k[2]) / k[0], (g["uv"][:, 1] - k[3]) / k[1], torch.ones(len(g["uv"]),
                                                                                             dtype=torch.float64)), -1)
        d = torch.exp(g["ld"] + g["b"] @ self.kappa[f])
        return self.c[f] + (d[:, None] * ray) @ self.R[f].T

    def _match_args(self):
        ki = self.K4(self.mi, self.match_scale)
        kj = self.K4(self.mj, self.match_scale)
        return (self.R[self.mi], self.c[self.mi], self.R[self.mj], self.c[self.mj], ki, kj, self.p, self.q, self.ldp,
                self.ldq, (self.bp * self.kappa[self.mi]).sum(1), (self.bq * self.kappa[self.mj]).sum(1), self.lam,
                self.cfg.sigma_px, self.cfg.sigma_d)

    def _pm_args(self):
        pm = self.pmb
        f, e = pm["f"], pm["e"]
        return (self.R[f], self.c[f], self.K4(f), pm["uv"], pm["ld"], (pm["b"] * self.kappa[f]).sum(1), self.Re[e],
                self.te[e], self.se[e], pm["X"])

    # -------------------------------------------------------------- objective
    def residuals(self, jacobian: bool = False) -> dict:
        cfg = self.cfg
        out = {}
        r, J = _match_block(*self._match_args(), jacobian=jacobian)
        out["match"], out["match_J"] = r, J
        s2 = r[:, :2].square().sum(1)
        e_proj = torch.log1p(s2).sum()
        hub = lambda v: torch.where(v.abs() <= 1, 0.5 * v * v, v.abs() - 0.5)  # noqa: E731
        e_depth = cfg.w_depth * (hub(r[:, 2]) + hub(r[:, 3])).sum()
        total = (e_proj + e_depth) / max(self.M, 1)
        e_pm = torch.zeros((), dtype=torch.float64)
        if self.pm:
            rr, Jp = _pm_block(*self._pm_args(), jacobian=jacobian)
            out["pm"], out["pm_J"] = rr, Jp
            e_pm = cfg.w_pm * (self.pmb["w"] * rr.norm(dim=1)).sum() / (self.scene * self.pm_wsum)
        lf = torch.exp(self.phi) / max(self.H, self.W)
        e_fl = cfg.w_fl * (lf[1:] - lf[:-1]).square().sum()
        cs = self.c / self.scene
        v = cs[1:] - cs[:-1]
        e_tr = cfg.w_transl * (v.square().sum() + (v[1:] - v[:-1]).square().sum())
        e_k = cfg.w_kappa * self.kappa.square().mean()
        out["terms"] = {"reprojection": float(e_proj / max(self.M, 1)), "depth": float(e_depth / max(self.M, 1)),
                        "pointmap": float(e_pm), "fl": float(e_fl), "transl": float(e_tr), "kappa": float(e_k)}
        out["total"] = float(total + e_pm + e_fl + e_tr + e_k)
        return out

    # -------------------------------------------------------------- normal equations
    def _index(self):
        """Active-variable layout: per frame (w 3, c 3, phi 1, kappa G) with frame 0's pose fixed; per edge 7."""
        F, G = self.F, self.G
        nf = 7 + G
        full = torch.arange(F * nf + 7 * len(getattr(self, "Re", [])))
        active = torch.ones_like(full, dtype=torch.bool)
        active[:6] = False
        if not self.optimize_focal:
            active[6:F * nf:nf] = False
        return nf, active

    def normal_equations(self, res: dict):
        cfg = self.cfg
        F, G = self.F, self.G
        nf, active = self._index()
        n = active.numel()
        Hm = torch.zeros(n, n, dtype=torch.float64)
        g = torch.zeros(n, dtype=torch.float64)
        M = max(self.M, 1)
        # --- correspondences: 4 residuals, 17 local unknowns; lambda eliminated per match
        r, J = res["match"], res["match_J"]
        s2 = r[:, :2].square().sum(1)
        wp = _cauchy_w(s2)
        wd = cfg.w_depth * torch.stack((_huber_w(r[:, 2]), _huber_w(r[:, 3])), 1)
        Wr = torch.cat((wp[:, None].expand(-1, 2) * 2.0, wd), 1) / M  # d/dr of the objective ~ W r (IRLS)
        # expand delta columns onto the kappa nodes: local columns -> (frame i: w c phi kappa[G]) (frame j: ...) lam
        Ji = torch.cat((J[:, :, 0:7], J[:, :, 7:8] * self.bp[:, None, :]), 2)
        Jj = torch.cat((J[:, :, 8:15], J[:, :, 15:16] * self.bq[:, None, :]), 2)
        Jg = torch.cat((Ji, Jj), 2)  # [M, 4, 2 nf]
        Jl = J[:, :, 16]  # [M, 4]
        WJg = Jg * Wr[:, :, None]
        hll = (Jl * Jl * Wr).sum(1) + 1e-9  # [M]
        bgl = (WJg * Jl[:, :, None]).sum(1)  # [M, 2 nf]
        gg = (WJg * r[:, :, None]).sum(1)  # [M, 2 nf]
        gl = (Jl * Wr * r).sum(1)  # [M]
        self._elim = (hll, bgl, gl)
        for pid, (i, j) in enumerate(self.pairs):
            sel = slice(int(self.offsets[pid]), int(self.offsets[pid + 1]))
            idx = torch.cat((torch.arange(i * nf, (i + 1) * nf), torch.arange(j * nf, (j + 1) * nf)))
            A = Jg[sel].reshape(-1, 2 * nf)
            WA = WJg[sel].reshape(-1, 2 * nf)
            blk = A.T @ WA - (bgl[sel] / hll[sel, None]).T @ bgl[sel]
            Hm[idx[:, None], idx[None, :]] += blk
            g[idx] += gg[sel].sum(0) - (bgl[sel] * (gl[sel] / hll[sel])[:, None]).sum(0)
        # --- point maps: 3 residuals, 15 local unknowns, one GEMM per edge view
        if self.pm:
            rr, Jp = res["pm"], res["pm_J"]
            pm = self.pmb
            a = cfg.w_pm / (self.scene * self.pm_wsum) * pm["w"] / rr.norm(dim=1).clamp(min=1e-6 * self.scene)
            Jf = torch.cat((Jp[:, :, 0:7], Jp[:, :, 7:8] * pm["b"][:, None, :], Jp[:, :, 8:15]), 2)
            WJ = Jf * a[:, None, None]
            for k, grp in enumerate(self.pm):
                sel = slice(int(self.pm_offsets[k]), int(self.pm_offsets[k + 1]))
                f, e = grp["f"], grp["e"]
                idx = torch.cat((torch.arange(f * nf, (f + 1) * nf), F * nf + 7 * e + torch.arange(7)))
                A = Jf[sel].reshape(-1, nf + 7)
                WA = WJ[sel].reshape(-1, nf + 7)
                Hm[idx[:, None], idx[None, :]] += A.T @ WA
                g[idx] += WA.T @ rr[sel].reshape(-1)
        # --- temporal terms (exact quadratics in the centres; L_fl by Gauss-Newton in phi) and the kappa ridge
        d1 = torch.zeros(F - 1, F, dtype=torch.float64)
        d1[torch.arange(F - 1), torch.arange(F - 1)] = -1.0
        d1[torch.arange(F - 1), torch.arange(1, F)] = 1.0
        if cfg.w_transl > 0 and F > 1:
            L = torch.cat((d1, d1[1:] - d1[:-1]), 0)
            LtL = 2.0 * cfg.w_transl * (L.T @ L) / self.scene ** 2
            for k in range(3):
                t = nf * torch.arange(F) + 3 + k
                Hm[t[:, None], t[None, :]] += LtL
                g[t] += LtL @ self.c[:, k]
        if cfg.w_fl > 0 and F > 1:
            lf = torch.exp(self.phi) / max(self.H, self.W)
            Jf = d1 * lf[None, :]
            t = nf * torch.arange(F) + 6
            Hm[t[:, None], t[None, :]] += 2.0 * cfg.w_fl * (Jf.T @ Jf)
            g[t] += 2.0 * cfg.w_fl * (Jf.T @ (d1 @ lf))
        if cfg.w_kappa > 0:
            kidx = (nf * torch.arange(F)[:, None] + 7 + torch.arange(G)[None]).flatten()
            Hm[kidx, kidx] += 2.0 * cfg.w_kappa / (F * G)
            g[kidx] += 2.0 * cfg.w_kappa / (F * G) * self.kappa.flatten()
        return Hm[active][:, active], g[active], active

    def step(self, res: dict, damping: float) -> torch.Tensor:
        if "match_J" not in res or res["match_J"] is None:
            res.update(self.residuals(jacobian=True))
        Hm, g, active = self.normal_equations(res)
        diag = Hm.diagonal().clamp(min=1e-12 * float(Hm.diagonal().abs().max()))
        delta = torch.linalg.solve(Hm + torch.diag(damping * diag + 1e-12 * float(diag.max())), -g)
        full = torch.zeros(active.numel(), dtype=torch.float64)
        full[active] = delta
        return full

    def apply(self, full: torch.Tensor) -> dict:
        """Apply an increment (and back-substitute the correspondence depths); returns the previous state."""
        saved = {k: getattr(self, k).clone() for k in ("R", "c", "phi", "kappa", "lam")}
        if self.pm:
            saved.update({k: getattr(self, k).clone() for k in ("Re", "te", "se")})
        F, G = self.F, self.G
        nf = 7 + G
        fr = full[: F * nf].view(F, nf)
        hll, bgl, gl = self._elim
        dg = torch.cat((fr[self.mi], fr[self.mj]), 1)  # [M, 2 nf]
        dl = -(gl + (bgl * dg).sum(1)) / hll
        self.R = roma.rotvec_to_rotmat(fr[:, :3]) @ self.R
        self.c = self.c + fr[:, 3:6]
        self.phi = self.phi + fr[:, 6]
        self.kappa = self.kappa + fr[:, 7:]
        self.lam = self.lam + dl
        if self.pm:
            ed = full[F * nf:].view(-1, 7)
            self.Re = roma.rotvec_to_rotmat(ed[:, :3]) @ self.Re
            self.te = self.te + ed[:, 3:6]
            self.se = self.se + ed[:, 6]
        return saved

    def restore(self, saved: dict) -> None:
        for k, v in saved.items():
            setattr(self, k, v)

    def init_depths(self, iters: int = 5) -> None:
        """Correspondence depths by 1-D Gauss-Newton on the match residuals with everything else fixed."""
        cfg = self.cfg
        for _ in range(iters):
            r, J = _match_block(*self._match_args())
            J = J[:, :, 16]
            W = torch.cat((_cauchy_w(r[:, :2].square().sum(1))[:, None].expand(-1, 2) * 2.0,
                           cfg.w_depth * torch.stack((_huber_w(r[:, 2]), _huber_w(r[:, 3])), 1)), 1)
            dl = -(J * W * r).sum(1) / ((J * J * W).sum(1) + 1e-9)
            self.lam = self.lam + dl.clamp(-1.0, 1.0)


# ---------------------------------------------------------------------------------------------- read-out
def cloud_reprojection_px(recon: Reconstruction, matches: list, match_scale: float = 1.0) -> float | None:
    """Median reprojection error, in pixels of the reconstruction's frames, of each frame's points into the other
    frames: for every correspondence ``(i, j, p, q)`` (in pixels of frames ``match_scale`` times larger), frame
    ``i``'s point at ``p`` (its depth map, bilinear) is projected into frame ``j`` and compared with ``q``, and the
    other way round. ``None`` without correspondences. Points behind a camera count as infinitely far."""
    if not matches:
        return None
    depth = recon.depth.double().cpu()
    K = recon.K.double().cpu()
    c2w = recon.cam2world.double().cpu()
    errs = []
    for i, j, a, b in matches:
        for s, t, uv_s, uv_t in ((i, j, a, b), (j, i, b, a)):
            uv = torch.as_tensor(uv_s, dtype=torch.float64) / match_scale
            d = sample_bilinear(depth[s], uv)
            ray = torch.stack(((uv[:, 0] - K[s, 0, 2]) / K[s, 0, 0], (uv[:, 1] - K[s, 1, 2]) / K[s, 1, 1],
                               torch.ones(len(uv), dtype=torch.float64)), -1)
            X = (d[:, None] * ray) @ c2w[s, :3, :3].T + c2w[s, :3, 3]
            Y = (X - c2w[t, :3, 3]) @ c2w[t, :3, :3]
            z = Y[:, 2]
            proj = torch.stack((K[t, 0, 0] * Y[:, 0] / z + K[t, 0, 2], K[t, 1, 1] * Y[:, 1] / z + K[t, 1, 2]), -1)
            err = (proj - torch.as_tensor(uv_t, dtype=torch.float64) / match_scale).norm(dim=1)
            errs.append(torch.where(z > 0, err, torch.full_like(err, float("inf"))))
    return float(torch.cat(errs).median())


def levenberg_marquardt(prob, cfg: JointConfig, progress=None) -> tuple[dict, float, int]:
    """Levenberg-Marquardt iterations on ``prob`` (``_Problem`` here, ``windows._SparseProblem`` for long videos).

    ``prob`` provides ``init_depths()``, ``residuals()`` (a dict with ``total``), ``step(residuals, damping)``,
    ``apply(step) -> saved`` and ``restore(saved)``. A step that does not lower the total is undone and the damping
    multiplied by 10 (stop after 5 rejections in a row); an accepted one divides it by 10. Stops after
    ``cfg.niter`` accepted steps or a relative gain below ``cfg.rtol``.

    Args:
        prob: the problem, modified in place.
        cfg: :class:`JointConfig` (``niter``, ``rtol``).
        progress: optional ``(fraction, description)`` callback after each accepted step.

    Returns:
        ``(residuals, first total, accepted steps)``.
    """
    prob.init_depths()
    res = prob.residuals()
    first = res["total"]
    damping, it, rejected = 1e-4, 0, 0
    while it < cfg.niter:
        saved = prob.apply(prob.step(res, damping))
        new = prob.residuals()
        if not math.isfinite(new["total"]) or new["total"] > res["total"]:
            prob.restore(saved)
            damping *= 10.0
            rejected += 1
            if rejected > 4:
                break
            continue
        gain = res["total"] - new["total"]
        res, it, rejected = new, it + 1, 0
        damping = max(damping / 10.0, 1e-8)
        if progress is not None:
            progress(it / cfg.niter, f"global alignment step {it}")
        if gain < cfg.rtol * abs(res["total"]):
            break
    return res, first, it


def joint_align(recon: Reconstruction, frames: torch.Tensor | None, pointmaps: PairwisePointmaps | None = None,
                config: JointConfig | None = None, *, known_K: bool = False, matches: list | None = None,
                match_scale: float = 1.0) -> tuple[Reconstruction, dict]:
    """Correspondence-aware global alignment (module docstring), starting from the point-map alignment ``recon``.

    Args:
        recon: the point-map alignment's :class:`~jog3r.types.Reconstruction` (``F`` frames of ``H x W``): its
            intrinsics (focal, pixel aspect, principal point), depth (the prior) and scale.
        frames: ``[F, 3, H', W']`` float RGB in ``[0, 1]`` to match on, with the model's field of view and at least
            its size (:func:`jog3r.align.refine.matching_frames`); may be ``None`` when ``matches`` are given.
        pointmaps: the pairwise point maps behind ``recon`` for the point-map term (``None``: term off).
        config: :class:`JointConfig`.
        known_K: the intrinsics were given by the user: the focals are not optimised.
        matches: correspondences to use instead of matching ``frames``: ``(i, j, uv_i, uv_j)`` with ``i < j`` and
            ``uv`` ``[M, 2]`` pixels (centres at ``+0.5``) of frames ``match_scale`` times the model's size, as
            :func:`jog3r.align.refine.match_frames` returns them.
        match_scale: see ``matches``.

    Returns:
        ``(reconstruction, info)``: new ``cam2world``, ``K``, ``depth`` (the model's depth times the fitted
        correspondence-consistent correction) and ``pts3d`` (``conf``, ``colors`` kept); ``info`` with ``method``,
        ``status`` (``"aligned"`` or ``"fallback: ..."``, then ``recon`` is returned unchanged), ``match_size``,
        ``pairs``, ``matches``, ``iterations``, ``loss`` (first / last), ``terms``, ``reprojection_px`` (median of
        the optimised correspondences, source pixels), ``cloud_reprojection_px`` (:func:`cloud_reprojection_px`
        of the result; the same for the input in ``cloud_reprojection_px_before``), the init's
        ``fallback_steps`` / ``low_parallax_steps`` / ``weak_steps`` / ``depth_sign_flips`` (pairs whose translation
        sign the model's depth turned, ``RefineConfig.depth_sign``) (and ``rotation_pairs`` /
        ``rotation_residual_deg`` of the rotation averaging, when on) and ``seconds`` per stage.

    Raises:
        ValueError: ``frames`` of the wrong shape or field of view, or not finite floating-point RGB.
    """
    with torch_threads(1):  # small tensors: a second thread only costs (LM 38.8 s -> 1.0 s on the busy 2 cores)
        return _joint_align(recon, frames, pointmaps, config, known_K=known_K, matches=matches,
                            match_scale=match_scale)


def _joint_align(recon: Reconstruction, frames: torch.Tensor | None, pointmaps: PairwisePointmaps | None = None,
                config: JointConfig | None = None, *, known_K: bool = False, matches: list | None = None,
                match_scale: float = 1.0) -> tuple[Reconstruction, dict]:
    """Body of :func:`joint_align` (run single-threaded)."""
    cfg = config or JointConfig()
    num, h, w = recon.depth.shape
    times: dict[str, float] = {}
    if matches is not None:
        scale = float(match_scale)
        size = [round(h * scale), round(w * scale)]
    else:
        frames = check_matching_frames(frames, num, h, w)
        scale = frames.shape[-1] / w
        size = list(frames.shape[-2:])
        t0 = time.perf_counter()
        matches = match_frames(frames, cfg.matching)
        times["match"] = time.perf_counter() - t0
    info: dict = {"method": METHOD_JOINT, "match_size": size, "pairs": len(matches),
                  "matches": int(sum(len(m[2]) for m in matches))}
    info["cloud_reprojection_px_before"] = cloud_reprojection_px(recon, matches, scale)
    if not (bool(torch.isfinite(recon.cam2world).all()) and bool(torch.isfinite(recon.K).all())):
        return recon, {**info, "status": "fallback: the point-map alignment is not finite", "seconds": times}
    if not any(j == i + 1 for i, j, *_ in matches):
        logger.warning("no consecutive frames have enough correspondences: the cameras are the point maps' alone")
        return recon, {**info, "status": "fallback: no correspondences (texture-less or unrelated frames?)",
                       "cloud_reprojection_px": info["cloud_reprojection_px_before"], "seconds": times}
    t0 = time.perf_counter()
    poses = pair_poses(recon, matches, cfg.matching, match_scale=scale)
    c2w, chain_info = chain_cameras(recon, poses)
    if cfg.matching.rotation_averaging:
        c2w[:, :3, :3], rot_info = average_rotations(c2w[:, :3, :3], poses,
                                                     match_weights=cfg.matching.rotation_match_weights)
        chain_info.update(rot_info)
    c2w[:, :3, 3], centre_info = solve_centres(recon, c2w[:, :3, :3], poses, cfg.matching)
    info.update(chain_info)
    info.update(centre_info)
    counts = {(i, j): len(a) for i, j, a, _ in matches}
    info["weak_steps"] = sum(1 for k in range(num - 1) if poses.get((k, k + 1), {}).get("kind") == "essential"
                             and counts[(k, k + 1)] < cfg.matching.weak_matches)
    if not np.isfinite(c2w).all():
        c2w = recon.cam2world.double().cpu().numpy()
    times["init"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    prob = _Problem(recon, pointmaps, matches, scale, c2w, cfg, known_K)
    res, first, it = levenberg_marquardt(prob, cfg)
    times["optimize"] = time.perf_counter() - t0
    cam2world = torch.eye(4, dtype=torch.float64).repeat(num, 1, 1)
    cam2world[:, :3, :3], cam2world[:, :3, 3] = prob.R, prob.c
    K = recon.K.double().cpu().clone()
    fx_fy = prob.K4(torch.arange(num))
    K[:, 0, 0], K[:, 1, 1] = fx_fy[:, 0], fx_fy[:, 1]
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5,
                            indexing="ij")
    basis = _grid_basis(torch.stack((xx.flatten(), yy.flatten()), -1), (h, w), cfg.grid)  # [H W, G]
    depth = torch.exp(prob.log_d_pm + (prob.kappa @ basis.T).view(num, h, w))
    if not (torch.isfinite(cam2world).all() and torch.isfinite(depth).all() and torch.isfinite(K).all()):
        logger.warning("correspondence alignment diverged: keeping the point-map alignment")
        return recon, {**info, "status": "fallback: non-finite result", "seconds": times}
    dev, dt = recon.cam2world.device, recon.cam2world.dtype
    cam2world, K, depth = cam2world.to(dev, dt), K.to(dev, dt), depth.to(dev, dt)
    out = dataclasses.replace(recon, cam2world=cam2world, K=K, depth=depth,
                              pts3d=depth_to_world_points(depth, K, cam2world))
    rp = res["match"][:, :2].norm(dim=1) * cfg.sigma_px
    info.update(status="aligned", iterations=it, loss=[first, res["total"]], terms=res["terms"],
                reprojection_px=float(rp.median()), cloud_reprojection_px=cloud_reprojection_px(out, matches, scale),
                seconds=times)
    return out, info


__all__ = ["JointConfig", "METHOD_JOINT", "METHOD_PAPER", "cloud_reprojection_px", "joint_align"]
