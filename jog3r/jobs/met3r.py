"""The MEt3R job, written once: a video file or image folder -> its 3D consistency, per-frame curve and error-map
video (:class:`Met3RReport`).

Called by the app's 3D-consistency tab (``app/tabs/consistency.py``) and ``jog3r met3r`` (:mod:`jog3r.cli`).
Steps, top to bottom in :func:`score_consistency`:

1. read and sample the frames at the model's size (:func:`jog3r.jobs.load.load_video`);
2. MEt3R (:func:`met3r_of_video`; lower is more 3D-consistent, comparable only for one backbone);
3. the error-map video (:func:`jog3r.metrics.met3r.save_error_map_video`) and, with an export folder,
   :meth:`Met3RReport.record` as ``met3r.json``.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from jog3r.checks import check_seed
from jog3r.jobs.load import VideoInfo, load_video
from jog3r.metrics.features import DINOv2Features, FeatureExtractor, RGBFeatures, TAEF2Features
from jog3r.metrics.met3r import Met3RResult, met3r, save_error_map_video
from jog3r.pipeline import JOG3RPipeline
from jog3r.types import Reconstruction, Video

class Backbone(enum.StrEnum):
    """MEt3R feature backbones (:func:`feature_extractor`); the members are their plain strings.

    Members:
        TAEF2: ``"taef2"``: the embedded TAEF2 latent features (default).
        RGB: ``"rgb"``: plain RGB.
        DINOV2: ``"dinov2"``: DINOv2 from a local folder.
    """

    TAEF2 = "taef2"
    RGB = "rgb"
    DINOV2 = "dinov2"


BACKBONES = tuple(b.value for b in Backbone)
"""The values of ``backbone`` (:class:`Backbone`), in order: ``("taef2", "rgb", "dinov2")``."""


@dataclass(frozen=True)
class Met3RReport:
    """What one MEt3R job produced.

    Attributes:
        result: the :class:`~jog3r.metrics.met3r.Met3RResult` (``score``, ``per_frame``, ``backbone``, maps).
        video: the frames as loaded at the model's size.
        info: :func:`jog3r.jobs.load.load_video`'s :class:`~jog3r.jobs.load.VideoInfo` (``message``,
            ``source_size``, ...).
        timings: seconds per stage: ``load``, ``met3r``, ``export`` when written, and ``total``.
        messages: notes for the user, in order (the sampling message first).
        error_maps: the written error-map video, or ``None``.
        export_dir: the folder of ``met3r.json`` and the error maps, or ``None``.
    """

    result: Met3RResult
    video: Video
    info: VideoInfo
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
                "sampling": self.info.message, "seconds": self.timings["met3r"]}

    def as_table(self) -> list[tuple[str, str]]:
        """``[(name, value)]`` rows for display: the score, the frame count and the backbone."""
        return [("MEt3R", f"{self.score:.4f}"), ("frames", str(self.video.num_frames)),
                ("feature backbone", self.backbone)]


def feature_extractor(backbone: Backbone | str = "taef2", dinov2_path: str | Path | None = None,
                      device: torch.device | str = "cpu") -> FeatureExtractor:
    """The MEt3R feature backbone by name: ``"taef2"`` (embedded), ``"rgb"`` or ``"dinov2"`` (local folder).

    Args:
        backbone: one of :data:`BACKBONES`.
        dinov2_path: local folder of a transformers DINOv2 model (``backbone="dinov2"`` only).
        device: torch device of the backbone.

    Raises:
        ValueError: unknown backbone, or ``"dinov2"`` without ``dinov2_path``.
    """
    if backbone == "taef2":
        return TAEF2Features(device=device)
    if backbone == "rgb":
        return RGBFeatures()
    if backbone == "dinov2":
        if dinov2_path is None:
            raise ValueError("the dinov2 backbone needs a local folder with a transformers DINOv2 model "
                             "(e.g. facebook/dinov2-small downloaded beforehand)")
        return DINOv2Features(dinov2_path, device=device)
    raise ValueError(f"unknown MEt3R backbone {backbone!r}; choose taef2, rgb or dinov2")


def met3r_of_video(pipe: JOG3RPipeline, video: Video, *, backbone: Backbone | str = "taef2",
                   dinov2_path: str | Path | None = None, reconstruction: Reconstruction | None = None, t: int = 2,
                   seed: int = 0) -> Met3RResult:
    """MEt3R 3D consistency of a video (paper Sec. 4.1): frame ``f``'s features warped into frame 1.

    Point maps come from the pipeline model's ``(1 -> f)`` predictions (V2C steps 1-5:
    :meth:`JOG3RPipeline.prepare_video`, ``encode_frames``, ``features_of_latents``, ``decode_pairs``; no
    alignment), or from ``reconstruction`` when given (it must be at the model resolution).

    Args:
        pipe: the pipeline whose model predicts the point maps (and whose device the backbone uses).
        video: frames ``[F, 3, H, W]`` in ``[0, 1]``, any size (resized + centre-cropped to ``pipe.resolution``).
        backbone: feature extractor name (see :func:`feature_extractor`); reported in the result.
        dinov2_path: local DINOv2 folder for ``backbone="dinov2"``.
        reconstruction: optional point source instead of the model.
        t: feature timestep in ``[0, 5]``.
        seed: seeds the noise at ``t``.

    Returns:
        The :class:`~jog3r.metrics.met3r.Met3RResult` (score, per-frame values, maps, backbone).

    Raises:
        ValueError: fewer than 2 frames, bad backbone, mismatched reconstruction size.
    """
    seed = check_seed(seed)
    video, _ = pipe.prepare_video(video)
    extractor = feature_extractor(backbone, dinov2_path, device=pipe.device)
    if reconstruction is not None:
        return met3r(video.frames, recon=reconstruction, features=extractor)
    with torch.no_grad():
        feats = pipe.features_of_latents(pipe.encode_frames(video.frames), t, seed)
        pointmaps = pipe.decode_pairs(feats)
    return met3r(video.frames, pointmaps=pointmaps.to("cpu"), features=extractor)


def score_consistency(pipe: JOG3RPipeline, source: str | Path, *, backbone: Backbone | str = "taef2",
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
    video, info = load_video(pipe, source, num_frames=num_frames)
    messages = [info.message] if info.message else []
    timings["load"] = time.perf_counter() - start
    if progress is not None:
        progress(0.3, "MEt3R of video")
    start = time.perf_counter()
    result = met3r_of_video(pipe, video, backbone=backbone, dinov2_path=dinov2_path, seed=seed)
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
            error_maps = Path(save_error_map_video(result, pipe.prepare_video(video)[0].frames, error_maps))
        timings["export"] = time.perf_counter() - start
    timings["total"] = sum(timings.values())
    return Met3RReport(result, video, info, timings, messages, error_maps, export_dir)


__all__ = ["BACKBONES", "Backbone", "Met3RReport", "feature_extractor", "met3r_of_video", "score_consistency"]
