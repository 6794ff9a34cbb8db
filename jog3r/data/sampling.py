"""The paper's clip sampling (JOG3R Sec. 4.1) and :class:`ClipDataset` over a RealEstate10K-layout folder.

Per training example: ``F = 16`` frames with a stride drawn uniformly from ``{1, 2, 4, 8}`` among the strides
whose window fits in the source sequence, a uniformly random start, the order reversed with probability 0.5,
frames resized to cover the model resolution and centre-cropped (intrinsics adjusted), and cameras expressed
relative to the first returned frame (``cam2world_0 = I``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from jog3r.data.datasets import find_media, load_re10k_clip, probe_media, read_captions
from jog3r.geometry.camera import inverse_se3
from jog3r.types import PosedClip

logger = logging.getLogger(__name__)

STRIDES = (1, 2, 4, 8)
"""Frame strides of the paper."""


def choose_window(num_available: int, num_frames: int, rng: np.random.Generator, strides=STRIDES,
                  reverse_prob: float = 0.5) -> tuple[np.ndarray, int, bool]:
    """Draw the frame indices of one training example.

    Args:
        num_available: frames in the source sequence.
        num_frames: ``F``.
        rng: random generator.
        strides: candidate strides; only those with ``(F - 1) * stride + 1 <= num_available`` are used.
        reverse_prob: probability of reversing the order.

    Returns:
        ``(indices [F] int64 in the returned order, stride, reversed)``.

    Raises:
        ValueError: if the sequence is shorter than ``num_frames``.
    """
    fitting = [s for s in strides if (num_frames - 1) * s + 1 <= num_available]
    if not fitting:
        raise ValueError(f"need at least {num_frames} frames for a {num_frames}-frame window with stride "
                         f"{min(strides)}, the sequence has {num_available}")
    stride = int(fitting[int(rng.integers(len(fitting)))])
    span = (num_frames - 1) * stride + 1
    start = int(rng.integers(0, num_available - span + 1))
    idx = start + stride * np.arange(num_frames, dtype=np.int64)
    flip = bool(rng.random() < reverse_prob)
    return (idx[::-1].copy() if flip else idx), stride, flip


def relative_to_first(cam2world: torch.Tensor) -> torch.Tensor:
    """Express ``[F, 4, 4]`` cameras in the first camera's frame: ``inverse(cam2world[0]) @ cam2world``.

    The result has ``out[0] = I`` (exactly, up to float rounding), as the paper's training targets.
    """
    rel = inverse_se3(cam2world[0].double()) @ cam2world.double()
    return rel.float()


class ClipDataset(Dataset):
    """Map-style dataset of sampled training clips from a RealEstate10K-layout folder.

    The folder holds ``<clip_id>.txt`` camera files, each with ``<clip_id>.mp4`` (or ``frames/<clip_id>/``),
    optionally ``depth/<clip_id>.npz`` and ``captions.json``: the real RealEstate10K layout or the output of
    :func:`jog3r.data.synth.write_dataset`. Item ``i`` of epoch ``e`` is drawn with the random generator seeded
    by ``(seed, e, i)``, so it is reproducible and independent of worker order; call :meth:`set_epoch` to draw
    new windows.

    Args:
        root: dataset folder.
        size: model resolution ``(H, W)``.
        num_frames: ``F``.
        strides: candidate strides.
        reverse_prob: probability of reversing the frame order.
        seed: base seed.
        load_depth: attach ``depth/<clip_id>.npz`` when it exists.
        relative: express cameras relative to the first returned frame.

    Raises:
        FileNotFoundError: if ``root`` is not a folder or a camera file has no video/frames folder.
        ValueError: if the folder has no camera files or ``captions.json`` is unreadable.
    """

    def __init__(self, root: str | Path, size: tuple[int, int] = (128, 192), num_frames: int = 16,
                 strides=STRIDES, reverse_prob: float = 0.5, seed: int = 0, load_depth: bool = True,
                 relative: bool = True):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: dataset folder not found")
        self.size, self.num_frames, self.strides = tuple(size), int(num_frames), tuple(strides)
        self.reverse_prob, self.seed, self.load_depth, self.relative = reverse_prob, int(seed), load_depth, relative
        self.epoch = 0
        self.cameras = sorted(self.root.glob("*.txt"))
        if not self.cameras:
            raise ValueError(f"{self.root}: no <clip_id>.txt camera files")
        self.media = []
        for txt in self.cameras:
            media = find_media(self.root, txt.stem)
            if media is None:
                raise FileNotFoundError(f"{txt}: no video {txt.stem}.mp4 or frames folder frames/{txt.stem}/")
            self.media.append(media)
        captions_path = self.root / "captions.json"
        self.captions = read_captions(captions_path) if captions_path.exists() else {}

    def __len__(self) -> int:
        return len(self.cameras)

    def set_epoch(self, epoch: int) -> None:
        """Use the windows of ``epoch`` (a different draw per epoch)."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> PosedClip:
        """Sample clip ``index`` (frames ``[F, 3, H, W]``, cameras relative to its first frame)."""
        txt, media = self.cameras[index], self.media[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        num, _ = probe_media(media)
        try:
            idx, _, _ = choose_window(num, self.num_frames, rng, self.strides, self.reverse_prob)
        except ValueError as err:
            raise ValueError(f"{media}: {err}") from err
        depth = self.root / "depth" / f"{txt.stem}.npz"
        clip = load_re10k_clip(txt, media, indices=idx, size=self.size, caption=self.captions.get(txt.stem),
                               depth=depth if self.load_depth and depth.is_file() else None)
        if self.relative:
            clip = PosedClip(frames=clip.frames, cam2world=relative_to_first(clip.cam2world), K=clip.K,
                             depth=clip.depth, caption=clip.caption, name=clip.name, frame_indices=clip.frame_indices)
        return clip
