"""Real-data loaders returning :class:`~jog3r.types.PosedClip`: RealEstate10K folders, nerfstudio / DL3DV
``transforms.json`` and COLMAP text models.

Camera files are parsed by :mod:`jog3r.io` (``read_re10k``, ``read_transforms_json``, ``read_colmap_text``, all
already in the package convention of :mod:`jog3r.geometry.camera`); videos are decoded by
:func:`jog3r.io.video.read_video`. This module pairs frames with poses and refuses to guess: a different number
of frames and poses, a missing image, a non-RGB image, frames of different sizes or a truncated video raise a
``ValueError`` naming the file and the problem, never a silently shortened or shifted clip.

Frames can be resized with ``size=(H, W)``: resize to cover + centre crop
(:func:`jog3r.io.video.resize_and_center_crop`), with ``K`` adjusted by :func:`jog3r.geometry.camera.adjust_intrinsics`
and depth resampled with nearest neighbours on the same geometry.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as tfn
from PIL import Image, ImageOps, UnidentifiedImageError

from jog3r.io.colmap import natural_key, read_colmap_text
from jog3r.io.nerfstudio import read_transforms_json
from jog3r.io.re10k import read_re10k
from jog3r.types import PosedClip
from jog3r.geometry.camera import adjust_intrinsics, resize_crop_geometry
from jog3r.io.video import IMAGE_SUFFIXES, read_video, resize_and_center_crop

logger = logging.getLogger(__name__)


def read_rgb_image(path: str | Path) -> torch.Tensor:
    """Read one RGB image (EXIF orientation applied) as ``[3, H, W]`` float32 in ``[0, 1]``.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file if it cannot be decoded or is not an 8-bit RGB image (grayscale, palette,
            RGBA, CMYK, 16-bit ...): training data is never converted silently.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image not found")
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode != "RGB":
                raise ValueError(f"{path}: expected an RGB image, got mode {im.mode!r}")
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: cannot read image ({err})") from err
    return torch.from_numpy(arr.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()


def read_image_stack(paths: list[Path]) -> torch.Tensor:
    """Read RGB images of one size as ``[F, 3, H, W]`` float32 (errors name the offending file)."""
    frames = []
    for p in paths:
        img = read_rgb_image(p)
        if frames and img.shape != frames[0].shape:
            raise ValueError(f"{p}: image is {tuple(img.shape[1:])} (H, W) but {paths[0]} is "
                             f"{tuple(frames[0].shape[1:])}; all frames of a clip must have one size")
        frames.append(img)
    if not frames:
        raise ValueError("no images to read")
    return torch.stack(frames)


def folder_images(folder: Path) -> list[Path]:
    """Image files of a frames folder in natural order (``2.jpg`` before ``10.jpg``)."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                  key=lambda p: natural_key(p.name))


def probe_media(path: str | Path) -> tuple[int, tuple[int, int]]:
    """Number of frames and ``(H, W)`` of a video file or a frames folder, without decoding the frames.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: naming the file for an empty folder, an empty file or a file FFmpeg cannot open.
    """
    path = Path(path)
    if path.is_dir():
        files = folder_images(path)
        if not files:
            raise ValueError(f"{path}: frames folder has no images ({', '.join(IMAGE_SUFFIXES)})")
        with Image.open(files[0]) as im:
            return len(files), (im.height, im.width)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file or frames folder")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: video file is empty (0 bytes)")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: the file has no video stream")
            stream = container.streams.video[0]
            num = stream.frames if stream.frames > 0 else sum(1 for p in container.demux(stream) if p.size > 0)
            return int(num), (stream.codec_context.height, stream.codec_context.width)
    except av.FFmpegError as err:
        raise ValueError(f"{path}: not a readable video ({err})") from err


def read_frames(path: str | Path, indices: np.ndarray, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Frames ``indices`` (any order) of a video or frames folder as ``[F, 3, H, W]`` float32.

    Args:
        path: video file or frames folder.
        indices: ``[F]`` source frame indices; an arithmetic progression (either direction) is decoded without
            reading the frames in between.
        size: optional ``(H, W)`` for resize-to-cover + centre crop.

    Raises:
        ValueError: naming the file when a requested frame cannot be decoded (truncated/corrupt video) or an
            image is not RGB.
    """
    path = Path(path)
    indices = np.asarray(indices, dtype=np.int64)
    if path.is_dir():
        files = folder_images(path)
        if indices.min() < 0 or indices.max() >= len(files):
            raise ValueError(f"{path}: frame index {int(indices.max())} requested but the folder has {len(files)} images")
        frames = read_image_stack([files[i] for i in indices])
        return frames if size is None else resize_and_center_crop(frames, size)
    order = np.sort(indices)
    steps = np.unique(np.diff(order)) if len(order) > 1 else np.array([1])
    if len(order) == 1:  # read_video returns at least 2 frames: take the neighbour too
        video, _ = read_video(path, num_frames=2, stride=1, start=max(0, int(order[0]) - 1), size=size)
    elif len(steps) == 1 and steps[0] > 0:
        video, _ = read_video(path, num_frames=len(order), stride=int(steps[0]), start=int(order[0]), size=size)
    else:
        video, _ = read_video(path, stride=1, max_frames=int(order[-1]) + 1, size=size)
    got = video.frame_indices.numpy()
    lookup = {int(i): k for k, i in enumerate(got)}
    missing = [int(i) for i in indices if int(i) not in lookup]
    if missing:
        raise ValueError(f"{path}: truncated or corrupt video: frame {missing[0]} could not be decoded")
    return video.frames[[lookup[int(i)] for i in indices]]


def resize_depth(depth: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize-to-cover + centre crop of ``[F, H, W]`` depth (same geometry as the frames)."""
    (hr, wr), (top, left) = resize_crop_geometry(tuple(depth.shape[-2:]), size)
    if (hr, wr) != tuple(depth.shape[-2:]):
        depth = tfn.interpolate(depth[:, None].float(), size=(hr, wr), mode="nearest-exact")[:, 0]
    return depth[:, top : top + size[0], left : left + size[1]].contiguous()


def read_depth_npz(path: str | Path, num_frames: int, image_size: tuple[int, int]) -> torch.Tensor:
    """Read ``depth/<clip_id>.npz`` (key ``depth``, ``[F, H, W]``) as float32, checking it matches the clip.

    Raises:
        ValueError: naming the file for a missing ``depth`` key, an unreadable file or a shape that does not
            match ``(num_frames, *image_size)``.
    """
    path = Path(path)
    try:
        with np.load(path) as data:
            if "depth" not in data:
                raise ValueError(f"{path}: no 'depth' array (keys: {list(data.keys())})")
            depth = data["depth"].astype(np.float32)
    except (OSError, ValueError, EOFError) as err:
        if isinstance(err, ValueError) and str(err).startswith(str(path)):
            raise
        raise ValueError(f"{path}: cannot read depth file ({err})") from err
    if depth.shape != (num_frames, *image_size):
        raise ValueError(f"{path}: depth has shape {depth.shape} but the clip has {num_frames} frames of {image_size}")
    depth[~np.isfinite(depth)] = 0.0
    return torch.from_numpy(depth)


def read_captions(path: str | Path) -> dict[str, str]:
    """Read ``captions.json`` (``{clip_id: caption}``).

    Raises:
        ValueError: naming the file if it is not UTF-8 JSON or not an object of strings.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: unreadable captions file ({err})") from err
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"{path}: captions must be a JSON object mapping clip ids to strings")
    return data


def find_media(folder: Path, clip_id: str) -> Path | None:
    """The video (``<id>.mp4``/``.webm``/...) or frames folder (``frames/<id>/`` or ``<id>/``) of a clip."""
    for suffix in (".mp4", ".webm", ".mkv", ".mov", ".avi"):
        if (folder / f"{clip_id}{suffix}").is_file():
            return folder / f"{clip_id}{suffix}"
    for cand in (folder / "frames" / clip_id, folder / clip_id):
        if cand.is_dir():
            return cand
    return None


def load_re10k_clip(cameras: str | Path, media: str | Path | None = None, *, indices=None,
                    size: tuple[int, int] | None = None, caption: str | None = None,
                    depth: str | Path | None = None) -> PosedClip:
    """Load a RealEstate10K clip: camera txt + video (or frames folder), optional caption and depth.

    Args:
        cameras: ``<clip_id>.txt`` (one line per video frame after the URL line).
        media: the video or frames folder; default: found next to ``cameras`` by :func:`find_media`.
        indices: source frames to keep (default all), in the order wanted.
        size: optional output ``(H, W)``.
        caption: caption to attach.
        depth: optional ``.npz`` with ``depth [F_all, H, W]`` at the media's size.

    Returns:
        A :class:`~jog3r.types.PosedClip` in the file's world frame (use
        :func:`jog3r.data.sampling.relative_to_first` for first-frame-relative cameras).

    Raises:
        FileNotFoundError: if the camera file or the media is missing.
        ValueError: naming the files if the numbers of frames and camera lines differ, and for any error of the
            camera file, video or images.
    """
    cameras = Path(cameras)
    if media is None:
        media = find_media(cameras.parent, cameras.stem)
        if media is None:
            raise FileNotFoundError(f"{cameras}: no video {cameras.stem}.mp4 or frames folder frames/{cameras.stem}/ next to it")
    media = Path(media)
    num, src = probe_media(media)
    cams = read_re10k(cameras, src)
    if cams.num_frames != num:
        raise ValueError(f"{cameras} has {cams.num_frames} camera lines but {media} has {num} frames; "
                         "frames and poses must correspond one to one")
    idx = np.arange(num) if indices is None else np.asarray(indices, dtype=np.int64)
    if len(idx) == 0 or idx.min() < 0 or idx.max() >= num:
        raise ValueError(f"{media}: frame indices must lie in [0, {num - 1}], got {idx.tolist()}")
    frames = read_frames(media, idx, size)
    K = cams.K[idx]
    depth_t = None
    if depth is not None:
        depth_t = read_depth_npz(depth, num, src)[idx]
    if size is not None:
        K = adjust_intrinsics(K, src, size)
        depth_t = None if depth_t is None else resize_depth(depth_t, size)
    return PosedClip(frames=frames, cam2world=cams.cam2world[idx], K=K, depth=depth_t, caption=caption,
                     name=cameras.stem, frame_indices=torch.from_numpy(idx))


def _clip_from_images(source: Path, cam2world: torch.Tensor, K: torch.Tensor, images: list[Path], image_size,
                      indices, size, name: str) -> PosedClip:
    idx = np.arange(len(images)) if indices is None else np.asarray(indices, dtype=np.int64)
    if len(idx) == 0 or idx.min() < 0 or idx.max() >= len(images):
        raise ValueError(f"{source}: frame indices must lie in [0, {len(images) - 1}], got {idx.tolist()}")
    frames = read_image_stack([images[i] for i in idx])
    if tuple(frames.shape[-2:]) != tuple(image_size):
        raise ValueError(f"{images[idx[0]]}: image is {tuple(frames.shape[-2:])} (H, W) but {source} gives "
                         f"intrinsics for {tuple(image_size)}")
    K = K[idx]
    if size is not None:
        frames = resize_and_center_crop(frames, size)
        K = adjust_intrinsics(K, tuple(image_size), size)
    return PosedClip(frames=frames, cam2world=cam2world[idx], K=K, depth=None, caption=None, name=name,
                     frame_indices=torch.from_numpy(idx))


def load_transforms_json(path: str | Path, *, indices=None, size: tuple[int, int] | None = None) -> PosedClip:
    """Load a nerfstudio / DL3DV / instant-ngp ``transforms.json`` scene as a clip (OpenGL -> OpenCV by
    :func:`jog3r.io.nerfstudio.read_transforms_json`). Frames are ordered by natural sort of ``file_path``.

    Args:
        path: the JSON file (``file_path`` entries relative to its folder).
        indices: frames to keep (positions in the sorted frame list; default all).
        size: optional output ``(H, W)``.

    Raises:
        FileNotFoundError: if the JSON is missing.
        ValueError: naming the JSON and the images if any listed image is missing, unreadable, not RGB, or of a
            size other than the intrinsics'.
    """
    path = Path(path)
    cams = read_transforms_json(path, check_images=True)
    if cams.extra["missing_images"]:
        missing = cams.extra["missing_images"]
        raise ValueError(f"{path}: {len(missing)} of {cams.num_frames} listed images are missing (first: {missing[0]})")
    if "image_sizes" in cams.extra:
        raise ValueError(f"{path}: frames have different image sizes; a clip needs one size")
    order = sorted(range(cams.num_frames), key=lambda i: natural_key(cams.names[i]))
    images = [cams.extra["image_paths"][i] for i in order]
    return _clip_from_images(path, cams.cam2world[order], cams.K[order], images, cams.image_size, indices, size,
                             path.parent.name)


def load_colmap(model_dir: str | Path, images_dir: str | Path, *, indices=None,
                size: tuple[int, int] | None = None) -> PosedClip:
    """Load a COLMAP text model (``cameras.txt``, ``images.txt``) and its images as a clip sorted by image name.

    Args:
        model_dir: folder with the text model.
        images_dir: folder with the images named in ``images.txt``.
        indices: frames to keep (positions in the sorted list; default all).
        size: optional output ``(H, W)``.

    Raises:
        FileNotFoundError: if a model file is missing.
        ValueError: naming the files for a missing or non-RGB image, mixed camera sizes, or malformed model files.
    """
    model_dir, images_dir = Path(model_dir), Path(images_dir)
    cams, _ = read_colmap_text(model_dir, points=False)
    if "image_sizes" in cams.extra:
        raise ValueError(f"{model_dir / 'cameras.txt'}: cameras have different image sizes; a clip needs one size")
    images = [images_dir / name for name in cams.names]
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise ValueError(f"{model_dir / 'images.txt'}: {len(missing)} images are missing (first: {missing[0]})")
    return _clip_from_images(model_dir / "images.txt", cams.cam2world, cams.K, images, cams.image_size, indices, size,
                             model_dir.name)


def collate_clips(clips: list[PosedClip]) -> dict[str, torch.Tensor | list]:
    """Batch clips of one size: ``frames [B, F, 3, H, W]``, ``cam2world [B, F, 4, 4]``, ``K [B, F, 3, 3]``,
    ``depth [B, F, H, W]`` (only when every clip has depth), ``frame_indices [B, F]``, ``caption`` and ``name``
    lists."""
    out: dict[str, torch.Tensor | list] = {
        "frames": torch.stack([c.frames for c in clips]),
        "cam2world": torch.stack([c.cam2world for c in clips]),
        "K": torch.stack([c.K for c in clips]),
        "caption": [c.caption or "" for c in clips],
        "name": [c.name for c in clips],
    }
    if all(c.depth is not None for c in clips):
        out["depth"] = torch.stack([c.depth for c in clips])
    if all(c.frame_indices is not None for c in clips):
        out["frame_indices"] = torch.stack([c.frame_indices for c in clips])
    return out
