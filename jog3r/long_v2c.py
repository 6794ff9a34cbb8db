"""V2C for videos of any length (issue 16): the model on overlapping windows, one global alignment.

:func:`long_video_to_cameras` is :meth:`jog3r.pipeline.JOG3RPipeline.video_to_cameras` for ``N`` frames, ``2 <= N
<=`` :data:`MAX_FRAMES`: windows of the model's ``F`` frames with stride ``F - 4`` (:func:`jog3r.align.windows.
plan_windows`), each encoded, tapped, decoded to its ``(1 -> f)`` point maps and aligned (the paper's V2C on the
window), streamed into :class:`jog3r.align.windows.WindowedAligner` (linked through the shared frames), SIFT
correspondences between frames at most 3 apart and KLT tracks' correspondences between frames 1, 2, 4, 8 and 16 apart
(:mod:`jog3r.align.tracks`) gathered as the frames stream in, then one correspondence-aware
alignment over all frames (the default V2C's objective, sparse). One camera per sampled frame.

:func:`estimate_long_cost` quotes time and memory before a run; :func:`check_long_frame_count` is the refusal
(one line, with the limit) that both use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Iterable, Iterator

import torch

from jog3r.align.joint import METHOD_JOINT, METHOD_PAPER, JointConfig
from jog3r.align.refine import RefineConfig, matching_frames
from jog3r.align.tracks import TrackConfig, TrackStream, merge_matches
from jog3r.align.windows import STRIDE, StreamMatcher, WindowedAligner, plan_windows
from jog3r.checks import check_seed
from jog3r.pipeline import FEATURE_T_RANGE, JOG3RPipeline, Progress, V2COutput
from jog3r.types import Video

logger = logging.getLogger(__name__)

MAX_FRAMES = 600
"""Most frames one long V2C run takes (about 10 min and 2 GiB on 2 CPU cores at 128 x 192, see the README)."""
LONG_MAX_MATCHES = 200
"""Correspondences kept per frame pair in long runs (400 for short ones): bounds the global problem's size."""
LONG_TRACKS = TrackConfig(gaps=(1, 2, 4, 8, 16), max_matches=64)
"""KLT tracks of long runs: pairs 1, 2, 4, 8 and 16 frames apart, at most 64 correspondences each (200 made the
240-frame global alignment ~6x slower for the same accuracy)."""


def check_long_frame_count(num_frames: int, max_frames: int = MAX_FRAMES) -> None:
    """Raise a one-line ``ValueError`` unless ``2 <= num_frames <= max_frames``."""
    if num_frames < 2:
        raise ValueError(f"camera estimation needs at least 2 frames, the video has {num_frames}")
    if num_frames > max_frames:
        raise ValueError(f"{num_frames} frames is more than the long-video limit of {max_frames} frames "
                         f"(time and memory grow with the frame count); sample at most {max_frames} "
                         f"(--frames {max_frames}, or a stride)")


LONG_W_ROT = 1.0
"""``JointConfig.w_rot`` of long runs on a video: the constant-angular-velocity prior that carries the rotation
through frames whose correspondences vanish or mislead. On the walkthrough of ``benchmarks/v2c_long.py`` (seed
950000000, replayed global solve) the camera faces a blank, streaked wall at frames 44-52 of the 240-frame clip, where
the KLT tracks slide and one step came out 12 deg wrong; with 1.0 the worst step is 2.5 deg and mAA@30 at 60 / 120 /
240 frames goes from 87.0 / 40.1 / 48.2-51.6 to 87.4 / 45.4 / 53.3. An image folder gets none
(:func:`long_config` with ``video=False``): a photo set's steps are uneven (the instant-ngp fox: 0.1 to 44 deg
between neighbours), and there the prior lowered mAA@30 from 43.5 to 22.0 (0.1: 39.3; a Cauchy-robust form with a
2 deg scale: 29.5)."""


def long_config(config: JointConfig | None = None, *, video: bool = True) -> JointConfig:
    """The default :class:`JointConfig` of long runs: the short runs' with at most :data:`LONG_MAX_MATCHES` per pair,
    without the translation-sign check (``RefineConfig.depth_sign``) and, for a video (``video=True``; not an image
    folder), with the rotation prior :data:`LONG_W_ROT`. ``config`` is returned unchanged when given.

    The sign check is off here because, scored against the walkthrough's true cameras (``benchmarks/v2c_long.py``'s
    clips, the KLT and SIFT pairs of the global solve), it turned more right signs than it fixed at 240 frames (21
    against 6 of 1233 pairs; at 60 frames 4 against 9) and mAA@30 at 240 frames moved 54.5 -> 47.5-54.6 with it
    (``docs/notes/align.md``, session 11)."""
    if config is not None:
        return config
    return JointConfig(matching=RefineConfig(max_matches=LONG_MAX_MATCHES, depth_sign=False),
                       w_rot=LONG_W_ROT if video else 0.0)


