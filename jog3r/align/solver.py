"""Optimisation loop of DUSt3R's recipe (Adam with a cosine schedule, REFERENCE B.5) and the loss history /
early stopping shared with the Gauss-Newton solver of :mod:`jog3r.align.gauss_newton`; :func:`torch_threads`, the
thread setting the alignments run under.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time

import torch

from jog3r.align.aligner import GlobalAligner
from jog3r.align.config import AlignConfig, Schedule


@contextlib.contextmanager
def torch_threads(num: int):
    """Run the block on ``num`` torch CPU threads, then restore the caller's setting. The alignments' tensors are
    small: on busy cores a second thread spin-waits for a core (the 16-frame LM took 38.8 s on 2 threads and 1.0 s
    on 1 at a load average of ~4; see :data:`jog3r.pipeline.ALIGN_THREADS`)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(num)
    try:
        yield
    finally:
        torch.set_num_threads(threads)

__all__ = ["History", "should_stop", "learning_rate", "adam_loop"]

logger = logging.getLogger(__name__)

_KEYS = ("iter", "loss", "pointmap", "fl", "transl", "lr", "time")


class History:
    """Loss history of one alignment: a dict of equally long lists (see :func:`jog3r.align.fit.fit`).

    Args:
        start: ``time.perf_counter()`` value at which the alignment started.
    """

    def __init__(self, start: float):
        self.start = start
        self.data: dict[str, list[float]] = {k: [] for k in _KEYS}

    def append(self, it: int, terms: dict[str, torch.Tensor], lr: float) -> None:
        """Record the terms of the evaluation at iteration ``it`` with the learning rate used after it."""
        self.data["iter"].append(it)
        self.data["loss"].append(float(terms["total"].detach()))
        for k in ("pointmap", "fl", "transl"):
            self.data[k].append(float(terms[k].detach()))
        self.data["lr"].append(lr)
        self.data["time"].append(time.perf_counter() - self.start)

    @torch.no_grad()
    def log(self, aligner: GlobalAligner, it: int, lr: float) -> None:
        """Evaluate ``aligner``'s objective without gradients and record it."""
        self.append(it, aligner.loss_terms(), lr)


def should_stop(history: History, config: AlignConfig, it: int) -> bool:
    """Early-stopping test on the relative loss decrease.

    Stops when ``it >= max(min_iters, early_stop_patience)`` and the loss improved by less than
    ``early_stop_rtol * |loss|`` over the last ``early_stop_patience`` recorded evaluations.

    Args:
        history: the evaluations so far (the latest is iteration ``it``).
        config: gives ``early_stop_rtol`` (0 disables), ``early_stop_patience``, ``min_iters``.
        it: current iteration.

    Returns:
        whether to stop now.
    """
    if config.early_stop_rtol <= 0.0 or it < max(config.min_iters, config.early_stop_patience):
        return False
    losses = history.data["loss"]
    if len(losses) <= config.early_stop_patience:
        return False
    before, now = losses[-1 - config.early_stop_patience], losses[-1]
    return (before - now) < config.early_stop_rtol * abs(before)



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
            logger.info("early stop at iteration %d (loss %.6g)", it, float(terms["total"].detach()))
            history.log(aligner, it, 0.0)
            return
        optimizer.step()
    history.log(aligner, cfg.niter, 0.0)
