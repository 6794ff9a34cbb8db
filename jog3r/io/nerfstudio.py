"""nerfstudio / DL3DV / instant-ngp ``transforms.json``: read and write.

File convention (nerfstudio ``data_conventions.md``; instant-ngp ``data/nerf/fox``; REFERENCE.md E.2):

* Top-level intrinsics in pixels: ``w``, ``h``, ``fl_x``, ``fl_y``, ``cx``, ``cy``. instant-ngp files may give
  only ``camera_angle_x`` (horizontal field of view, radians; ``fl_x = w / 2 / tan(camera_angle_x / 2)``) and
  ``camera_angle_y``. Any of these keys may also appear inside a frame, overriding the top-level value for
  that frame. ``cx = w / 2`` is the image centre: the package's pixel-centre convention.
* Distortion coefficients ``k1 k2 k3 k4 p1 p2`` (and ``camera_model``, e.g. ``OPENCV``, ``OPENCV_FISHEYE``):
  the images are NOT undistorted. The reader keeps the coefficients and logs a warning; ``K`` is the pinhole
  part only.
* ``frames``: list of ``{"file_path": relative path to the image, "transform_matrix": 4x4}``.
  ``transform_matrix`` is **camera-to-world in OpenGL/Blender axes** (x right, y up, z backward); the
  package's OpenCV ``cam2world = transform_matrix @ diag(1, -1, -1, 1)`` (the same flip converts back).
* Frame order is the file's order (nerfstudio's loader sorts by file name; we do not reorder).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from jog3r.io._convert import (
    OPENGL_TO_OPENCV,
    check_cameras,
    check_pinhole,
    check_rotation,
    pinhole_K,
    to_tensor,
    write_text_atomic,
)
from jog3r.io.types import CameraSet

logger = logging.getLogger(__name__)

_INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x", "camera_angle_y")
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


def _resolve_image(root: Path, file_path: str) -> Path | None:
    """The image ``file_path`` names (relative to ``root``); common suffixes are tried when it has none."""
    candidate = (root / file_path).resolve()
    if candidate.is_file():
        return candidate
    if not candidate.suffix:  # NeRF-synthetic style "./train/r_0"
        for suffix in _IMAGE_SUFFIXES:
            if candidate.with_suffix(suffix).is_file():
                return candidate.with_suffix(suffix)
    return None


def _image_size_from_file(image: Path) -> tuple[int, int]:
    """``(H, W)`` of an image file (only its header is read)."""
    try:
        with Image.open(image) as im:
            return int(im.height), int(im.width)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{image}: cannot read the image to get its size ({err})") from err


def _frame_intrinsics(
    path: Path, index: int, params: dict[str, Any], image: Path | None
) -> tuple[float, float, float, float, int, int]:
    """``(fx, fy, cx, cy, H, W)`` of one frame from its merged top-level + per-frame keys."""
    if "w" in params and "h" in params:
        H, W = int(params["h"]), int(params["w"])
    elif image is not None:
        H, W = _image_size_from_file(image)
    else:
        raise ValueError(f"{path}: frame {index} has no 'w'/'h' and no image was found (or checked), so its "
                         "size is unknown")
    if "fl_x" in params:
        fx = float(params["fl_x"])
    elif "camera_angle_x" in params:
        fx = 0.5 * W / math.tan(0.5 * float(params["camera_angle_x"]))
    else:
        raise ValueError(f"{path}: frame {index} has neither 'fl_x' nor 'camera_angle_x'")
    if "fl_y" in params:
        fy = float(params["fl_y"])
    elif "camera_angle_y" in params and "fl_x" not in params:
        fy = 0.5 * H / math.tan(0.5 * float(params["camera_angle_y"]))
    else:
        fy = fx
    cx = float(params.get("cx", 0.5 * W))
    cy = float(params.get("cy", 0.5 * H))
    return fx, fy, cx, cy, H, W


def read_transforms_json(path: str | Path, *, check_images: bool = True) -> CameraSet:
    """Read a nerfstudio / DL3DV / instant-ngp ``transforms.json`` (convention in the module docstring).

    Args:
        path: the JSON file; ``file_path`` entries are relative to its folder.
        check_images: look for each frame's image on disk and report the missing ones.

    Returns:
        A :class:`CameraSet` (OpenCV ``cam2world``, ``K`` in pixels, ``names`` = the ``file_path`` strings,
        ``timestamps`` ``None``) whose ``extra`` has:
        ``"image_paths"`` (resolved ``Path`` per frame, ``None`` if missing or not checked),
        ``"missing_images"`` (``file_path`` of frames whose image does not exist),
        ``"distortion"`` (``{key: value}`` of the non-zero ``k1..k4, p1, p2`` per frame; empty dicts if none),
        ``"camera_model"`` (the file's value or ``None``), ``"meta"`` (every other top-level key, e.g.
        ``aabb_scale``, ``applied_transform``; recorded, not applied) and ``"image_sizes"`` when frames
        differ.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: naming the file (and frame) for invalid JSON, no frames, a missing or non-rigid
            ``transform_matrix``, or intrinsics that cannot be determined.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: transforms.json not found")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list) or not meta["frames"]:
        raise ValueError(f"{path}: expected a JSON object with a non-empty 'frames' list")

    shared = {k: meta[k] for k in (*_INTRINSIC_KEYS, *DISTORTION_KEYS) if k in meta}
    root = path.parent
    c2w_gl, intr, sizes, names, images, missing, distortion = [], [], [], [], [], [], []
    for index, frame in enumerate(meta["frames"]):
        if not isinstance(frame, dict) or "transform_matrix" not in frame or "file_path" not in frame:
            raise ValueError(f"{path}: frame {index} needs 'file_path' and 'transform_matrix'")
        matrix = np.asarray(frame["transform_matrix"], dtype=np.float64)
        if matrix.shape == (3, 4):
            matrix = np.vstack([matrix, [0.0, 0.0, 0.0, 1.0]])
        if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
            raise ValueError(f"{path}: frame {index} transform_matrix must be finite 4x4, got {matrix.shape}")
        check_rotation(matrix[None, :3, :3], f"{path}: frame {index} transform_matrix")
        file_path = str(frame["file_path"])
        image = _resolve_image(root, file_path) if check_images else None
        if check_images and image is None:
            missing.append(file_path)
        params = {**shared, **{k: frame[k] for k in (*_INTRINSIC_KEYS, *DISTORTION_KEYS) if k in frame}}
        fx, fy, cx, cy, H, W = _frame_intrinsics(path, index, params, image)
        c2w_gl.append(matrix)
        intr.append((fx, fy, cx, cy))
        sizes.append((H, W))
        names.append(file_path)
        images.append(image)
        distortion.append({k: float(params[k]) for k in DISTORTION_KEYS if float(params.get(k, 0.0)) != 0.0})

    if missing:
        logger.warning("%s: %d of %d images are missing (first: %s)", path, len(missing), len(names),
                       missing[0])
    if any(distortion):
        logger.warning("%s: images are distorted (%s); K is the pinhole part only", path, distortion[0])
    extra: dict[str, Any] = {
        "image_paths": images,
        "missing_images": missing,
        "distortion": distortion,
        "camera_model": meta.get("camera_model"),
        "meta": {k: v for k, v in meta.items() if k != "frames" and k not in shared and k != "camera_model"},
    }
    if len(set(sizes)) > 1:
        logger.warning("%s: frames have %d different image sizes; see extra['image_sizes']", path,
                       len(set(sizes)))
        extra["image_sizes"] = sizes
    cam2world = np.stack(c2w_gl) @ OPENGL_TO_OPENCV
    intr_arr = np.asarray(intr)
    return CameraSet(
        cam2world=to_tensor(cam2world),
        K=to_tensor(pinhole_K(*intr_arr.T)),
        image_size=sizes[0],
        names=tuple(names),
        timestamps=None,
        extra=extra,
    )


