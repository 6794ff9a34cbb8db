"""Training batches for the joint fine-tune: frames, captions and ground-truth point maps in the first camera.

A batch source is a pure function ``(step, micro) -> TrainBatch``: which clips a micro-batch holds depends only on
``(seed, step, micro, rank)``, so a resumed run sees exactly the clips an uninterrupted run would have seen.

Sources:
    * ``"synth"``: clips generated on the fly by :mod:`jog3r.data.synth` (exact depth and cameras);
    * a RealEstate10K-layout folder (camera txt + mp4/frames, optional ``depth/`` and ``captions.json``), read by
      :class:`jog3r.data.datasets.ClipDataset` with the paper's sampling (16 frames, stride in {1, 2, 4, 8}, random
      reversal, resize + centre crop, cameras relative to the first frame). Clips without depth cannot supervise
      ``L_rec``; they are rejected in modes that use it;
    * a packed folder (``packed.json``, written by :mod:`jog3r.train.pack`): synthetic clips with their VAE latents
      stored once, so the step skips the frozen VAE encoder; drawn in a fresh permutation every epoch and reversed
      with probability 0.5 (latents, depth and cameras flipped together; exact for frame-wise VAEs).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from jog3r.data.synth import SynthConfig, generate_clip
from jog3r.data.annotate import cameras_in_first, pointmaps_in_first
from jog3r.data.sampling import ClipDataset
from jog3r.train.config import TrainConfig
from jog3r.train.pack import is_packed, load_packed_clip, packed_clips, read_manifest
from jog3r.types import PosedClip

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainBatch:
    """One micro-batch.

    Attributes:
        frames: ``[B, 3, F, H, W]`` float32 RGB in ``[0, 1]``, or None when ``latents`` are given.
        pts3d: ``[B, F, H, W, 3]`` float32 ground-truth points of every frame's pixels in the FIRST frame's
            OpenCV camera (scene units; ``L_rec`` is scale invariant).
        valid: ``[B, F, H, W]`` bool, pixels with ground truth.
        captions: ``B`` RealEstate10K-style captions.
        latents: ``[B, C, F, h, w]`` float32 VAE latents (already scaled) of packed data, else None (the trainer
            encodes ``frames``).
        cam2first: ``[B, F, 4, 4]`` float32 true camera-``f``-to-first-camera transforms (OpenCV axes, the frame of
            ``pts3d``; :func:`jog3r.data.annotate.cameras_in_first`), used by the optional pose term.
    """

    frames: torch.Tensor | None
    pts3d: torch.Tensor
    valid: torch.Tensor
    captions: list[str]
    latents: torch.Tensor | None = None
    cam2first: torch.Tensor | None = None


class StepBatches(torch.utils.data.Dataset):
    """Map-style view of a batch source over the micro-batches ``start_step * grad_accum ...``, so a
    :class:`torch.utils.data.DataLoader` with workers can build (e.g. render) upcoming batches in parallel with
    training while keeping the exact order.

    Args:
        source: the ``(step, micro) -> TrainBatch`` function.
        start_step: first optimiser step to serve.
        end_step: one past the last step.
        grad_accum: micro-batches per step.
    """

    def __init__(self, source: Callable[[int, int], "TrainBatch"], start_step: int, end_step: int, grad_accum: int):
        self.source, self.start, self.accum = source, start_step, grad_accum
        self.length = max(0, end_step - start_step) * grad_accum

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> "TrainBatch":
        return self.source(self.start + i // self.accum, i % self.accum)


def _sample_index(step: int, micro: int, b: int, cfg: TrainConfig, rank: int, world: int) -> int:
    per_step = cfg.grad_accum * cfg.batch_size * world
    return step * per_step + (micro * world + rank) * cfg.batch_size + b


def _epoch_item(index: int, n: int, seed: int) -> int:
    """Which of ``n`` items sample ``index`` draws: a fresh permutation every epoch (seeded by ``seed``, epoch)."""
    epoch, k = divmod(index, n)
    return int(torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7_919 + epoch))[k])


def _is_reversed(index: int) -> bool:
    """Whether sample ``index`` is played backwards (paper Sec. 4.1: order reversed with probability 0.5)."""
    return torch.rand(1, generator=torch.Generator().manual_seed(index)).item() < 0.5


def reverse_clip(clip: PosedClip) -> PosedClip:
    """The same clip played backwards (frames, cameras, intrinsics, depth and indices flipped along ``F``)."""
    def flip(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.flip(0)

    return PosedClip(frames=flip(clip.frames), cam2world=flip(clip.cam2world), K=flip(clip.K), depth=flip(clip.depth),
                     caption=clip.caption, name=clip.name, frame_indices=flip(clip.frame_indices))


def clip_to_example(clip: PosedClip) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str, torch.Tensor]:
    """Turn a posed clip with depth into ``(frames [3,F,H,W], pts3d [F,H,W,3], valid [F,H,W], caption,
    cam2first [F,4,4])``.

    Raises:
        ValueError: if the clip has no depth (``L_rec`` needs ground-truth points).
    """
    if clip.depth is None:
        raise ValueError(
            f"clip {clip.name!r} has no depth maps, so it cannot supervise L_rec; add depth/<clip>.npz "
            "(or annotate the folder with a depth estimator) or train in --mode gen"
        )
    pts3d, valid = pointmaps_in_first(clip.depth.float(), clip.K.float(), clip.cam2world.float())
    frames = clip.frames.permute(1, 0, 2, 3).contiguous()
    return frames, pts3d.float(), valid, clip.caption or "", cameras_in_first(clip.cam2world)


def _stack(examples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, str, torch.Tensor]]) -> TrainBatch:
    return TrainBatch(
        frames=torch.stack([e[0] for e in examples]),
        pts3d=torch.stack([e[1] for e in examples]),
        valid=torch.stack([e[2] for e in examples]),
        captions=[e[3] for e in examples],
        cam2first=torch.stack([e[4] for e in examples]),
    )


def build_batch_source(
    cfg: TrainConfig, *, height: int, width: int, rank: int = 0, world: int = 1
) -> Callable[[int, int], TrainBatch]:
    """Build the ``(step, micro) -> TrainBatch`` function of a run (see the module docstring).

    Args:
        cfg: the run configuration (``data``, ``num_frames``, ``batch_size``, ``seed``, ``synth_scenes``).
        height: frame height in pixels (a multiple of 16).
        width: frame width in pixels (a multiple of 16).
        rank: this process's rank (distributed training).
        world: number of processes.

    Raises:
        FileNotFoundError: if ``cfg.data`` is neither ``"synth"`` nor an existing folder.
        ValueError: on sizes that are not multiples of 16.
    """
    if height % 16 or width % 16:
        raise ValueError(f"training size {height}x{width} must be a multiple of 16 (VAE factor 8 x patch 2)")
    if cfg.data != "synth" and is_packed(Path(cfg.data).expanduser()):
        return _packed_source(cfg, height=height, width=width, rank=rank, world=world)
    if cfg.data == "synth":
        synth_cfg = SynthConfig(height=height, width=width, num_frames=cfg.num_frames)
        if cfg.synth_scenes:
            synth_cfg = dataclasses.replace(synth_cfg, **cfg.synth_scenes)

        def synth_batch(step: int, micro: int) -> TrainBatch:
            examples = []
            for b in range(cfg.batch_size):
                index = _sample_index(step, micro, b, cfg, rank, world)
                clip = generate_clip(cfg.seed * 10_000_019 + index, synth_cfg)
                if _is_reversed(index):
                    clip = reverse_clip(clip)
                examples.append(clip_to_example(clip))
            return _stack(examples)

        return synth_batch
    folder = Path(cfg.data).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"training data {cfg.data!r} not found: pass 'synth' or a RealEstate10K-layout folder "
            "(write one with `python -m jog3r.data.synth --out DIR --num N`)"
        )
    dataset = ClipDataset(folder, size=(height, width), num_frames=cfg.num_frames, seed=cfg.seed)
    n = len(dataset)

    def folder_batch(step: int, micro: int) -> TrainBatch:
        examples = []
        for b in range(cfg.batch_size):
            index = _sample_index(step, micro, b, cfg, rank, world)
            dataset.set_epoch(index // n)  # the window/stride/reversal draw of this epoch (paper Sec. 4.1)
            examples.append(clip_to_example(dataset[_epoch_item(index, n, cfg.seed)]))
        return _stack(examples)

    return folder_batch


def _packed_source(cfg: TrainConfig, *, height: int, width: int, rank: int, world: int
                   ) -> Callable[[int, int], TrainBatch]:
    """Batch source over a packed folder (see :mod:`jog3r.train.pack`).

    Raises:
        ValueError: if the folder is empty or was packed at another size or frame count.
    """
    folder = Path(cfg.data).expanduser()
    manifest = read_manifest(folder)
    if cfg.synth_scenes:
        raise ValueError(f"--synth-scenes does not apply to packed data ({folder}); pass it to the packing instead")
    if manifest["seed"] != cfg.seed:
        logger.warning("%s was packed with seed %d, the run uses --seed %d: the data order follows the run's seed, "
                       "the scenes are those of the packed seed", folder, manifest["seed"], cfg.seed)
    if (manifest["height"], manifest["width"], manifest["num_frames"]) != (height, width, cfg.num_frames):
        raise ValueError(
            f"{folder} was packed at {manifest['num_frames']} x {manifest['height']} x {manifest['width']} but the "
            f"run trains at {cfg.num_frames} x {height} x {width}; re-pack or pass matching --height/--width"
        )
    files = packed_clips(folder)
    num = int(manifest.get("num", len(files)))
    missing = sorted(set(range(num)) - {int(f.stem) for f in files})
    if missing or len(files) != num:
        raise ValueError(
            f"{folder} is incomplete: {len(missing)} of its {num} clips are missing (first: {missing[:3]}) or extra "
            f"files are present; finish it with `python -m jog3r.train.pack --out {folder} --num {num} ...` "
            "(a run trains only on a complete set, so that --resume keeps the data order)"
        )
    n = len(files)

    def packed_batch(step: int, micro: int) -> TrainBatch:
        latents, pts, valids, captions, cams = [], [], [], [], []
        for b in range(cfg.batch_size):
            index = _sample_index(step, micro, b, cfg, rank, world)
            z, clip = load_packed_clip(files[_epoch_item(index, n, cfg.seed)])
            if _is_reversed(index):
                clip, z = reverse_clip(clip), z.flip(1)  # latents are frame-wise: flipping them is exact
            pts3d, valid = pointmaps_in_first(clip.depth, clip.K, clip.cam2world)
            cams.append(cameras_in_first(clip.cam2world))
            latents.append(z)
            pts.append(pts3d.float())
            valids.append(valid)
            captions.append(clip.caption or "")
        return TrainBatch(frames=None, pts3d=torch.stack(pts), valid=torch.stack(valids), captions=captions,
                          latents=torch.stack(latents), cam2first=torch.stack(cams))

    packed_batch.vae_name = manifest["vae"]  # checked against the run's VAE by the trainer
    return packed_batch
