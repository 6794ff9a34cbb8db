"""Jobs: one typed function per user-facing job, shared by the app, the command line and ``jog3r eval``.

A job reads its inputs (files), calls the :class:`~jog3r.pipeline.JOG3RPipeline` stages, scores and exports the
result, and returns a typed report; the front ends only present it (gradio widgets, printed lines, tables).

* :func:`estimate_cameras` (V2C): video file or image folder -> :class:`V2CReport` (cameras, pose metrics vs
  ground truth, timings per stage, the method that made the cameras, the export folder).
"""

from jog3r.jobs.v2c import (
    MATCHES,
    METRIC_KEYS,
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
    "MATCHES",
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
