"""Reading a video for the model, shared by the jobs (V2C, MEt3R), eval and the benchmarks: a video file or image
folder -> frames sampled and resized (or padded) to a pipeline's model size, plus the same frames at the source
resolution for the correspondence stage.

``path -> (Video [F, 3, H, W] float32 in [0, 1] at pipe.resolution, VideoInfo)``; decoding is
:func:`jog3r.io.video.read_video` (sampling modes, the ``info.message``); an image folder that is clearly not a
sequence is put in the order of its match graph (:func:`jog3r.align.order.order_by_matches`).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from jog3r.align.order import order_by_matches
from jog3r.io.video import iter_frames, quiet_reads, read_video, resize_and_center_crop
from jog3r.pipeline import JOG3RPipeline
from jog3r.types import Video

class Fit(enum.StrEnum):
    """How :func:`load_video` fits frames of another aspect than the model's (members are plain strings).

    Members:
        CROP: ``"crop"`` (default): centre crop to the model's aspect ratio.
        PAD: ``"pad"``: black bars, centred, to the model's aspect ratio (the whole frame is seen, smaller).
    """

    CROP = "crop"
    PAD = "pad"


FITS = tuple(f.value for f in Fit)
"""The values of ``fit`` (:class:`Fit`), in order: ``("crop", "pad")``."""
CROP_NOTE_BELOW = 0.8
"""``load_video`` notes a centre crop that keeps less than this fraction of the frame."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`load_video` read and how (the ``info`` of :func:`jog3r.io.video.read_video`, typed, plus the
    fit and the image order); given to :func:`load_source_frames` and carried by the jobs' reports.

    Attributes:
        kind: ``"video"`` (a file) or ``"images"`` (a folder).
        source: the path read.
        num_source_frames: frames (or images) in the source.
        source_fps: the file's frame rate (8 assumed for image folders).
        source_size: ``(H, W)`` of the source frames, or ``None`` for an image folder of mixed sizes.
        sampling: the sampling mode (:func:`jog3r.io.video.sample_frame_indices`).
        message: what was sampled, and the notes below, for the user.
        frame_indices: the source indices of the returned frames, in their order.
        stride: the mean step between them, in source frames.
        fps: the frame rate of the returned frames.
        size: ``(H, W)`` of the returned frames.
        warnings: notes for the user (mixed image sizes, a short stream, a centre crop that keeps little).
        crop_kept: the fraction of each frame a centre crop keeps (``1.0`` with ``fit="pad"``).
        fit: the :data:`FITS` value used.
        codec: the video codec (files), or ``None``.
        files: the image file names of the frames, in their order (folders), or ``None``.
        order: how an image folder was ordered (:func:`jog3r.align.order.order_by_matches`'s report and
            ``"order"``), or ``None`` (a file, or 2 images or fewer).
        content_box: with ``fit="pad"``, ``(top, left, bottom, right)`` pixel rows/columns (end exclusive) of
            the returned frames that hold the source image (pixels only partly covered by it are outside);
            ``None`` when nothing is padded.
    """

    kind: str
    source: str
    num_source_frames: int
    source_fps: float
    source_size: tuple[int, int] | None
    sampling: str
    message: str
    frame_indices: list[int]
    stride: float
    fps: float
    size: tuple[int, int]
    warnings: list[str] = field(default_factory=list)
    crop_kept: float = 1.0
    fit: str = "crop"
    codec: str | None = None
    files: list[str] | None = None
    order: dict[str, Any] | None = None
    content_box: tuple[int, int, int, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (``dataclasses.asdict``), e.g. for JSON."""
        return dataclasses.asdict(self)


