"""Video input/output: the videos and image folders users actually have -> :class:`jog3r.types.Video`.

Reading (:func:`read_video`) handles mp4/mov/webm/mkv/avi/gif through PyAV (FFmpeg) and folders of images
(natural sort: ``frame_2 < frame_10``). Only the selected frames are converted and kept; each is resized (and
centre-cropped) on its own as it is decoded, so a 4K or 10-minute file never sits in memory. Far-apart frames
are reached by seeking to the keyframe before them instead of decoding everything in between; the seek uses each
frame's own timestamp, read from the container's packets, so variable-frame-rate videos give the frames asked for.

Temporal sampling (reported in ``info["message"]``, e.g. ``"sampled 16 of 9000 frames (uniform, mean stride
562.5)"``), after skipping the first ``start`` frames:

* ``num_frames`` and ``stride``: ``start, start + stride, ...``, ``num_frames`` of them (fewer if the source
  ends).
* ``stride`` only: every ``stride``-th frame, at most ``max_frames``.
* ``num_frames`` only: ``num_frames`` indices spread uniformly from ``start`` to the last frame.
* neither: every frame if there are at most ``max_frames``; otherwise ``max_frames`` uniform samples.

Spatial size: ``size=(H, W)`` resizes each frame so it covers ``H x W`` (one scale factor, the larger of
``H / H_src`` and ``W / W_src``: "the short-side factor" for equal aspect ratios) and centre-crops the rest,
as :func:`resize_and_center_crop`; :func:`jog3r.geometry.camera.adjust_intrinsics` gives the matching ``K``.
With ``size=None`` frames keep their size, except that a long side above ``max_side`` is scaled down (aspect
kept). In an image folder every image is resized + centre-cropped to the first selected image's (capped) size, so
mixed sizes work. Grayscale, palette, 16-bit and RGBA images become RGB (alpha is dropped); EXIF orientation is applied,
and so is a video's display-matrix rotation (portrait phone videos come out upright, as players show them).
Pixel geometry follows :mod:`jog3r.geometry.camera` (pixel centres at ``+0.5``; resizing maps ``[0, W]`` onto
``[0, W']``).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import torch
import torch.nn.functional as F_nn
from PIL import Image, ImageOps, UnidentifiedImageError

from jog3r.geometry.camera import resize_crop_geometry
from jog3r.io.atomic import atomic_path
from jog3r.io.colmap import natural_key
from jog3r.types import Video

logger = logging.getLogger(__name__)
_QUIET = contextvars.ContextVar("jog3r_quiet_reads", default=False)
"""Set inside :func:`quiet_reads`: this module's records below WARNING are dropped."""
logger.addFilter(lambda record: record.levelno >= logging.WARNING or not _QUIET.get())

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: Frame rate assumed for image folders (they carry none).
FOLDER_FPS = 8.0
#: Seek instead of decoding through when the next wanted frame is more than this many frames ahead.
SEEK_GAP = 256


