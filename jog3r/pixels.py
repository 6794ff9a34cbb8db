"""Pixel and colour helpers shared by every stage: float <-> 8-bit colours, HSV, the red -> purple time ramp.

A leaf module (NumPy only), so that :mod:`jog3r.io` and :mod:`jog3r.align` can colour and quantise pixels
without importing :mod:`jog3r.viz`; :mod:`jog3r.viz.colors` re-exports these names beside its colour maps.
"""

from __future__ import annotations

import numpy as np

#: Hue of the first frame (red) and of the last frame (purple), degrees on the HSV circle.
TIME_HUE_START_DEG = 0.0
TIME_HUE_END_DEG = 280.0


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """Convert HSV to RGB (the standard hexcone model, Smith 1978).

    Args:
        hsv: ``[..., 3]`` float array; hue in ``[0, 1)`` (fraction of a turn, wraps), saturation and value in
            ``[0, 1]``.

    Returns:
        ``[..., 3]`` float64 RGB in ``[0, 1]``.
    """
    hsv = np.asarray(hsv, dtype=np.float64)
    h, s, v = (hsv[..., 0] % 1.0) * 6.0, hsv[..., 1], hsv[..., 2]
    sector = np.floor(h).astype(np.int64) % 6
    frac = h - np.floor(h)
    p = v * (1.0 - s)
    q = v * (1.0 - s * frac)
    t = v * (1.0 - s * (1.0 - frac))
    # (r, g, b) for each of the six hue sectors.
    table = np.stack(
        [
            np.stack([v, t, p], -1),
            np.stack([q, v, p], -1),
            np.stack([p, v, t], -1),
            np.stack([p, q, v], -1),
            np.stack([t, p, v], -1),
            np.stack([v, p, q], -1),
        ],
        axis=0,
    )
    return np.take_along_axis(table, sector[None, ..., None].repeat(3, -1), axis=0)[0]


def time_colors(num_frames: int, *, saturation: float = 0.9, value: float = 0.9) -> np.ndarray:
    """The red -> purple time ramp: one colour per frame.

    The hue runs linearly from :data:`TIME_HUE_START_DEG` (red, frame 0) to :data:`TIME_HUE_END_DEG` (purple,
    frame ``F - 1``) through yellow, green, cyan and blue, so neighbouring frames get neighbouring colours.

    Args:
        num_frames: number of frames ``F`` (``>= 1``); a single frame is red.
        saturation: HSV saturation in ``[0, 1]``.
        value: HSV value in ``[0, 1]`` (below 1 so yellow stays readable on a white background).

    Returns:
        ``[F, 3]`` float64 RGB in ``[0, 1]``.

    Raises:
        ValueError: if ``num_frames < 1``.
    """
    if num_frames < 1:
        raise ValueError(f"time_colors needs at least one frame, got {num_frames}")
    frac = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)
    hue_deg = TIME_HUE_START_DEG + frac * (TIME_HUE_END_DEG - TIME_HUE_START_DEG)
    hsv = np.stack([hue_deg / 360.0, np.full(num_frames, saturation), np.full(num_frames, value)], axis=-1)
    return hsv_to_rgb(hsv)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Convert float colours to 8-bit, rounding and clipping.

    Args:
        rgb: ``[..., 3]`` float RGB in ``[0, 1]``.

    Returns:
        ``[..., 3]`` uint8 in ``[0, 255]``.
    """
    return np.clip(np.round(np.asarray(rgb, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


__all__ = ["TIME_HUE_START_DEG", "TIME_HUE_END_DEG", "hsv_to_rgb", "time_colors", "to_uint8"]