def _pad_geometry(H: int, W: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(new_h, new_w, top, left)`` of :func:`pad_to_aspect` for ``H x W`` frames and a target ``size``."""
    h, w = size
    if W * h >= w * H:  # too wide: pad rows
        new_h, new_w = round(W * h / w), W
    else:
        new_h, new_w = H, round(H * w / h)
    return new_h, new_w, (new_h - H) // 2, (new_w - W) // 2


def pad_to_aspect(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pad ``[F, 3, H, W]`` frames with black, centred, to the aspect ratio of ``size = (h, w)`` (no resize)."""
    H, W = frames.shape[-2:]
    new_h, new_w, top, left = _pad_geometry(H, W, size)
    out = frames.new_zeros(*frames.shape[:-2], new_h, new_w)
    out[..., top:top + H, left:left + W] = frames
    return out


def padded_content_box(source_size: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Where the source image lies in frames padded by :func:`pad_to_aspect` and resized to ``size``.

    Args:
        source_size: ``(H, W)`` of the frames before padding.
        size: ``(h, w)`` of the frames after padding and resizing.

    Returns:
        ``(top, left, bottom, right)`` rows/columns of ``size`` (end exclusive) wholly inside the source image.
    """
    H, W = source_size
    new_h, new_w, top, left = _pad_geometry(H, W, size)
    sy, sx = size[0] / new_h, size[1] / new_w
    return (math.ceil(top * sy), math.ceil(left * sx), math.floor((top + H) * sy), math.floor((left + W) * sx))


def load_video(pipe: JOG3RPipeline, path: str | Path, *, num_frames: int | None = None, stride: int | None = None,
               full_size: bool = False, fit: Fit | str = "crop") -> tuple[Video, VideoInfo]:
    """Read a video file or image folder, sampled and resized/centre-cropped to the model size.

    Args:
        pipe: the pipeline whose model size (:attr:`~JOG3RPipeline.resolution`) and frame count
            (:attr:`~JOG3RPipeline.num_frames`) the frames are read for.
        path: mp4/mov/webm/gif file or a folder of images.
        num_frames: frames to sample uniformly (default: the model's ``F`` when neither option is given).
        stride: take every ``stride``-th frame instead.
        full_size: keep the source resolution (long side capped at 1024 pixels) instead of resizing, e.g. for
            ``pipe.video_to_cameras(..., source_frames=...)``; image folders of mixed sizes are then
            resized to the first image's size.
        fit: a :class:`Fit` or its string: ``"crop"`` (default) centre-crops to the model's aspect ratio;
            ``info.message`` carries a note (and ``info.warnings`` the same line) when that keeps less than
            80 % of the frame (``info.crop_kept``, e.g. portrait video); ``"pad"`` pads with black to the model's aspect
            instead (the whole frame is seen, smaller).

    An image folder of more than 2 images is put in the order of its match graph when its file-name order is
    clearly not a sequence (:func:`jog3r.align.order.order_by_matches`; ``info.order``, and the message says
    so); a sequence stays in order. ``video.frame_indices`` then follow the new order.

    Returns:
        ``(video, info)``: the frames and a :class:`VideoInfo` (``info.message`` says what was sampled).

    Raises:
        ValueError / FileNotFoundError: from :func:`jog3r.io.video.read_video` (corrupt file, one frame, ...).
    """
    if fit not in FITS:
        raise ValueError(f"fit must be 'crop' or 'pad', got {fit!r}")
    fit = str(fit)  # a Fit member -> its plain string (info.fit)
    if num_frames is None and stride is None:
        num_frames = pipe.num_frames
    pad, folder = fit == "pad", Path(path).is_dir()
    video, info = read_video(path, num_frames=num_frames, stride=stride,
                             size=None if (full_size or pad or folder) else pipe.resolution)
    info = dict(info)
    src = info.get("source_size") or video.size
    h, w = pipe.resolution
    kept = min((src[1] / src[0]) / (w / h), (w / h) / (src[1] / src[0]))  # area fraction a centre crop keeps
    info["crop_kept"], info["fit"] = (1.0 if pad else kept), fit
    if pad:
        unpadded = video.size
        video = dataclasses.replace(video, frames=pad_to_aspect(video.frames, (h, w)))
        info["message"] += f"; padded to the model's {w}x{h} aspect (fit='pad')"
    elif kept < CROP_NOTE_BELOW:
        note = (f"the centre crop to the model's {w}x{h} aspect keeps {100 * kept:.0f} % of each "
                f"{src[1]}x{src[0]} frame (portrait video?); fit='pad' keeps all of it")
        info["message"] += f"; NOTE: {note}"
        info["warnings"] = list(info.get("warnings", [])) + [note]
    if not full_size and folder and video.num_frames > 2:  # on the source-size frames: sharper matches
        order, how = order_by_matches(video.frames)
        info["order"] = {**how, "order": order}
        if how["reordered"]:
            idx = torch.as_tensor(order)
            video = dataclasses.replace(video, frames=video.frames[idx], frame_indices=video.frame_indices[idx])
            if info.get("files"):
                info["files"] = [info["files"][k] for k in order]
            info["frame_indices"] = video.frame_indices.tolist()
            info["message"] += ("; the images are not a sequence: ordered by their match graph "
                                f"({', '.join(str(k) for k in order)} of the file-name order)")
    if not full_size and video.size != (h, w):
        video = dataclasses.replace(video, frames=resize_and_center_crop(video.frames, (h, w)))
        info["size"] = (h, w)
    if pad:
        info["content_box"] = padded_content_box(unpadded, video.size)
    return video, VideoInfo(**info)

def load_source_frames(pipe: JOG3RPipeline, path: str | Path, video: Video, info: VideoInfo, *,
                       num_frames: int | None = None, stride: int | None = None) -> torch.Tensor | None:
    """The frames of ``video`` at their source resolution, for ``pipe.video_to_cameras(..., source_frames=...)``.

    Args:
        pipe: the pipeline given to the :func:`load_video` call that returned ``video`` and ``info``.
        path, num_frames, stride: as given to the :func:`load_video` call that returned ``video`` and ``info``.
        video, info: that call's result.

    Returns:
        ``[F, 3, H_s, W_s]`` float32 in ``[0, 1]`` (long side capped at 1024), or ``None`` for an image folder
        of mixed sizes (no single source crop fits all its frames).

    Raises:
        RuntimeError: if the second read sampled other frames (the file changed in between).
    """
    if info.source_size is None:
        return None
    with quiet_reads():  # the model-size read announced these frames already
        source, _ = load_video(pipe, path, num_frames=num_frames, stride=stride, full_size=True, fit=info.fit)
    if video.frame_indices is not None:
        pos = {int(k): n for n, k in enumerate(source.frame_indices.tolist())}
        if sorted(pos) != sorted(int(k) for k in video.frame_indices.tolist()):
            raise RuntimeError(f"{path}: the source-size read sampled other frames than the model-size read")
        return source.frames[[pos[int(k)] for k in video.frame_indices.tolist()]]  # in the video's order
    return source.frames


def stream_source_frames(path: str | Path, video: Video, info: VideoInfo) -> Iterator[torch.Tensor] | None:
    """The frames of ``video`` at their source resolution, one at a time: :func:`load_source_frames` for long runs
    (:func:`jog3r.long_v2c.long_video_to_cameras`), whose memory then does not grow with the frame count.

    Args:
        path: the source given to the :func:`load_video` call that returned ``video`` and ``info``.
        video, info: that call's result.

    Returns:
        An iterator of ``[3, H_s, W_s]`` uint8 frames (long side capped at 1024, padded to the model's aspect for
        ``fit="pad"``), in ``video``'s order, each decoded only when asked for; ``None`` for an image folder of
        mixed sizes (as :func:`load_source_frames`).
    """
    if info.source_size is None:
        return None
    indices = (video.frame_indices if video.frame_indices is not None else torch.arange(video.num_frames)).tolist()
    pad = info.fit == "pad"

    def frames() -> Iterator[torch.Tensor]:
        for frame in iter_frames(path, indices):
            yield pad_to_aspect(frame, video.size) if pad else frame

    return frames()


__all__ = ["CROP_NOTE_BELOW", "FITS", "Fit", "VideoInfo", "load_source_frames", "load_video", "pad_to_aspect",
           "stream_source_frames"]