def sample_frame_indices(
    num_available: int, *, num_frames: int | None = None, stride: int | None = None, max_frames: int = 64,
    start: int = 0,
) -> tuple[np.ndarray, str, str]:
    """Choose which frames to read (the sampling modes of the module docstring).

    Args:
        num_available: frames in the source.
        num_frames: how many frames to return (``>= 2``).
        stride: step between frames (``>= 1``).
        max_frames: cap when ``num_frames`` is not given.
        start: first frame that may be used (0-based).

    Returns:
        ``(indices [F] int64 increasing, mode, message)`` with ``mode`` one of ``"all"``, ``"uniform"``,
        ``"stride"``.

    Raises:
        ValueError: for ``num_frames < 2``, ``stride < 1``, ``max_frames < 2``, a ``start`` outside the
            source, or fewer than 2 frames selected.
    """
    if num_frames is not None and num_frames < 2:
        raise ValueError(f"num_frames must be >= 2, got {num_frames}")
    if stride is not None and stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if max_frames < 2:
        raise ValueError(f"max_frames must be >= 2, got {max_frames}")
    if not 0 <= start < num_available:
        raise ValueError(f"start={start} but the source has {num_available} frames")
    notes = []
    if stride is not None:
        count = num_frames if num_frames is not None else max_frames
        indices = np.arange(start, num_available, stride)[:count]
        mode = "stride"
        if num_frames is not None and len(indices) < num_frames:
            notes.append(f"only {len(indices)} of the {num_frames} requested fit")
        elif num_frames is None and len(indices) == max_frames and indices[-1] + stride < num_available:
            notes.append(f"stopped at max_frames={max_frames}")
    else:
        wanted = num_frames if num_frames is not None else max_frames
        if num_available - start <= wanted:
            indices, mode = np.arange(start, num_available), "all"
            if num_frames is not None and num_available - start < num_frames:
                notes.append(f"only {num_available - start} of the {num_frames} requested exist")
        else:
            indices = np.unique(np.round(np.linspace(start, num_available - 1, wanted)).astype(np.int64))
            mode = "uniform"
            if num_frames is None:
                notes.append(f"longer than max_frames={max_frames}, so sampled uniformly")
    indices = indices.astype(np.int64)
    if len(indices) < 2:
        raise ValueError(
            f"need >= 2 frames, but only {len(indices)} selected from {num_available} (start={start})"
        )
    spacing = float(indices[-1] - indices[0]) / (len(indices) - 1)
    step = f"stride {stride}" if mode == "stride" else f"mean stride {spacing:.4g}"
    message = f"sampled {len(indices)} of {num_available} frames ({mode}, {step}" + (
        f", from frame {start}" if start else "") + ")" + "".join(f"; {n}" for n in notes)
    return indices, mode, message


