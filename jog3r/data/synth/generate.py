"""Synthetic posed clips: :class:`SynthConfig`, :func:`generate_clip` and the streaming :class:`SynthClipStream`."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from jog3r.data.synth import render
from jog3r.data.synth.captions import make_caption
from jog3r.data.synth.layout import build_scene
from jog3r.data.synth.paths import intrinsics, sample_path
from jog3r.types import PosedClip

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SynthConfig:
    """Settings of the synthetic RealEstate10K-like generator."""

    height: int = 128
    """Frame height ``H`` in pixels."""
    width: int = 192
    """Frame width ``W`` in pixels."""
    num_frames: int = 16
    """Frames per clip ``F``. Use more (e.g. 64) to let the paper's stride sampling choose strides 2-8."""
    hfov_deg: tuple[float, float] = (45.0, 95.0)
    """Range of the horizontal field of view in degrees (RealEstate10K's 16:9 sources are about 93 degrees)."""
    pixel_aspect: tuple[float, float] = (1.0, 1.2)
    """Range of ``fy / fx``; RealEstate10K frames resized without cropping (e.g. 384x256) have about 1.19."""
    camera_height: tuple[float, float] = (1.2, 1.7)
    """Camera height above the floor in metres."""
    speed_scale: float = 1.0
    """Multiplies every camera translation speed (1 = RealEstate10K-like 0.02-0.2 m per frame)."""
    outdoor_prob: float = 0.12
    """Probability of an outdoor house/garden scene instead of an indoor home."""
    texture_size: int = 128
    """Side of every texture tile in pixels."""
    degrade: float = 1.0
    """Strength of camera effects (exposure/white-balance jitter, vignetting, blur, noise); 0 = clean render."""
    include_realestate10k_photos: bool = False
    """Also crop textures from the RealEstate10K evaluation frames in tests/data (off: avoids test leakage)."""

    def __post_init__(self):
        if self.height < 8 or self.width < 8:
            raise ValueError(f"SynthConfig: frames must be at least 8x8 pixels, got {self.height}x{self.width}")
        if self.num_frames < 1:
            raise ValueError(f"SynthConfig: num_frames must be >= 1, got {self.num_frames}")
        if not 0 < self.hfov_deg[0] <= self.hfov_deg[1] < 170:
            raise ValueError(f"SynthConfig: hfov_deg must be an increasing range inside (0, 170), got {self.hfov_deg}")


def _auto_exposure(radiance: torch.Tensor, rng: np.random.Generator) -> float:
    lum = (radiance * torch.tensor([0.2126, 0.7152, 0.0722])).sum(-1)
    mid = float(lum[:, ::4, ::4].median().clamp_min(1e-4))
    return float(rng.uniform(0.28, 0.55)) / mid


def generate_clip(seed: int, config: SynthConfig = SynthConfig()) -> PosedClip:
    """Generate one synthetic posed clip; a pure function of ``(seed, config)``.

    Args:
        seed: integer seed; the scene, path, lighting, camera effects and caption all derive from it.
        config: generator settings.

    Returns:
        A :class:`~jog3r.types.PosedClip` with ``frames [F, 3, H, W]`` float32 in ``[0, 1]``, ``cam2world
        [F, 4, 4]`` (OpenCV axes, z-up metric world of :mod:`jog3r.data.synth.scene`), ``K [F, 3, 3]`` (pixels),
        ``depth [F, H, W]`` metric z-depth with ``0`` where a ray sees the sky or the view through a window,
        ``caption``, ``name = "synth_<seed>"`` and ``frame_indices = 0..F-1``.
    """
    rng = np.random.default_rng([int(seed), 0x10C3])
    gen = torch.Generator().manual_seed(int(seed) & 0x7FFFFFFFFFFFFFFF)
    scene = build_scene(rng, config.outdoor_prob, config.texture_size, config.include_realestate10k_photos)
    n, h, w = config.num_frames, config.height, config.width
    K = intrinsics(rng, h, w, config.hfov_deg, config.pixel_aspect).expand(n, 3, 3).contiguous()
    cam2world, kind = sample_path(rng, scene, n, config.camera_height, config.speed_scale, look_at=scene.focus)
    world2cam = torch.linalg.inv(cam2world)
    origins, dirs = render.camera_rays(cam2world, K, h, w)
    t, prim = render.visibility(scene, origins, dirs, world2cam, K)
    radiance = render.shade(scene, origins, dirs, t, prim, K)
    frames = render.apply_camera_effects(radiance, gen, _auto_exposure(radiance, rng), config.degrade)
    depth = torch.where(torch.isfinite(t), t, torch.zeros_like(t))
    caption = make_caption(scene, rng)
    logger.debug("synth clip %d: %s, %s path, %d primitives", seed, scene.room_type, kind, scene.num_primitives)
    return PosedClip(frames=frames, cam2world=cam2world, K=K, depth=depth, caption=caption,
                     name=f"synth_{int(seed):08d}", frame_indices=torch.arange(n, dtype=torch.int64))


class SynthClipStream(IterableDataset):
    """An endless (or ``num_clips``-long) stream of synthetic clips generated on the fly.

    Clip ``i`` uses seed ``base_seed + i``; with several DataLoader workers, worker ``k`` of ``m`` generates clips
    ``i = k, k + m, k + 2m, ...``, so the stream's content does not depend on the number of workers (only the
    interleaving does) and is reproducible. Use ``collate_fn=jog3r.data.collate_clips`` to batch.

    Args:
        config: generator settings.
        base_seed: seed of clip 0.
        num_clips: stop after this many clips (None = endless).
    """

    def __init__(self, config: SynthConfig = SynthConfig(), base_seed: int = 0, num_clips: int | None = None):
        super().__init__()
        self.config = config
        self.base_seed = int(base_seed)
        self.num_clips = num_clips

    def __iter__(self) -> Iterator[PosedClip]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        i = worker
        limit = math.inf if self.num_clips is None else self.num_clips
        while i < limit:
            yield generate_clip(self.base_seed + i, self.config)
            i += workers
