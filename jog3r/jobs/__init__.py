"""Jobs: one typed function per user-facing job, shared by the app, the command line and ``jog3r eval``.

A job reads its inputs (files), calls the :class:`~jog3r.pipeline.JOG3RPipeline` stages, scores and exports the
result, and returns a typed report; the front ends only present it (gradio widgets, printed lines, tables).

* :func:`estimate_cameras` (V2C): video file or image folder -> :class:`V2CReport` (cameras, pose metrics vs
  ground truth, timings per stage, the method that made the cameras, the export folder).
* :func:`generate` (T2V, T2V+C): prompt -> :class:`GenerateReport` (video, T2V+C and cascade cameras,
  self-consistency, timings, exports).
* :func:`score_consistency` (MEt3R): video file or image folder -> :class:`Met3RReport` (score, per-frame curve,
  error-map video, timings); :func:`met3r_of_video` is its MEt3R step on frames already read.
* :func:`export_reconstruction` (:mod:`jog3r.jobs.export`): a reconstruction -> every export
  (:data:`EXPORT_FORMATS`: RealEstate10K, COLMAP, nerfstudio, TUM, PLY, GLB; images, depth) and optionally a zip,
  used by the V2C and generate jobs.
* :func:`load_video` / :func:`load_source_frames` (:mod:`jog3r.jobs.load`): a file or image folder -> frames at a
  pipeline's model size / at the source resolution, for every job, eval and the benchmarks.
"""

from jog3r.jobs.export import EXPORT_FORMATS, ExportReport, export_reconstruction
from jog3r.jobs.generate import GenerateReport, generate
from jog3r.jobs.load import FITS, Fit, VideoInfo, load_source_frames, load_video
from jog3r.jobs.met3r import (BACKBONES, Backbone, Met3RReport, feature_extractor, met3r_of_video,
                              score_consistency)

from jog3r.jobs.v2c import (
    MATCHES,
    METRIC_KEYS,
    Matches,
    GroundTruthCameras,
    Intrinsics,
    IntrinsicsError,
    PoseScores,
    V2CReport,
    estimate_cameras,
    read_ground_truth,
    score_cameras,
)

__all__ = [
    "EXPORT_FORMATS",
    "ExportReport",
    "export_reconstruction",
    "BACKBONES",
    "Backbone",
    "GenerateReport",
    "Met3RReport",
    "generate",
    "score_consistency",
    "feature_extractor",
    "met3r_of_video",
    "load_video",
    "FITS",
    "Fit",
    "VideoInfo",
    "load_source_frames",
    "MATCHES",
    "Matches",
    "METRIC_KEYS",
    "GroundTruthCameras",
    "Intrinsics",
    "IntrinsicsError",
    "PoseScores",
    "V2CReport",
    "estimate_cameras",
    "read_ground_truth",
    "score_cameras",
]
