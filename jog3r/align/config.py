"""Configuration of the global alignment (:mod:`jog3r.align`): one frozen dataclass and its presets."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

__all__ = ["Schedule", "InitMethod", "Solver", "AlignConfig", "ALIGN_PRESETS"]


class Schedule(str, enum.Enum):
    """Learning-rate schedule over the gradient iterations (DUSt3R ``global_alignment_loop``).

    Members:
        COSINE: ``lr_min + (lr - lr_min) (1 + cos(pi t)) / 2`` with ``t = iter / niter`` (DUSt3R default).
        LINEAR: ``lr + (lr_min - lr) t``.
        CONSTANT: ``lr`` throughout.
    """

    COSINE = "cosine"
    LINEAR = "linear"
    CONSTANT = "constant"


class InitMethod(str, enum.Enum):
    """How the unknowns are initialised before optimisation (DUSt3R ``compute_global_alignment(init=...)``).

    Members:
        MST: maximum-confidence spanning tree + weighted Procrustes + Weiszfeld focal + PnP-RANSAC
            (:func:`jog3r.align.init.init_mst`).
        KNOWN_POSES: camera poses and intrinsics are given to :func:`jog3r.align.fit.fit` and kept fixed; only
            pairwise poses, scales and depths are initialised and optimised.
    """

    MST = "mst"
    KNOWN_POSES = "known_poses"


class Solver(str, enum.Enum):
    """Which optimisation loop :func:`jog3r.align.fit.fit` runs after the init.

    Members:
        ADAM: DUSt3R's loop - Adam on every unknown jointly with the learning-rate ``schedule``.
        GAUSS_NEWTON: Levenberg-Marquardt on cameras, focals and edge similarities with the per-pixel depths
            eliminated (Schur complement) and re-solved in closed form after each step
            (:class:`jog3r.align.solver.GaussNewtonSolver`).
    """

    ADAM = "adam"
    GAUSS_NEWTON = "gauss_newton"


@dataclass(frozen=True)
class AlignConfig:
    """Global-alignment settings. The defaults reproduce DUSt3R's ``PointCloudOptimizer`` recipe (REFERENCE B.5)
    plus JOG3R's temporal regularisers (paper App. A, eq. 3-4)."""

    solver: Solver = Solver.ADAM
    """Optimisation loop, see :class:`Solver`."""
    niter: int = 300
    """Maximum number of iterations: Adam steps (DUSt3R README: 300) or accepted Gauss-Newton steps."""
    lr: float = 0.01
    """Peak Adam learning rate (DUSt3R: 0.01)."""
    lr_min: float = 1e-6
    """Final learning rate of the schedule (DUSt3R: 1e-6)."""
    schedule: Schedule = Schedule.COSINE
    """Learning-rate schedule (DUSt3R: cosine)."""
    betas: tuple[float, float] = (0.9, 0.9)
    """Adam betas (DUSt3R: (0.9, 0.9))."""
    min_conf_thr: float = 3.0
    """Raw-confidence threshold for the PnP masks of the init and for :attr:`Reconstruction.conf` masks (DUSt3R: 3)."""
    base_scale: float = 0.5
    """Geometric mean to which the pairwise scales are pinned, fixing the gauge (DUSt3R: 0.5)."""
    focal_break: float = 20.0
    """The focal is stored as ``focal_break * log(f)``, which slows its Adam updates (DUSt3R: 20)."""
    w_fl: float = 0.0
    """Weight of JOG3R's ``L_fl = sum_f (l_f - l_{f+1})^2`` (eq. 3), ``l_f`` = focal / max(H, W); 0 = off."""
    w_transl: float = 0.0
    """Weight of JOG3R's ``L_transl`` (eq. 4) on the camera centres in world units; 0 = off."""
    shared_focal: bool = False
    """One focal for all frames (a video has one camera); then ``L_fl`` is identically 0."""
    known_focal: float | None = None
    """Fixed focal in pixels for every frame (not optimised); ``None`` = estimate it."""
    principal_point: tuple[float, float] | None = None
    """Principal point ``(cx, cy)`` in pixels (convention of :mod:`jog3r.geometry.camera`); ``None`` =
    ``(W / 2, H / 2)``. DUSt3R's default, written in its integer-pixel-centre convention, is ``(W/2+0.5, H/2+0.5)``
    here."""
    optimize_pp: bool = False
    """Also optimise the principal point (DUSt3R: False)."""
    pixel_aspect: float | None = 1.0
    """``fy / fx`` of the estimated intrinsics: ``1.0`` = square pixels (DUSt3R); ``None`` = estimate one value
    for the video from the point maps at the init (:func:`jog3r.geometry.camera.estimate_pixel_aspect`) and
    keep it fixed. The focal ``f`` the aligner optimises is then ``sqrt(fx * fy)``. Ignored when ``K`` is given."""
    init: InitMethod = InitMethod.MST
    """Initialisation, see :class:`InitMethod`."""
    niter_pnp: int = 10
    """RANSAC iterations of each PnP call of the init (DUSt3R ``niter_PnP``: 10)."""
    pnp_focal_search: bool = True
    """For a frame whose focal no edge gives (it is never a first view), PnP tries 21 focals (DUSt3R); False =
    start from the median of the other frames' focals and refine it (one camera per video: 11x fewer PnP calls)."""
    pnp_max_points: int = 20_000
    """PnP uses at most this many confident pixels (a regular subsample), which bounds the init time at 512x512."""
    early_stop_rtol: float = 0.0
    """Stop when the loss improved by less than this relative amount over ``early_stop_patience`` iterations;
    0 = never (DUSt3R)."""
    early_stop_patience: int = 10
    """Window, in iterations, of the early-stopping test."""
    min_iters: int = 0
    """Never stop before this many iterations."""
    warmup_iters: int = 0
    """Linear learning-rate warm-up from 0 over this many iterations (DUSt3R: none)."""
    pose_lr_scale: float = 1.0
    """Multiplier of ``lr`` for the camera and pairwise pose/scale parameters (DUSt3R: 1)."""
    depth_irls_iters: int = 2
    """``GAUSS_NEWTON``: IRLS iterations of each closed-form depth update."""
    gn_damping: float = 1e-4
    """``GAUSS_NEWTON``: initial Levenberg-Marquardt damping (relative to the Hessian diagonal)."""
    gn_hessian_pixels: int = 4096
    """``GAUSS_NEWTON``: pixels per frame (a regular subsample) used for the Hessian; the gradient uses all."""

    def replace(self, **changes) -> "AlignConfig":
        """Return a copy with ``changes`` applied (``dataclasses.replace``)."""
        return replace(self, **changes)


