"""viser 3D viewer: everything here is a pure function of a :class:`~jog3r.types.Reconstruction`.

This module is the ONLY place in the package that converts ``cam2world`` (OpenCV axes, see
:mod:`jog3r.geometry.camera`) to viser's ``(wxyz, position)`` and computes viser frustum ``fov``/``aspect``.
viser's cameras use the same OpenCV axes (+z forward, +x right, +y down), so only the quaternion order
changes: roma's XYZW inside the package, viser's WXYZ at this boundary.

Stable scene-tree names (``prefix`` defaults to ``/recon``; frames are 0-based, zero-padded to 3 digits)::

    /recon/points                 point cloud of the kept pixels (at most MAX_POINTS, a uniform sample)
    /recon/cameras/frame_007      frustum of frame 7, coloured on the red -> purple ramp, frame image on it
    /recon/cameras/current        the slider's frame when it has no frustum of its own (long videos)
    /recon/trajectory             camera centres joined in time order (every frame)
    /gt/cameras/frame_007, /gt/trajectory   ground truth, similarity-aligned to the prediction

Long videos (hundreds of frames, issue 16): the cloud keeps the exports' point budget
(:data:`~jog3r.io.scene.MAX_POINTS`, a seeded uniform sample over every frame's kept points); at most
:data:`MAX_FRUSTUMS` frustums are drawn (every ``k``-th frame and the last, :func:`frustum_frames`), smaller as
there are more, while the trajectory joins every frame's centre.

``scene`` is ``server.scene`` (shared by every browser) or ``client.scene`` (one browser session); the GUI
helper :class:`ViewerControls` takes the matching ``server`` or ``client``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Literal

import numpy as np
import roma
import torch
import torch.nn.functional as nnf
import viser

from jog3r.geometry.registration import register_points
from jog3r.types import Reconstruction
from jog3r.io import scene as export
from jog3r.viz.colors import GT_COLOR, colormap, time_colors, to_uint8
from jog3r.io.scene import DEFAULT_KEEP_PERCENT, MAX_POINTS

logger = logging.getLogger(__name__)

ColorBy = Literal["rgb", "time", "confidence"]
_THUMBNAIL_SIDE = 160  # longest side, pixels, of the images sent to the browser for the frustums
_FRUSTUM_FRACTION = 0.04  # auto frustum size as a fraction of the scene extent
_POINT_FRACTION = 0.004  # auto point size as a fraction of the scene extent
_LINE_PX, _HIGHLIGHT_PX = 2.0, 6.0  # frustum / trajectory line widths in screen pixels
MAX_FRUSTUMS = 30
"""Most camera frustums drawn per reconstruction; longer videos get every ``k``-th frame's (the trajectory line
still joins every frame, and the frame slider's frame is always drawn)."""
_FULL_SIZE_FRUSTUMS = 16  # up to this many frustums keep the full auto size; more shrink as 1/sqrt(count)