def estimate_long_cost(pipe: JOG3RPipeline, num_frames: int, *, stride: int = STRIDE,
                       max_frames: int = MAX_FRAMES, match_size: tuple[int, int] | None = None,
                       source_size: tuple[int, int] | None = None, exports: bool = True, speed: float = 1.0) -> dict:
    """Time (s) and peak memory (MB) of :func:`long_video_to_cameras` on ``num_frames`` frames, per stage, as
    ``jog3r v2c --frames N`` runs it (:func:`jog3r.jobs.estimate_cameras` with ``long=True``).

    Stages, under the names the run reports (``V2COutput.timings`` and the job's ``load`` / ``export``): ``load``
    (the model-size frames) and ``read`` (the source frames, streamed), ``model`` and ``align`` (per window, the
    16-frame run's ``vae_encode + stdit + decoder`` and ``align`` of :meth:`JOG3RPipeline.estimate_cost`), ``match``
    (SIFT per frame, as the short run's), ``tracks`` (KLT per frame and matched megapixel), ``init`` (chain, rotation
    averaging and centres, per matched pair) and ``optimize`` (the banded sparse global solve, per matched pair),
    ``export``. Seconds of the quiet 2-core reference machine
    (:data:`jog3r.jobs.cost.COST`, fitted by ``benchmarks/estimate_cost.py``) times ``speed``
    (:func:`jog3r.jobs.cost.machine_speed` where the run happens). Memory: a base (the model, one window) plus
    what is kept per frame (model-size frames, depth, point-map samples, keypoints and tracks); the source frames
    are streamed.

    Args:
        pipe: the pipeline.
        num_frames: ``N``.
        stride, max_frames: as :func:`long_video_to_cameras`.
        match_size: ``(H', W')`` of the frames SIFT and KLT see (default: the model's size).
        source_size: ``(H, W)`` of the decoded source frames (default ``match_size``).
        exports: include ``export``.
        speed: slowness relative to the reference machine.

    Returns:
        ``{"seconds", "memory_mb", "windows", "stages": {stage: seconds}}``.

    Raises:
        ValueError: as :func:`check_long_frame_count`.
    """
    from jog3r.jobs.cost import COST, matched_pairs, sift_seconds

    check_long_frame_count(num_frames, max_frames)
    F, n = pipe.num_frames, num_frames
    windows = plan_windows(n, F, min(stride, F - 1))
    h, w = pipe.resolution
    mh, mw = match_size or (h, w)
    sh, sw = source_size or (mh, mw)
    one = pipe.estimate_cost(min(F, n), match_size=match_size, matches=False, exports=False)
    pairs = matched_pairs(n) + sum(max(0, n - g) for g in LONG_TRACKS.gaps)
    stages = {
        "load": COST["load"] * n * sh * sw / 1e6, "read": COST["load"] * n * sh * sw / 1e6,
        "model": len(windows) * sum(one["stages"][k] for k in ("vae_encode", "stdit", "decoder")),
        "align": len(windows) * one["stages"]["align"],
        "match": sift_seconds(n, (mh, mw)),
        "tracks": n * COST["tracks"] * mh * mw / 1e6,
        "init": pairs * COST["long_init_pair"],
        "optimize": pairs * COST["long_optimize_pair"],
    }
    if exports:
        stages["export"] = COST["export"] * n * h * w / 1e6
    stages = {k: round(v * speed, 2) for k, v in stages.items()}
    memory = COST["long_memory_base"] + COST["long_memory_frame"] * n
    return {"seconds": round(sum(stages.values()), 1), "memory_mb": round(memory), "windows": len(windows),
            "stages": stages}


