"""The MEt3R job, written once: a video file or image folder -> its 3D consistency, per-frame curve and error-map
video (:class:`Met3RReport`).

Called by the app's 3D-consistency tab (``app/tabs/consistency.py``) and ``jog3r met3r`` (:mod:`jog3r.cli`).
Steps, top to bottom in :func:`score_consistency`:

1. read and sample the frames at the model's size (:meth:`JOG3RPipeline.load_video`);
2. MEt3R (:meth:`JOG3RPipeline.met3r`; lower is more 3D-consistent, comparable only for one backbone);
3. the error-map video (:func:`jog3r.metrics.met3r.save_error_map_video`) and, with an export folder,
   :meth:`Met3RReport.record` as ``met3r.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from jog3r.metrics.met3r import Met3RResult, save_error_map_video
from jog3r.pipeline import JOG3RPipeline
from jog3r.types import Video

BACKBONES = ("taef2", "rgb", "dinov2")
"""MEt3R feature backbones (:meth:`JOG3RPipeline.feature_extractor`): the embedded TAEF2 latent features, plain
RGB, or DINOv2 from a local folder."""


@dataclass(frozen=True)
class Met3RReport:
    """What one MEt3R job produced.

    Attributes:
        result: the :class:`~jog3r.metrics.met3r.Met3RResult` (``score``, ``per_frame``, ``backbone``, maps).
        video: the frames as loaded at the model's size.
        info: :meth:`JOG3RPipeline.load_video`'s info (``message``, ``source_size``, ...).
        timings: seconds per stage: ``load``, ``met3r``, ``export`` when written, and ``total``.
        messages: notes for the user, in order (the sampling message first).
        error_maps: the written error-map video, or ``None``.
        export_dir: the folder of ``met3r.json`` and the error maps, or ``None``.
    """

    result: Met3RResult
    video: Video
    info: dict
    timings: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    error_maps: Path | None = None
    export_dir: Path | None = None

    @property
    def score(self) -> float:
        """The MEt3R score (lower is more 3D-consistent)."""
        return float(self.result.score)

    @property
    def backbone(self) -> str:
        """The feature backbone the score was computed with (scores of different backbones do not compare)."""
        return self.result.backbone

    def record(self) -> dict[str, Any]:
        """The job's numbers as one JSON-ready dict (``met3r.json``): ``met3r``, ``backbone``, ``per_frame``,
        ``frames``, ``sampling`` (the sampling message) and ``seconds`` (the MEt3R stage)."""
        return {"met3r": float(self.result.score), "backbone": self.result.backbone,
                "per_frame": [float(v) for v in self.result.per_frame], "frames": self.video.num_frames,
                "sampling": self.info["message"], "seconds": self.timings["met3r"]}

    def as_table(self) -> list[tuple[str, str]]:
        """``[(name, value)]`` rows for display: the score, the frame count and the backbone."""
        return [("MEt3R", f"{self.score:.4f}"), ("frames", str(self.video.num_frames)),
                ("feature backbone", self.backbone)]


def score_consistency(pipe: JOG3RPipeline, source: str | Path, *, backbone: str = "taef2",
                      dinov2_path: str | Path | None = None, num_frames: int | None = None, seed: int = 0,
                      error_maps: str | Path | None = None, export_dir: str | Path | None = None,
                      progress: Callable[[float, str], None] | None = None) -> Met3RReport:
    """Run the MEt3R job on a video file or image folder (steps in the module docstring).

    Args:
        pipe: the pipeline (its model's size and frame count set the sampling).
        source: a video file or a folder of images.
        backbone: one of :data:`BACKBONES`.
        dinov2_path: local DINOv2 folder (``backbone="dinov2"``).
        num_frames: frames to sample (default: the model's).
        seed: seed of the noise added to the latents.
        error_maps: write the error-map video to this file.
        export_dir: write ``met3r.json`` and ``met3r_error_maps.mp4`` there (created; unless ``error_maps`` names another
            file for the maps).
        progress: optional ``(fraction, description)`` callback ("reading video", "MEt3R of video").

    Returns:
        A :class:`Met3RReport`.

    Raises:
        ValueError: an unknown backbone, ``dinov2`` without ``dinov2_path``, an unreadable source.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown MEt3R backbone {backbone!r}; choose taef2, rgb or dinov2")
    if backbone == "dinov2" and dinov2_path is None:
        raise ValueError("the dinov2 backbone needs a local folder with a transformers DINOv2 model "
                         "(e.g. facebook/dinov2-small downloaded beforehand)")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if progress is not None:
        progress(0.0, "reading video")
    video, info = pipe.load_video(source, num_frames=num_frames)
    messages = [info["message"]] if info.get("message") else []
    timings["load"] = time.perf_counter() - start
    if progress is not None:
        progress(0.3, "MEt3R of video")
    start = time.perf_counter()
    result = pipe.met3r(video, backbone=backbone, dinov2_path=dinov2_path, seed=seed)
    timings["met3r"] = time.perf_counter() - start
    if export_dir is not None:
        export_dir = Path(export_dir)
        error_maps = export_dir / "met3r_error_maps.mp4" if error_maps is None else error_maps
    if error_maps is not None or export_dir is not None:
        start = time.perf_counter()
        if export_dir is not None:
            export_dir.mkdir(parents=True, exist_ok=True)
            record = Met3RReport(result, video, info, timings).record()
            (export_dir / "met3r.json").write_text(json.dumps(record, indent=1))
        if error_maps is not None:
            error_maps = Path(save_error_map_video(result, pipe._prepare_video(video, None)[0].frames, error_maps))
        timings["export"] = time.perf_counter() - start
    timings["total"] = sum(timings.values())
    return Met3RReport(result, video, info, timings, messages, error_maps, export_dir)


__all__ = ["BACKBONES", "Met3RReport", "score_consistency"]
