"""Global alignment: ``PairwisePointmaps [1, P, H, W, 3]`` -> ``Reconstruction`` (cameras, depths, points).

DUSt3R's global alignment (REFERENCE B.5) with JOG3R's temporal regularisers ``L_fl``, ``L_transl`` (paper App. A).
Entry point: :func:`jog3r.align.fit.fit` with an :class:`~jog3r.align.config.AlignConfig` from ``ALIGN_PRESETS``.
"""

from jog3r.align.aligner import GlobalAligner
from jog3r.align.config import ALIGN_PRESETS, AlignConfig, InitMethod, Schedule, Solver
from jog3r.align.fit import fit

__all__ = ["ALIGN_PRESETS", "AlignConfig", "GlobalAligner", "InitMethod", "Schedule", "Solver", "fit"]
