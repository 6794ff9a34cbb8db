"""Global alignment: ``PairwisePointmaps [1, P, H, W, 3]`` -> ``Reconstruction`` (cameras, depths, points).

DUSt3R's global alignment (REFERENCE B.5) with JOG3R's temporal regularisers ``L_fl``, ``L_transl`` (paper App. A).
Entry point: :func:`jog3r.align.fit.fit` with an :class:`~jog3r.align.config.AlignConfig` from ``ALIGN_PRESETS``.
Optional second stage (not in the paper): :func:`jog3r.align.refine.refine_with_matches`, cameras from two-view
geometry on SIFT correspondences between nearby frames (rotations chained, centres averaged) with the alignment's
intrinsics and scale.
"""

from jog3r.align.aligner import GlobalAligner
from jog3r.align.config import ALIGN_PRESETS, AlignConfig, InitMethod, Schedule, Solver
from jog3r.align.fit import fit
from jog3r.align.refine import RefineConfig, refine_with_matches

__all__ = ["ALIGN_PRESETS", "AlignConfig", "GlobalAligner", "InitMethod", "Schedule", "RefineConfig", "Solver", "fit",
           "refine_with_matches"]
