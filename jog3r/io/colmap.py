"""COLMAP text models (``cameras.txt``, ``images.txt``, ``points3D.txt``): read and write.

File convention (COLMAP "Output format" documentation):

* ``cameras.txt``: ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS[]``. Read: ``SIMPLE_PINHOLE (f cx cy)``,
  ``PINHOLE (fx fy cx cy)``, ``SIMPLE_RADIAL (f cx cy k)``, ``RADIAL (f cx cy k1 k2)``,
  ``OPENCV (fx fy cx cy k1 k2 p1 p2)``, ``FULL_OPENCV (fx fy cx cy k1 k2 p1 p2 k3 k4 k5 k6)``. The distortion
  parameters are kept (``extra["distortion"]``) and ``K`` is the pinhole part. COLMAP puts the centre of the
  top-left pixel at ``(0.5, 0.5)``: the package's convention, so ``cx, cy`` are used as they are. Written: one
  ``PINHOLE`` camera per distinct ``K``.
* ``images.txt``: two lines per image, ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` then
  ``POINTS2D[] as (X, Y, POINT3D_ID)`` (``-1`` for no 3D point). ``(Q, T)`` is **world-to-camera**, OpenCV
  axes, with COLMAP's **scalar-first** quaternion ``QW QX QY QZ``; it becomes XYZW (the package/roma order)
  here and nowhere else. Images are returned sorted by ``NAME`` in natural order (video frames), not by id.
* ``points3D.txt``: ``POINT3D_ID X Y Z R G B ERROR TRACK[] as (IMAGE_ID, POINT2D_IDX)``, world coordinates,
  RGB uint8, reprojection error in pixels.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jog3r.io._convert import (
    check_cameras,
    check_pinhole,
    format_float,
    invert_rigid,
    pinhole_K,
    quat_xyzw_to_rotmat,
    read_lines,
    rigid,
    rotmat_to_quat_xyzw,
    to_tensor,
    write_text_atomic,
)
from jog3r.io.types import CameraSet

logger = logging.getLogger(__name__)

#: Camera model -> (number of parameters, names of the distortion parameters after the pinhole ones).
CAMERA_MODELS: dict[str, tuple[int, tuple[str, ...]]] = {
    "SIMPLE_PINHOLE": (3, ()),
    "PINHOLE": (4, ()),
    "SIMPLE_RADIAL": (4, ("k",)),
    "RADIAL": (5, ("k1", "k2")),
    "OPENCV": (8, ("k1", "k2", "p1", "p2")),
    "FULL_OPENCV": (12, ("k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6")),
}


@dataclass(frozen=True)
class ColmapPoints:
    """The contents of ``points3D.txt`` (NumPy, file-level data).

    Attributes:
        ids: ``[N]`` int64 ``POINT3D_ID``.
        xyz: ``[N, 3]`` float64 world coordinates (the scene's units).
        rgb: ``[N, 3]`` uint8 colour.
        error: ``[N]`` float64 reprojection error in pixels.
        tracks: ``N`` arrays ``[n_i, 2]`` int64 of ``(IMAGE_ID, POINT2D_IDX)``.
    """

    ids: np.ndarray
    xyz: np.ndarray
    rgb: np.ndarray
    error: np.ndarray
    tracks: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return int(len(self.ids))


def natural_key(name: str) -> list:
    """Sort key comparing digit runs as integers: ``frame_2 < frame_10``."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def _data_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """``(line number, line)`` of every non-comment line (``images.txt`` keeps empty 2D-point lines)."""
    return [(n, line) for n, line in enumerate(read_lines(path, what), start=1) if not line.startswith("#")]


def _read_cameras(path: Path) -> dict[int, tuple[str, int, int, np.ndarray]]:
    """``CAMERA_ID -> (MODEL, WIDTH, HEIGHT, PARAMS)`` from ``cameras.txt``."""
    cameras = {}
    for lineno, line in _data_lines(path, "COLMAP cameras.txt"):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) < 4 or tokens[1] not in CAMERA_MODELS:
            model = tokens[1] if len(tokens) > 1 else "?"
            raise ValueError(
                f"{path}:{lineno}: unsupported or malformed camera (model {model!r}); "
                f"supported: {', '.join(CAMERA_MODELS)}"
            )
        num_params = CAMERA_MODELS[tokens[1]][0]
        try:
            params = np.asarray([float(v) for v in tokens[4:]])
            cam_id, width, height = int(tokens[0]), int(tokens[2]), int(tokens[3])
        except ValueError as err:
            raise ValueError(f"{path}:{lineno}: non-numeric camera field ({err})") from err
        if len(params) != num_params:
            raise ValueError(f"{path}:{lineno}: {tokens[1]} needs {num_params} parameters, got {len(params)}")
        cameras[cam_id] = (tokens[1], width, height, params)
    if not cameras:
        raise ValueError(f"{path}: no cameras")
    return cameras


def _pinhole(model: str, params: np.ndarray) -> tuple[tuple[float, float, float, float], dict[str, float]]:
    """``((fx, fy, cx, cy), distortion)`` of a COLMAP camera."""
    if model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"):
        f, cx, cy = params[:3]
        pinhole, rest = (f, f, cx, cy), params[3:]
    else:
        pinhole, rest = tuple(params[:4]), params[4:]
    return tuple(float(v) for v in pinhole), dict(zip(CAMERA_MODELS[model][1], (float(v) for v in rest)))


def read_colmap_points3d(path: str | Path) -> ColmapPoints:
    """Read ``points3D.txt`` (convention in the module docstring).

    Args:
        path: the ``points3D.txt`` file.

    Returns:
        A :class:`ColmapPoints` (possibly with ``N = 0``).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: naming the line of a malformed point.
    """
    path = Path(path)
    ids, xyz, rgb, error, tracks = [], [], [], [], []
    if path.is_file() and path.stat().st_size == 0:
        lines = []  # an empty file is a model without points
    else:
        lines = read_lines(path, "COLMAP points3D.txt")
    for lineno, line in enumerate(lines, start=1):
        if line.startswith("#") or not line.strip():
            continue
        tokens = line.split()
        if len(tokens) < 8 or (len(tokens) - 8) % 2:
            raise ValueError(f"{path}:{lineno}: expected 'ID X Y Z R G B ERROR (IMAGE_ID POINT2D_IDX)*'")
        try:
            ids.append(int(tokens[0]))
            xyz.append([float(v) for v in tokens[1:4]])
            rgb.append([int(v) for v in tokens[4:7]])
            error.append(float(tokens[7]))
            tracks.append(np.asarray([int(v) for v in tokens[8:]], dtype=np.int64).reshape(-1, 2))
        except ValueError as err:
            raise ValueError(f"{path}:{lineno}: malformed point ({err})") from err
    rgb_arr = np.asarray(rgb, dtype=np.int64).reshape(-1, 3)
    if ((rgb_arr < 0) | (rgb_arr > 255)).any():
        raise ValueError(f"{path}: colours must be integers in [0, 255]")
    return ColmapPoints(
        ids=np.asarray(ids, dtype=np.int64),
        xyz=np.asarray(xyz, dtype=np.float64).reshape(-1, 3),
        rgb=rgb_arr.astype(np.uint8),
        error=np.asarray(error, dtype=np.float64),
        tracks=tuple(tracks),
    )


def read_colmap_text(model_dir: str | Path, *, points: bool = True) -> tuple[CameraSet, ColmapPoints | None]:
    """Read a COLMAP text model folder (convention in the module docstring).

    Args:
        model_dir: folder holding ``cameras.txt``, ``images.txt`` and (if ``points``) ``points3D.txt``.
        points: also read ``points3D.txt``.

    Returns:
        ``(cameras, points)``: a :class:`CameraSet` sorted by image name (OpenCV ``cam2world``, ``K`` in
        pixels, ``names`` the image names, ``timestamps`` ``None``) and the :class:`ColmapPoints` (``None`` if
        ``points`` is False). ``cameras.extra`` has ``"image_ids"`` and ``"camera_ids"`` (per frame),
        ``"camera_models"`` (per frame), ``"distortion"`` (per frame ``{name: value}``, empty for pinhole
        models), ``"points2d"`` (per frame ``[n, 3]`` float64 ``X Y POINT3D_ID``) and ``"image_sizes"`` when
        cameras differ in size.

    Raises:
        FileNotFoundError: if a file is missing.
        ValueError: naming the file and line for malformed lines, unknown camera ids, unsupported models or
            duplicate image ids.
    """
    model_dir = Path(model_dir)
    cams_path, images_path = model_dir / "cameras.txt", model_dir / "images.txt"
    cameras = _read_cameras(cams_path)
    lines = _data_lines(images_path, "COLMAP images.txt")
    while lines and not lines[-1][1].strip():  # trailing blank lines after the last 2D-point line
        lines.pop()
    records = []
    for k in range(0, len(lines), 2):
        lineno, header = lines[k]
        tokens = header.split()
        if len(tokens) < 10:
            raise ValueError(
                f"{images_path}:{lineno}: expected 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME'"
            )
        try:
            image_id, cam_id = int(tokens[0]), int(tokens[8])
            qt = [float(v) for v in tokens[1:8]]
            pts = [float(v) for v in lines[k + 1][1].split()] if k + 1 < len(lines) else []
        except ValueError as err:
            raise ValueError(f"{images_path}:{lineno}: malformed image ({err})") from err
        if cam_id not in cameras:
            raise ValueError(f"{images_path}:{lineno}: CAMERA_ID {cam_id} is not in {cams_path.name}")
        if len(pts) % 3:
            raise ValueError(f"{images_path}:{lineno + 1}: 2D points must be (X, Y, POINT3D_ID) triples")
        records.append((" ".join(tokens[9:]), image_id, cam_id, qt, np.asarray(pts).reshape(-1, 3)))
    if not records:
        raise ValueError(f"{images_path}: no images")
    ids = [r[1] for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{images_path}: duplicate IMAGE_IDs")
    records.sort(key=lambda r: natural_key(r[0]))

    q_wxyz = np.asarray([r[3][:4] for r in records])
    R = quat_xyzw_to_rotmat(q_wxyz[:, [1, 2, 3, 0]], str(images_path))  # COLMAP QW QX QY QZ -> XYZW
    world2cam = rigid(R, np.asarray([r[3][4:] for r in records]))
    intr, distortion, models, sizes = [], [], [], []
    for r in records:
        model, width, height, params = cameras[r[2]]
        pinhole, dist = _pinhole(model, params)
        intr.append(pinhole)
        distortion.append(dist)
        models.append(model)
        sizes.append((height, width))
    if any(any(d.values()) for d in distortion):
        logger.warning("%s: cameras have distortion parameters; K is the pinhole part only", cams_path)
    extra = {
        "image_ids": [r[1] for r in records],
        "camera_ids": [r[2] for r in records],
        "camera_models": models,
        "distortion": distortion,
        "points2d": [r[4] for r in records],
    }
    if len(set(sizes)) > 1:
        logger.warning("%s: cameras have different image sizes; see extra['image_sizes']", cams_path)
        extra["image_sizes"] = sizes
    camera_set = CameraSet(
        cam2world=to_tensor(invert_rigid(world2cam)),
        K=to_tensor(pinhole_K(*np.asarray(intr).T)),
        image_size=sizes[0],
        names=tuple(r[0] for r in records),
        timestamps=None,
        extra=extra,
    )
    return camera_set, (read_colmap_points3d(model_dir / "points3D.txt") if points else None)


def write_colmap_text(
    model_dir: str | Path,
    cam2world: torch.Tensor | np.ndarray,
    K: torch.Tensor | np.ndarray,
    image_size: tuple[int, int],
    *,
    names: list[str] | tuple[str, ...] | None = None,
    points: ColmapPoints | None = None,
    points2d: list[np.ndarray] | None = None,
) -> Path:
    """Write a COLMAP text model folder (convention in the module docstring).

    Image ids are ``1..F`` in the given order; one ``PINHOLE`` camera is written per distinct ``K``.

    Args:
        model_dir: output folder (created); ``cameras.txt``, ``images.txt``, ``points3D.txt`` are written
            atomically (an empty ``points3D.txt`` when ``points`` is None).
        cam2world: ``[F, 4, 4]`` camera-to-world, OpenCV axes.
        K: ``[F, 3, 3]`` (or one ``[3, 3]``) pinhole intrinsics in pixels of ``image_size``.
        image_size: ``(H, W)`` in pixels.
        names: image file name per frame; default ``frame_00001.png, ...``.
        points: 3D points; their tracks must refer to image ids ``1..F``.
        points2d: per frame ``[n, 3]`` ``(X, Y, POINT3D_ID)`` in pixels (``-1`` id for none); default empty
            lines.

    Returns:
        ``model_dir``.

    Raises:
        ValueError: for wrong shapes, non-rigid ``cam2world``, non-pinhole ``K``, names containing newlines or
            of the wrong count, or tracks referring to unknown image ids.
    """
    c2w, K_arr, (H, W) = check_cameras(cam2world, K, image_size)
    check_pinhole(K_arr, "write_colmap_text")
    num = len(c2w)
    names = [f"frame_{i + 1:05d}.png" for i in range(num)] if names is None else [str(n) for n in names]
    if len(names) != num or any("\n" in n or not n.strip() for n in names):
        raise ValueError(f"need {num} non-empty single-line names, got {len(names)}")
    if points2d is not None and len(points2d) != num:
        raise ValueError(f"got {len(points2d)} points2d arrays for {num} cameras")
    model_dir = Path(model_dir)

    intr = K_arr[:, [0, 1, 0, 1], [0, 1, 2, 2]]
    unique, first, camera_index = np.unique(intr, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # camera ids in the order of the frames that first use them
    unique, camera_index = unique[order], np.argsort(order)[camera_index.reshape(-1)]
    cam_lines = ["# Camera list with one line of data per camera:",
                 "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]", f"# Number of cameras: {len(unique)}"]
    for c, params in enumerate(unique, start=1):
        cam_lines.append(f"{c} PINHOLE {W} {H} " + " ".join(format_float(v) for v in params))

    # The quaternion makes the rotation exactly orthonormal; T is computed from that rotation so that the
    # reader's inverse gives back the camera centre exactly.
    q_xyzw = rotmat_to_quat_xyzw(invert_rigid(c2w)[:, :3, :3])
    R_w2c = quat_xyzw_to_rotmat(q_xyzw, "write_colmap_text")
    world2cam = rigid(R_w2c, -np.einsum("fij,fj->fi", R_w2c, c2w[:, :3, 3]))
    img_lines = ["# Image list with two lines of data per image:",
                 "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
                 "#   POINTS2D[] as (X, Y, POINT3D_ID)", f"# Number of images: {num}"]
    for i in range(num):
        qt = np.concatenate([q_xyzw[i, [3, 0, 1, 2]], world2cam[i, :3, 3]])  # XYZW -> COLMAP QW QX QY QZ
        cam_id = int(camera_index.reshape(-1)[i]) + 1
        img_lines.append(f"{i + 1} " + " ".join(format_float(v) for v in qt) + f" {cam_id} {names[i]}")
        obs = np.zeros((0, 3)) if points2d is None else np.asarray(points2d[i], np.float64).reshape(-1, 3)
        img_lines.append(" ".join(f"{format_float(x)} {format_float(y)} {int(pid)}" for x, y, pid in obs))

    pts_lines = ["# 3D point list with one line of data per point:",
                 "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
                 f"# Number of points: {0 if points is None else len(points)}"]
    if points is not None:
        for pid, xyz, rgb, err, track in zip(points.ids, points.xyz, points.rgb, points.error, points.tracks):
            track = np.asarray(track, dtype=np.int64).reshape(-1, 2)
            if len(track) and (track[:, 0].min() < 1 or track[:, 0].max() > num):
                raise ValueError(f"point {int(pid)}: track refers to an image id outside 1..{num}")
            fields = [str(int(pid)), *(format_float(v) for v in xyz), *(str(int(v)) for v in rgb)]
            fields += [format_float(err), *(str(int(v)) for v in track.reshape(-1))]
            pts_lines.append(" ".join(fields))

    write_text_atomic(model_dir / "cameras.txt", "\n".join(cam_lines) + "\n")
    write_text_atomic(model_dir / "images.txt", "\n".join(img_lines) + "\n")
    write_text_atomic(model_dir / "points3D.txt", "\n".join(pts_lines) + "\n")
    return model_dir


__all__ = ["CAMERA_MODELS", "ColmapPoints", "natural_key", "read_colmap_points3d", "read_colmap_text",
           "write_colmap_text"]
