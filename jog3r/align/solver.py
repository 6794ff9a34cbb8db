"""Optimisation helpers of :func:`jog3r.align.fit.fit`: the loss history, early stopping and the alternating
solver (closed-form depth and edge updates interleaved with Adam steps on the cameras).
"""

from __future__ import annotations

import logging
import time

import torch

from jog3r.align.aligner import GlobalAligner
from jog3r.align.config import AlignConfig

__all__ = ["History", "should_stop", "alternating_loop"]

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
