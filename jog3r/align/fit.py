"""``fit``: pairwise point maps -> :class:`~jog3r.types.Reconstruction`, the global-alignment entry point.

Steps: (1) validate inputs, (2) build the :class:`~jog3r.align.aligner.GlobalAligner`, (3) initialise
(:mod:`jog3r.align.init`), (4) optimise (DUSt3R's Adam loop, or the Gauss-Newton solver of :mod:`jog3r.align.gauss_newton`), (5) read out cameras, depths and points. Conventions: :mod:`jog3r.geometry.camera`.
"""

from __future__ import annotations

import logging
import time

import torch

from jog3r.align.aligner import GlobalAligner
from jog3r.align.config import AlignConfig, InitMethod, Solver
from jog3r.align.gauss_newton import gauss_newton_loop
from jog3r.align.init import init_known_poses, init_mst
from jog3r.align.solver import History, adam_loop
from jog3r.types import PairwisePointmaps, Reconstruction

__all__ = ["fit"]

logger = logging.getLogger(__name__)


def fit(
    pointmaps: PairwisePointmaps,
    images: torch.Tensor | None = None,
    config: AlignConfig | None = None,
    *,
    K: torch.Tensor | None = None,
    cam2world: torch.Tensor | None = None,
) -> tuple[Reconstruction, dict[str, list[float]]]:
    """Globally align one video's pairwise point maps (DUSt3R global alignment + JOG3R eq. 3-4).

    Args:
        pointmaps: pairwise point maps with a batch of 1 (``[1, P, H, W, 3]`` ...); ``edges`` from
            :func:`jog3r.recon.pairs.make_edges`, frames numbered ``0..F-1`` in video order.
        images: ``[F, 3, H, W]`` float RGB in ``[0, 1]`` for the colours, or ``None`` (grey 0.5).
        config: :class:`~jog3r.align.config.AlignConfig` (default: DUSt3R's recipe, see ``ALIGN_PRESETS``).
        K: ``[F, 3, 3]`` known intrinsics in pixels, kept fixed; ``None`` = estimate them.
        cam2world: ``[F, 4, 4]`` known cameras, required by (and only used with) ``init=known_poses``.

    Returns:
        ``(reconstruction, history)``: the :class:`~jog3r.types.Reconstruction` (``conf`` = per-pixel maximum raw
        confidence over the edges containing the frame, DUSt3R ``im_conf``) and a dict of equally long lists
        ``iter``, ``loss`` (total objective), ``pointmap``, ``fl``, ``transl`` (unweighted terms), ``lr``, ``time``
        (seconds since the call started); entry 0 is the state right after the init, the last one the final state.

    Raises:
        ValueError: on malformed inputs (see :class:`~jog3r.align.aligner.GlobalAligner`), images of the wrong
            shape, or ``init=known_poses`` without ``cam2world``.
    """
    cfg = config if config is not None else AlignConfig()
    start = time.perf_counter()
    history = History(start)
    with torch.autocast(device_type=pointmaps.pts3d.device.type, enabled=False):
        aligner = GlobalAligner(pointmaps, cfg, K=K)
        F, H, W = aligner.num_frames, aligner.H, aligner.W
        if images is not None and tuple(images.shape) != (F, 3, H, W):
            raise ValueError(f"images must be [F={F}, 3, H={H}, W={W}], got {tuple(images.shape)}")
        if cfg.init is InitMethod.KNOWN_POSES:
            if cam2world is None:
                raise ValueError("init=known_poses needs the cam2world argument")
            init_known_poses(aligner, cam2world.to(aligner.grid.device))
            aligner.quat.requires_grad_(False)
            aligner.trans.requires_grad_(False)
        else:
            init_mst(aligner)
        if cfg.solver is Solver.ADAM:
            adam_loop(aligner, history)
        else:
            gauss_newton_loop(aligner, history)
        with torch.no_grad():
            c2w = aligner.cam2world().detach()
            depth = aligner.depth().detach()
            pts3d = aligner.pts3d().detach()
            if not (torch.isfinite(c2w).all() and torch.isfinite(pts3d).all()):
                raise FloatingPointError("global alignment produced non-finite cameras or points")
            colors = (
                images.detach().float().permute(0, 2, 3, 1).clamp(0, 1).to(depth.device)
                if images is not None
                else torch.full((F, H, W, 3), 0.5, device=depth.device)
            )
            recon = Reconstruction(
                cam2world=c2w,
                K=aligner.intrinsics().detach().clone(),
                depth=depth,
                pts3d=pts3d,
                conf=aligner.im_conf.clone(),
                colors=colors,
            )
    logger.info("global alignment: %d frames, %d edges, %.2f s, loss %.6g -> %.6g", F, aligner.num_edges,
                time.perf_counter() - start, history.data["loss"][0], history.data["loss"][-1])
    return recon, history.data
