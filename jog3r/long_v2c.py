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

import dataclasses
import time

import torch

from jog3r.align.joint import METHOD_JOINT, METHOD_PAPER, JointConfig
from jog3r.align.refine import RefineConfig, matching_frames
from jog3r.align.tracks import TrackConfig, TrackStream, merge_matches
from jog3r.align.windows import STRIDE, StreamMatcher, WindowedAligner, plan_windows
from jog3r.checks import check_seed
from jog3r.pipeline import FEATURE_T_RANGE, JOG3RPipeline, Progress, V2COutput
from jog3r.types import Video

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


def long_config(config: JointConfig | None = None) -> JointConfig:
    """The default :class:`JointConfig` of long runs: the short runs' with at most :data:`LONG_MAX_MATCHES` per pair."""
    if config is not None:
        return config
    return JointConfig(matching=RefineConfig(max_matches=LONG_MAX_MATCHES))


def estimate_long_cost(pipe: JOG3RPipeline, num_frames: int, *, stride: int = STRIDE,
                       max_frames: int = MAX_FRAMES) -> dict:
    """Time (s) and peak memory (MB) of :func:`long_video_to_cameras` on ``num_frames`` frames, exports excluded.

    Per window the short run's model + point-map alignment cost (:meth:`JOG3RPipeline.estimate_cost` of ``F``
    frames, without its correspondence share), plus per frame the matching (0.25 s at a 256-pixel source upscaled
    2x) and the global alignment (0.05 s); memory one window's peak plus 1 MB per frame. Coefficients measured by
    ``benchmarks/v2c_long.py`` on the 2 shared CPU cores (README table).

    Returns:
        ``{"seconds", "memory_mb", "windows"}``.

    Raises:
        ValueError: as :func:`check_long_frame_count`.
    """
    check_long_frame_count(num_frames, max_frames)
    F = pipe.num_frames
    windows = plan_windows(num_frames, F, min(stride, F - 1))
    one = pipe.estimate_cost(min(F, num_frames))
    seconds = len(windows) * 0.6 * one["seconds"] + 0.3 * num_frames
    memory = one["memory_mb"] + 1.0 * num_frames
    return {"seconds": round(seconds, 1), "memory_mb": round(memory), "windows": len(windows)}


def long_video_to_cameras(pipe: JOG3RPipeline, video: Video, *, source_frames: torch.Tensor | None = None,
                          known_K: torch.Tensor | None = None, stride: int | None = None, t: int = 2, seed: int = 0,
                          config: JointConfig | None = None, progress: Progress | None = None,
                          max_frames: int = MAX_FRAMES, tracks: TrackConfig | None = LONG_TRACKS) -> V2COutput:
    """One camera per frame of a video of any length up to ``max_frames`` (module docstring).

    Args:
        pipe: the pipeline (its model, VAE, point-map alignment preset :attr:`JOG3RPipeline.align_config`).
        video: ``N`` frames ``[N, 3, H, W]`` in ``[0, 1]`` at the model's size (:func:`jog3r.jobs.load.load_video`
            with ``num_frames=N``), any ``N`` in ``[2, max_frames]``.
        source_frames: ``[N, 3, H_s, W_s]`` the same frames at the source resolution (float in ``[0, 1]`` or
            uint8), matched instead of ``video``; read one window at a time.
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
        :class:`V2COutput` with the ``N`` cameras; ``pointmaps`` is ``None`` (not kept), ``align_history`` holds
        the windows' links (``windows``: start, end, shared frames, scale, rotation spread), ``match_info`` the
        global alignment's info (``status``, ``pairs``, ``matches``, ``cloud_reprojection_px``, ...).

    Raises:
        ValueError: fewer than 2 or more than ``max_frames`` frames, a stride outside ``[1, F - 1]``,
            ``source_frames`` of another frame count, and every input error of :meth:`video_to_cameras`.
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
    if source_frames is not None and source_frames.shape[0] != N:
        raise ValueError(f"source_frames has {source_frames.shape[0]} frames, the video {N}")
    cfg = long_config(config)
    timings: dict[str, float] = {"model": 0.0, "align": 0.0, "matches": 0.0}
    size = pipe.resolution
    acc = WindowedAligner(N, size, cfg)
    matcher = tracker = None
    model_frames = []
    pushed = 0
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
        recon, _ = pipe.align(pointmaps, sub.frames, known_K=K)
        acc.add_window(s, recon, pointmaps)
        timings["align"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        src = None if source_frames is None else source_frames[pushed:e]
        if src is not None and src.dtype == torch.uint8:
            src = src.float() / 255
        detail = matching_frames(sub.frames[pushed - s:], src)
        if matcher is None:
            matcher = StreamMatcher(cfg.matching, tuple(detail.shape[-2:]))
            tracker = None if tracks is None else TrackStream(tracks, tuple(detail.shape[-2:]), seed=seed)
        for frame in detail:
            matcher.push(frame)
            if tracker is not None:
                tracker.push(frame)
        model_frames.append(sub.frames[pushed - s:])
        pushed = e
        timings["matches"] += time.perf_counter() - t0
        del z0, feats, pointmaps, recon
    progress(0.85, "global alignment")
    t0 = time.perf_counter()
    scale = matcher.size[1] / size[1]
    matches = matcher.matches if tracker is None else merge_matches(matcher.matches, tracker.matches)
    recon, info = acc.solve(matches, scale, known_K=known_K is not None,
                            progress=lambda f, d: progress(0.85 + 0.15 * f, d))
    timings["global"] = time.perf_counter() - t0
    timings["total"] = sum(timings.values())
    info["links"] = acc.link
    info["track_pairs"] = 0 if tracker is None else len(tracker.matches)
    method = METHOD_JOINT if info["status"] == "aligned" else METHOD_PAPER
    out_video = dataclasses.replace(video, frames=torch.cat(model_frames))
    progress(1.0, "done")
    return V2COutput(video=out_video, reconstruction=recon, pointmaps=None, align_history={"windows": acc.link},
                     timings=timings, method=method, match_info=info)


__all__ = ["LONG_MAX_MATCHES", "LONG_TRACKS", "MAX_FRAMES", "check_long_frame_count", "estimate_long_cost", "long_config",
           "long_video_to_cameras"]