# Solver / init knobs of the fast preset; measured in docs/notes/align.md (benchmarks/align.py).
_FAST = AlignConfig(
    solver=Solver.GAUSS_NEWTON,
    niter=20,
    depth_irls_iters=3,
    early_stop_rtol=1e-6,
    early_stop_patience=1,
    pnp_focal_search=False,
    pnp_max_points=4096,
)
# JOG3R's temporal terms (paper App. A gives no weights). Chosen by a sweep on the golden case and three synthetic
# (1 -> f) scenes with the Gauss-Newton solver: w_transl in {0, 1e-3, 3e-3, 1e-2, 0.1, 1}, w_fl in {0, 10, 100,
# 1000}. w_transl = 1e-3 lowered the mean translation-direction error (0.81 -> 0.61 deg with w_fl = 10) at an
# unchanged rotation error; >= 1e-2 started to bias the trajectory (golden: 0.88 -> 1.56 deg). w_fl = 10 pins the
# per-frame focals together (relative focal error 7e-4 -> 6e-5); larger values change nothing more.
_TEMPORAL = {"w_transl": 1e-3, "w_fl": 10.0}

ALIGN_PRESETS: dict[str, AlignConfig] = {
    "dust3r": AlignConfig(),
    "fast": _FAST,
    "jog3r": _FAST.replace(**_TEMPORAL, pixel_aspect=None),
    "jog3r-adam": AlignConfig().replace(**_TEMPORAL),
}
"""Named settings: ``dust3r`` = DUSt3R's recipe (MST init, Adam lr 0.01, 300 iterations, cosine); ``fast`` = the same
objective solved by Gauss-Newton (:mod:`jog3r.align.gauss_newton`); ``jog3r`` = ``fast`` + the temporal terms + an
estimated pixel aspect (the V2C default: a model is never told whether its video was resized anisotropically); ``jog3r-adam`` = the paper's recipe, DUSt3R's loop + the temporal terms."""
