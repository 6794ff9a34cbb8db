"""Synthetic scenes with known cameras and DUSt3R-like noisy pairwise point maps, for tests and benchmarks.

A camera moves smoothly inside a box-shaped room that contains a few spheres (analytic ray casting, so depths
are exact). Pair predictions are the ground-truth points of both frames in camera ``i``'s frame, then corrupted
like the golden ``ga_synth16_oneref`` case (``tests/data/golden/README.md``): a per-pair scale, a small per-pair
similarity error, per-pixel relative noise whose level drives the confidence, and a fraction of outliers with low
confidence. Conventions: :mod:`jog3r.geometry.camera`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import roma
import torch

from jog3r.geometry.camera import (
    focal_from_fov,
    intrinsics_from_focal,
    inverse_se3,
    transform_points,
    unproject_depth,
)
from jog3r.recon.pairs import SceneGraph, make_edges
from jog3r.types import PairwisePointmaps

__all__ = ["NoiseModel", "SyntheticScene", "make_scene", "EXACT", "GOLDEN_LIKE"]


@dataclass(frozen=True)
class NoiseModel:
    """Corruption of the pair predictions (defaults: like the golden ``ga_synth16_oneref`` data)."""

    noise1_rel: float = 0.01
    """Per-pixel noise std of the first view, relative to the point's distance (before the confidence modulation)."""
    noise2_rel: float = 0.02
    """Same for the second view (``pts3d_in_other_view`` is less accurate in DUSt3R)."""
    outlier_frac: float = 0.02
    """Fraction of pixels replaced by outliers (confidence in ``[1, 2]``)."""
    pair_rot_deg: float = 0.5
    """Std of the per-pair rotation error, degrees."""
    pair_trans: float = 0.01
    """Std of the per-pair translation error, in units of the pair's mean point distance."""
    scale_range: tuple[float, float] = (0.5, 2.0)
    """Per-pair scales are log-uniform in this range (the pairs are only defined up to scale)."""


EXACT = NoiseModel(noise1_rel=0.0, noise2_rel=0.0, outlier_frac=0.0, pair_rot_deg=0.0, pair_trans=0.0)
"""Exact point maps up to a per-pair scale; confidences still vary (so the weights are not uniform)."""
GOLDEN_LIKE = NoiseModel()
"""The golden case's corruption: 1 % / 2 % relative noise, 2 % outliers, 0.5 deg / 1 % per-pair errors."""


@dataclass(frozen=True)
class SyntheticScene:
    """A synthetic video with ground truth and pairwise point maps.

    Attributes:
        pointmaps: the noisy pair predictions (``B = 1``).
        images: ``[F, 3, H, W]`` float32 in ``[0, 1]`` (colour from the world position, for the viewer).
        cam2world: ``[F, 4, 4]`` float32 ground-truth cameras (OpenCV axes).
        K: ``[F, 3, 3]`` float32 intrinsics (square pixels, centred principal point).
        depth: ``[F, H, W]`` float32 ground-truth z-depth.
        pts3d: ``[F, H, W, 3]`` float32 ground-truth world points.
        pair_scales: ``[P]`` float32 scale applied to each pair (prediction = scale * truth, before noise).
    """

    pointmaps: PairwisePointmaps
    images: torch.Tensor
    cam2world: torch.Tensor
    K: torch.Tensor
    depth: torch.Tensor
    pts3d: torch.Tensor
    pair_scales: torch.Tensor


def _camera_path(num_frames: int, gen: torch.Generator) -> torch.Tensor:
    """``[F, 4, 4]`` cam2world of a smooth forward/sideways move with gentle yaw and pitch (world y down)."""
    s = torch.linspace(0.0, 1.0, num_frames, dtype=torch.float64)
    phase = float(torch.rand((), generator=gen, dtype=torch.float64)) * 2 * math.pi
    centres = torch.stack((0.9 * s - 0.45, 0.15 * torch.sin(2 * math.pi * s + phase), 1.4 * s - 0.7), dim=-1)
    yaw = torch.deg2rad(torch.tensor(-8.0) + 22.0 * s)
    pitch = torch.deg2rad(4.0 * torch.sin(math.pi * s + phase))
    rot = roma.rotvec_to_rotmat(torch.stack((pitch, torch.zeros_like(s), torch.zeros_like(s)), -1))
    rot = roma.rotvec_to_rotmat(torch.stack((torch.zeros_like(s), yaw, torch.zeros_like(s)), -1)) @ rot
    c2w = torch.eye(4, dtype=torch.float64).repeat(num_frames, 1, 1)
    c2w[:, :3, :3] = rot
    c2w[:, :3, 3] = centres
    return c2w


def _ray_cast(origins: torch.Tensor, dirs: torch.Tensor, spheres: torch.Tensor) -> torch.Tensor:
    """Distance along ``dirs`` to the first hit: room walls ``|x| <= 3, |y| <= 1.5, |z| <= 4`` or a sphere."""
    half = torch.tensor((3.0, 1.5, 4.0), dtype=dirs.dtype)
    safe = torch.where(dirs.abs() < 1e-12, torch.full_like(dirs, 1e-12), dirs)
    t_wall = torch.where(safe > 0, (half - origins) / safe, (-half - origins) / safe).amin(-1)
    t = t_wall
    for centre_radius in spheres:
        c, rad = centre_radius[:3], centre_radius[3]
        oc = origins - c
        bq = (oc * dirs).sum(-1)
        cq = (oc * oc).sum(-1) - rad**2
        disc = bq**2 - (dirs * dirs).sum(-1) * cq
        hit = (-bq - disc.clamp(min=0).sqrt()) / (dirs * dirs).sum(-1)
        t = torch.where((disc > 0) & (hit > 1e-3) & (hit < t), hit, t)
    return t