class _WindowLogs(logging.Filter):
    """Holds back the per-window alignments' log records (``jog3r.align.*``) of a long run and reports each kind
    once at the end (with the number of windows and the first window's text), instead of one line per window
    (a 240-frame run printed ~40 such lines). Records of other loggers, and of other threads (the app's concurrent
    runs), pass."""

    def __init__(self):
        super().__init__()
        self.window = 0
        self.kinds: dict[tuple[str, str], dict] = {}
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self.thread:
            return True
        kind = self.kinds.setdefault((record.name, str(record.msg)), {"levelno": record.levelno, "windows": set(),
                                                                        "first": record.getMessage(),
                                                                        "at": self.window})
        kind["windows"].add(self.window)
        return False

    @contextlib.contextmanager
    def held(self, window: int):
        """Hold back the ``jog3r.align.*`` records logged inside the block, counted for ``window``."""
        self.window = window
        names = [n for n in logging.Logger.manager.loggerDict if n.startswith("jog3r.align.")]
        loggers = [logging.getLogger(n) for n in names]
        for lg in loggers:
            lg.addFilter(self)
        try:
            yield
        finally:
            for lg in loggers:
                lg.removeFilter(self)

    def report(self, num_windows: int) -> None:
        """One line per kind of held-back record: warnings and errors at their level, the rest at DEBUG."""
        for kind in self.kinds.values():
            n = len(kind["windows"])
            level = kind["levelno"] if kind["levelno"] >= logging.WARNING else logging.DEBUG
            logger.log(level, "%d of %d windows: %s (window %d%s)", n, num_windows, kind["first"], kind["at"] + 1,
                       "" if n == 1 else ", the first")


def _take(frames: Iterator[torch.Tensor], count: int, first: int) -> torch.Tensor:
    """The next ``count`` frames of a stream as ``[count, 3, H_s, W_s]`` float32 in ``[0, 1]`` (uint8 divided by 255).

    Raises:
        ValueError: the stream ends early (``first`` is the index of the first frame asked for).
    """
    out = []
    for k in range(count):
        frame = next(frames, None)
        if frame is None:
            raise ValueError(f"source_frames ended after {first + k} frames, the video has more")
        out.append(frame.float() / 255 if frame.dtype == torch.uint8 else frame.float())
    return torch.stack(out)


