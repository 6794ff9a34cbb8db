"""``fit``: pairwise point maps -> :class:`~jog3r.types.Reconstruction`, the global-alignment entry point.

Steps: (1) validate inputs, (2) build the :class:`~jog3r.align.aligner.GlobalAligner`, (3) initialise
(:mod:`jog3r.align.init`), (4) optimise (DUSt3R's Adam loop), (5) read out cameras, depths and points. Conventions: :mod:`jog3r.geometry.camera`.
"""

from __future__ import annotations

import logging
import math
import time

import torch

from jog3r.align.aligner import GlobalAligner
from jog3r.align.config import AlignConfig, InitMethod, Schedule
from jog3r.align.init import init_known_poses, init_mst
from jog3r.align.solver import History, should_stop
from jog3r.types import PairwisePointmaps, Reconstruction

__all__ = ["fit", "learning_rate", "adam_loop"]

logger = logging.getLogger(__name__)


def learning_rate(config: AlignConfig, it: int) -> float:
    """Learning rate of iteration ``it`` (DUSt3R ``cosine_schedule`` / ``linear_schedule``, optional warm-up).

    Args:
        config: gives ``lr``, ``lr_min``, ``niter``, ``schedule``, ``warmup_iters``.
        it: 0-based iteration.

    Returns:
        the learning rate, ``t = it / niter``: cosine ``lr_min + (lr - lr_min)(1 + cos(pi t)) / 2``, linear
        ``lr + (lr_min - lr) t``, or constant ``lr``; times ``min(1, (it + 1) / warmup_iters)``.
    """
    t = it / max(config.niter, 1)
    if config.schedule is Schedule.COSINE:
        lr = config.lr_min + (config.lr - config.lr_min) * (1.0 + math.cos(math.pi * t)) / 2.0
    elif config.schedule is Schedule.LINEAR:
        lr = config.lr + (config.lr_min - config.lr) * t
    else:
        lr = config.lr
    if config.warmup_iters > 0:
        lr *= min(1.0, (it + 1) / config.warmup_iters)
    return lr


def adam_loop(aligner: GlobalAligner, history: History) -> None:
    """DUSt3R's ``global_alignment_loop``: Adam (betas ``config.betas``) on every trainable unknown.

    Camera and pairwise pose/scale parameters use ``lr * pose_lr_scale`` (1 in DUSt3R's recipe). Stops early when
    :func:`jog3r.align.solver.should_stop` says so.

    Args:
        aligner: initialised module (optimised in place).
        history: log appended to at every evaluation (iteration ``n`` = loss after ``n`` updates).
    """
    cfg = aligner.config
    pose_names = {"quat", "trans", "pw_quat", "pw_trans", "pw_log_scale"}
    named = [(n, p) for n, p in aligner.named_parameters() if p.requires_grad]
    if not named:
        history.log(aligner, 0, 0.0)
        return
    groups = [
        {"params": [p for n, p in named if n not in pose_names], "scale": 1.0},
        {"params": [p for n, p in named if n in pose_names], "scale": cfg.pose_lr_scale},
    ]
    groups = [g for g in groups if g["params"]]
    optimizer = torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas)
    for it in range(cfg.niter):
        lr = learning_rate(cfg, it)
        for g in optimizer.param_groups:
            g["lr"] = lr * g["scale"]
        optimizer.zero_grad(set_to_none=True)
        terms = aligner.loss_terms()
        terms["total"].backward()
        history.append(it, terms, lr)
        if should_stop(history, cfg, it):
            logger.info("early stop at iteration %d (loss %.6g)", it, float(terms["total"]))
            history.log(aligner, it, 0.0)
            return
        optimizer.step()
    history.log(aligner, cfg.niter, 0.0)


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
        adam_loop(aligner, history)
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
