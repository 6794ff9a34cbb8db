"""The V2C job, written once: a video file or image folder -> cameras, pose metrics, exports (:class:`V2CReport`).

Called by the app's Estimate tab (``app/tabs/estimate.py``), ``jog3r v2c`` (:mod:`jog3r.cli`) and ``jog3r eval``
(:mod:`jog3r.eval`). Steps, top to bottom in :func:`estimate_cameras`:

1. read and sample the frames at the model's size (:func:`jog3r.jobs.load.load_video`), check the frame count;
2. known intrinsics (pixels of the source frames) checked (:func:`jog3r.checks.check_intrinsics`) and carried to
   the model's frames (:func:`jog3r.geometry.camera.adjust_intrinsics`);
3. ground-truth cameras of the sampled frames (:func:`read_ground_truth`: the one reader and length check);
4. with correspondences (the default), the same frames at the source resolution (a long run streams them, one
   window at a time: :func:`jog3r.jobs.load.stream_source_frames`);
5. V2C (:meth:`JOG3RPipeline.video_to_cameras`; with ``long=True`` :func:`jog3r.long_v2c.long_video_to_cameras`:
   16-frame windows, one global alignment, up to :data:`jog3r.long_v2c.MAX_FRAMES` frames);
6. pose metrics vs the ground truth (:func:`score_cameras`: all pairs and ``(1 -> f)`` pairs);
7. every export (the export job, :func:`jog3r.jobs.export.export_reconstruction`) with :meth:`V2CReport.record` as ``metrics.json``.

Frame ``i`` of the source (file-name order for images) is matched to camera ``i`` of the ground-truth file.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from jog3r.checks import check_intrinsics
from jog3r.jobs.export import ExportReport, export_reconstruction
from jog3r.io.nerfstudio import read_transforms_json
from jog3r.io.re10k import read_re10k
from jog3r.metrics.pose import pose_metrics
from jog3r.pipeline import JOG3RPipeline, V2COutput
from jog3r.types import MATCHES, Matches, Reconstruction, Video
from jog3r.geometry.camera import adjust_intrinsics
from jog3r.io.scene import DEFAULT_KEEP_PERCENT
from jog3r.long_v2c import check_long_frame_count, estimate_long_cost, long_config, long_video_to_cameras
from jog3r.io.video import (
    IMAGE_SUFFIXES,
    _capped_size,
    _count_frames,
    aspect_crop_size,
    quiet_reads,
    read_video,
)
from jog3r.jobs.cost import machine_speed
from jog3r.jobs.load import Fit, VideoInfo, _pad_geometry, load_source_frames, load_video, stream_source_frames

logger = logging.getLogger(__name__)

METRIC_KEYS = ("Rot. err.", "Trans. err.", "RRA@5", "RTA@5", "mAA@30")
"""The pose metrics a V2C job reports (:func:`jog3r.metrics.pose.pose_metrics`; degrees and percent)."""


class IntrinsicsError(ValueError):
    """The known intrinsics do not fit the source frames (implausible values, or images of mixed sizes)."""


@dataclass(frozen=True)
class Intrinsics:
    """Known pinhole intrinsics in pixels of the source frames (before the model's resize and crop).

    Attributes:
        fx, fy: focal lengths in pixels (as typed: checked by :meth:`matrix`).
        cx, cy: principal point in pixels (OpenCV, pixel ``(u, v)`` covers ``[u, u + 1)``).
        centred: ignore ``cx``, ``cy`` and put the principal point at the centre of the source frame
            (``W / 2``, ``H / 2``), see :meth:`centred_at`.
    """

    fx: Any
    fy: Any
    cx: Any = None
    cy: Any = None
    centred: bool = False

    @classmethod
    def centred_at(cls, focal: float) -> "Intrinsics":
        """One focal length in pixels for both axes, principal point at the frame centre (``jog3r v2c --focal``)."""
        return cls(focal, focal, centred=True)

    def matrix(self, source_size: tuple[int, int]) -> torch.Tensor:
        """``K [3, 3]`` float32 in pixels of a ``source_size = (H, W)`` frame, checked.

        Raises:
            IntrinsicsError: a value that is not a finite number, an implausible field of view or a principal
                point outside the frame (:func:`jog3r.checks.check_intrinsics`).
        """
        h, w = source_size
        cx, cy = (w / 2, h / 2) if self.centred else (self.cx, self.cy)
        try:
            fx, fy, cx, cy = check_intrinsics(self.fx, self.fy, cx, cy, tuple(source_size))
        except ValueError as exc:
            raise IntrinsicsError(str(exc)) from None
        return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float32)


@dataclass(frozen=True)
class GroundTruthCameras:
    """Ground-truth cameras of the sampled frames.

    Attributes:
        path: the camera file (RealEstate10K ``.txt`` or nerfstudio ``transforms.json``).
        cam2world: ``[F, 4, 4]`` float32 camera-to-world (OpenCV), one per sampled frame.
        K: ``[F, 3, 3]`` float32 intrinsics in pixels of ``image_size``, or ``None``.
        image_size: ``(H, W)`` the intrinsics refer to: the file's own for ``transforms.json``, the source frames'
            for RealEstate10K (whose intrinsics are normalised).
        num_cameras: cameras in the file.
        note: a warning when the file's camera count differs from the source's frame count, else ``None``.
    """

    path: Path
    cam2world: torch.Tensor
    K: torch.Tensor | None
    image_size: tuple[int, int]
    num_cameras: int
    note: str | None = None


def read_ground_truth(path: str | Path, frame_indices: torch.Tensor, image_size: tuple[int, int],
                      num_source_frames: int | None = None) -> GroundTruthCameras:
    """The ground-truth cameras of the sampled frames: the one reader and length check of every V2C front end.

    Args:
        path: RealEstate10K ``.txt`` or nerfstudio ``transforms.json``.
        frame_indices: ``[F]`` 0-based indices of the sampled frames in the source (``Video.frame_indices``).
        image_size: ``(H, W)`` of the source frames (RealEstate10K intrinsics are scaled to it).
        num_source_frames: frames in the source, if known: a different camera count gives a ``note``.

    Returns:
        A :class:`GroundTruthCameras`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: another format, or fewer cameras than the sampled frame indices need.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ground-truth file {path} does not exist")
    if path.suffix.lower() == ".json":
        cams = read_transforms_json(path, check_images=False)
        size = tuple(cams.image_size) if cams.image_size is not None else tuple(image_size)
    elif path.suffix.lower() == ".txt":
        cams = read_re10k(path, tuple(image_size))
        size = tuple(image_size)
    else:
        raise ValueError(f"{path}: ground truth must be a RealEstate10K .txt or a nerfstudio transforms.json")
    c2w = torch.as_tensor(cams.cam2world, dtype=torch.float32)
    idx = torch.as_tensor(frame_indices).long()
    if int(idx.max()) >= c2w.shape[0]:
        n = c2w.shape[0]
        raise ValueError(f"{path} has {n} poses but the video's frame {int(idx.max())} (0-based) was sampled: "
                         f"{n} cameras cannot cover it; use the camera file that matches the video")
    note = None
    if num_source_frames is not None and num_source_frames != c2w.shape[0]:
        note = (f"The ground-truth file has {c2w.shape[0]} cameras for {num_source_frames} source frames; camera i "
                "is matched to frame i.")
    K = None if cams.K is None else torch.as_tensor(cams.K, dtype=torch.float32)[idx]
    return GroundTruthCameras(path, c2w[idx], K, size, int(c2w.shape[0]), note)


@dataclass(frozen=True)
class PoseScores:
    """Pose metrics of estimated cameras vs the ground truth (PoseDiffusion protocol, :mod:`jog3r.metrics.pose`).

    Attributes:
        all: :data:`METRIC_KEYS` -> float over all frame pairs ``i < j`` (degrees; RRA/RTA/mAA in percent).
        first: the same over the paper's ``(1 -> f)`` pairs.
        rot_err_first: ``[F - 1]`` rotation error of frame ``f`` vs frame 1, degrees.
        trans_err_first: ``[F - 1]`` translation-direction error of frame ``f`` vs frame 1, degrees.
    """

    all: dict[str, float]
    first: dict[str, float]
    rot_err_first: torch.Tensor
    trans_err_first: torch.Tensor


def score_cameras(cam2world: torch.Tensor, gt_cam2world: torch.Tensor) -> PoseScores:
    """Score ``cam2world [F, 4, 4]`` against ``gt_cam2world [F, 4, 4]`` (OpenCV, any scale) as a :class:`PoseScores`."""
    scores = {}
    for pairs in ("all", "first"):
        scores[pairs] = pose_metrics(cam2world, gt_cam2world, pairs=pairs)
    table = {p: {k: float(m[k]) for k in METRIC_KEYS} for p, m in scores.items()}
    return PoseScores(table["all"], table["first"], scores["first"]["rot_err"], scores["first"]["trans_err"])


@dataclass(frozen=True)
class V2CReport:
    """What one V2C job produced.

    Attributes:
        output: the pipeline's :class:`~jog3r.pipeline.V2COutput` (reconstruction, point maps, alignment history,
            ``method``, ``match_info``).
        video: the frames as loaded at the model's size (``frames [F, 3, H, W]`` in ``[0, 1]``, ``frame_indices``).
        info: :func:`jog3r.jobs.load.load_video`'s :class:`~jog3r.jobs.load.VideoInfo` (``message``,
            ``source_size``, ``source_fps``, ...).
        ground_truth: the ground-truth cameras of the sampled frames, or ``None``.
        scores: pose metrics vs ``ground_truth``, or ``None``.
        timings: seconds per stage: ``load``, the pipeline's stages, ``export``, and ``total``.
        messages: notes for the user, in order (the sampling message first).
        export_dir: the folder of every export, or ``None`` when nothing was written.
        exports: what the export job wrote (files, seconds, the zip with ``zip_exports``), or ``None``.
    """

    output: V2COutput
    video: Video
    info: VideoInfo
    ground_truth: GroundTruthCameras | None = None
    scores: PoseScores | None = None
    timings: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    export_dir: Path | None = None
    exports: ExportReport | None = None

    @property
    def reconstruction(self) -> Reconstruction:
        """The estimated cameras, intrinsics, depth and points (:class:`~jog3r.types.Reconstruction`)."""
        return self.output.reconstruction

    @property
    def method(self) -> str:
        """The method that made the cameras (:data:`jog3r.align.joint.METHOD_JOINT` or ``METHOD_PAPER``)."""
        return self.output.method

    def record(self) -> dict[str, Any]:
        """The job's numbers as one JSON-ready dict (``metrics.json`` of the exports): ``method``, ``matches``
        (with correspondences), ``all`` and ``first`` (:data:`METRIC_KEYS`, with ground truth) and ``timings_s``
        (the pipeline's stages)."""
        record: dict[str, Any] = {"method": self.method}
        if self.output.match_info is not None:
            record["matches"] = self.output.match_info
        if self.scores is not None:
            record["all"], record["first"] = dict(self.scores.all), dict(self.scores.first)
        record["timings_s"] = self.output.timings
        return record

    def as_table(self, keys: tuple[str, ...] = METRIC_KEYS) -> list[tuple[str, str]]:
        """``[(metric, value)]`` rows for display: the all-pairs ``keys`` (``"12.34 %"`` / ``"1.23 °"``), empty
        without ground truth."""
        if self.scores is None:
            return []
        return [(k, f"{self.scores.all[k]:.2f}" + (" %" if "@" in k else " °")) for k in keys]


def count_source_frames(source: str | Path) -> int:
    """Frames of a video file (its header's count, else its packets; nothing decoded) or images of a folder."""
    path = Path(source)
    if path.is_dir():
        return sum(1 for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    import av

    with av.open(str(path)) as container:
        n = int(container.streams.video[0].frames or 0)
    return n if n > 0 else _count_frames(path)


def matched_size(source_size: tuple[int, int], model_size: tuple[int, int], fit: str = "crop",
                 max_side: int = 1024) -> tuple[int, int]:
    """``(H', W')`` in pixels of the frames the correspondences are matched on for a source of ``source_size``: the
    source (long side capped at ``max_side``, as :func:`jog3r.jobs.load.load_source_frames` reads it) centre-cropped
    (``fit="crop"``) or padded (``"pad"``) to the model's aspect, or the model's own frames when that is not wider
    (:func:`jog3r.align.refine.matching_frames`)."""
    H, W = _capped_size(tuple(source_size), max_side)
    if fit == "pad":
        hc, wc = _pad_geometry(H, W, model_size)[:2]
    else:
        hc, wc = aspect_crop_size((H, W), model_size)
    return (hc, wc) if wc > model_size[1] else tuple(model_size)


def plan_cost(pipe: JOG3RPipeline, source: str | Path, num_frames: int, *, long: bool = False, fit: str = "crop",
              matches: str = "sift", speed: float | None = None, source_size: tuple[int, int] | None = None) -> dict:
    """The cost quoted before a run of :func:`estimate_cameras` (exports included), from the source's frame size.

    Args:
        pipe: the pipeline that will run.
        source: the video file or image folder (2 frames are decoded for its size unless ``source_size`` is given).
        num_frames: frames the run will use.
        long: the long-video V2C (:func:`jog3r.long_v2c.estimate_long_cost`), else
            :meth:`JOG3RPipeline.estimate_cost`.
        fit, matches: as :func:`estimate_cameras`.
        speed: :func:`jog3r.jobs.cost.machine_speed` (measured here, ~0.3-1 s, when ``None``).
        source_size: ``(H, W)`` of the source frames, if known.

    Returns:
        The estimate's dict (``seconds``, ``memory_mb``, ``stages``; ``windows`` when long) plus ``speed`` and
        ``match_size``.
    """
    if source_size is None:
        with quiet_reads():  # a probe for the frame size: its "sampled 2 of N frames" is not the run's sampling
            _, info = read_video(source, num_frames=2)
        source_size = info.get("source_size")
    size = pipe.resolution
    use = matches != "none" or long
    msize = matched_size(source_size, size, fit) if (source_size and use) else tuple(size)
    ssize = _capped_size(tuple(source_size), 1024) if source_size else tuple(size)
    speed = machine_speed() if speed is None else float(speed)
    if long:
        cost = estimate_long_cost(pipe, num_frames, match_size=msize, source_size=ssize, speed=speed)
    else:
        cost = pipe.estimate_cost(num_frames, match_size=msize, source_size=ssize, matches=use, speed=speed)
    return {**cost, "speed": speed, "match_size": msize}


def resolve_frames(source: str | Path, frames: str | int, model_frames: int = 16,
                   flag: str = "--frames") -> tuple[int, bool]:
    """``--frames N|all`` -> ``(N, long)``: the frame count to sample and whether it needs the long-video V2C (more
    than ``model_frames`` frames exist to sample: ``N`` on a video at least that long, its own length on a shorter
    one), checked against :data:`jog3r.long_v2c.MAX_FRAMES` without decoding the video (``all`` counts the
    source's frames).

    ``flag`` names the option in the errors (``--frames``, or ``--num-frames`` that takes the same path).

    Raises:
        ValueError: not a number nor ``all``, or a count outside ``[2, MAX_FRAMES]`` (one line, with the limit).
    """
    text = str(frames).strip().lower()
    if text == "all":
        n = count_source_frames(source)
    else:
        try:
            n = int(text)
        except ValueError:
            raise ValueError(f"{flag} must be a number of frames or 'all', got {frames!r}") from None
        if n < 2:
            raise ValueError(f"{flag} must be at least 2 (camera estimation needs two frames), got {n}")
    check_long_frame_count(n)
    available = n
    if text != "all":  # a request beyond the source's length samples every frame: long only if those are many
        try:
            available = min(n, count_source_frames(source))
        except Exception:  # unreadable or missing: the loader reports it with its own one-line error
            available = n
    return n, available > model_frames


def drop_padding(recon: Reconstruction, box: tuple[int, int, int, int]) -> Reconstruction:
    """The reconstruction without the points of padded pixels: ``pts3d``, ``conf`` and ``depth`` set to NaN outside
    ``box`` (the depth PNGs then hold 0 = invalid there).

    The viewer's and the exports' point selection skip non-finite points (:func:`jog3r.io.scene.confidence_cut`
    ignores them too), so the black bars of ``fit="pad"`` never become points; cameras and intrinsics are unchanged.

    Args:
        recon: a reconstruction at the model's size ``H x W``.
        box: ``(top, left, bottom, right)`` of the source image (:attr:`jog3r.jobs.load.VideoInfo.content_box`).

    Returns:
        A new :class:`Reconstruction` (the input is not modified).

    Raises:
        ValueError: if the box holds no pixel of the frame.
    """
    H, W = recon.image_size
    top, left, bottom, right = max(box[0], 0), max(box[1], 0), min(box[2], H), min(box[3], W)
    if bottom <= top or right <= left:
        raise ValueError(f"the padded frames' content box {box} holds no pixel of the {W}x{H} frames")
    inside = torch.zeros(H, W, dtype=torch.bool, device=recon.conf.device)
    inside[top:bottom, left:right] = True
    nan = torch.tensor(float("nan"), dtype=recon.conf.dtype, device=recon.conf.device)
    return dataclasses.replace(recon, conf=torch.where(inside, recon.conf, nan),
                               depth=torch.where(inside, recon.depth, nan.to(recon.depth.dtype)),
                               pts3d=torch.where(inside[..., None], recon.pts3d, nan.to(recon.pts3d.dtype)))


def estimate_cameras(pipe: JOG3RPipeline, source: str | Path, *, num_frames: int | None = None,
                     stride: int | None = None, fit: Fit | str = "crop", intrinsics: Intrinsics | None = None,
                     gt_intrinsics: bool = False, gt: str | Path | None = None,
                     matches: Matches | str = "sift", seed: int = 0, export_dir: str | Path | None = None,
                     keep_percent: float = DEFAULT_KEEP_PERCENT,
                     progress: Callable[[float, str], None] | None = None, long: bool = False,
                     zip_exports: bool = False) -> V2CReport:
    """Run the V2C job on a video file or image folder (steps in the module docstring).

    Args:
        pipe: the pipeline (its model's size and frame count set the sampling).
        source: a video file (mp4/mov/webm/gif) or a folder of images.
        num_frames, stride, fit: the sampling, as :func:`jog3r.jobs.load.load_video`.
        intrinsics: known intrinsics in pixels of the source frames (the focal is then not estimated).
        gt_intrinsics: use the ground-truth file's intrinsics as the known ones (needs ``gt``).
        gt: ground-truth cameras (RealEstate10K ``.txt`` or ``transforms.json``) -> :attr:`V2CReport.scores`.
        matches: one of :data:`MATCHES` (:meth:`JOG3RPipeline.video_to_cameras`).
        seed: seed of the noise added to the latents.
        export_dir: write every export there (created), with :meth:`V2CReport.record` as ``metrics.json``.
        keep_percent: the exports' point cut (% most confident).
        progress: optional ``(fraction, description)`` callback of the V2C run.
        long: the long-video V2C (:func:`jog3r.long_v2c.long_video_to_cameras`, any frame count up to its limit;
            always with correspondences), e.g. for more frames than the model's (:func:`resolve_frames`).
        zip_exports: also zip the export folder to ``<export_dir>.zip`` (:attr:`V2CReport.exports`).

    Returns:
        A :class:`V2CReport`.

    Raises:
        IntrinsicsError: implausible ``intrinsics``, or intrinsics for images of mixed sizes.
        ValueError / FileNotFoundError: an unreadable source, a refused frame count, a bad ground-truth file or one
            with too few cameras, ``gt_intrinsics`` without intrinsics in the file, a bad ``matches``: all before
            the model runs.
    """
    if matches not in MATCHES:
        raise ValueError(f"matches must be 'sift' (default: point maps + correspondences) or 'none' (the paper's "
                         f"V2C), got {matches!r}")
    matches = str(matches)  # a Matches member -> its plain string
    if gt_intrinsics and gt is None:
        raise ValueError("gt_intrinsics needs a ground-truth file (gt)")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    # 1. frames at the model's size
    video, info = load_video(pipe, source, num_frames=num_frames, stride=stride, fit=fit)
    messages = [info.message] if info.message else []
    if long:
        check_long_frame_count(video.num_frames)
    else:
        pipe.check_frame_count(video.num_frames)
    source_size = info.source_size  # None for image folders of mixed sizes
    # 2. known intrinsics
    known_K = None
    if intrinsics is not None:
        if source_size is None:
            raise IntrinsicsError("known intrinsics need frames of one size; this image folder mixes sizes")
        known_K = adjust_intrinsics(intrinsics.matrix(tuple(source_size)), tuple(source_size), video.size)
    # 3. ground truth (read and checked before the long run)
    truth = None
    if gt is not None:
        indices = video.frame_indices if video.frame_indices is not None else torch.arange(video.num_frames)
        truth = read_ground_truth(gt, indices, tuple(source_size or video.size), info.num_source_frames)
        if truth.note:
            messages.append(truth.note)
        if gt_intrinsics:
            if truth.K is None:
                raise ValueError(f"{truth.path} holds no intrinsics to use as the known ones")
            known_K = adjust_intrinsics(truth.K, truth.image_size, video.size)
    # 4. the source-resolution frames the correspondences are matched on (the model's input stays the same)
    source_frames = None
    if long:  # streamed one window at a time: the memory does not grow with the frame count
        source_frames = stream_source_frames(source, video, info)
    elif matches != "none":
        source_frames = load_source_frames(pipe, source, video, info, num_frames=num_frames, stride=stride)
    if (matches != "none" or long) and source_frames is None:
        messages.append("images of mixed sizes: the correspondences are matched on the model-size frames")
    timings["load"] = time.perf_counter() - start
    # 5. V2C
    if long:
        photos = Path(source).is_dir()  # a photo set: no constant-angular-velocity prior (long_config)
        out = long_video_to_cameras(pipe, video, source_frames=source_frames, known_K=known_K, seed=seed,
                                    progress=progress, config=long_config(video=not photos))
    else:
        out = pipe.video_to_cameras(video, known_K=known_K, seed=seed, matches=matches, source_frames=source_frames,
                                    progress=progress)
    timings.update({k: v for k, v in out.timings.items() if k != "total"})
    if info.content_box is not None:  # fit="pad": the black bars are not scene points
        out = dataclasses.replace(out, reconstruction=drop_padding(out.reconstruction, info.content_box))
    # 6. metrics
    scores = score_cameras(out.reconstruction.cam2world, truth.cam2world) if truth is not None else None
    report = V2CReport(out, video, info, truth, scores, timings, messages)
    # 7. exports (the export job)
    exports = None
    if export_dir is not None:
        export_dir = Path(export_dir)
        exports = export_reconstruction(out.reconstruction, export_dir, metrics=report.record(), method=out.method,
                                        video_frames=out.video.frames, fps=video.fps,
                                        frame_indices=video.frame_indices, source_fps=info.source_fps,
                                        keep_percent=keep_percent, zip_bundle_too=zip_exports)
        timings["export"] = exports.seconds
    timings["total"] = sum(timings.values())
    return V2CReport(out, video, info, truth, scores, timings, messages, export_dir, exports)


__all__ = ["METRIC_KEYS", "MATCHES", "Matches", "GroundTruthCameras", "Intrinsics", "IntrinsicsError",
           "PoseScores", "V2CReport", "count_source_frames", "estimate_cameras", "matched_size", "plan_cost",
           "read_ground_truth", "resolve_frames", "score_cameras"]
