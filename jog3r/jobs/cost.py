"""How fast this machine is right now, for the time estimates quoted before a V2C run (issue 16).

:meth:`jog3r.pipeline.JOG3RPipeline.estimate_cost` and :func:`jog3r.long_v2c.estimate_long_cost` sum per-stage
seconds measured by ``benchmarks/estimate_cost.py`` and divided by the :func:`machine_speed` measured alongside,
i.e. seconds of a quiet 2-core machine like the one they were measured on (``speed = 1``). Multiplying by the
:func:`machine_speed` of the machine that will run the job scales them to its CPU and its current load: the factor is
the wall time of a fixed, seeded workload of the run's kinds (SIFT on a 384 x 576 image, a float32 matrix product,
a sparse float64 solve; about 0.1 s on that machine when quiet) divided by the same workload's CPU time measured
there (:data:`REFERENCE_S`). It is a snapshot: load that comes or goes during the run is not foreseen.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import torch

REFERENCE_S = 0.094
"""CPU seconds (``time.process_time``) of one :func:`_workload` on the 2-core machine the stage costs were measured on
(median of 15 runs at a load average of ~4, where the median wall time was 0.20 s)."""


COST = {
    "params_ref": 7.35, "load": 0.11, "prepare": 0.025, "vae_encode": 8.0, "stdit": 0.51, "decoder": 0.66,
    "align": 7.4, "export": 3.4, "sift": 0.21, "sift_pair": 0.07, "init_pair": 0.0026, "optimize_pair": 0.0038,
    "optimize_n0": 32.0, "memory_base": 975.0, "memory_megapix": 1300.0, "memory_params": 4.0,
    "tracks": 0.42, "long_init_pair": 0.003, "long_optimize_pair": 0.014,
    "long_memory_base": 1050.0, "long_memory_frame": 2.5,
}
"""Constants of :meth:`jog3r.pipeline.JOG3RPipeline.estimate_cost` and :func:`jog3r.long_v2c.estimate_long_cost`, in
seconds of the quiet 2-core reference machine (``speed = 1``) and MB of peak RSS. Where they come from (issue 16,
``docs/notes/align.md``, "Cost estimate"):

* per model-size megapixel of the run (0.39 for 16 frames of 128 x 192): ``vae_encode``, ``stdit``, ``decoder``,
  ``align`` (the point-map alignment): CPU seconds of one thread on a 16-frame window of the synthetic walkthrough
  (3.15 / 0.20 / 0.26 / 2.90 s); ``stdit`` and ``decoder`` also times ``parameters / params_ref`` (M).
  ``prepare`` and ``export``: a 16-frame ``jog3r v2c`` of the walkthrough at a load average of 13, wall seconds
  divided by the :func:`machine_speed` measured around it (18.8; the run's CPU / wall ratio gave the same within
  7 %). That run's two-thread torch stages took far longer than the speed predicts (the point-map alignment 466 s
  wall = 24.8 s at speed 1, the STDiT 1.6 s, the decoder 3.8 s): on oversubscribed cores a second torch thread
  spin-waits, which the single-threaded calibration does not see;
* ``load``: per source megapixel decoded (twice with correspondences), the same run;
* ``sift``: per frame and SIFT megapixel (:func:`match_cost_units`), ``sift_pair``: per matched pair and squared
  SIFT megapixel (the descriptor matching grows with the keypoints: 0.066-0.074 s on the real fox frames, 0.012 on
  the sparse synthetic ones; the real value is used): CPU seconds of ``cv2`` SIFT on 5 frames, one thread;
* ``init_pair``, ``optimize_pair`` (times ``1 + F / optimize_n0``): per matched pair, the same 16-frame run;
* ``memory_*``: MB of peak RSS, ``base + megapix * frames' MP + params * M`` plus the source frames (float32),
  the base raised to the 1538 MB the 16-frame run peaked at;