def resize_and_center_crop(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize frames to cover ``size`` (aspect kept) and centre-crop the excess.

    Args:
        frames: ``[F, 3, H, W]`` (or ``[3, H, W]``) float in ``[0, 1]``.
        size: ``(H', W')`` in pixels.

    Returns:
        ``[F, 3, H', W']`` (or ``[3, H', W']``) float, bilinear with antialiasing (pixel centres aligned, as
        :func:`jog3r.geometry.camera.adjust_intrinsics` assumes), clamped to ``[0, 1]``.
    """
    squeeze = frames.ndim == 3
    x = frames[None] if squeeze else frames
    (Hr, Wr), (top, left) = resize_crop_geometry(tuple(x.shape[-2:]), size)
    if (Hr, Wr) != tuple(x.shape[-2:]):
        x = F_nn.interpolate(x.float(), size=(Hr, Wr), mode="bilinear", align_corners=False, antialias=True)
        x = x.clamp(0.0, 1.0)
    x = x[..., top : top + size[0], left : left + size[1]]
    return x[0] if squeeze else x


def crop_to_aspect(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Centre-crop frames to the aspect ratio of ``size`` without resizing them.

    The crop shows the field of view of :func:`resize_and_center_crop` to ``size`` at the frames' own resolution
    (to within one pixel of ``size``, from the rounding of the resized size there; exact when the source's aspect
    ratio is ``size``'s): intrinsics of ``size`` scale to it by ``W_crop / W'``. Used for the
    correspondence stage, which matches better on source-resolution frames than on the model's small ones.

    Args:
        frames: ``[F, 3, H, W]`` float in ``[0, 1]``.
        size: ``(H', W')`` whose aspect ratio is kept.

    Returns:
        ``[F, 3, H_crop, W_crop]`` (a view), with ``H_crop / W_crop = H' / W'`` to rounding and one side equal to the
        input's.
    """
    H, W = frames.shape[-2:]
    hc, wc = aspect_crop_size((H, W), size)
    top, left = (H - hc) // 2, (W - wc) // 2
    return frames[..., top : top + hc, left : left + wc]


def aspect_crop_size(src_size: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """``(H_crop, W_crop)`` of :func:`crop_to_aspect` for frames of ``src_size = (H, W)`` (pixels)."""
    (H, W), scale = src_size, max(size[0] / src_size[0], size[1] / src_size[1])
    return min(H, round(size[0] / scale)), min(W, round(size[1] / scale))


def _capped_size(src_size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``src_size`` scaled down (aspect kept) so its long side is at most ``max_side``."""
    H, W = src_size
    if max(H, W) <= max_side:
        return H, W
    scale = max_side / max(H, W)
    return max(1, round(H * scale)), max(1, round(W * scale))


def _resized(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``[H, W, 3]`` RGB resized to cover ``size = (h, w)`` and centre-cropped to it (dtype kept)."""
    (Hr, Wr), (top, left) = resize_crop_geometry(rgb.shape[:2], size)
    if (Hr, Wr) != rgb.shape[:2]:
        down = Hr * Wr < rgb.shape[0] * rgb.shape[1]
        rgb = cv2.resize(rgb, (Wr, Hr), interpolation=cv2.INTER_AREA if down else cv2.INTER_LINEAR)
    return rgb[top : top + size[0], left : left + size[1]]


def _to_frame(rgb: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """``[H, W, 3]`` uint8 or float32 RGB -> ``[3, h, w]`` float32 in ``[0, 1]``, resized + centre-cropped."""
    rgb = _resized(rgb, size)
    scale = 255.0 if rgb.dtype == np.uint8 else 1.0
    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32) / scale).permute(2, 0, 1)


def _load_image(path: Path) -> np.ndarray:
    """``[H, W, 3]`` RGB (uint8, or float32 in [0, 1] for 16-bit images) with EXIF orientation applied."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                gray = np.clip(np.asarray(im, dtype=np.float32) / 65535.0, 0.0, 1.0)
                return np.repeat(gray[..., None], 3, axis=-1)
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read image ({err})") from err


def _folder_images(folder: Path) -> list[Path]:
    """The images of ``folder`` in natural order, or a one-line ``ValueError`` if it holds fewer than 2."""
    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda p: natural_key(p.name))
    if not files:
        raise ValueError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    if len(files) < 2:
        raise ValueError(f"{folder}: need >= 2 frames, the folder has 1 image ({files[0].name})")
    return files


def _read_folder(folder: Path, sampling: dict, size, max_side: int) -> tuple[Video, dict[str, Any]]:
    files = _folder_images(folder)
    indices, mode, message = sample_frame_indices(len(files), **sampling)
    frames, sizes = [], set()
    for i in indices:
        rgb = _load_image(files[i])
        sizes.add(rgb.shape[:2])
        if size is None:
            size = _capped_size(rgb.shape[:2], max_side)
        frames.append(_to_frame(rgb, size))
    warnings = []
    if len(sizes) > 1:
        warnings.append(f"images have {len(sizes)} different sizes; each was resized + centre-cropped to "
                        f"{size}")
    info = {"kind": "images", "num_source_frames": len(files), "source_fps": FOLDER_FPS,
            "source_size": tuple(int(v) for v in next(iter(sizes))) if len(sizes) == 1 else None,
            "files": [files[i].name for i in indices]}
    return _finish(folder, frames, indices, mode, message, FOLDER_FPS, info, warnings)


@contextlib.contextmanager
def quiet_reads():
    """Reads inside the block do not log their "sampled N of M frames" line (a second read of frames already
    announced, or a size probe); their warnings still do. Per thread and context (a context variable read by a
    filter on this module's logger), so the app's concurrent requests and nested blocks do not mute each other."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def _finish(path, frames, indices, mode, message, source_fps, info, warnings) -> tuple[Video, dict[str, Any]]:
    """Assemble the ``Video`` and the ``info`` dict shared by the folder and file readers."""
    spacing = float(indices[-1] - indices[0]) / (len(indices) - 1)
    video = Video(frames=torch.stack(frames), fps=source_fps / spacing,
                  frame_indices=torch.from_numpy(np.asarray(indices, dtype=np.int64)), source=str(path))
    for w in warnings:
        logger.warning("%s: %s", path, w)
    logger.info("%s: %s", path, message)
    info.update(source=str(path), sampling=mode, message=message, frame_indices=[int(i) for i in indices],
                stride=spacing, fps=video.fps, size=video.size, warnings=warnings)
    return video, info


def _count_frames(path: Path) -> int:
    """Count video packets without decoding (for containers whose header has no frame count: webm, gif)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size > 0)


def _timeline(path: Path, stream_index: int) -> np.ndarray | None:
    """Presentation timestamps of a video stream's frames in display order, from the packets (nothing decoded).

    Returns:
        ``[N]`` int64 pts in units of the stream's ``time_base``, sorted, so that entry ``i`` is frame ``i`` whatever
        the frame rate does (variable-frame-rate phone and screen recordings); ``None`` when a packet has no pts.
        Packets the demuxer marks as discarded (edit lists) are left out, as the decoder leaves them out.
    """
    pts = []
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.video[stream_index]):
            if packet.size == 0 or packet.is_discard:
                continue
            if packet.pts is None:
                return None
            pts.append(packet.pts)
    return np.sort(np.asarray(pts, dtype=np.int64))


def _decode(path: Path, container, stream, indices: np.ndarray):
    """Yield ``(index, [H, W, 3] uint8 RGB)`` at increasing ``indices``, seeking over gaps > :data:`SEEK_GAP`.

    A seek goes to the real timestamp of the wanted frame (:func:`_timeline`), and the frame it lands on is
    identified by its timestamp there, so variable frame rates give the frames asked for; frames are then counted
    one by one, as without seeking. A stream without timestamps is decoded through from the start.
    """
    timeline: np.ndarray | None | bool = False  # False = not read yet (only a seek needs it)
    decoder, idx = container.decode(stream), -1
    for target in indices.tolist():
        if target - idx > SEEK_GAP:
            if timeline is False:
                timeline = _timeline(path, stream.index)
            if timeline is not None and target < len(timeline):
                logger.debug("%s: seeking to frame %d", path, target)
                container.seek(int(timeline[target]), stream=stream, backward=True, any_frame=False)
                decoder, idx = container.decode(stream), None
        while idx is None or idx < target:
            try:
                frame = next(decoder, None)
            except av.FFmpegError as err:
                raise ValueError(f"{path}: corrupt video, decoding failed after frame {idx} ({err})") from err
            if frame is None:
                return
            if idx is None:
                found = -1 if frame.pts is None else int(np.searchsorted(timeline, frame.pts))
                exact = 0 <= found < len(timeline) and timeline[found] == frame.pts
                idx = found if exact and found <= target else None
                if idx is None:  # no or unknown timestamp, or the seek overshot: restart and count
                    container.seek(int(timeline[0]), stream=stream, backward=True, any_frame=False)
                    decoder, idx, frame = container.decode(stream), -1, None
            else:
                idx += 1
        yield target, _upright_rgb(frame)


def _upright_rgb(frame: av.VideoFrame) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB turned as the display matrix says (phone videos store portrait as rotated)."""
    rgb = frame.to_ndarray(format="rgb24")
    quarter_turns = round((frame.rotation or 0) / 90) % 4  # counterclockwise, as np.rot90
    return np.ascontiguousarray(np.rot90(rgb, quarter_turns)) if quarter_turns else rgb


def _open_container(path: Path) -> av.container.InputContainer:
    """``av.open`` with a one-line ``ValueError`` for a file FFmpeg cannot read."""
    try:
        return av.open(str(path))
    except av.FFmpegError as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise ValueError(f"{path}: not a readable video ({reason})") from err


def _check_file(path: Path) -> None:
    """A one-line ``ValueError`` for a file that cannot be a video: empty, or a single image."""
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: file is empty (0 bytes)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise ValueError(f"{path}: need >= 2 frames, got a single image; pass a video or an image folder")


def _check_video_stream(container: av.container.InputContainer, path: Path) -> None:
    if not container.streams.video:
        raise ValueError(f"{path}: the file has no video stream")


def check_source(path: str | Path) -> None:
    """What can be known of a video file or image folder without decoding it (before a model loads): the checks
    :func:`read_video` starts with (a folder holds at least 2 images; a file is not empty nor a single image, FFmpeg
    opens it and it has a video stream), with the same messages.

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: one line saying what is wrong.
    """
    path = Path(path)
    if path.is_dir():
        _folder_images(path)
        return
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file or image folder")
    _check_file(path)
    with _open_container(path) as container:
        _check_video_stream(container, path)


def _read_file(path: Path, sampling: dict, size, max_side: int) -> tuple[Video, dict[str, Any]]:
    _check_file(path)
    container = _open_container(path)
    with container:
        _check_video_stream(container, path)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        num = stream.frames if stream.frames > 0 else _count_frames(path)
        if num < 2:
            raise ValueError(f"{path}: need >= 2 frames, the video has {num}")
        rate = stream.average_rate or stream.guessed_rate
        source_fps = float(rate) if rate else FOLDER_FPS
        indices, mode, message = sample_frame_indices(num, **sampling)
        got, source_size = {}, None
        for index, rgb in _decode(path, container, stream, indices):
            source_size = source_size or rgb.shape[:2]  # as displayed, after any rotation
            size = size or _capped_size(source_size, max_side)
            got[index] = _to_frame(rgb, size)
        codec = stream.codec_context.name
    missing = [int(i) for i in indices if int(i) not in got]
    warnings = []
    if missing:
        # Headers can over-count by a frame or two (edit lists); anything more is a truncated/corrupt file.
        if len(got) < 2 or missing[0] < num - 2:
            raise ValueError(f"{path}: truncated or corrupt video: the header says {num} frames but frame "
                             f"{missing[0]} could not be decoded")
        warnings.append(f"the header says {num} frames but the stream ends before frame {missing[0]}; "
                        f"dropped frames {missing}")
    kept = np.asarray([i for i in indices if int(i) in got], dtype=np.int64)
    info = {"kind": "video", "num_source_frames": int(num), "source_fps": source_fps,
            "source_size": tuple(int(v) for v in source_size), "codec": codec}
    return _finish(path, [got[int(i)] for i in kept], kept, mode, message, source_fps, info, warnings)


def read_video(
    path: str | Path, *, num_frames: int | None = None, stride: int | None = None, max_frames: int = 64,
    size: tuple[int, int] | None = None, start: int = 0, max_side: int = 1024,
) -> tuple[Video, dict[str, Any]]:
    """Read a video file or an image folder (sampling and resizing as in the module docstring).

    Args:
        path: a video (mp4, mov, webm, mkv, avi, gif, ...) or a folder of images.
        num_frames: number of frames to return (``>= 2``).
        stride: step between returned frames, in source frames.
        max_frames: cap on the frame count when ``num_frames`` is not given.
        size: ``(H, W)`` output size in pixels (resize to cover + centre crop); ``None`` keeps the source
            size.
        start: index of the first source frame that may be returned.
        max_side: with ``size=None``, frames whose long side exceeds this are scaled down (aspect kept).

    Returns:
        ``(video, info)``: a :class:`~jog3r.types.Video` with ``frames [F, 3, H, W]`` float32 in ``[0, 1]``,
        ``fps`` = source fps / mean stride, ``frame_indices [F]`` int64 source indices; ``info`` with ``kind``
        (``"video"``/``"images"``), ``num_source_frames``, ``source_fps`` (8 assumed for folders),
        ``source_size``, ``size``, ``frame_indices``, ``sampling``, ``stride``, ``message``, ``warnings`` (and
        ``codec`` or ``files``).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: naming the file for an empty file, a file FFmpeg cannot read (corrupt, truncated, not a
            video), fewer than 2 frames, an unreadable image in a folder, or bad sampling arguments.
    """
    path = Path(path)
    sampling = {"num_frames": num_frames, "stride": stride, "max_frames": max_frames, "start": start}
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise ValueError(f"size must be (H, W) with positive entries, got {size}")
    if path.is_dir():
        return _read_folder(path, sampling, size, max_side)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file or image folder")
    return _read_file(path, sampling, size, max_side)


def iter_frames(path: str | Path, indices, *, size: tuple[int, int] | None = None, max_side: int = 1024):
    """Yield the frames ``indices`` of a video file or image folder one at a time, for streaming long videos.

    The frames are those :func:`read_video` returns for the same indices (file-name order for folders), but only one
    is decoded and held at a time, as uint8 (a quarter of float32's memory).

    Args:
        path: a video file or a folder of images.
        indices: 0-based source frame indices; increasing for a video file (decoded in one pass, seeking over gaps),
            any order for a folder.
        size: ``(H, W)`` to resize + centre-crop to; ``None``: the source size, long side capped at ``max_side``
            (for a folder: the first yielded image's capped size, as :func:`read_video`).
        max_side: see ``size``.

    Yields:
        ``[3, H, W]`` uint8 RGB tensors, one per index, in the order of ``indices`` (16-bit images are scaled to
        uint8).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: indices not increasing for a video file, an index past the end, or an unreadable frame.
    """
    path = Path(path)
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)

    def out(rgb: np.ndarray, size):
        rgb = _resized(rgb, size)
        if rgb.dtype != np.uint8:
            rgb = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
        return torch.from_numpy(np.array(rgb, dtype=np.uint8, order="C")).permute(2, 0, 1)  # a writable copy

    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                       key=lambda p: natural_key(p.name))
        for i in indices.tolist():
            if not 0 <= i < len(files):
                raise ValueError(f"{path}: no image {i} (the folder has {len(files)})")
            rgb = _load_image(files[i])
            size = size or _capped_size(rgb.shape[:2], max_side)
            yield out(rgb, size)
        return
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file or image folder")
    if len(indices) > 1 and not bool((np.diff(indices) > 0).all()):
        raise ValueError(f"{path}: the frame indices of a video file must be increasing")
    container = _open_container(path)
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        got = 0
        for _, rgb in _decode(path, container, stream, indices):
            size = size or _capped_size(rgb.shape[:2], max_side)
            got += 1
            yield out(rgb, size)
    if got < len(indices):
        raise ValueError(f"{path}: the stream ends before frame {int(indices[got])}")


def write_video(path: str | Path, frames: torch.Tensor | np.ndarray, fps: float, *, crf: int = 18) -> Path:
    """Write frames as an H.264 video (yuv420p, playable in browsers), atomically.

    H.264 with 4:2:0 chroma needs even sizes: an odd height/width is padded by repeating the last row/column.

    Args:
        path: output path; the suffix picks the container (``.mp4`` recommended).
        frames: ``[F, 3, H, W]`` float in ``[0, 1]`` (values outside are clipped, with a warning).
        fps: frames per second (> 0).
        crf: x264 constant rate factor (0 lossless ... 51 worst; 18 is visually lossless).

    Returns:
        ``path``.

    Raises:
        ValueError: for a wrong shape, no frames, non-finite values or a non-positive ``fps``.
    """
    path = Path(path)
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().float().numpy()
    x = np.asarray(frames, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[0] < 1:
        raise ValueError(f"frames must be [F, 3, H, W] with F >= 1, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("frames contain NaN or inf")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if x.min() < -1e-3 or x.max() > 1 + 1e-3:
        logger.warning("%s: frames outside [0, 1] (%.3f..%.3f) are clipped", path, x.min(), x.max())
    rgb = np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8).transpose(0, 2, 3, 1)
    pad_h, pad_w = rgb.shape[1] % 2, rgb.shape[2] % 2
    if pad_h or pad_w:
        rgb = np.pad(rgb, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = rgb.shape[2], rgb.shape[1], "yuv420p"
        stream.options = {"crf": str(crf)}
        for image in rgb:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


__all__ = ["IMAGE_SUFFIXES", "aspect_crop_size", "crop_to_aspect", "iter_frames", "read_video", "resize_and_center_crop", "sample_frame_indices",
           "write_video"]
