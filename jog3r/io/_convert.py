"""Small float64 helpers shared by the camera-file readers and writers (private to :mod:`jog3r.io`).

Everything here works on NumPy float64 so that a file's digits survive inversion and axis flips; readers cast
to the package's float32 torch tensors once, at the end (:func:`to_tensor`). The OpenGL <-> OpenCV flip lives
here rather than in :mod:`jog3r.geometry.camera` because only file formats use OpenGL axes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import roma
import torch

from jog3r.io.atomic import atomic_write_text

logger = logging.getLogger(__name__)

#: Right-multiplying a camera-to-world matrix by this flips the camera's y and z axes:
#: OpenGL/Blender/nerfstudio (x right, y up, z backward) <-> OpenCV (x right, y down, z forward). It is its
#: own inverse.
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])

#: A rotation matrix whose ``R^T R`` is further than this from the identity (max abs entry) is rejected.
ROTATION_TOLERANCE = 1e-3


def as_array(x, shape_tail: tuple[int, ...], what: str) -> np.ndarray:
    """Return ``x`` (tensor, array or nested lists) as float64 NumPy, checking the trailing shape.

    Args:
        x: ``[F, *shape_tail]`` values.
        shape_tail: the expected trailing dimensions, e.g. ``(4, 4)``.
        what: name used in the error message.

    Returns:
        ``[F, *shape_tail]`` float64 array.

    Raises:
        ValueError: for a wrong shape or non-finite values.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != len(shape_tail) + 1 or arr.shape[1:] != shape_tail:
        raise ValueError(f"{what} must have shape [F, {', '.join(map(str, shape_tail))}], got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or inf")
    return arr


def check_cameras(cam2world, K, image_size) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Validate writer inputs: ``cam2world [F,4,4]``, ``K [F,3,3]`` (or ``[3,3]``, broadcast) and ``(H, W)``.

    Returns:
        ``(cam2world, K, (H, W))`` as float64 arrays ``[F, 4, 4]``, ``[F, 3, 3]`` and a tuple of ints.

    Raises:
        ValueError: for wrong shapes, a non-rigid ``cam2world`` or a non-positive image size.
    """
    c2w = as_array(cam2world, (4, 4), "cam2world")
    K_arr = np.asarray(K.detach().cpu().double() if isinstance(K, torch.Tensor) else K, dtype=np.float64)
    if K_arr.shape == (3, 3):
        K_arr = np.broadcast_to(K_arr, (len(c2w), 3, 3)).copy()
    K_arr = as_array(K_arr, (3, 3), "K")
    if len(K_arr) != len(c2w):
        raise ValueError(f"K has {len(K_arr)} cameras but cam2world has {len(c2w)}")
    check_rotation(c2w[:, :3, :3], "cam2world")
    if not np.allclose(c2w[:, 3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise ValueError("cam2world bottom row must be [0, 0, 0, 1]")
    H, W = (int(v) for v in image_size)
    if H <= 0 or W <= 0:
        raise ValueError(f"image_size must be positive (H, W), got {image_size}")
    return c2w, K_arr, (H, W)


def check_rotation(R: np.ndarray, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` unless every ``R`` ``[..., 3, 3]`` is a proper rotation."""
    R = np.asarray(R, dtype=np.float64)
    err = np.abs(np.swapaxes(R, -1, -2) @ R - np.eye(3)).reshape(-1, 9).max(axis=1)
    det = np.linalg.det(R).reshape(-1)
    bad = np.flatnonzero((err > ROTATION_TOLERANCE) | (det < 0))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{where}: matrix {i} is not a rotation (max |R^T R - I| = {err[i]:.3g}, det = {det[i]:.4f})"
        )


def invert_rigid(m: np.ndarray) -> np.ndarray:
    """Invert rigid transforms ``[..., 4, 4]`` (float64).

    The general matrix inverse, not ``[R^T | -R^T t]``: the two agree for exact rotations, but float32 input
    rotations are only orthonormal to ~1e-7, and the true inverse keeps write -> read round trips exact.
    """
    return np.linalg.inv(np.asarray(m, dtype=np.float64))


def rigid(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Assemble ``[F, 4, 4]`` from rotations ``[F, 3, 3]`` and translations ``[F, 3]``."""
    out = np.zeros((len(R), 4, 4))
    out[:, :3, :3] = R
    out[:, :3, 3] = t
    out[:, 3, 3] = 1.0
    return out


def pinhole_K(fx, fy, cx, cy) -> np.ndarray:
    """``[F, 3, 3]`` float64 intrinsics from per-frame (or scalar, broadcast) focals and principal points."""
    values = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (fx, fy, cx, cy))
    fx, fy, cx, cy = np.broadcast_arrays(*values)
    K = np.zeros((len(fx), 3, 3))
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = fx, fy, cx, cy, 1.0
    return K


def check_pinhole(K: np.ndarray, what: str) -> None:
    """Raise ``ValueError`` unless every ``K`` is ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``, fx, fy > 0."""
    off = np.abs(K[:, [0, 1, 2, 2], [1, 0, 0, 1]]).max() if len(K) else 0.0
    if off > 1e-9 or not np.allclose(K[:, 2, 2], 1.0) or (K[:, [0, 1], [0, 1]] <= 0).any():
        raise ValueError(f"{what}: K must be pinhole [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0")


def quat_xyzw_to_rotmat(q: np.ndarray, where: str) -> np.ndarray:
    """Unit quaternions XYZW ``[F, 4]`` -> rotations ``[F, 3, 3]`` (float64, roma).

    Quaternions are normalised first; a norm that is not close to 1 (file rounding aside) is logged, a norm
    near 0 is an error.

    Raises:
        ValueError: naming ``where`` for a (near-)zero quaternion.
    """
    q = np.asarray(q, dtype=np.float64)
    norm = np.linalg.norm(q, axis=-1)
    if (norm < 1e-8).any():
        raise ValueError(f"{where}: quaternion {int(np.argmin(norm))} has zero norm")
    if (np.abs(norm - 1.0) > 1e-3).any():
        logger.warning("%s: %d quaternions are not unit (norm up to %.4f); normalising", where,
                       int((np.abs(norm - 1.0) > 1e-3).sum()), float(norm.max()))
    return roma.unitquat_to_rotmat(torch.from_numpy(q / norm[:, None])).numpy()


def rotmat_to_quat_xyzw(R: np.ndarray) -> np.ndarray:
    """Rotations ``[F, 3, 3]`` -> unit quaternions XYZW ``[F, 4]`` (float64, roma), with ``w >= 0``."""
    q = roma.rotmat_to_unitquat(torch.from_numpy(np.asarray(R, dtype=np.float64))).numpy()
    return np.where(q[:, 3:4] < 0, -q, q)


def to_tensor(x: np.ndarray) -> torch.Tensor:
    """Cast a float64 array to the package's float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def format_float(x: float) -> str:
    """Format a float for a text camera file: 10 significant digits (1e-10 relative), no trailing zeros."""
    return format(float(x), ".10g")


def read_lines(path: str | Path, what: str) -> list[str]:
    """Read a text camera file's lines, with a clear error for a missing/empty/binary file.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is empty or not UTF-8 text.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a text {what} file ({err})") from err
    if not text.strip():
        raise ValueError(f"{path}: {what} file is empty")
    return text.splitlines()


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`jog3r.io.atomic.atomic_write_text`: never a half-written
    file)."""
    return atomic_write_text(path, text)
