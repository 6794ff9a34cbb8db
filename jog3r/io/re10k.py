"""RealEstate10K camera files (``<clip_id>.txt``): read and write.

File convention (REFERENCE.md E.1; CameraCtrl / pixelSplat / PoseDiffusion readers):

* Line 1: the source video URL (``https://www.youtube.com/watch?v=ID``); may be empty.
* One line per video frame, in order, 19 numbers:
  ``timestamp_us fx fy cx cy 0 0 r11 r12 r13 t1 r21 r22 r23 t2 r31 r32 r33 t3``.
* ``timestamp_us``: integer microseconds into the source video.
* ``fx, cx`` are normalised by the image width, ``fy, cy`` by the image height, so pixel intrinsics are
  ``fx * W, fy * H, cx * W, cy * H``. Clips resized from 16:9 without cropping (e.g. 384x256) have
  non-square pixels (``fx * W != fy * H``); that is kept, not "fixed". ``cx = 0.5`` is the image centre, the
  same pixel-centre convention as the package (:mod:`jog3r.geometry.camera`).
* The two zeros are unused (readers skip them; this writer writes ``0 0``).
* The 12 numbers are a row-major 3x4 **world-to-camera** ``[R | t]`` in OpenCV axes; scale is arbitrary per
  clip.

In the package the cameras are ``cam2world = inverse(world2cam)`` (computed in float64).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from jog3r.io._convert import (
    check_cameras,
    check_pinhole,
    check_rotation,
    format_float,
    invert_rigid,
    pinhole_K,
    read_lines,
    rigid,
    to_tensor,
    write_text_atomic,
)
from jog3r.io.types import CameraSet

logger = logging.getLogger(__name__)

_NUMBERS_PER_LINE = 19


def _parse_numbers(line: str) -> list[float] | None:
    """Return the floats of ``line``, or ``None`` if any token is not a number."""
    try:
        return [float(tok) for tok in line.split()]
    except ValueError:
        return None


def read_re10k(path: str | Path, image_size: tuple[int, int]) -> CameraSet:
    """Read a RealEstate10K camera file (convention in the module docstring).

    Args:
        path: the ``.txt`` file.
        image_size: ``(H, W)`` in pixels of the frames the cameras are used with (the file stores intrinsics
            normalised by ``W`` and ``H``, so the pixel ``K`` depends on it).

    Returns:
        A :class:`CameraSet` with ``cam2world [F, 4, 4]`` (OpenCV), ``K [F, 3, 3]`` in pixels of
        ``image_size``, ``names`` the timestamps as strings, ``timestamps [F]`` int64 microseconds, and
        ``extra``: ``"url"`` (line 1, ``""`` if absent) and ``"intrinsics_normalised"`` (``[F, 4]`` float64
        ``fx, fy, cx, cy`` exactly as in the file).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: naming the file and line for a line without 19 numbers, a non-rotation ``R``, non-positive
            focal lengths, an empty file or a bad ``image_size``.
    """
    path = Path(path)
    H, W = (int(v) for v in image_size)
    if H <= 0 or W <= 0:
        raise ValueError(f"{path}: image_size must be positive (H, W), got {image_size}")
    lines = read_lines(path, "RealEstate10K camera")
    first = _parse_numbers(lines[0])
    if first is not None and len(first) == _NUMBERS_PER_LINE:
        logger.warning("%s: line 1 is a camera, not a URL; reading the file as having no URL line", path)
        url, body_start = "", 0
    else:
        url, body_start = lines[0].strip(), 1

    rows, linenos = [], []
    for lineno, line in enumerate(lines[body_start:], start=body_start + 1):
        if not line.strip():
            continue
        numbers = _parse_numbers(line)
        if numbers is None or len(numbers) != _NUMBERS_PER_LINE:
            got = "non-numeric tokens" if numbers is None else f"{len(numbers)} numbers"
            raise ValueError(
                f"{path}:{lineno}: expected {_NUMBERS_PER_LINE} numbers "
                f"(timestamp fx fy cx cy 0 0 + 3x4 world-to-camera), got {got}"
            )
        if numbers[0] != round(numbers[0]):
            raise ValueError(f"{path}:{lineno}: timestamp {numbers[0]} is not a whole number of microseconds")
        rows.append(numbers)
        linenos.append(lineno)
    if not rows:
        raise ValueError(f"{path}: no camera lines after the URL line")

    table = np.asarray(rows, dtype=np.float64)
    timestamps = np.round(table[:, 0]).astype(np.int64)
    intr = table[:, 1:5]
    if (intr[:, :2] <= 0).any():
        bad = int(np.flatnonzero((intr[:, :2] <= 0).any(axis=1))[0])
        raise ValueError(f"{path}:{linenos[bad]}: focal lengths must be positive, got {intr[bad, :2]}")
    world2cam_34 = table[:, 7:19].reshape(-1, 3, 4)
    check_rotation(world2cam_34[:, :, :3], str(path))
    world2cam = rigid(world2cam_34[:, :, :3], world2cam_34[:, :, 3])
    cam2world = invert_rigid(world2cam)
    K = pinhole_K(intr[:, 0] * W, intr[:, 1] * H, intr[:, 2] * W, intr[:, 3] * H)
    logger.debug("%s: %d cameras, image size %dx%d", path, len(rows), W, H)
    return CameraSet(
        cam2world=to_tensor(cam2world),
        K=to_tensor(K),
        image_size=(H, W),
        names=tuple(str(t) for t in timestamps),
        timestamps=torch.from_numpy(timestamps),
        extra={"url": url, "intrinsics_normalised": intr},
    )


def write_re10k(
    path: str | Path,
    cam2world: torch.Tensor | np.ndarray,
    K: torch.Tensor | np.ndarray,
    image_size: tuple[int, int],
    timestamps: torch.Tensor | np.ndarray | list[int] | None = None,
    url: str = "",
    *,
    fps: float = 8.0,
) -> Path:
    """Write a RealEstate10K camera file (convention in the module docstring).

    Args:
        path: output ``.txt`` path (parents are created; written atomically).
        cam2world: ``[F, 4, 4]`` camera-to-world, OpenCV axes (package convention).
        K: ``[F, 3, 3]`` (or one ``[3, 3]`` for all frames) pinhole intrinsics in pixels of ``image_size``.
        image_size: ``(H, W)`` in pixels, used to normalise ``K``.
        timestamps: ``[F]`` integer microseconds; default ``round(i * 1e6 / fps)`` for frame ``i``.
        url: written on line 1 (RealEstate10K readers skip that line; an empty line is allowed).
        fps: frame rate used only for the default timestamps.

    Returns:
        ``path``.

    Raises:
        ValueError: for wrong shapes, non-rigid ``cam2world``, non-pinhole ``K``, timestamps of the wrong
            length, or a multi-line ``url``.
    """
    c2w, K_arr, (H, W) = check_cameras(cam2world, K, image_size)
    check_pinhole(K_arr, "write_re10k")
    num = len(c2w)
    if timestamps is None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        ts = np.round(np.arange(num) * 1e6 / fps).astype(np.int64)
    else:
        ts = np.asarray(timestamps.cpu() if isinstance(timestamps, torch.Tensor) else timestamps)
        if ts.shape != (num,):
            raise ValueError(f"timestamps must have shape [{num}], got {ts.shape}")
        ts = np.round(ts).astype(np.int64)
    if "\n" in url or "\r" in url:
        raise ValueError("url must be a single line")
    world2cam = invert_rigid(c2w)
    lines = [url]
    for i in range(num):
        intr = (K_arr[i, 0, 0] / W, K_arr[i, 1, 1] / H, K_arr[i, 0, 2] / W, K_arr[i, 1, 2] / H)
        values = [format_float(v) for v in intr] + ["0", "0"]
        values += [format_float(v) for v in world2cam[i, :3, :4].reshape(-1)]
        lines.append(f"{int(ts[i])} " + " ".join(values))
    return write_text_atomic(path, "\n".join(lines) + "\n")


__all__ = ["read_re10k", "write_re10k"]
