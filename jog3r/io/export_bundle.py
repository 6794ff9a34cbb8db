"""Every export of one reconstruction in one folder (and one zip), each file in its tool's own convention.

``Reconstruction -> out_dir/{cameras_re10k.txt, transforms.json, colmap/, trajectory_tum.txt, pointcloud.ply,
scene.glb, scene_no_cameras.glb, images/, depth/, video.mp4?, metrics.json?, CONVENTIONS.txt}``. Each file's
convention is the one stated by its writer's module (:mod:`jog3r.io.re10k`, :mod:`jog3r.io.nerfstudio`,
:mod:`jog3r.io.colmap`, :mod:`jog3r.io.tum`, :mod:`jog3r.io.scene`) and summarised, one line per file, in
the bundle's ``CONVENTIONS.txt``.
"""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from jog3r.io.atomic import atomic_path
from jog3r.io.colmap import ColmapPoints, write_colmap_text
from jog3r.io.nerfstudio import write_transforms_json
from jog3r.io.re10k import write_re10k
from jog3r.io.tum import write_tum
from jog3r.types import Reconstruction
from jog3r.io.video import write_video
from jog3r.pixels import to_uint8
from jog3r.io.scene import (
    DEFAULT_KEEP_PERCENT,
    MAX_POINTS,
    confidence_cut,
    reconstruction_to_glb,
    select_points,
    write_ply,
)

logger = logging.getLogger(__name__)

#: One line per file of the bundle (``{...}`` filled in by :func:`export_all`).
_CONVENTIONS = (
    "JOG3R Studio export. Package convention: OpenCV camera axes (x right, y down, z forward), "
    "camera-to-world, K in pixels, pixel (u, v) centred at (u + 0.5, v + 0.5). Image size {W}x{H} (W x H), "
    "{F} frames, {fps:g} fps; scene scale is arbitrary (up to scale). Frames: {frames} (source at "
    "{source_fps:g} fps); every frame_NNNNN name is the 1-based source frame number (index + 1).",
    "cameras_re10k.txt: RealEstate10K; line 1 (the URL line, skipped by readers) '# source frames ...', then per "
    "frame 'timestamp_us fx/W fy/H cx/W cy/H 0 0' + row-major 3x4 WORLD-TO-CAMERA, OpenCV axes; "
    "timestamp = source frame index / source fps.",
    "transforms.json: nerfstudio/instant-ngp; fl_x fl_y cx cy w h in pixels; "
    "transform_matrix = CAMERA-TO-WORLD in OpenGL axes (x right, y up, z back) = "
    "cam2world_opencv @ diag(1,-1,-1,1); file_path -> images/; source_frame_index per frame (0-based).",
    "colmap/: COLMAP text model; PINHOLE cameras; images.txt 'QW QX QY QZ TX TY TZ' = WORLD-TO-CAMERA "
    "(scalar-first quaternion), OpenCV axes; image NAMEs are in images/; "
    "points3D = {colmap_points} points with conf >= {threshold:.6g} ({cut}), each observed at its source pixel "
    "centre, ERROR 0.",
    "trajectory_tum.txt: TUM 'timestamp_s tx ty tz qx qy qz qw' = CAMERA-TO-WORLD (scalar-last quaternion), "
    "OpenCV camera axes; timestamp = source frame index / source fps; a '#' line lists the source frames.",
    "pointcloud.ply: binary PLY in world coordinates (OpenCV world): x y z float32, red green blue uint8, "
    "confidence float32; {ply_points} points with conf >= {threshold:.6g} ({cut}; the viewer's default cut).",
    "scene.glb: glTF 2.0 (y up): world points as diag(1,-1,-1) @ X_world; per frame a frustum mesh "
    "frustum_NNN coloured red (first frame) -> purple (last) and a glTF perspective camera camera_NNN (yfov, "
    "aspectRatio of the frame; Blender imports it as a camera object; NNN = 0-based frame of this bundle).",
    "scene_no_cameras.glb: the same points without frustums.",
    "images/frame_NNNNN.png: the RGB frames the cameras belong to ({W}x{H}), NNNNN = source frame number "
    "(1-based).",
    "depth/frame_NNNNN.png: 16-bit z-depth (along camera +z): depth = value / {depth_scale:.9g} scene units, "
    "0 = invalid; depth/depth.npz: depth [F,H,W] float32, conf [F,H,W] (both NaN at pixels without a point, e.g. "
    "the bars of fit='pad'), K [F,3,3], "
    "cam2world [F,4,4] (OpenCV), png_scale, frame_indices [F] (0-based source frames).",
)


