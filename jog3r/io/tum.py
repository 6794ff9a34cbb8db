"""TUM RGB-D trajectory files: write, and read (for round trips and evaluation tools such as ``evo``).

File convention (TUM RGB-D benchmark "File Formats"):

* One pose per line: ``timestamp tx ty tz qx qy qz qw``; lines starting with ``#`` are comments.
* ``timestamp``: seconds (float). The package stores integer microseconds, so the writer prints six decimals
  and the reader rounds to the nearest microsecond.
* ``(tx, ty, tz)`` and the unit quaternion ``(qx, qy, qz, qw)`` (scalar **last**, the same XYZW order as the
  package/roma) give the camera's optical centre and orientation in the world: **camera-to-world**. The camera
  axes are the optical frame, OpenCV (x right, y down, z forward), as the package.
* No intrinsics and no image size.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from jog3r.io._convert import (
    as_array,
    check_rotation,
    quat_xyzw_to_rotmat,
    read_lines,
    rigid,
    rotmat_to_quat_xyzw,
    to_tensor,
    write_text_atomic,
)
from jog3r.io.types import CameraSet

logger = logging.getLogger(__name__)


def write_tum(
    path: str | Path,
    cam2world: torch.Tensor | np.ndarray,
    timestamps: torch.Tensor | np.ndarray | list[int] | None = None,
    *,
    fps: float = 8.0,
    comment: str | None = None,
) -> Path:
    """Write a TUM trajectory (convention in the module docstring).

    Args:
        path: output ``.txt`` path (parents are created; written atomically).
        cam2world: ``[F, 4, 4]`` camera-to-world, OpenCV axes.
        timestamps: ``[F]`` integer microseconds; default ``i / fps`` seconds for frame ``i``.
        fps: frame rate used only for the default timestamps.
        comment: one more ``#`` line after the header (e.g. the source frame indices); TUM readers skip it.

    Returns:
        ``path``.

    Raises:
        ValueError: for a wrong shape, a non-rigid ``cam2world``, non-positive ``fps``, timestamps of the
            wrong length or a multi-line ``comment``.
    """
    if comment is not None and ("\n" in comment or "\r" in comment):
        raise ValueError("comment must be a single line")
    c2w = as_array(cam2world, (4, 4), "cam2world")
    check_rotation(c2w[:, :3, :3], "cam2world")
    num = len(c2w)
    if timestamps is None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        ts_us = np.round(np.arange(num) * 1e6 / fps).astype(np.int64)
    else:
        ts_us = np.asarray(timestamps.cpu() if isinstance(timestamps, torch.Tensor) else timestamps)
        if ts_us.shape != (num,):
            raise ValueError(f"timestamps must have shape [{num}], got {ts_us.shape}")
        ts_us = np.round(ts_us).astype(np.int64)
    q = rotmat_to_quat_xyzw(c2w[:, :3, :3])
    lines = ["# timestamp tx ty tz qx qy qz qw  (camera-to-world, OpenCV camera axes, seconds)"]
    if comment is not None:
        lines.append(f"# {comment}")
    for i in range(num):
        seconds = f"{ts_us[i] // 1_000_000}.{ts_us[i] % 1_000_000:06d}"
        values = np.concatenate([c2w[i, :3, 3], q[i]])
        lines.append(seconds + " " + " ".join(format(float(v), ".10g") for v in values))
    return write_text_atomic(path, "\n".join(lines) + "\n")


def read_tum(path: str | Path) -> CameraSet:
    """Read a TUM trajectory (convention in the module docstring).

    Args:
        path: the trajectory file.

    Returns:
        A :class:`CameraSet` with ``cam2world [F, 4, 4]``, ``K`` and ``image_size`` ``None``, ``timestamps``
        ``[F]`` int64 microseconds and ``names`` the timestamps as written in the file.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: naming the file and line for a line without 8 numbers, a zero quaternion or no poses.
    """
    path = Path(path)
    rows, names = [], []
    for lineno, line in enumerate(read_lines(path, "TUM trajectory"), start=1):
        if line.startswith("#") or not line.strip():
            continue
        tokens = line.replace(",", " ").split()
        try:
            values = [float(tok) for tok in tokens]
        except ValueError:
            values = []
        if len(values) != 8:
            raise ValueError(f"{path}:{lineno}: expected 8 numbers 'timestamp tx ty tz qx qy qz qw'")
        rows.append(values)
        names.append(tokens[0])
    if not rows:
        raise ValueError(f"{path}: no poses")
    table = np.asarray(rows, dtype=np.float64)
    R = quat_xyzw_to_rotmat(table[:, 4:8], str(path))
    cam2world = rigid(R, table[:, 1:4])
    # Split "seconds.fraction" in text so large Unix times keep their microseconds.
    ts_us = np.asarray([_seconds_to_us(name) for name in names], dtype=np.int64)
    return CameraSet(
        cam2world=to_tensor(cam2world),
        K=None,
        image_size=None,
        names=tuple(names),
        timestamps=torch.from_numpy(ts_us),
        extra={},
    )


def _seconds_to_us(text: str) -> int:
    """Convert a decimal seconds string to integer microseconds without float rounding of large times."""
    if "e" in text.lower():
        return int(round(float(text) * 1e6))
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("+-").partition(".")
    micro = int((frac + "000000")[:6]) if frac else 0
    if len(frac) > 6 and int(frac[6]) >= 5:
        micro += 1
    return sign * (int(whole or 0) * 1_000_000 + micro)


__all__ = ["read_tum", "write_tum"]