def frustum_frames(num_frames: int, max_frustums: int = MAX_FRUSTUMS) -> list[int]:
    """The 0-based frames that get a frustum: all of them up to ``max_frustums``, else every ``k``-th frame
    (``k = ceil(num_frames / max_frustums)``, starting at 0) and the last one.

    Args:
        num_frames: frames ``F`` of the reconstruction (``>= 1``).
        max_frustums: at most this many frustums, plus possibly the last frame (``>= 1``).

    Returns:
        Increasing frame indices, ``0`` and ``F - 1`` included.

    Raises:
        ValueError: for ``max_frustums < 1``.
    """
    if max_frustums < 1:
        raise ValueError(f"max_frustums must be >= 1, got {max_frustums}")
    step = max(1, -(-num_frames // max_frustums))
    frames = list(range(0, num_frames, step))
    return frames if frames[-1] == num_frames - 1 else frames + [num_frames - 1]


def cam2world_to_wxyz_position(cam2world: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert camera-to-world matrices to viser's ``(wxyz, position)`` (``R_pl``, ``t_pl``; parent = world).

    Args:
        cam2world: ``[..., 4, 4]`` (or ``[..., 3, 4]``) camera-to-world, OpenCV axes.

    Returns:
        ``wxyz`` ``[..., 4]`` float64 unit quaternion, scalar FIRST (viser's order; roma's XYZW rolled by
        one), and ``position`` ``[..., 3]`` float64 camera centre in world coordinates.
    """
    c2w = torch.as_tensor(np.asarray(cam2world), dtype=torch.float64)
    xyzw = roma.rotmat_to_unitquat(c2w[..., :3, :3])
    wxyz = torch.roll(xyzw, shifts=1, dims=-1)
    return wxyz.numpy(), c2w[..., :3, 3].numpy().copy()


def wxyz_position_to_cam2world(wxyz: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Inverse of :func:`cam2world_to_wxyz_position`.

    Args:
        wxyz: ``[..., 4]`` quaternion, scalar first (viser's order).
        position: ``[..., 3]`` camera centre in world coordinates.

    Returns:
        ``[..., 4, 4]`` float64 camera-to-world, OpenCV axes.
    """
    xyzw = torch.roll(torch.as_tensor(np.asarray(wxyz), dtype=torch.float64), shifts=-1, dims=-1)
    rot = roma.unitquat_to_rotmat(roma.quat_normalize(xyzw))
    out = torch.zeros(rot.shape[:-2] + (4, 4), dtype=torch.float64)
    out[..., :3, :3] = rot
    out[..., :3, 3] = torch.as_tensor(np.asarray(position), dtype=torch.float64)
    out[..., 3, 3] = 1.0
    return out.numpy()


def frustum_fov_aspect(
    K: torch.Tensor | np.ndarray, image_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Vertical field of view and aspect ratio of viser frustums (``add_camera_frustum`` arguments).

    ``fov = 2 atan(H / (2 fy))`` (radians, vertical) and
    ``aspect = tan(hfov/2) / tan(fov/2) = (W / fx) / (H / fy)``, i.e. the frustum's width over height, which
    equals ``W / H`` for square pixels (``fx == fy``) and stays geometrically right for non-square ones
    (RealEstate10K at 384x256).

    Args:
        K: ``[..., 3, 3]`` intrinsics in pixels of an ``H x W`` image.
        image_size: ``(H, W)`` in pixels.

    Returns:
        ``fov`` ``[...]`` float64 radians and ``aspect`` ``[...]`` float64 (width / height).
    """
    K = np.asarray(K, dtype=np.float64)
    height, width = image_size
    fx, fy = K[..., 0, 0], K[..., 1, 1]
    fov = 2.0 * np.arctan2(height / 2.0, fy)
    return fov, (width / fx) / (height / fy)


def scene_extent(recon: Reconstruction) -> float:
    """Size of the scene: diagonal of the 2nd-98th percentile box of the world points and camera centres.

    Args:
        recon: the reconstruction (world units, up to scale).

    Returns:
        Extent in world units (``1.0`` when everything sits at one point).
    """
    pts = recon.pts3d.reshape(-1, 3).double()
    pts = torch.cat([pts[torch.isfinite(pts).all(-1)], recon.cam2world[:, :3, 3].double()])
    lo, hi = torch.quantile(pts, 0.02, dim=0), torch.quantile(pts, 0.98, dim=0)
    extent = float(torch.linalg.norm(hi - lo))
    return extent if extent > 1e-9 else 1.0


WALK_DEPTHS = 3.0
"""A camera path longer than this many median depths is a walk (a long video through rooms): :func:`default_view`
then looks down on the whole path instead of along camera 0. The 240-frame synthetic walkthrough of
``benchmarks/viewer_long.py``: 6.0; an 80-deg orbit around an object, or a 16-frame RealEstate10K clip: ~1."""


def default_view(
    recon: Reconstruction, keep_percent: float | None = DEFAULT_KEEP_PERCENT
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A viewpoint that shows the whole reconstruction.

    A camera path up to :data:`WALK_DEPTHS` median depths long (a 16-frame clip, an orbit): the eye sits at the mean
    camera centre, moved back along camera 0's viewing direction and up along its ``-y`` axis by fractions of
    :func:`scene_extent`, and looks at the median of the points the viewer draws by default (the ``keep_percent``
    cut), which viser's orbit controls then turn about. A longer path (a walk through rooms, hundreds of frames):
    from inside the cloud that view shows a wall of points, so the eye looks down on the path's mean centre from
    above and behind it (70 deg of elevation along the cameras' mean up, behind along their mean heading), far
    enough that the path's spread fills about 70 % of a 50-deg field of view; the orbit turns about the path.

    Args:
        recon: the reconstruction.
        keep_percent: the cut of the drawn points (see :func:`select_points`).

    Returns:
        ``position`` ``[3]``, ``look_at`` ``[3]`` and ``up`` ``[3]`` (camera 0's ``-y``, or for a walk the mean
        ``-y`` of all cameras; OpenCV y points down), float64 world coordinates, for ``server.initial_camera`` /
        ``client.camera``.
    """
    c2w = recon.cam2world.detach().cpu().double().numpy()
    centres = c2w[:, :3, 3]
    centre = centres.mean(0)
    spread = float(np.linalg.norm(centres - centre, axis=1).max())
    length = float(np.linalg.norm(np.diff(centres, axis=0), axis=1).sum())
    depth = recon.depth.detach().cpu().double()
    depth = float(depth[torch.isfinite(depth)].median()) if bool(torch.isfinite(depth).any()) else 0.0
    up0 = -c2w[0, :3, 1]
    if depth > 0 and length > WALK_DEPTHS * depth:
        up = -c2w[:, :3, 1].mean(0)
        up = up / np.linalg.norm(up) if np.linalg.norm(up) > 1e-6 else up0
        heading = c2w[:, :3, 2].mean(0)
        heading = heading - np.dot(heading, up) * up
        if np.linalg.norm(heading) < 1e-6:  # a loop: no mean heading, use camera 0's
            heading = c2w[0, :3, 2] - np.dot(c2w[0, :3, 2], up) * up
        heading = heading / max(np.linalg.norm(heading), 1e-12)
        distance = 1.4 * spread / np.tan(np.radians(25.0))
        elevation = np.radians(70.0)
        position = centre + distance * (np.sin(elevation) * up - np.cos(elevation) * heading)
        return position, centre, up
    pts = export.select_points(recon, keep_percent=keep_percent, max_points=50_000)["xyz"].astype(np.float64)
    look_at = np.median(pts, axis=0) if len(pts) else c2w[0, :3, 3] + c2w[0, :3, 2]
    extent = scene_extent(recon)
    position = centre - 0.4 * extent * c2w[0, :3, 2] + 0.3 * extent * up0
    return position, look_at, up0


def frame_node_name(prefix: str, frame: int) -> str:
    """Scene-tree name of one frame's frustum.

    Args:
        prefix: scene-tree prefix, e.g. ``/recon``.
        frame: 0-based frame index.

    Returns:
        ``f"{prefix}/cameras/frame_{frame:03d}"``, e.g. ``/recon/cameras/frame_007``.
    """
    return f"{prefix}/cameras/frame_{frame:03d}"


def select_points(
    recon: Reconstruction,
    *,
    keep_percent: float | None = DEFAULT_KEEP_PERCENT,
    conf_threshold: float | None = None,
    max_points: int = MAX_POINTS,
    color_by: ColorBy = "rgb",
    frame: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """World points and colours to draw: the confident finite pixels, subsampled to ``max_points``.

    The selection is :func:`jog3r.io.scene.select_points` (seed 0), the exports' own, so with the defaults the
    viewer draws exactly the points of the bundle's ``pointcloud.ply``.

    Args:
        recon: the reconstruction.
        keep_percent: keep the ``keep_percent`` % most confident finite points (default
            :data:`~jog3r.io.scene.DEFAULT_KEEP_PERCENT`, shared with the exports); ``None`` keeps them all.
        conf_threshold: an absolute cut ``conf >= conf_threshold`` instead (DUSt3R demo's ``min_conf_thr``); it
            overrides ``keep_percent``.
        max_points: at most this many points are returned.
        color_by: ``"rgb"`` (the pixel colour), ``"time"`` (frame colour on the red -> purple ramp) or
            ``"confidence"`` (viridis of ``log(conf)`` over the whole video).
        frame: only this 0-based frame's points (the cut is still over all frames); ``None``: every frame.

    Returns:
        ``points`` ``[N, 3]`` float32 world coordinates and ``colors`` ``[N, 3]`` uint8.

    Raises:
        ValueError: for an unknown ``color_by``, a ``keep_percent`` outside ``(0, 100]`` or a bad ``frame``.
    """
    if color_by not in ("rgb", "time", "confidence"):
        raise ValueError(f"color_by must be 'rgb', 'time' or 'confidence', got {color_by!r}")
    num_frames, height, width = recon.conf.shape
    sel = export.select_points(recon, conf_threshold=conf_threshold, keep_percent=keep_percent,
                               max_points=max_points, seed=0, frame=frame)
    keep = sel["index"]
    if color_by == "rgb":
        rgb = sel["rgb"]
    elif color_by == "time":
        rgb = time_colors(num_frames)[keep // (height * width)]
    else:
        conf = recon.conf.detach().cpu().reshape(-1).float().numpy()
        log_conf = np.log(np.maximum(conf[np.isfinite(conf)], 1e-6))
        rgb = colormap(np.log(np.maximum(sel["conf"], 1e-6)), "viridis", vmin=float(log_conf.min()),
                       vmax=float(log_conf.max()))
    return sel["xyz"].astype(np.float32), to_uint8(rgb)


def _thumbnails(colors: torch.Tensor) -> list[np.ndarray]:
    """``[F, H, W, 3]`` float colours -> list of uint8 images, area-downsampled to ``_THUMBNAIL_SIDE``."""
    height, width = colors.shape[1:3]
    factor = min(1.0, _THUMBNAIL_SIDE / max(height, width))
    size = (max(1, round(height * factor)), max(1, round(width * factor)))
    small = nnf.interpolate(colors.detach().cpu().float().permute(0, 3, 1, 2), size=size, mode="area")
    return [to_uint8(img.permute(1, 2, 0).numpy()) for img in small]


def _trajectory_segments(centres: np.ndarray, colors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera centres ``[F, 3]`` -> consecutive segments ``[F-1, 2, 3]`` and end colours ``[F-1, 2, 3]``."""
    segments = np.stack([centres[:-1], centres[1:]], axis=1)
    return segments, np.stack([colors[:-1], colors[1:]], axis=1)


_UNSET = object()


@dataclasses.dataclass
class ReconstructionHandles:
    """viser handles of one reconstruction, plus what is needed to update it in place.

    Attributes:
        recon: the reconstruction shown.
        prefix: scene-tree prefix (``/recon``).
        points: handle of ``{prefix}/points``.
        frustums: handles of ``{prefix}/cameras/frame_XXX``, one per frame of :attr:`frustum_frames` (every frame
            up to :data:`MAX_FRUSTUMS`); :meth:`frustum_of` finds a frame's.
        trajectory: handle of ``{prefix}/trajectory`` (``None`` for a single frame).
        frustum_scale: frustum size in world units.
        images: the ``F`` uint8 thumbnails of the frames (on the frustums; restored after :func:`add_error_maps`).
        keep_percent, conf_threshold, color_by, max_points, frame: the current point selection (see
            :func:`select_points`; an absolute ``conf_threshold`` overrides ``keep_percent``; ``frame`` is the one
            frame whose points are drawn, ``None`` for all).
        frustum_frames: the 0-based frames with a frustum (:func:`frustum_frames`); ``None``: every frame.
        scene: the scene the nodes are in (for ``{prefix}/cameras/current``).
        num_drawn, num_selected: points drawn, and points that pass the cut before the budget ``max_points``
            (of the current frame only when ``frame`` is set).
    """

    recon: Reconstruction
    prefix: str
    points: viser.PointCloudHandle
    frustums: list[viser.CameraFrustumHandle]
    trajectory: viser.LineSegmentsHandle | None
    frustum_scale: float
    images: list[np.ndarray]
    keep_percent: float | None
    conf_threshold: float | None
    color_by: ColorBy
    max_points: int
    frame: int | None = None
    frustum_frames: list[int] | None = None
    scene: viser.SceneApi | None = None
    num_drawn: int = 0
    num_selected: int = 0
    _current: viser.CameraFrustumHandle | None = None
    _cuts: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.frustum_frames is None:
            self.frustum_frames = list(range(len(self.frustums)))

    def frustum_of(self, frame: int) -> viser.CameraFrustumHandle | None:
        """The frustum drawn for 0-based ``frame``, or ``None`` when that frame has none (long videos)."""
        try:
            return self.frustums[self.frustum_frames.index(frame)]
        except ValueError:
            return None

    def _threshold(self) -> float | None:
        """The absolute confidence cut of the current selection, computed once per ``keep_percent``.

        The same value :func:`jog3r.io.scene.select_points` derives from ``keep_percent`` (finite points only), so
        the drawn points are unchanged; caching it keeps each frame of playback from re-sorting every
        confidence of a long video.
        """
        if self.conf_threshold is not None or self.keep_percent is None:
            return self.conf_threshold
        if self.keep_percent not in self._cuts:
            conf = self.recon.conf.detach().cpu().reshape(-1).float().numpy()
            pts = self.recon.pts3d.detach().cpu().reshape(-1, 3).float().numpy()
            finite = np.isfinite(pts).all(axis=1) & np.isfinite(conf)
            self._cuts[self.keep_percent] = (export.confidence_cut(conf[finite], self.keep_percent)
                                             if finite.any() else None)
        return self._cuts[self.keep_percent]

    def _count_selected(self, threshold: float | None) -> int:
        """Finite points passing ``threshold`` (of :attr:`frame` only when set), before the point budget."""
        conf = self.recon.conf.detach().cpu().float()
        pts = self.recon.pts3d.detach().cpu().float()
        if self.frame is not None:
            conf, pts = conf[self.frame], pts[self.frame]
        keep = torch.isfinite(pts).all(-1) & torch.isfinite(conf)
        if threshold is not None:
            keep &= conf >= threshold
        return int(keep.sum())

    def update_points(
        self,
        *,
        keep_percent: float | None = None,
        conf_threshold: float | None = None,
        color_by: ColorBy | None = None,
        frame: int | None | object = _UNSET,
    ) -> int:
        """Re-select the points in place (same ``{prefix}/points`` node; see :func:`select_points`).

        Args:
            keep_percent: keep this share (%) of the most confident points from now on, or ``None`` to keep
                the current cut.
            conf_threshold: an absolute minimum confidence from now on instead, or ``None`` to keep the current
                cut.
            color_by: new colour mode, or ``None`` to keep the current one.
            frame: draw only this 0-based frame's points, ``None`` for every frame; unchanged if not given.

        Returns:
            Number of points now drawn.

        Raises:
            ValueError: for a ``keep_percent`` outside ``(0, 100]`` (nothing is changed then).
        """
        if keep_percent is not None:
            export.confidence_cut([1.0], keep_percent)  # validates before anything changes
            self.keep_percent, self.conf_threshold = float(keep_percent), None
        if conf_threshold is not None:
            self.conf_threshold = float(conf_threshold)
        self.color_by = self.color_by if color_by is None else color_by
        if frame is not _UNSET:
            self.frame = frame  # type: ignore[assignment]
        threshold = self._threshold()
        pts, rgb = select_points(
            self.recon, keep_percent=None, conf_threshold=threshold, max_points=self.max_points,
            color_by=self.color_by, frame=self.frame,
        )
        self.points.points, self.points.colors = pts, rgb
        self.num_drawn, self.num_selected = len(pts), self._count_selected(threshold)
        return len(pts)

    def highlight_frame(self, frame: int | None) -> None:
        """Draw one frame's frustum 1.5x bigger with thicker lines, the others normally.

        A frame without a frustum of its own (:attr:`frustum_frames`, long videos) gets the
        ``{prefix}/cameras/current`` frustum, with its image, at its pose; it is hidden otherwise.

        Args:
            frame: 0-based frame index, or ``None`` to clear the highlight.
        """
        for f, frustum in zip(self.frustum_frames, self.frustums):
            on = f == frame
            frustum.scale = self.frustum_scale * (1.5 if on else 1.0)
            frustum.thickness = _HIGHLIGHT_PX if on else _LINE_PX
        if frame is None or frame in self.frustum_frames or self.scene is None:
            if self._current is not None:
                self._current.visible = False
            return
        wxyz, position = cam2world_to_wxyz_position(self.recon.cam2world[frame].detach().cpu())
        color = tuple(int(c) for c in to_uint8(time_colors(self.recon.num_frames)[frame]))
        if self._current is None:
            fov, aspect = frustum_fov_aspect(self.recon.K[frame].detach().cpu(), self.recon.image_size)
            self._current = self.scene.add_camera_frustum(
                f"{self.prefix}/cameras/current", fov=float(fov), aspect=float(aspect),
                scale=1.5 * self.frustum_scale, thickness=_HIGHLIGHT_PX, thickness_units="screen",
                color=color, image=self.images[frame], wxyz=wxyz, position=position)
            return
        self._current.wxyz, self._current.position = wxyz, position
        self._current.image, self._current.color, self._current.visible = self.images[frame], color, True

    def remove(self) -> None:
        """Remove every node of this reconstruction from the scene."""
        for handle in [self.points, *self.frustums, self.trajectory, self._current]:
            if handle is not None:
                handle.remove()


def add_reconstruction(
    scene: viser.SceneApi,
    recon: Reconstruction,
    *,
    prefix: str = "/recon",
    keep_percent: float | None = DEFAULT_KEEP_PERCENT,
    conf_threshold: float | None = None,
    point_size: float | None = None,
    max_points: int = MAX_POINTS,
    color_by: ColorBy = "rgb",
    frustum_scale: float | None = None,
    show_images: bool = True,
    max_frustums: int = MAX_FRUSTUMS,
) -> ReconstructionHandles:
    """Add a reconstruction (points, camera frustums, trajectory) to a viser scene.

    Args:
        scene: ``server.scene`` or a per-browser ``client.scene``.
        recon: the reconstruction; ``cam2world`` in OpenCV axes (:mod:`jog3r.geometry.camera`).
        prefix: scene-tree prefix; nodes of the same name are replaced (call ``handles.remove()`` on an older
            reconstruction with more frames first, or its extra frustums stay).
        keep_percent: draw the ``keep_percent`` % most confident points (default: the exports' cut); ``None``:
            all finite points.
        conf_threshold: an absolute cut ``conf >= conf_threshold`` instead (overrides ``keep_percent``).
        point_size: point size in world units; default ``0.004 *`` :func:`scene_extent`.
        max_points: draw at most this many points (seeded subsample).
        color_by: ``"rgb"``, ``"time"`` or ``"confidence"`` (see :func:`select_points`).
        frustum_scale: frustum size in world units; default ``0.04 *`` :func:`scene_extent`, times
            ``sqrt(16 / n)`` when ``n > 16`` frustums are drawn, and at most half the median distance between
            consecutive drawn frustums when only every ``k``-th frame has one (so they do not overlap).
        show_images: put each frame's image on its frustum.
        max_frustums: draw at most this many frustums (every ``k``-th frame and the last,
            :func:`frustum_frames`); the trajectory line still joins every frame.

    Returns:
        The :class:`ReconstructionHandles`.
    """
    extent = scene_extent(recon)
    drawn = frustum_frames(recon.num_frames, max_frustums)
    if frustum_scale is None:
        frustum_scale = _FRUSTUM_FRACTION * extent * min(1.0, (_FULL_SIZE_FRUSTUMS / len(drawn)) ** 0.5)
        if len(drawn) < recon.num_frames:  # every k-th frame: at most half the usual gap between drawn frustums
            centres = recon.cam2world[drawn, :3, 3].detach().cpu().double()
            gap = float((centres[1:] - centres[:-1]).norm(dim=-1).median())
            frustum_scale = min(frustum_scale, 0.5 * gap) if gap > 1e-9 else frustum_scale
    frustum_scale = float(frustum_scale)
    point_size = _POINT_FRACTION * extent if point_size is None else float(point_size)
    pts, rgb = select_points(recon, keep_percent=keep_percent, conf_threshold=conf_threshold,
                             max_points=max_points, color_by=color_by)
    points = scene.add_point_cloud(
        f"{prefix}/points", pts, rgb, point_size=point_size, point_shape="circle", precision="float32"
    )
    ramp = time_colors(recon.num_frames)
    wxyz, position = cam2world_to_wxyz_position(recon.cam2world.detach().cpu())
    fov, aspect = frustum_fov_aspect(recon.K.detach().cpu(), recon.image_size)
    images = _thumbnails(recon.colors)
    frustums = [
        scene.add_camera_frustum(
            frame_node_name(prefix, f),
            fov=float(fov[f]),
            aspect=float(aspect[f]),
            scale=frustum_scale,
            thickness=_LINE_PX,
            thickness_units="screen",
            color=tuple(int(c) for c in to_uint8(ramp[f])),
            image=images[f] if show_images else None,
            wxyz=wxyz[f],
            position=position[f],
        )
        for f in drawn
    ]
    trajectory = None
    if recon.num_frames > 1:
        segments, seg_colors = _trajectory_segments(position, ramp)
        trajectory = scene.add_line_segments(
            f"{prefix}/trajectory",
            segments,
            to_uint8(seg_colors),
            thickness=_LINE_PX + 1,
            thickness_units="screen",
        )
    logger.debug("added %d points and %d of %d cameras under %s", len(pts), len(drawn), recon.num_frames, prefix)
    handles = ReconstructionHandles(
        recon, prefix, points, frustums, trajectory, frustum_scale, images, keep_percent, conf_threshold,
        color_by, max_points, frustum_frames=drawn, scene=scene,
    )
    handles.num_drawn, handles.num_selected = len(pts), handles._count_selected(handles._threshold())
    return handles


def align_ground_truth(
    cam2world_gt: torch.Tensor, reference_cam2world: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """Similarity-align ground-truth cameras onto predicted ones (Umeyama 1991 via ``roma``, with scale).

    Camera centres alone leave the rotation about a straight trajectory undetermined (common for forward
    walkthroughs), so each camera contributes three points: its centre ``c``, ``c + d z`` and ``c - d y`` (its
    forward and up axes), with ``d`` the RMS distance of that trajectory's centres from their mean (so the
    offsets scale with the trajectory and an exact similarity is recovered exactly).
    ``roma.rigid_points_registration(..., compute_scaling=True)`` (through
    :func:`jog3r.geometry.registration.register_points`) then gives ``(R, t, s)`` minimising
    ``sum ||s R x + t - y||^2``.

    Args:
        cam2world_gt: ``[F, 4, 4]`` ground-truth camera-to-world (OpenCV), any scale.
        reference_cam2world: ``[F, 4, 4]`` predicted camera-to-world to align onto.

    Returns:
        ``[F, 4, 4]`` float32 aligned ground truth (rotation ``R R_gt``, centre ``s R c_gt + t``) and the
        scale ``s``.
    """

    def anchor_points(c2w: torch.Tensor) -> torch.Tensor:
        centres = c2w[:, :3, 3]
        spread = float(torch.sqrt(((centres - centres.mean(0)) ** 2).sum(-1).mean()))
        d = spread if spread > 1e-9 else 1.0
        return torch.cat([centres, centres + d * c2w[:, :3, 2], centres - d * c2w[:, :3, 1]])

    gt, ref = cam2world_gt.detach().cpu().double(), reference_cam2world.detach().cpu().double()
    rot, trans, scale = register_points(anchor_points(gt), anchor_points(ref), with_scale=True)
    aligned = gt.clone()
    aligned[:, :3, :3] = rot @ gt[:, :3, :3]
    aligned[:, :3, 3] = scale * gt[:, :3, 3] @ rot.T + trans
    return aligned.float(), float(scale)


@dataclasses.dataclass
class GroundTruthHandles:
    """viser handles of the ground-truth cameras (``/gt/...``; frustums of the drawn frames only, as the
    prediction's) and the aligned ``[F, 4, 4]`` cam2world."""

    frustums: list[viser.CameraFrustumHandle]
    trajectory: viser.LineSegmentsHandle | None
    cam2world_aligned: torch.Tensor

    def set_visible(self, visible: bool) -> None:
        """Show or hide every ground-truth node.

        Args:
            visible: the new visibility.
        """
        for handle in [*self.frustums, self.trajectory]:
            if handle is not None:
                handle.visible = visible


def add_ground_truth(
    scene: viser.SceneApi,
    cam2world_gt: torch.Tensor,
    K: torch.Tensor,
    image_size: tuple[int, int],
    reference_cam2world: torch.Tensor,
    *,
    prefix: str = "/gt",
    frustum_scale: float = 0.1,
    frames: list[int] | None = None,
) -> GroundTruthHandles:
    """Add ground-truth cameras in :data:`~jog3r.viz.colors.GT_COLOR`, aligned to the prediction first.

    Args:
        scene: ``server.scene`` or ``client.scene``.
        cam2world_gt: ``[F, 4, 4]`` ground-truth camera-to-world, OpenCV axes.
        K: ``[F, 3, 3]`` ground-truth intrinsics in pixels of ``image_size``.
        image_size: ``(H, W)`` in pixels.
        reference_cam2world: ``[F, 4, 4]`` predicted cameras; see :func:`align_ground_truth`.
        prefix: scene-tree prefix.
        frustum_scale: frustum size in world units (pass ``handles.frustum_scale`` to match the prediction).
        frames: the 0-based frames that get a frustum (pass ``handles.frustum_frames``); default
            :func:`frustum_frames` of ``F``. The trajectory joins every frame.

    Returns:
        The :class:`GroundTruthHandles`.
    """
    aligned, _ = align_ground_truth(cam2world_gt, reference_cam2world)
    wxyz, position = cam2world_to_wxyz_position(aligned)
    fov, aspect = frustum_fov_aspect(K.detach().cpu(), image_size)
    color = tuple(int(c) for c in to_uint8(np.asarray(GT_COLOR)))
    frustums = [
        scene.add_camera_frustum(
            frame_node_name(prefix, f), fov=float(fov[f]), aspect=float(aspect[f]), scale=frustum_scale,
            thickness=_LINE_PX / 2, thickness_units="screen", color=color, wxyz=wxyz[f], position=position[f],
        )
        for f in (frustum_frames(len(aligned)) if frames is None else frames)
    ]
    trajectory = None
    if len(aligned) > 1:
        segments, _ = _trajectory_segments(position, np.zeros((len(aligned), 3)))
        trajectory = scene.add_line_segments(
            f"{prefix}/trajectory", segments, color, thickness=_LINE_PX / 2, thickness_units="screen"
        )
    return GroundTruthHandles(frustums, trajectory, aligned)


def add_error_maps(
    handles: ReconstructionHandles,
    error_maps: torch.Tensor | np.ndarray,
    masks: torch.Tensor | np.ndarray | None = None,
    *,
    frames: list[int] | None = None,
    vmax: float | None = None,
) -> list[np.ndarray]:
    """Replace frustum images by turbo-colormapped error maps (e.g. MEt3R's), invisible pixels grey.

    Args:
        handles: from :func:`add_reconstruction`.
        error_maps: ``[E, H', W']`` float error per pixel (MEt3R: ``1 - cos``, in ``[0, 2]``).
        masks: optional ``[E, H', W']`` bool, True where the error is defined.
        frames: 0-based frame of each map; default ``1 .. E`` (MEt3R's pairs ``(0, f)``).
        vmax: value drawn dark red; default the largest valid error (shared by all maps).

    Returns:
        The ``E`` uint8 ``[H', W', 3]`` images put on the frustums (:meth:`restore_images` puts the frames
        back).

    Raises:
        ValueError: if the number of maps and ``frames`` differ or a frame index is out of range.
    """
    err = torch.as_tensor(error_maps).detach().cpu().double().numpy()
    valid = np.isfinite(err) if masks is None else torch.as_tensor(masks).detach().cpu().bool().numpy()
    frames = list(range(1, len(err) + 1)) if frames is None else list(frames)
    num = handles.recon.num_frames
    if len(frames) != len(err) or any(not 0 <= f < num for f in frames):
        raise ValueError(f"{len(err)} maps do not fit frames {frames} of {num} cameras")
    if vmax is None:
        vmax = float(err[valid].max()) if valid.any() else 1.0
    images = [to_uint8(colormap(e, "turbo", vmin=0.0, vmax=vmax, mask=m)) for e, m in zip(err, valid)]
    for f, image in zip(frames, images):
        frustum = handles.frustum_of(f)
        if frustum is not None:  # frames without a frustum (long videos) keep no map
            frustum.image = image
    return images


def restore_images(handles: ReconstructionHandles) -> None:
    """Put the frame images back on the frustums after :func:`add_error_maps`.

    Args:
        handles: from :func:`add_reconstruction`.
    """
    for f, frustum in zip(handles.frustum_frames, handles.frustums):
        frustum.image = handles.images[f]