def _check_recon(recon: Reconstruction) -> tuple[int, int, int]:
    """``(F, H, W)`` after checking that every field of ``recon`` agrees on them."""
    F = recon.num_frames
    H, W = recon.image_size
    expected = {"cam2world": (F, 4, 4), "K": (F, 3, 3), "depth": (F, H, W), "pts3d": (F, H, W, 3),
                "conf": (F, H, W), "colors": (F, H, W, 3)}
    for name, shape in expected.items():
        got = tuple(getattr(recon, name).shape)
        if got != shape:
            raise ValueError(f"Reconstruction.{name} has shape {got}, expected {shape}")
    if F < 1:
        raise ValueError("Reconstruction has no frames")
    return F, H, W


def _to_jsonable(value: Any) -> Any:
    """Tensors/arrays -> lists or floats, Paths -> str, for ``metrics.json``."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"metrics value of type {type(value).__name__} is not JSON serialisable")


def _colmap_points(
    recon: Reconstruction, sel: dict[str, np.ndarray]
) -> tuple[ColmapPoints, list[np.ndarray]]:
    """Points3D with one observation each (their source pixel) and the matching per-image 2D points."""
    F, H, W = recon.depth.shape
    frame, v, u = np.unravel_index(sel["index"], (F, H, W))
    ids = np.arange(1, len(frame) + 1, dtype=np.int64)
    points2d, tracks = [], [None] * len(frame)
    for f in range(F):
        rows = np.flatnonzero(frame == f)
        points2d.append(np.stack([u[rows] + 0.5, v[rows] + 0.5, ids[rows]], axis=1).astype(np.float64))
        for k, r in enumerate(rows):
            tracks[r] = np.array([[f + 1, k]], dtype=np.int64)
    points = ColmapPoints(ids=ids, xyz=sel["xyz"].astype(np.float64), rgb=to_uint8(sel["rgb"]),
                          error=np.zeros(len(ids)), tracks=tuple(tracks))
    return points, points2d


def _frame_indices(frame_indices, num_frames: int) -> np.ndarray:
    """``frame_indices`` as ``[F]`` int64 (default ``0 .. F-1``), checked: ``F`` distinct non-negative integers."""
    if frame_indices is None:
        return np.arange(num_frames, dtype=np.int64)
    raw = np.asarray(frame_indices.detach().cpu() if isinstance(frame_indices, torch.Tensor) else frame_indices)
    if raw.shape != (num_frames,) or not np.all(np.isfinite(raw.astype(np.float64))) or np.any(raw != np.round(raw)):
        raise ValueError(f"frame_indices must be {num_frames} whole numbers (one per frame), got {raw.tolist()}")
    indices = raw.astype(np.int64)
    if indices.min() < 0 or len(np.unique(indices)) != num_frames:
        raise ValueError(f"frame_indices must be distinct and non-negative, got {indices.tolist()}")
    return indices


def _write_depth(recon: Reconstruction, folder: Path, names: list[str], indices: np.ndarray) -> tuple[float, Path]:
    """16-bit PNGs (one scale: the largest depth -> 65535) and ``depth.npz``; returns ``(scale, npz)``."""
    folder.mkdir(parents=True, exist_ok=True)
    depth = recon.depth.detach().cpu().float().numpy()
    valid = np.isfinite(depth) & (depth > 0)
    max_depth = float(depth[valid].max()) if valid.any() else 0.0
    scale = 65535.0 / max_depth if max_depth > 0 else 1.0
    quantised = np.where(valid, np.round(np.where(valid, depth, 0) * scale), 0).astype(np.uint16)
    for name, image in zip(names, quantised):
        if not cv2.imwrite(str(folder / name), image):
            raise OSError(f"{folder / name}: could not write the depth PNG")
    npz = folder / "depth.npz"
    np.savez_compressed(npz, depth=depth.astype(np.float32), conf=recon.conf.detach().cpu().float().numpy(),
                        K=recon.K.detach().cpu().float().numpy(),
                        cam2world=recon.cam2world.detach().cpu().float().numpy(), png_scale=np.float64(scale),
                        frame_indices=indices)
    return scale, npz


def export_all(
    recon: Reconstruction,
    out_dir: str | Path,
    *,
    metrics: dict[str, Any] | None = None,
    video_frames: torch.Tensor | None = None,
    fps: float = 8,
    frame_indices: torch.Tensor | np.ndarray | list[int] | None = None,
    source_fps: float | None = None,
    conf_threshold: float | None = None,
    keep_percent: float = DEFAULT_KEEP_PERCENT,
    max_points: int = MAX_POINTS,
    colmap_max_points: int = 50_000,
    seed: int = 0,
    method: str | None = None,
) -> dict[str, Path]:
    """Write every export of ``recon`` into ``out_dir`` (see the module docstring for the list).

    Args:
        recon: the reconstruction (package convention, :class:`~jog3r.types.Reconstruction`).
        out_dir: output folder (created; files of a previous export are overwritten).
        metrics: written as ``metrics.json`` if given (tensors/arrays become numbers or lists).
        video_frames: ``[F, 3, H, W]`` float in ``[0, 1]``, the frames at the reconstruction's size; written
            as ``images/`` and ``video.mp4``. Default: ``images/`` from ``recon.colors`` and no video.
        fps: frame rate of the reconstructed frames (the video's; after any temporal sampling).
        frame_indices: ``[F]`` distinct 0-based indices of the frames in their source video or folder (as
            :func:`jog3r.io.video.read_video` returns them in ``Video.frame_indices``); default ``0 .. F-1``.
            Recorded in every file: image names ``frame_NNNNN.png`` with ``NNNNN`` = index + 1 (the 1-based
            source frame number: ``images/``, ``depth/``, COLMAP and ``transforms.json`` names), the
            RealEstate10K and TUM timestamps (``index / source_fps``), the RealEstate10K first line and a TUM
            comment, a ``source_frame_index`` per ``transforms.json`` frame, ``frame_indices`` in ``depth.npz``
            and ``source_frame_indices`` in ``metrics.json`` (written whenever ``frame_indices`` is given).
        source_fps: frame rate of the source, for the timestamps; default
            ``fps * (max(frame_indices) - min(frame_indices)) / (F - 1)`` (exact for ``read_video``'s evenly
            spaced sampling), or ``fps`` without ``frame_indices``.
        conf_threshold: points with ``conf >= conf_threshold`` go to the PLY, GLB and COLMAP files; ``None``
            (default) keeps the ``keep_percent`` % most confident finite points.
        keep_percent: the cut used when ``conf_threshold`` is ``None``; the default
            (:data:`jog3r.io.scene.DEFAULT_KEEP_PERCENT`) is also the viewer's, so with the default arguments
            the PLY holds exactly the points the viewer draws.
        max_points: cap for the PLY and GLB point clouds (seeded uniform subsample, the viewer's too).
        colmap_max_points: cap for ``points3D.txt``.
        seed: seed of the subsampling.
        method: the method that made the cameras (e.g. ``V2COutput.method``), first line of ``CONVENTIONS.txt``.

    Returns:
        ``{key: path}`` with keys ``images, re10k, transforms, colmap, tum, ply, glb, glb_no_cameras, depth,
        depth_npz, conventions`` and, when written, ``video`` and ``metrics``.

    Raises:
        ValueError: for inconsistent ``recon`` shapes, ``video_frames`` of the wrong shape, a non-positive
            ``fps`` or ``source_fps``, ``frame_indices`` that are not ``F`` distinct non-negative integers, or no
            finite point with ``conf >= conf_threshold``.
    """
    F, H, W = _check_recon(recon)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    given_indices = frame_indices is not None
    indices = _frame_indices(frame_indices, F)
    if source_fps is None:
        spacing = float(indices.max() - indices.min()) / (F - 1) if given_indices and F > 1 else 1.0
        source_fps = fps * spacing if spacing > 0 else fps
    if not source_fps > 0:
        raise ValueError(f"source_fps must be positive, got {source_fps}")
    if video_frames is not None and tuple(video_frames.shape) != (F, 3, H, W):
        raise ValueError(f"video_frames must be [{F}, 3, {H}, {W}] like the reconstruction, "
                         f"got {tuple(video_frames.shape)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    conf = recon.conf.detach().cpu().float().numpy()
    finite = np.isfinite(recon.pts3d.detach().cpu().numpy()).all(-1) & np.isfinite(conf)
    if not finite.any():
        raise ValueError("the reconstruction has no finite point to export")
    threshold = confidence_cut(conf[finite], keep_percent) if conf_threshold is None else float(conf_threshold)
    if not (conf[finite] >= threshold).any():
        raise ValueError(
            f"no point has conf >= {threshold:.4g} (max {conf[finite].max():.4g}); lower conf_threshold"
        )
    cam2world, K = recon.cam2world.detach().cpu().double(), recon.K.detach().cpu().double()
    timestamps = np.round(indices * 1e6 / source_fps).astype(np.int64)
    names = [f"frame_{i + 1:05d}.png" for i in indices]
    frames_note = "source frames (0-based): " + " ".join(str(int(i)) for i in indices)
    paths: dict[str, Path] = {}

    rgb = recon.colors if video_frames is None else video_frames.detach().cpu().float().permute(0, 2, 3, 1)
    images = out / "images"
    images.mkdir(exist_ok=True)
    for name, frame in zip(names, to_uint8(rgb.detach().cpu().numpy())):
        cv2.imwrite(str(images / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    paths["images"] = images
    if video_frames is not None:
        paths["video"] = write_video(out / "video.mp4", video_frames, fps)

    paths["re10k"] = write_re10k(out / "cameras_re10k.txt", cam2world, K, (H, W), timestamps=timestamps,
                                 url=f"# {frames_note}")
    paths["transforms"] = write_transforms_json(out / "transforms.json", cam2world, K, (H, W),
                                                file_paths=[f"images/{n}" for n in names],
                                                frame_meta=[{"source_frame_index": int(i)} for i in indices])
    col_sel = select_points(recon, conf_threshold=threshold, max_points=colmap_max_points, seed=seed)
    points, points2d = _colmap_points(recon, col_sel)
    paths["colmap"] = write_colmap_text(out / "colmap", cam2world, K, (H, W), names=names, points=points,
                                        points2d=points2d)
    paths["tum"] = write_tum(out / "trajectory_tum.txt", cam2world, timestamps, comment=frames_note)

    sel = select_points(recon, conf_threshold=threshold, max_points=max_points, seed=seed)
    paths["ply"] = write_ply(out / "pointcloud.ply", sel["xyz"], sel["rgb"], sel["conf"])
    glb_args = {"conf_threshold": threshold, "max_points": max_points, "seed": seed}
    paths["glb"] = reconstruction_to_glb(recon, out / "scene.glb", with_cameras=True, **glb_args)
    paths["glb_no_cameras"] = reconstruction_to_glb(recon, out / "scene_no_cameras.glb", with_cameras=False,
                                                    **glb_args)
    depth_scale, paths["depth_npz"] = _write_depth(recon, out / "depth", names, indices)
    paths["depth"] = out / "depth"
    if given_indices:
        metrics = {"source_frame_indices": [int(i) for i in indices], "source_fps": float(source_fps),
                   **(metrics or {})}
    if metrics is not None:
        metrics_path = out / "metrics.json"
        metrics_path.write_text(json.dumps(metrics, indent=2, default=_to_jsonable) + "\n", encoding="utf-8")
        paths["metrics"] = metrics_path
    cut = f"the {keep_percent:g} % most confident" if conf_threshold is None else "the threshold given"
    values = {"W": W, "H": H, "F": F, "fps": fps, "threshold": threshold, "colmap_points": len(points),
              "ply_points": len(sel["xyz"]), "depth_scale": depth_scale, "cut": cut,
              "source_fps": source_fps, "frames": frames_note}
    lines = [line.format(**values) for line in _CONVENTIONS]
    if method:
        lines.insert(0, f"cameras made by: {method}")
    if video_frames is not None:
        lines.append(f"video.mp4: H.264 yuv420p, {fps:g} fps, the frames of images/.")
    if metrics is not None:
        lines.append("metrics.json: evaluation numbers as given by the caller"
                     + (", plus source_frame_indices (0-based) and source_fps." if given_indices else "."))
    paths["conventions"] = out / "CONVENTIONS.txt"
    paths["conventions"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    logger.info("%s: exported %d frames, %d points (conf >= %.4g)", out, F, len(sel["xyz"]), threshold)
    return paths


def zip_bundle(out_dir: str | Path) -> Path:
    """Zip an export folder into ``<out_dir>.zip`` next to it (entries ``<folder name>/...``, sorted).

    Args:
        out_dir: a folder written by :func:`export_all`.

    Returns:
        The path of the zip file (written atomically).

    Raises:
        FileNotFoundError: if ``out_dir`` is not a folder.
    """
    folder = Path(out_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    target = folder.with_name(folder.name + ".zip")
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(file, arcname=str(Path(folder.name) / file.relative_to(folder)))
    return target


__all__ = ["export_all", "zip_bundle"]
