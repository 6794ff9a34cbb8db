"""``CameraSet``: what every camera-file reader in :mod:`jog3r.io` returns.

Whatever the file's own convention, a ``CameraSet`` is in the package convention of
:mod:`jog3r.geometry.camera`: OpenCV axes, ``cam2world`` float32 ``[F, 4, 4]``, ``K`` float32 ``[F, 3, 3]`` in
pixels, pixel ``(u, v)`` centred at ``(u + 0.5, v + 0.5)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class CameraSet:
    """Cameras read from (or about to be written to) a camera file, in the package convention.

    Attributes:
        cam2world: ``[F, 4, 4]`` float32 camera-to-world, OpenCV axes (x right, y down, z forward), bottom row
            ``[0, 0, 0, 1]``. The readers invert/convert in float64 and cast once at the end.
        K: ``[F, 3, 3]`` float32 intrinsics in pixels of an ``image_size`` image, or ``None`` for formats
            without intrinsics (TUM trajectories).
        image_size: ``(H, W)`` in pixels shared by the frames, or ``None`` when the file does not say (TUM).
            When a file's frames have different sizes, this is the first frame's size and
            ``extra["image_sizes"]`` holds every frame's ``(H, W)`` (the reader also logs a warning).
        names: one identifier per frame: the image file name/path for nerfstudio and COLMAP, the timestamp for
            RealEstate10K and TUM.
        timestamps: ``[F]`` int64 **microseconds**, or ``None`` when the format has no time (nerfstudio,
            COLMAP).
        extra: format-specific data the package convention cannot hold (distortion coefficients, the source
            URL, COLMAP image ids, images missing on disk, ...). Each reader's docstring lists its keys.
    """

    cam2world: torch.Tensor
    K: torch.Tensor | None
    image_size: tuple[int, int] | None
    names: tuple[str, ...]
    timestamps: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        num = self.cam2world.shape[0]
        if self.cam2world.ndim != 3 or self.cam2world.shape[1:] != (4, 4):
            raise ValueError(f"CameraSet.cam2world must be [F, 4, 4], got {tuple(self.cam2world.shape)}")
        if self.K is not None and tuple(self.K.shape) != (num, 3, 3):
            raise ValueError(f"CameraSet.K must be [{num}, 3, 3], got {tuple(self.K.shape)}")
        if len(self.names) != num:
            raise ValueError(f"CameraSet has {num} cameras but {len(self.names)} names")
        if self.timestamps is not None and tuple(self.timestamps.shape) != (num,):
            raise ValueError(f"CameraSet.timestamps must be [{num}], got {tuple(self.timestamps.shape)}")

    @property
    def num_frames(self) -> int:
        """Number of cameras ``F``."""
        return int(self.cam2world.shape[0])

    @property
    def world2cam(self) -> torch.Tensor:
        """``[F, 4, 4]`` float32 world-to-camera (inverse of ``cam2world``, computed in float64)."""
        return torch.linalg.inv(self.cam2world.double()).float()


__all__ = ["CameraSet"]
