"""MEt3R: 3D consistency of a video by warping features between frames with predicted point maps.

MEt3R (Asim et al., CVPR 2025; REFERENCE C.2) in the JOG3R form (JOG3R Sec. 4.1, "Metrics": "We estimate
the per-frame DINO features and warp them to the first frame using the estimated 3D point maps. We report the
average cosine similarity between the features of the first frame and any other warped feature map weighted by
the visibility masks"). For every frame ``f = 1 .. F-1`` (0-based) and the pair ``(0, f)``:

1. point maps in frame 0's camera: ``X0`` (frame 0's pixels, DUSt3R ``pts3d``) and ``Xf`` (frame ``f``'s
   pixels, ``pts3d_in_other_view``), both OpenCV, up to one scale per pair;
2. frame 0's intrinsics: principal point at the image centre ``(W/2, H/2)``, focal estimated from ``X0``
   (:func:`jog3r.geometry.camera.estimate_focal`; scale-free, so each pair's own scale does not matter);
3. features ``F0 = phi(frame 0)`` and ``Ff = phi(frame f)`` at pixel resolution
   (:mod:`jog3r.metrics.features`);
4. splat BOTH clouds into frame 0's image (as MEt3R renders both): each point lands in the pixel containing
   its projection (pixel centres at ``+0.5``, :mod:`jog3r.geometry.camera`), and a z-buffer keeps the nearest
   point per pixel (``scatter_reduce('amin')`` on depth, then the winning point's features are gathered);
5. visibility mask ``M`` = pixels hit by points of both clouds; score map ``S = 1 - cos(F0_hat, Ff_hat)``;
6. frame score = ``sum M S / sum M`` (NaN when ``M`` is empty); video score = mean over frames with non-empty
   masks.

Lower is better; 0 means the warped features agree exactly. Differences from the reference implementation:
1-pixel nearest splats instead of PyTorch3D's radius-0.01 NDC splats with 10 points per pixel and alpha
compositing; rendering at the frames' resolution (MEt3R renders at 256x256 by default); a single focal instead
of per-axis ``fx, fy`` medians over a confidence-weighted average of both point maps; no ``1e-5`` in the
denominators.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont  # Pillow is a dependency of imageio

from jog3r.geometry.camera import estimate_focal, inverse_se3, project, transform_points
from jog3r.metrics.features import FeatureExtractor, RGBFeatures
from jog3r.types import PairwisePointmaps, Reconstruction
from jog3r.viz.colors import colormap, to_uint8

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Met3RResult:
    """MEt3R of one video.

    Attributes:
        score: mean of ``per_frame`` over frames with a non-empty mask (lower = more consistent); NaN if none.
        per_frame: ``[F-1]`` float32, masked mean of ``1 - cos`` for the pairs ``(0, f)``, ``f = 1..F-1``; NaN
            where the mask is empty.
        masks: ``[F-1, H, W]`` bool, frame 0's pixels hit by points of both frames.
        error_maps: ``[F-1, H, W]`` float32 ``1 - cos`` in ``[0, 2]`` in frame 0's pixel grid; 0 outside
            ``masks``.
        backbone: name of the feature extractor (``"rgb"``, ``"dinov2:<folder>"``, ``"taef2:layer13"``).
        focal: ``[F-1]`` float32 frame-0 focal length in pixels used for each pair.
    """

    score: float
    per_frame: torch.Tensor
    masks: torch.Tensor
    error_maps: torch.Tensor
    backbone: str
    focal: torch.Tensor


def first_frame_pointmaps(
    num_frames: int, pointmaps: PairwisePointmaps | None = None, recon: Reconstruction | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Point maps of the pairs ``(0, f)``, ``f = 1..F-1``, in frame 0's camera frame.

    Args:
        num_frames: number of frames ``F`` of the video.
        pointmaps: DUSt3R-style pairwise output with batch size 1 holding every edge ``(0, f)``.
        recon: alternatively a reconstruction; its world ``pts3d`` are moved into camera 0 with
            ``inverse(cam2world[0])``.

    Returns:
        ``pts_ref`` ``[F-1, H, W, 3]`` (frame 0's pixels), ``pts_other`` ``[F-1, H, W, 3]`` (frame f's
        pixels), and ``K`` ``[3, 3]`` (``recon.K[0]``) or ``None`` when the intrinsics must be estimated.

    Raises:
        ValueError: if neither or both inputs are given, the batch size is not 1, an edge ``(0, f)`` is
            missing, or the number of frames does not match.
    """
    if (pointmaps is None) == (recon is None):
        raise ValueError("pass exactly one of pointmaps= (PairwisePointmaps) or recon= (Reconstruction)")
    if recon is not None:
        if recon.num_frames != num_frames:
            raise ValueError(f"the reconstruction has {recon.num_frames} frames, the video {num_frames}")
        world2cam0 = inverse_se3(recon.cam2world[0].float())
        pts = transform_points(world2cam0, recon.pts3d.float())
        return pts[:1].expand(num_frames - 1, -1, -1, -1), pts[1:], recon.K[0].float()
    if pointmaps.pts3d.shape[0] != 1:
        raise ValueError(
            f"pointmaps must hold one video (batch 1), got {pointmaps.pts3d.shape[0]}; use .select(b)"
        )
    edges = [tuple(e) for e in pointmaps.edges.tolist()]
    missing = [f for f in range(1, num_frames) if (0, f) not in edges]
    if missing:
        raise ValueError(f"MEt3R needs the pairs (0, f) for every frame f; missing f = {missing} in {edges}")
    index = torch.tensor([edges.index((0, f)) for f in range(1, num_frames)])
    return pointmaps.pts3d[0, index].float(), pointmaps.pts3d_in_other_view[0, index].float(), None


