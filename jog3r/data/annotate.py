"""Point-map annotation (JOG3R Sec. 4.1): per-pixel 3D points of every frame in the FIRST frame's camera.

Depth comes from the clip (synthetic ground truth) or from a monocular depth estimator of ``transformers``
loaded from a LOCAL folder (the paper uses ZoeDepth; DPT and Depth Anything load the same way). Each frame's
z-depth is unprojected with its ``K`` (:func:`jog3r.geometry.camera.unproject_depth`) and moved into camera 0
with the dataset's cameras: ``X_0 = inverse(cam2world_0) @ cam2world_f @ X_f``. Pixels whose depth is missing
(``<= 0`` or not finite) are invalid and their points are set to 0.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as tfn

from jog3r.geometry.camera import inverse_se3, transform_points, unproject_depth
from jog3r.types import PosedClip

logger = logging.getLogger(__name__)


def pointmaps_in_first(depth: torch.Tensor, K: torch.Tensor, cam2world: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unproject z-depth maps and express the points in the first frame's camera coordinates.

    Args:
        depth: ``[F, H, W]`` z-depth (metric or up to scale); ``<= 0`` or non-finite marks missing depth.
        K: ``[F, 3, 3]`` intrinsics in pixels.
        cam2world: ``[F, 4, 4]`` camera-to-world (OpenCV axes), any world frame.

    Returns:
        ``(pts3d_in_first [F, H, W, 3] float32, valid [F, H, W] bool)``; invalid points are 0.

    Raises:
        ValueError: for inconsistent shapes.
    """
    n = depth.shape[0]
    if depth.ndim != 3 or K.shape != (n, 3, 3) or cam2world.shape != (n, 4, 4):
        raise ValueError(f"expected depth [F, H, W], K [F, 3, 3], cam2world [F, 4, 4]; got {tuple(depth.shape)}, "
                         f"{tuple(K.shape)}, {tuple(cam2world.shape)}")
    valid = torch.isfinite(depth) & (depth > 0)
    d = torch.where(valid, depth, torch.zeros_like(depth)).double()
    cam_f_to_0 = inverse_se3(cam2world[0].double())[None] @ cam2world.double()
    pts = transform_points(cam_f_to_0, unproject_depth(d, K.double()))
    pts = torch.where(valid[..., None], pts, torch.zeros_like(pts))
    return pts.float(), valid


def cameras_in_first(cam2world: torch.Tensor) -> torch.Tensor:
    """Every frame's camera expressed in the first frame's camera: ``inverse(cam2world[0]) @ cam2world[f]``.

    Args:
        cam2world: ``[F, 4, 4]`` camera-to-world (OpenCV axes), any world frame.

    Returns:
        ``[F, 4, 4]`` float32 camera-``f``-to-camera-0 transforms (the frame :func:`pointmaps_in_first` puts the
        points in; entry 0 is the identity).
    """
    c2w = cam2world.double()
    return (inverse_se3(c2w[0])[None] @ c2w).float()


class DepthEstimator:
    """A ``transformers`` monocular depth model loaded from a local folder (no download).

    Args:
        path: folder saved with ``save_pretrained`` (``config.json``, weights, ``preprocessor_config.json``).
        device: torch device.
        metric: whether the model outputs metric depth. ``None`` infers it: ZoeDepth and Depth Anything with
            ``depth_estimation_type="metric"`` are metric; other models (DPT, relative Depth Anything) output
            relative inverse depth, which is inverted to depth up to scale.

    Raises:
        FileNotFoundError: if ``path`` is not a folder with a ``config.json``, saying how to obtain one.
    """

    def __init__(self, path: str | Path, device: str | torch.device = "cpu", metric: bool | None = None):
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation  # heavy import, only when used

        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path}: no depth-estimation model here (config.json missing). Download one elsewhere, e.g. "
                "Intel/zoedepth-nyu-kitti, and save it with model.save_pretrained(path) and "
                "processor.save_pretrained(path); models are never downloaded at run time.")
        self.processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForDepthEstimation.from_pretrained(path, local_files_only=True).to(device).eval()
        self.device = torch.device(device)
        cfg = self.model.config
        if metric is None:
            metric = cfg.model_type == "zoedepth" or getattr(cfg, "depth_estimation_type", "relative") == "metric"
        self.metric = bool(metric)
        self.name = f"{cfg.model_type}:{path.name}"

    @torch.no_grad()
    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """Estimate z-depth of ``[F, 3, H, W]`` frames in ``[0, 1]``; returns ``[F, H, W]`` float32 (0 = unknown)."""
        h, w = frames.shape[-2:]
        images = [f.permute(1, 2, 0).mul(255).round().to(torch.uint8).numpy() for f in frames]
        inputs = self.processor(images=images, return_tensors="pt").to(self.device)
        pred = self.model(**inputs).predicted_depth
        pred = tfn.interpolate(pred[:, None].float(), size=(h, w), mode="bilinear", align_corners=False)[:, 0].cpu()
        if not self.metric:  # relative inverse depth -> depth up to scale
            pred = torch.where(pred > 1e-6, 1.0 / pred.clamp_min(1e-6), torch.zeros_like(pred))
        return torch.where(torch.isfinite(pred) & (pred > 0), pred, torch.zeros_like(pred))


def annotate_clip(clip: PosedClip, estimator: DepthEstimator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Point-map targets of a clip: its own depth if present, else the estimator's.

    Args:
        clip: the clip (``depth`` used when not None).
        estimator: a :class:`DepthEstimator` for clips without depth.

    Returns:
        ``(pts3d_in_first [F, H, W, 3], valid [F, H, W])`` as :func:`pointmaps_in_first`.

    Raises:
        ValueError: if the clip has no depth and no estimator is given.
    """
    depth = clip.depth
    if depth is None:
        if estimator is None:
            raise ValueError(f"clip {clip.name!r} has no depth; pass a DepthEstimator loaded from a local folder")
        depth = estimator(clip.frames)
    return pointmaps_in_first(depth, clip.K, clip.cam2world)
