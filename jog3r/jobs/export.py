"""The export job, written once: a reconstruction -> every camera / scene file in one folder (and one zip).

Used by the V2C job (:func:`jog3r.jobs.estimate_cameras`, step 7) and the generate job (:func:`jog3r.jobs.generate`:
T2V+C and cascade cameras), so the CLI (``jog3r v2c / t2vc``), the app (Estimate and Generate tabs, the Estimate
tab's download zip) and eval write the same files the same way.

``Reconstruction -> folder/{cameras_re10k.txt (RealEstate10K), colmap/ (COLMAP text), transforms.json
(nerfstudio), trajectory_tum.txt (TUM), pointcloud.ply (PLY), scene.glb + scene_no_cameras.glb (GLB), images/,
depth/, video.mp4?, metrics.json?, CONVENTIONS.txt}`` (:func:`jog3r.io.export_bundle.export_all`, each file in its
tool's convention), optionally zipped to ``<folder>.zip`` (:func:`jog3r.io.export_bundle.zip_bundle`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jog3r.io.export_bundle import export_all, zip_bundle
from jog3r.io.scene import DEFAULT_KEEP_PERCENT
from jog3r.types import Reconstruction

logger = logging.getLogger(__name__)

EXPORT_FORMATS = {"re10k": "RealEstate10K", "colmap": "COLMAP", "transforms": "nerfstudio", "tum": "TUM",
                  "ply": "PLY", "glb": "GLB"}
"""The camera / scene formats of every export: :func:`export_all`'s file key -> the format's name."""


@dataclass(frozen=True)
class ExportReport:
    """What one export wrote.

    Attributes:
        folder: the export folder.
        files: :func:`jog3r.io.export_bundle.export_all`'s ``{key: path}`` (keys of :data:`EXPORT_FORMATS`, plus
            ``images``, ``depth``, ``depth_npz``, ``glb_no_cameras``, ``conventions``, ``video``?, ``metrics``?).
        seconds: wall time of the export (and the zip).
        zip_path: ``<folder>.zip`` when asked for, else ``None``.
    """

    folder: Path
    files: dict[str, Path]
    seconds: float
    zip_path: Path | None = None


def export_reconstruction(recon: Reconstruction, folder: str | Path, *, video_frames: torch.Tensor | None = None,
                          fps: float = 8, frame_indices: torch.Tensor | np.ndarray | list[int] | None = None,
                          source_fps: float | None = None, metrics: dict[str, Any] | None = None,
                          method: str | None = None, keep_percent: float = DEFAULT_KEEP_PERCENT,
                          zip_bundle_too: bool = False) -> ExportReport:
    """Write every export of ``recon`` into ``folder`` (the module docstring lists them).

    Args:
        recon: cameras (OpenCV cam2world ``[F, 4, 4]``, ``K [F, 3, 3]`` pixels), depth, points, colours.
        folder: the export folder (created; files of a previous export are overwritten).
        video_frames: ``[F, 3, H, W]`` float in ``[0, 1]`` at the reconstruction's size (``images/``,
            ``video.mp4``); ``None``: ``images/`` from ``recon.colors`` and no video.
        fps: frame rate of the reconstructed frames.
        frame_indices: ``[F]`` 0-based source frame indices (names and timestamps); default ``0 .. F-1``.
        source_fps: frame rate of the source (timestamps); default derived from ``fps`` and ``frame_indices``.
        metrics: written as ``metrics.json`` when given.
        method: the method that made the cameras (first line of ``CONVENTIONS.txt``).
        keep_percent: the point cut of the PLY, GLB and COLMAP points (% most confident; the viewer's default).
        zip_bundle_too: also zip the folder to ``<folder>.zip``.

    Returns:
        An :class:`ExportReport`.

    Raises:
        ValueError: inconsistent shapes or frame indices (:func:`jog3r.io.export_bundle.export_all`).
    """
    start = time.perf_counter()
    files = export_all(recon, folder, metrics=metrics, method=method, video_frames=video_frames, fps=fps,
                       frame_indices=frame_indices, source_fps=source_fps, keep_percent=keep_percent)
    root = Path(folder)
    logger.info("wrote %s", ", ".join(sorted(str(Path(p).relative_to(root)) if Path(p).is_relative_to(root) else
                                             Path(p).name for p in files.values())))
    zip_path = zip_bundle(folder) if zip_bundle_too else None
    return ExportReport(Path(folder), files, time.perf_counter() - start, zip_path)


__all__ = ["EXPORT_FORMATS", "ExportReport", "export_reconstruction"]