def long_video_to_cameras(pipe: JOG3RPipeline, video: Video, *,
                          source_frames: torch.Tensor | Iterable[torch.Tensor] | None = None,
                          known_K: torch.Tensor | None = None, stride: int | None = None, t: int = 2, seed: int = 0,
                          config: JointConfig | None = None, progress: Progress | None = None,
                          max_frames: int = MAX_FRAMES, tracks: TrackConfig | None = LONG_TRACKS) -> V2COutput:
    """One camera per frame of a video of any length up to ``max_frames`` (module docstring).

    Args:
        pipe: the pipeline (its model, VAE, point-map alignment preset :attr:`JOG3RPipeline.align_config`).
        video: ``N`` frames ``[N, 3, H, W]`` in ``[0, 1]`` at the model's size (:func:`jog3r.jobs.load.load_video`
            with ``num_frames=N``), any ``N`` in ``[2, max_frames]``.
        source_frames: the same frames at the source resolution (float in ``[0, 1]`` or uint8), matched instead of
            ``video``: a ``[N, 3, H_s, W_s]`` tensor, or an iterable of ``N`` frames ``[3, H_s, W_s]`` in the video's
            order (e.g. :func:`jog3r.jobs.load.stream_source_frames`), read one window at a time and dropped once
            matched, so the memory does not grow with ``N`` (only keypoints, tracks and model-size data are kept).
        known_K: ``[3, 3]`` intrinsics in pixels of ``video``'s frames, kept fixed.
        stride: frames between window starts (``F - stride`` shared frames link consecutive windows); default
            :data:`STRIDE` for the 16-frame model, ``F - max(1, F // 4)`` for others.
        t, seed: as :meth:`JOG3RPipeline.video_to_cameras`.
        config: :class:`JointConfig` of the global alignment (default :func:`long_config`).
        progress: ``(fraction, description)`` callback (per window, then per alignment step).
        max_frames: the refusal limit (:func:`check_long_frame_count`).
        tracks: KLT tracks on the matched frames (:class:`jog3r.align.tracks.TrackStream`: correspondences of
            frames ``tracks.gaps`` apart, added to the SIFT ones); ``None``: SIFT only.

    Returns:
        :class:`V2COutput` with the ``N`` cameras; ``timings`` in seconds per stage (``read``: the source frames taken
        from ``source_frames`` (decoded there when streamed), ``model``: VAE + STDiT + decoder
        of every window, ``align``: the windows' point-map alignments and links, ``match``: SIFT, ``tracks``: KLT,
        ``init``: the global alignment's initial cameras, ``optimize``: its Levenberg-Marquardt steps, ``total``);
        ``pointmaps`` is ``None`` (not kept), ``align_history`` holds
        the windows' links (``windows``: start, end, shared frames, scale, rotation spread), ``match_info`` the
        global alignment's info (``status``, ``pairs``, ``matches``, ``cloud_reprojection_px``, ...).

    Raises:
        ValueError: fewer than 2 or more than ``max_frames`` frames, a stride outside ``[1, F - 1]``,
            ``source_frames`` of another frame count (a stream: found when it ends early or runs on), and every input error of :meth:`video_to_cameras`.
    """
    progress = progress or (lambda f, d: None)
    check_long_frame_count(video.num_frames, max_frames)
    seed = check_seed(seed)
    if not FEATURE_T_RANGE[0] <= t <= FEATURE_T_RANGE[1]:
        raise ValueError(f"t must be in {list(FEATURE_T_RANGE)} (paper Sec. 4), got {t}")
    N, F = video.num_frames, pipe.num_frames
    if stride is None:
        stride = STRIDE if F == 16 else F - max(1, F // 4)
    windows = plan_windows(N, F, stride)
    if isinstance(source_frames, torch.Tensor) and source_frames.shape[0] != N:
        raise ValueError(f"source_frames has {source_frames.shape[0]} frames, the video {N}")
    cfg = long_config(config)
    source = None
    if source_frames is not None:
        source = source_frames.unbind(0) if isinstance(source_frames, torch.Tensor) else source_frames
        source = iter(source)
    timings: dict[str, float] = {"read": 0.0, "model": 0.0, "align": 0.0, "match": 0.0, "tracks": 0.0}
    size = pipe.resolution
    acc = WindowedAligner(N, size, cfg)
    matcher = tracker = None
    model_frames = []
    pushed = 0
    held = _WindowLogs()
    for w, (s, e) in enumerate(windows):
        progress(0.85 * w / len(windows), f"window {w + 1}/{len(windows)}: frames {s}-{e - 1}")
        sub = dataclasses.replace(video, frames=video.frames[s:e],
                                  frame_indices=None if video.frame_indices is None else video.frame_indices[s:e])
        t0 = time.perf_counter()
        sub, K = pipe.prepare_video(sub, known_K)
        with torch.no_grad():
            z0 = pipe.encode_frames(sub.frames)
            feats = pipe.features_of_latents(z0, t, seed)
            pointmaps = pipe.decode_pairs(feats).to("cpu")
        timings["model"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        with held.held(w):
            recon, _ = pipe.align(pointmaps, sub.frames, known_K=K)  # on ALIGN_THREADS threads
        acc.add_window(s, recon, pointmaps)
        timings["align"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        src = None if source is None else _take(source, e - pushed, pushed)
        timings["read"] += time.perf_counter() - t0
        detail = matching_frames(sub.frames[pushed - s:], src)
        del src  # the source-resolution frames of this window are not kept
        if matcher is None:
            matcher = StreamMatcher(cfg.matching, tuple(detail.shape[-2:]))
            tracker = None if tracks is None else TrackStream(tracks, tuple(detail.shape[-2:]), seed=seed)
        for frame in detail:
            t0 = time.perf_counter()
            matcher.push(frame)
            timings["match"] += time.perf_counter() - t0
            if tracker is not None:
                t0 = time.perf_counter()
                tracker.push(frame)
                timings["tracks"] += time.perf_counter() - t0
        model_frames.append(sub.frames[pushed - s:])
        pushed = e
        del z0, feats, pointmaps, recon, detail
    if source is not None and next(source, None) is not None:
        raise ValueError(f"source_frames has more frames than the video's {N}")
    held.report(len(windows))
    progress(0.85, "global alignment")
    t0 = time.perf_counter()
    scale = matcher.size[1] / size[1]
    matches = matcher.matches if tracker is None else merge_matches(matcher.matches, tracker.matches)
    recon, info = acc.solve(matches, scale, known_K=known_K is not None,
                            progress=lambda f, d: progress(0.85 + 0.15 * f, d))
    solve_s = time.perf_counter() - t0
    stages = info.get("seconds", {})
    timings["init"] = stages.get("init", 0.0)
    timings["optimize"] = solve_s - timings["init"]  # the LM steps and the bookkeeping around them
    timings["total"] = sum(timings.values())
    info["links"] = acc.link
    info["track_pairs"] = 0 if tracker is None else len(tracker.matches)
    info["match_size"] = list(matcher.size)  # (H', W') of the matched frames, as the short runs report it
    method = METHOD_JOINT if info["status"] == "aligned" else METHOD_PAPER
    out_video = dataclasses.replace(video, frames=torch.cat(model_frames))
    progress(1.0, "done")
    return V2COutput(video=out_video, reconstruction=recon, pointmaps=None, align_history={"windows": acc.link},
                     timings=timings, method=method, match_info=info)


__all__ = ["LONG_MAX_MATCHES", "LONG_TRACKS", "LONG_W_ROT", "MAX_FRAMES", "check_long_frame_count", "estimate_long_cost", "long_config",
           "long_video_to_cameras"]
