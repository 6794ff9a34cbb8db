"""Frozen dataclasses that cross stage boundaries (see the data-flow diagram in :mod:`jog3r`), and
:class:`Matches`, the V2C method choice that the pipeline and the jobs share.

Every tensor field documents its shape with the package axis alphabet, its dtype and its units.
Camera conventions (OpenCV axes, ``cam2world`` 4x4, ``K`` in pixels, pixel centres at +0.5) are those of
:mod:`jog3r.geometry.camera`.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

import torch


class Matches(enum.StrEnum):
    """How V2C gets its cameras (``video_to_cameras(matches=...)``); the members are their plain strings.

    Members:
        SIFT: ``"sift"`` (default, not the paper's): the point maps' alignment, then one alignment over the
            point maps and SIFT correspondences at the source resolution (:mod:`jog3r.align.joint`).
        NONE: ``"none"``: the paper's V2C, the point maps' global alignment alone.
    """

    SIFT = "sift"
    NONE = "none"


MATCHES = tuple(m.value for m in Matches)
"""The values of ``matches`` (:class:`Matches`), in order: ``("sift", "none")``."""


def _map_tensors(obj: Any, fn) -> Any:
    """Return a copy of dataclass ``obj`` with ``fn`` applied to every tensor field."""
    changes = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, torch.Tensor):
            changes[f.name] = fn(value)
    return dataclasses.replace(obj, **changes)


class _TensorDataclass:
    """Mixin giving ``to(device)`` and ``numpy()`` to the stage dataclasses."""

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """Return a copy with every tensor moved to ``device`` (and floating tensors cast to ``dtype``)."""

        def move(t: torch.Tensor) -> torch.Tensor:
            if dtype is not None and t.is_floating_point():
                return t.to(device=device, dtype=dtype)
            return t.to(device=device)

        return _map_tensors(self, move)

    def numpy(self) -> dict[str, Any]:
        """Return the fields as a dict with every tensor converted to a NumPy array (on the CPU, detached)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        return out


@dataclass(frozen=True)
class Video(_TensorDataclass):
    """A decoded RGB video (or image sequence).

    Attributes:
        frames: ``[F, 3, H, W]`` float32 in ``[0, 1]``.
        fps: frames per second of ``frames`` (after any temporal sampling).
        frame_indices: ``[F]`` int64, index of each kept frame in the source file/folder.
        source: path or description of where the frames came from.
    """

    frames: torch.Tensor
    fps: float = 8.0
    frame_indices: torch.Tensor | None = None
    source: str | None = None

    @property
    def num_frames(self) -> int:
        """Number of frames ``F``."""
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        return int(self.frames.shape[-2]), int(self.frames.shape[-1])


@dataclass(frozen=True)
class Latents(_TensorDataclass):
    """VAE latents of a batch of videos.

    Attributes:
        x: ``[B, C, F, h, w]`` float32, already multiplied by ``scaling_factor``.
        scaling_factor: the factor applied after encoding (0.18215 for SD-VAE; 1.2 for TAEF2).
        vae_name: identifier of the autoencoder that produced them (cache key).
    """

    x: torch.Tensor
    scaling_factor: float = 1.0
    vae_name: str = ""


@dataclass(frozen=True)
class DiTFeatures(_TensorDataclass):
    """STDiT tokens tapped after one block.

    Attributes:
        tokens: ``[B, F, S, D]`` tokens after block ``block`` (1-based, the paper's ``b^n``).
        grid: ``(h_p, w_p)`` patch grid with ``S = h_p * w_p`` (row-major token order).
        timestep: diffusion timestep(s) at which the features were taken, ``[B]`` int64.
        block: 1-based index of the tapped block.
    """

    tokens: torch.Tensor
    grid: tuple[int, int]
    timestep: torch.Tensor
    block: int


@dataclass(frozen=True)
class PairwisePointmaps(_TensorDataclass):
    """DUSt3R-style pairwise point maps, both views expressed in the first view's camera frame.

    For edge ``p`` with ``edges[p] = (i, j)`` (0-based frame indices), ``pts3d[..., p]`` are the 3D points of
    frame ``i``'s pixels and ``pts3d_in_other_view[..., p]`` those of frame ``j``'s pixels, both in camera ``i``'s
    OpenCV frame, up to one unknown scale per edge.

    Attributes:
        pts3d: ``[B, P, H, W, 3]`` float32.
        conf: ``[B, P, H, W]`` float32, ``>= 1`` (``1 + exp(x)``, DUSt3R ``conf_mode=('exp', 1, inf)``).
        pts3d_in_other_view: ``[B, P, H, W, 3]`` float32.
        conf_in_other_view: ``[B, P, H, W]`` float32, ``>= 1``.
        edges: ``[P, 2]`` int64 frame indices ``(i, j)``.
    """

    pts3d: torch.Tensor
    conf: torch.Tensor
    pts3d_in_other_view: torch.Tensor
    conf_in_other_view: torch.Tensor
    edges: torch.Tensor

    def select(self, b: int) -> "PairwisePointmaps":
        """Return batch element ``b`` keeping a leading batch axis of size 1."""
        return PairwisePointmaps(
            pts3d=self.pts3d[b : b + 1],
            conf=self.conf[b : b + 1],
            pts3d_in_other_view=self.pts3d_in_other_view[b : b + 1],
            conf_in_other_view=self.conf_in_other_view[b : b + 1],
            edges=self.edges,
        )


@dataclass(frozen=True)
class Reconstruction(_TensorDataclass):
    """A globally aligned reconstruction of one video (output of :mod:`jog3r.align`).

    Attributes:
        cam2world: ``[F, 4, 4]`` float32 camera-to-world, OpenCV axes, bottom row ``[0, 0, 0, 1]``.
        K: ``[F, 3, 3]`` float32 intrinsics in pixels of an ``H x W`` image.
        depth: ``[F, H, W]`` float32 z-depth along the camera's +z axis (scene units; up to scale).
        pts3d: ``[F, H, W, 3]`` float32 world points of every pixel.
        conf: ``[F, H, W]`` float32 per-pixel confidence (``>= 1`` when it comes from the model).
        colors: ``[F, H, W, 3]`` float32 RGB in ``[0, 1]``.
    """

    cam2world: torch.Tensor
    K: torch.Tensor
    depth: torch.Tensor
    pts3d: torch.Tensor
    conf: torch.Tensor
    colors: torch.Tensor

    @property
    def num_frames(self) -> int:
        """Number of frames ``F``."""
        return int(self.cam2world.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        return int(self.depth.shape[-2]), int(self.depth.shape[-1])

    @property
    def focal(self) -> torch.Tensor:
        """``[F]`` float32 focal length in pixels (mean of ``fx`` and ``fy``)."""
        return 0.5 * (self.K[:, 0, 0] + self.K[:, 1, 1])


@dataclass(frozen=True)
class PosedClip(_TensorDataclass):
    """A video clip with cameras, as every data loader returns it.

    Attributes:
        frames: ``[F, 3, H, W]`` float32 RGB in ``[0, 1]``.
        cam2world: ``[F, 4, 4]`` float32 camera-to-world, OpenCV axes.
        K: ``[F, 3, 3]`` float32 intrinsics in pixels of the ``H x W`` frames.
        depth: ``[F, H, W]`` float32 metric z-depth, or ``None``; ``0`` marks missing depth.
        caption: a RealEstate10K-style caption, or ``None``.
        name: clip identifier.
        frame_indices: ``[F]`` int64 indices of the frames in the source sequence.
    """

    frames: torch.Tensor
    cam2world: torch.Tensor
    K: torch.Tensor
    depth: torch.Tensor | None = None
    caption: str | None = None
    name: str = ""
    frame_indices: torch.Tensor | None = None

    @property
    def num_frames(self) -> int:
        """Number of frames ``F``."""
        return int(self.frames.shape[0])


__all__ = ["MATCHES", "Matches", "Video", "Latents", "DiTFeatures", "PairwisePointmaps", "Reconstruction",
           "PosedClip"]