* long runs: ``tracks`` per frame and matched megapixel (KLT, 800 corners), ``long_init_pair`` and
  ``long_optimize_pair`` per matched pair (SIFT pairs up to 3 apart plus the tracks' pairs 1, 2, 4, 8, 16 apart):
  refitted on 2026-12-05 to the README's benchmark at 60 / 120 / 240 / 480 frames (wall / speed) after the sparse
  solve became banded (``jog3r.align.windows``): the global solve per pair was 0.020 / 0.009 / 0.017 / 0.012 s, no
  trend, so linear in N (before, 11 s at 60 frames and 333 s at 240, ``N ** 2.6``); the tracks took 0.34-0.48 s per frame and megapixel (the old 0.05 quoted 0.2 s for 2.2 s);
  ``long_memory_base + long_memory_frame * N``: that benchmark's peak RSS (1.16 / 1.25 / 1.59 GiB at 60 / 120 /
  240 frames, source frames streamed).
"""


def match_cost_units(height: int, width: int) -> float:
    """Megapixels SIFT detects on for frames of ``height x width``: the frames upscaled by the default
    correspondence stage's factor (:meth:`jog3r.align.refine.RefineConfig.upsample_for`)."""
    from jog3r.align.refine import RefineConfig

    up = RefineConfig().upsample_for((height, width))
    return up * up * height * width / 1e6


def matched_pairs(num_frames: int) -> int:
    """Frame pairs the default correspondence stage matches: every pair up to
    :attr:`jog3r.align.refine.RefineConfig.window` frames apart."""
    from jog3r.align.refine import RefineConfig

    window = RefineConfig().window
    return sum(min(window, num_frames - 1 - i) for i in range(num_frames))


def sift_seconds(num_frames: int, match_size: tuple[int, int]) -> float:
    """Seconds (at ``speed = 1``) of the default correspondence stage's SIFT on ``num_frames`` frames of
    ``match_size = (H', W')``: detection per frame, descriptor matching per :func:`matched_pairs` pair."""
    detect = match_cost_units(*match_size)
    return num_frames * detect * COST["sift"] + matched_pairs(num_frames) * detect ** 2 * COST["sift_pair"]


def _workload(rng: np.random.Generator) -> float:
    """One fixed unit of work of the kinds a V2C run does (SIFT, a dense float32 product, a sparse solve)."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    from jog3r.align.solver import torch_threads

    img = cv2.GaussianBlur((rng.random((384, 576)) * 255).astype(np.uint8), (0, 0), 1.5)
    kp = cv2.SIFT_create(nfeatures=2000).detect(img, None)
    with torch_threads(1):
        a = torch.from_numpy(rng.standard_normal((384, 384), dtype=np.float32))
        for _ in range(8):
            a = torch.tanh(a @ a * 0.05)
    n, band = 4000, (0, 1, 2, 6, 12, 24)  # block-banded, as the long run's normal equations
    vals = [np.full(n - k, 8.0 if k == 0 else -1.0) for k in band]
    m = sp.diags(vals + vals[1:], list(band) + [-k for k in band[1:]], format="csc")
    x = spla.spsolve(m, rng.standard_normal(n))
    return float(len(kp)) + float(a.sum()) + float(x.sum())


def machine_speed(repeats: int = 3) -> float:
    """Slowness of this machine now relative to the quiet one the estimates are for: ``1.0`` there, ``2.0`` when
    the same work takes twice the wall time (a slower CPU, or other jobs on the cores).

    Args:
        repeats: runs of the ~0.1 s workload; the median wall time is used.

    Returns:
        ``median wall seconds / REFERENCE_S``, clipped to ``[0.25, 100]``; a float (dimensionless).
    """
    rng = np.random.default_rng(0)
    walls = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        _workload(rng)
        walls.append(time.perf_counter() - start)
    return float(np.clip(np.median(walls) / REFERENCE_S, 0.25, 100.0))


def workload_cpu_seconds(repeats: int = 15) -> tuple[float, float]:
    """``(median CPU s, median wall s)`` of the workload: how :data:`REFERENCE_S` is measured."""
    rng = np.random.default_rng(0)
    cpu, wall = [], []
    for _ in range(repeats):
        c, w = time.process_time(), time.perf_counter()
        _workload(rng)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return float(np.median(cpu)), float(np.median(wall))


__all__ = ["COST", "REFERENCE_S", "match_cost_units", "matched_pairs", "machine_speed", "sift_seconds",
           "workload_cpu_seconds"]