def write_transforms_json(
    path: str | Path,
    cam2world: torch.Tensor | np.ndarray,
    K: torch.Tensor | np.ndarray,
    image_size: tuple[int, int],
    *,
    file_paths: list[str] | None = None,
    distortion: dict[str, float] | None = None,
    camera_model: str = "OPENCV",
    meta: dict[str, Any] | None = None,
    frame_meta: list[dict[str, Any]] | None = None,
) -> Path:
    """Write a nerfstudio ``transforms.json`` (convention in the module docstring).

    Intrinsics go at the top level (``fl_x fl_y cx cy w h`` plus instant-ngp's ``camera_angle_x/y``) when
    every frame has the same ``K``, otherwise into each frame.

    Args:
        path: output JSON path (parents are created; written atomically).
        cam2world: ``[F, 4, 4]`` camera-to-world, OpenCV axes; written as OpenGL-axes ``transform_matrix``.
        K: ``[F, 3, 3]`` (or one ``[3, 3]``) pinhole intrinsics in pixels of ``image_size``.
        image_size: ``(H, W)`` in pixels.
        file_paths: image path of each frame relative to the JSON's folder; default
            ``images/frame_00001.png, ...`` (nerfstudio's naming, 1-based).
        distortion: top-level coefficients among ``k1 k2 k3 k4 p1 p2``; default none (zeros are written).
        camera_model: nerfstudio ``camera_model`` value.
        meta: extra top-level keys to write (e.g. ``{"aabb_scale": 4}``); may not override the camera keys.
        frame_meta: one dict of extra keys per frame (e.g. ``{"source_frame_index": 40}``), written into that
            frame's entry; may not override the camera keys (nerfstudio ignores unknown frame keys).

    Returns:
        ``path``.

    Raises:
        ValueError: for wrong shapes, non-rigid ``cam2world``, non-pinhole ``K``, unknown distortion keys, a
            wrong number of ``file_paths`` or ``frame_meta``, or ``meta`` / ``frame_meta`` keys that clash
            with camera keys.
    """
    c2w, K_arr, (H, W) = check_cameras(cam2world, K, image_size)
    check_pinhole(K_arr, "write_transforms_json")
    num = len(c2w)
    if file_paths is None:
        file_paths = [f"images/frame_{i + 1:05d}.png" for i in range(num)]
    if len(file_paths) != num:
        raise ValueError(f"got {len(file_paths)} file_paths for {num} cameras")
    if frame_meta is not None and len(frame_meta) != num:
        raise ValueError(f"got {len(frame_meta)} frame_meta entries for {num} cameras")
    frame_keys = {"file_path", "transform_matrix", "fl_x", "fl_y", "cx", "cy", "w", "h"}
    if frame_meta is not None and any(set(extra) & frame_keys for extra in frame_meta):
        raise ValueError(f"frame_meta keys may not be any of {sorted(frame_keys)}")
    distortion = dict(distortion or {})
    unknown = set(distortion) - set(DISTORTION_KEYS)
    if unknown:
        raise ValueError(f"unknown distortion keys {sorted(unknown)}; use {DISTORTION_KEYS}")
    out: dict[str, Any] = {"camera_model": camera_model, "w": W, "h": H}
    shared_K = bool(np.all(K_arr == K_arr[0]))
    if shared_K:
        fx, fy, cx, cy = (float(v) for v in K_arr[0, [0, 1, 0, 1], [0, 1, 2, 2]])
        out.update(fl_x=fx, fl_y=fy, cx=cx, cy=cy)
        out.update(camera_angle_x=2 * math.atan(0.5 * W / fx), camera_angle_y=2 * math.atan(0.5 * H / fy))
    out.update({k: float(distortion.get(k, 0.0)) for k in ("k1", "k2", "p1", "p2")})
    out.update({k: float(v) for k, v in distortion.items() if k in ("k3", "k4")})
    clash = set(meta or {}) & (set(out) | {"frames"})
    if clash:
        raise ValueError(f"meta keys {sorted(clash)} clash with camera keys")
    out.update(meta or {})
    transform_gl = c2w @ OPENGL_TO_OPENCV
    frames = []
    for i in range(num):
        frame: dict[str, Any] = {"file_path": str(file_paths[i]),
                                 "transform_matrix": transform_gl[i].tolist()}
        if not shared_K:
            frame.update(
                fl_x=float(K_arr[i, 0, 0]), fl_y=float(K_arr[i, 1, 1]),
                cx=float(K_arr[i, 0, 2]), cy=float(K_arr[i, 1, 2]),
            )
        if frame_meta is not None:
            frame.update(frame_meta[i])
        frames.append(frame)
    out["frames"] = frames
    return write_text_atomic(path, json.dumps(out, indent=2) + "\n")


__all__ = ["DISTORTION_KEYS", "read_transforms_json", "write_transforms_json"]