def make_scene(
    num_frames: int = 16,
    H: int = 64,
    W: int = 64,
    *,
    graph: SceneGraph | str = SceneGraph.FIRST_TO_ALL,
    symmetrize: bool = False,
    noise: NoiseModel = GOLDEN_LIKE,
    fov_deg: float = 60.0,
    pixel_aspect: float = 1.0,
    seed: int = 0,
) -> SyntheticScene:
    """Render a synthetic scene and its corrupted pairwise point maps.

    Args:
        num_frames: ``F >= 2`` frames along the path.
        H: image height in pixels.
        W: image width in pixels.
        graph: pair graph (:func:`jog3r.recon.pairs.make_edges`; default the paper's ``(1 -> f)`` pairs).
        symmetrize: also predict every reversed pair.
        noise: corruption model (:data:`GOLDEN_LIKE`, :data:`EXACT` or custom).
        fov_deg: horizontal field of view in degrees.
        pixel_aspect: ``fy / fx`` (1 = square pixels; about 1.19 for a 16:9 video stored at 3:2 without cropping).
        seed: seed of every random draw (scene, noise).

    Returns:
        the :class:`SyntheticScene`.
    """
    gen = torch.Generator().manual_seed(seed)
    dt = torch.float64
    c2w = _camera_path(num_frames, gen)
    focal = float(focal_from_fov(math.radians(fov_deg), W))
    K = intrinsics_from_focal(torch.full((num_frames,), focal, dtype=dt), H, W)
    K[:, 1, 1] *= pixel_aspect
    spheres = torch.tensor([[-1.2, 0.6, 2.6, 0.8], [1.3, -0.2, 2.0, 0.6], [0.2, 0.9, 3.2, 0.5]], dtype=dt)
    rays_cam = unproject_depth(torch.ones(num_frames, H, W, dtype=dt), K)  # z = 1 rays
    dirs = torch.einsum("fij,fhwj->fhwi", c2w[:, :3, :3], rays_cam)
    origins = c2w[:, None, None, :3, 3].expand_as(dirs)
    depth = _ray_cast(origins, dirs, spheres)  # along a z = 1 ray, the distance parameter is the z-depth
    pts3d = origins + depth[..., None] * dirs
    edges = make_edges(num_frames, graph, symmetrize=symmetrize)
    P = edges.shape[0]
    w2c = inverse_se3(c2w)
    lo, hi = (math.log(v) for v in noise.scale_range)
    scales = (lo + (hi - lo) * torch.rand(P, generator=gen, dtype=dt)).exp()
    rot_err = roma.rotvec_to_rotmat(torch.randn(P, 3, generator=gen, dtype=dt) * math.radians(noise.pair_rot_deg) / math.sqrt(3))
    trans_dir = torch.randn(P, 3, generator=gen, dtype=dt)

    def corrupt(pts: torch.Tensor, rel: float) -> tuple[torch.Tensor, torch.Tensor]:
        level = torch.exp(0.6 * torch.randn(pts.shape[:-1], generator=gen, dtype=dt))  # per-pixel noise multiplier
        dist = pts.norm(dim=-1, keepdim=True)
        noisy = pts + rel * level[..., None] * dist * torch.randn(pts.shape, generator=gen, dtype=dt)
        conf = 1.0 + 5.0 * level.pow(-2.0) * torch.exp(0.3 * torch.randn(level.shape, generator=gen, dtype=dt))
        out = torch.rand(level.shape, generator=gen, dtype=dt) < noise.outlier_frac
        wild = pts * (0.5 + torch.rand(level.shape, generator=gen, dtype=dt))[..., None]
        wild = wild + 0.3 * dist * torch.randn(pts.shape, generator=gen, dtype=dt)
        noisy = torch.where(out[..., None], wild, noisy)
        conf = torch.where(out, 1.0 + torch.rand(level.shape, generator=gen, dtype=dt), conf)
        return noisy, conf

    pts_i, pts_j, conf_i, conf_j = [], [], [], []
    for p, (i, j) in enumerate(edges.tolist()):
        xi = transform_points(w2c[i], pts3d[i])
        xj = transform_points(w2c[i], pts3d[j])
        mean_dist = float(torch.cat((xi, xj)).norm(dim=-1).mean())
        err = torch.eye(4, dtype=dt)
        err[:3, :3] = rot_err[p]
        err[:3, 3] = noise.pair_trans * mean_dist * trans_dir[p] / math.sqrt(3)
        xi, xj = transform_points(err, xi) * scales[p], transform_points(err, xj) * scales[p]
        for pts, rel, pts_out, conf_out in ((xi, noise.noise1_rel, pts_i, conf_i), (xj, noise.noise2_rel, pts_j, conf_j)):
            noisy, conf = corrupt(pts, rel)
            pts_out.append(noisy)
            conf_out.append(conf)
    pointmaps = PairwisePointmaps(
        pts3d=torch.stack(pts_i)[None].float(),
        conf=torch.stack(conf_i)[None].float(),
        pts3d_in_other_view=torch.stack(pts_j)[None].float(),
        conf_in_other_view=torch.stack(conf_j)[None].float(),
        edges=edges,
    )
    images = (0.5 + 0.5 * torch.sin(2.0 * pts3d + torch.tensor((0.0, 2.0, 4.0), dtype=dt))).permute(0, 3, 1, 2)
    return SyntheticScene(
        pointmaps=pointmaps,
        images=images.float(),
        cam2world=c2w.float(),
        K=K.float(),
        depth=depth.float(),
        pts3d=pts3d.float(),
        pair_scales=scales.float(),
    )