def splat_features(
    pts_cam: torch.Tensor, features: torch.Tensor, K: torch.Tensor, image_size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Z-buffered nearest-pixel splatting of a feature-carrying point cloud into one camera.

    Args:
        pts_cam: ``[N, 3]`` points in the target camera's OpenCV frame (scene units).
        features: ``[C, N]`` feature of each point.
        K: ``[3, 3]`` target intrinsics in pixels.
        image_size: ``(H, W)`` of the target image.

    Returns:
        ``rendered`` ``[C, H, W]`` (features of the nearest point in each pixel, 0 where none) and ``covered``
        ``[H, W]`` bool. A point lands in pixel ``(floor(x), floor(y))`` of its projection ``(x, y)`` (pixel
        centres at ``+0.5``); points with ``z <= 0``, non-finite coordinates or outside the image are dropped.
    """
    height, width = image_size
    xy = project(pts_cam, K)
    z = pts_cam[:, 2]
    u, v = torch.floor(xy[:, 0]), torch.floor(xy[:, 1])
    ok = (z > 0) & torch.isfinite(pts_cam).all(-1) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    pix = (v[ok] * width + u[ok]).long()
    depth, point_index = z[ok], torch.nonzero(ok).squeeze(1)
    zbuf = torch.full((height * width,), math.inf, dtype=z.dtype).scatter_reduce(0, pix, depth, "amin")
    front = depth <= zbuf[pix]  # the nearest point(s) of each pixel; ties go to the largest index below
    winner = torch.full((height * width,), -1, dtype=torch.long).scatter_reduce(
        0, pix[front], point_index[front], "amax"
    )
    covered = winner >= 0
    rendered = features[:, winner.clamp(min=0)] * covered
    return rendered.reshape(-1, height, width), covered.reshape(height, width)


def met3r(
    frames: torch.Tensor,
    pointmaps: PairwisePointmaps | None = None,
    recon: Reconstruction | None = None,
    features: FeatureExtractor | None = None,
    *,
    focal_mode: str = "median",
) -> Met3RResult:
    """MEt3R of a video: warp every frame's features into frame 0 and compare (see the module docstring).

    Args:
        frames: ``[F, 3, H, W]`` float RGB in ``[0, 1]``, ``F >= 2``.
        pointmaps: pairwise point maps (batch 1) containing every edge ``(0, f)``, at ``H x W``.
        recon: alternatively a reconstruction at ``H x W``; ``K[0]`` is then used instead of an estimate.
        features: the feature extractor; default :class:`~jog3r.metrics.features.RGBFeatures`.
        focal_mode: ``"median"`` (MEt3R's per-pixel median) or ``"weiszfeld"`` (DUSt3R), for
            :func:`~jog3r.geometry.camera.estimate_focal`.

    Returns:
        A :class:`Met3RResult` on the CPU.

    Raises:
        ValueError: bad ``frames``, mismatched sizes, or bad ``pointmaps``/``recon`` (see
            :func:`first_frame_pointmaps`).
    """
    if frames.ndim != 4 or frames.shape[1] != 3 or frames.shape[0] < 2:
        raise ValueError(f"frames must be [F >= 2, 3, H, W], got {tuple(frames.shape)}")
    features = RGBFeatures() if features is None else features
    num_frames, _, height, width = frames.shape
    pts_ref, pts_other, K = first_frame_pointmaps(num_frames, pointmaps, recon)
    if tuple(pts_ref.shape[1:3]) != (height, width):
        sizes = f"point maps are {tuple(pts_ref.shape[1:3])}, frames {(height, width)}"
        raise ValueError(f"{sizes}: resize one of them")
    if K is None:
        focal = estimate_focal(pts_ref, mode=focal_mode)
        K = torch.zeros(num_frames - 1, 3, 3)
        K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = focal, focal, width / 2, height / 2, 1.0
    else:
        K = K.expand(num_frames - 1, 3, 3)
    feat_ref = features(frames[:1].float().cpu())[0].flatten(1)
    per_frame, masks, error_maps = [], [], []
    for f in range(1, num_frames):
        feat_other = features(frames[f : f + 1].float().cpu())[0].flatten(1)
        k = K[f - 1].cpu()
        size = (height, width)
        render_ref, hit_ref = splat_features(pts_ref[f - 1].reshape(-1, 3).cpu(), feat_ref, k, size)
        render_other, hit_other = splat_features(pts_other[f - 1].reshape(-1, 3).cpu(), feat_other, k, size)
        mask = hit_ref & hit_other
        dot = (render_ref * render_other).sum(0)
        norms = render_ref.norm(dim=0) * render_other.norm(dim=0)
        error = torch.where(mask, (1.0 - dot / norms.clamp(min=1e-8)).clamp(min=0.0), torch.zeros(()))
        count = int(mask.sum())
        per_frame.append(float(error.sum() / count) if count else math.nan)
        masks.append(mask), error_maps.append(error.float())
    per_frame_t = torch.tensor(per_frame, dtype=torch.float32)
    valid = ~torch.isnan(per_frame_t)
    if not valid.any():
        logger.warning("MEt3R: no frame shares visible pixels with frame 0; the score is NaN")
    score = float(per_frame_t[valid].mean()) if valid.any() else math.nan
    return Met3RResult(
        score=score,
        per_frame=per_frame_t,
        masks=torch.stack(masks),
        error_maps=torch.stack(error_maps),
        backbone=features.name,
        focal=K[:, 0, 0].float().cpu(),
    )


def error_map_panels(result: Met3RResult, frames: torch.Tensor, *, vmax: float | None = None) -> np.ndarray:
    """One image per pair ``(0, f)``: ``[frame 0 | frame f | error map in frame 0's view]``, captioned.

    Error maps use the turbo colormap from 0 (dark blue) to ``vmax`` (dark red); pixels outside the visibility
    mask are grey. Frame numbers in the captions are 1-based, as people count.

    Args:
        result: from :func:`met3r`.
        frames: ``[F, 3, H, W]`` float RGB in ``[0, 1]`` (the video scored).
        vmax: error drawn dark red; default the largest visible error over the video (at least 1e-6).

    Returns:
        ``[F-1, 16 + H', 3 W', 3]`` uint8: a 16-pixel caption strip above the three panels, with ``H'``,
        ``W'`` rounded up to even sizes (for video codecs).
    """
    err, masks = result.error_maps.numpy(), result.masks.numpy()
    if vmax is None:
        vmax = max(float(err[masks].max()) if masks.any() else 0.0, 1e-6)
    rgb = to_uint8(frames.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy())
    pad = ((0, rgb.shape[1] % 2), (0, rgb.shape[2] % 2), (0, 0))
    width = rgb.shape[2] + rgb.shape[2] % 2
    font = ImageFont.load_default(size=11)
    panels = []
    for f in range(1, len(rgb)):
        heat = to_uint8(colormap(err[f - 1], "turbo", vmin=0.0, vmax=vmax, mask=masks[f - 1]))
        row = np.concatenate([np.pad(im, pad, mode="edge") for im in (rgb[0], rgb[f], heat)], axis=1)
        image = Image.fromarray(np.concatenate([np.full((16, row.shape[1], 3), 255, np.uint8), row]))
        draw = ImageDraw.Draw(image)
        captions = ("frame 1", f"frame {f + 1}", f"MEt3R {result.per_frame[f - 1]:.3f} (max {vmax:.2f})")
        for i, caption in enumerate(captions):
            draw.text((i * width + 2, 1), caption, fill=(0, 0, 0), font=font)
        panels.append(np.asarray(image))
    return np.stack(panels)


def save_error_map_video(
    result: Met3RResult, frames: torch.Tensor, path: str | Path, fps: float = 4, *, vmax: float | None = None
) -> Path:
    """Write the per-frame MEt3R error maps as an H.264 mp4 (see :func:`error_map_panels` for the layout).

    Args:
        result: from :func:`met3r`.
        frames: ``[F, 3, H, W]`` float RGB in ``[0, 1]``.
        path: output ``.mp4`` path (parent folders are created).
        fps: frames per second of the video.
        vmax: error drawn dark red; default the largest visible error.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, error_map_panels(result, frames, vmax=vmax), fps=fps, codec="libx264", plugin="pyav")
    logger.info("wrote MEt3R error-map video %s", path)
    return path


__all__ = [
    "Met3RResult",
    "met3r",
    "first_frame_pointmaps",
    "splat_features",
    "error_map_panels",
    "save_error_map_video",
]
