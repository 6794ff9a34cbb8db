"""Global alignment: ``PairwisePointmaps [1, P, H, W, 3]`` -> ``Reconstruction`` (cameras, depths, points).

* :func:`jog3r.align.fit.fit` with an :class:`~jog3r.align.config.AlignConfig` from ``ALIGN_PRESETS``: DUSt3R's
  global alignment (REFERENCE B.5) with JOG3R's temporal regularisers ``L_fl``, ``L_transl`` (paper App. A) - the
  paper's V2C (``video_to_cameras(matches="none")``).
* :func:`jog3r.align.joint.joint_align` (the V2C default, not the paper's): the point maps and SIFT correspondences
  at the source resolution in one robust objective over cameras, focals and per-frame depth, started from the
  two-view geometry of :mod:`jog3r.align.refine`.
* :func:`jog3r.align.order.order_by_matches`: the order of an unordered photo set, from its match graph.
"""

from jog3r.align.aligner import GlobalAligner
from jog3r.align.config import ALIGN_PRESETS, AlignConfig, InitMethod, Schedule, Solver
from jog3r.align.fit import fit
from jog3r.align.joint import METHOD_JOINT, METHOD_PAPER, JointConfig, joint_align
from jog3r.align.order import order_by_matches
from jog3r.align.refine import RefineConfig

__all__ = ["ALIGN_PRESETS", "AlignConfig", "GlobalAligner", "InitMethod", "JointConfig", "METHOD_JOINT", "METHOD_PAPER",
           "Schedule", "RefineConfig", "Solver", "fit", "joint_align", "order_by_matches"]
