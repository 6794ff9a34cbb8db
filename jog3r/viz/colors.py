"""Colours shared by the viewer, the GLB export and the plotly plots.

* :func:`time_colors` - the red -> purple ramp over the frames of a video (JOG3R Fig. 4: "Red to purple
  indicates the progression from the first to the last frame").
* :data:`GT_COLOR` - the one colour of ground-truth cameras and trajectories.
* :func:`colormap` - scalar maps (depth, confidence, MEt3R error) to RGB with turbo / viridis / gray, NumPy
  only.

Every colour is float RGB in ``[0, 1]``; :func:`to_uint8` converts for viser / image files.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from jog3r.pixels import TIME_HUE_END_DEG, TIME_HUE_START_DEG, hsv_to_rgb, time_colors, to_uint8

#: Ground-truth cameras/trajectories: near-black, outside the red -> purple ramp and readable on white.
GT_COLOR: tuple[float, float, float] = (0.12, 0.12, 0.12)

#: Line colours of trajectories overlaid on one plot (prediction A, B, ...): blue, orange, green, brown, pink;
#: red and purple are left out because they mark the first and last frames on the time ramp.
SERIES_COLORS: tuple[tuple[float, float, float], ...] = (
    (0.22, 0.49, 0.72),
    (1.00, 0.50, 0.00),
    (0.30, 0.69, 0.29),
    (0.55, 0.34, 0.29),
    (0.97, 0.51, 0.75),
)

#: Colour of pixels a map marks invalid (e.g. MEt3R pixels not visible in both frames).
INVALID_COLOR: tuple[float, float, float] = (0.5, 0.5, 0.5)

# Polynomial fits of matplotlib's colormaps, evaluated by Horner's rule (lowest degree first).
# turbo: Anton Mikhailov's colormap, degree-5 fit published by Ruofei Du ("Turbo colormap approximation");
# close in the middle, up to 0.13 off matplotlib's table at the very ends (x < 0.02, x > 0.98).
_TURBO_COEFFS = np.array(
    [
        [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
        [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
        [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
    ]
)
# viridis: degree-6 fit by Matt Zucker (shadertoy "WlfXRN"), max error about 1/255 against matplotlib.
_VIRIDIS_COEFFS = np.array(
    [
        [0.2777273272, 0.1050930431, -0.3308618287, -4.6342304990, 6.2282699363, 4.7763849977,
         -5.4354558559],
        [0.0054073445, 1.4046135299, 0.2148475595, -5.7991009734, 14.1799333668, -13.7451453777,
         4.6458526122],
        [0.3340998053, 1.3845901626, 0.0950951630, -19.3324409563, 56.6905526007, -65.3530326334,
         26.3124352496],
    ]
)

ColormapName = Literal["turbo", "viridis", "gray"]


def series_color(index: int) -> tuple[float, float, float]:
    """Line colour of the ``index``-th overlaid trajectory.

    Args:
        index: 0-based trajectory index (cycles through :data:`SERIES_COLORS`).

    Returns:
        Float RGB in ``[0, 1]``.
    """
    return SERIES_COLORS[index % len(SERIES_COLORS)]


def colormap(
    values: np.ndarray,
    name: ColormapName = "turbo",
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    mask: np.ndarray | None = None,
    invalid_color: tuple[float, float, float] = INVALID_COLOR,
) -> np.ndarray:
    """Map scalars (depth, confidence, error) to RGB.

    ``values`` are normalised to ``x = (v - vmin) / (vmax - vmin)``, clipped to ``[0, 1]`` and evaluated with
    a polynomial fit of matplotlib's ``turbo`` or ``viridis`` (or a linear ``gray`` ramp). Non-finite values
    and pixels where ``mask`` is False get ``invalid_color``.

    Args:
        values: ``[...]`` array of scalars (any float/int dtype, any units).
        name: ``"turbo"``, ``"viridis"`` or ``"gray"``.
        vmin: value mapped to 0; default the minimum over the valid values.
        vmax: value mapped to 1; default the maximum over the valid values.
        mask: optional ``[...]`` bool array, True where ``values`` is valid.
        invalid_color: RGB in ``[0, 1]`` for invalid entries.

    Returns:
        ``[..., 3]`` float64 RGB in ``[0, 1]``.

    Raises:
        ValueError: for an unknown ``name`` or a ``mask`` whose shape differs from ``values``.
    """
    values = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(values)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != values.shape:
            raise ValueError(f"mask shape {mask.shape} != values shape {values.shape}")
        valid &= mask
    if name not in ("turbo", "viridis", "gray"):
        raise ValueError(f"unknown colormap {name!r}; use 'turbo', 'viridis' or 'gray'")
    if vmin is None:
        vmin = float(values[valid].min()) if valid.any() else 0.0
    if vmax is None:
        vmax = float(values[valid].max()) if valid.any() else 1.0
    span = vmax - vmin if vmax > vmin else 1.0
    x = np.clip((np.where(valid, values, vmin) - vmin) / span, 0.0, 1.0)
    if name == "gray":
        rgb = np.repeat(x[..., None], 3, axis=-1)
    else:
        coeffs = _TURBO_COEFFS if name == "turbo" else _VIRIDIS_COEFFS
        rgb = np.zeros(x.shape + (3,))
        for degree in range(coeffs.shape[1] - 1, -1, -1):  # Horner's rule, highest degree first
            rgb = rgb * x[..., None] + coeffs[:, degree]
        rgb = np.clip(rgb, 0.0, 1.0)
    rgb[~valid] = invalid_color
    return rgb


def rgb_to_hex(rgb: tuple[float, float, float] | np.ndarray) -> str:
    """Format one colour as ``"#rrggbb"`` (for plotly and HTML legends).

    Args:
        rgb: ``[3]`` float RGB in ``[0, 1]``.

    Returns:
        The lowercase hex string.
    """
    r, g, b = to_uint8(np.asarray(rgb)).tolist()
    return f"#{r:02x}{g:02x}{b:02x}"


__all__ = [
    "GT_COLOR",
    "INVALID_COLOR",
    "SERIES_COLORS",
    "colormap",
    "hsv_to_rgb",
    "rgb_to_hex",
    "series_color",
    "time_colors",
    "to_uint8",
]
