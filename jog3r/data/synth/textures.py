"""Textures for the synthetic scenes: procedural patterns and crops of real photographs.

Every texture is a tileable ``[S, S, 3]`` float32 NumPy array of *linear* RGB in ``[0, 1]`` (photographs are
converted from sRGB). Procedural patterns are periodic by construction (noise is made by filtering white noise
in the Fourier domain), so a texture repeated across a floor shows no seams.

Real photographs come from two places, both offline:

* image files inside the repository (``tests/data/**/*.jpg``), excluding the RealEstate10K evaluation clips by
  default so the training data never contains crops of the images the model is judged on;
* image data that installed packages ship (viser's 1k equirectangular HDRI previews, scikit-learn's sample
  photographs, gradio's demo images). The outdoor panoramas double as the view through windows and the sky.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

REPO_DATA = Path(__file__).resolve().parents[3] / "tests" / "data"
"""Real test images of the repository (absent from an installed wheel; then only package images are used)."""

OUTDOOR_PANORAMAS = ("rooitou_park", "forest_slope", "potsdamer_platz", "lebombo", "kiara_1_dawn", "venice_sunset")
"""viser HDRI previews that show daylight outdoor scenes (used for windows and skies)."""


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Convert sRGB values in ``[0, 1]`` to linear RGB (gamma 2.2 approximation)."""
    return np.power(np.clip(x, 0.0, 1.0), 2.2, dtype=np.float32)


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def photo_paths(include_realestate10k: bool = False) -> list[Path]:
    """Return the sorted list of real photographs available offline for texture crops.

    Args:
        include_realestate10k: also use the RealEstate10K evaluation frames (off by default: test leakage).

    Returns:
        Paths of JPEG files (repository test images, then package-shipped images), sorted for determinism.
    """
    paths: list[Path] = []
    if REPO_DATA.is_dir():
        for p in sorted(REPO_DATA.rglob("*.jpg")):
            if not include_realestate10k and "realestate10k" in p.parts:
                continue
            paths.append(p)
    for pkg, sub in (("sklearn", "datasets/images"), ("gradio", "media_assets/images"), ("viser", "_assets/hdri")):
        root = _package_dir(pkg)
        if root is not None and (root / sub).is_dir():
            paths.extend(sorted((root / sub).glob("*.jpg")))
    return paths


@functools.lru_cache(maxsize=4)
def load_photos(include_realestate10k: bool = False, max_side: int = 384) -> tuple[np.ndarray, ...]:
    """Load every photograph once per process, downscaled so its longer side is at most ``max_side``.

    Args:
        include_realestate10k: see :func:`photo_paths`.
        max_side: longest side in pixels after downscaling.

    Returns:
        Tuple of ``[h, w, 3]`` float32 linear-RGB arrays (empty when no photograph can be found).
    """
    photos = []
    for p in photo_paths(include_realestate10k):
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")
                im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
                photos.append(srgb_to_linear(np.asarray(im, dtype=np.float32) / 255.0))
        except OSError as err:  # a broken optional image must not stop data generation
            logger.warning("skipping unreadable texture photo %s: %s", p, err)
    logger.info("loaded %d texture photos", len(photos))
    return tuple(photos)


@functools.lru_cache(maxsize=2)
def load_panoramas(width: int = 256) -> tuple[np.ndarray, ...]:
    """Load the outdoor equirectangular panoramas (viser's HDRI previews) once per process.

    Args:
        width: width of the returned panoramas in pixels (height is ``width // 2``).

    Returns:
        Tuple of ``[width // 2, width, 3]`` float32 linear-RGB arrays; row 0 is straight up (zenith), column 0
        is azimuth ``-pi``. Empty when viser is not installed (callers then use :func:`procedural_sky`).
    """
    root = _package_dir("viser")
    out = []
    if root is not None:
        for name in OUTDOOR_PANORAMAS:
            p = root / "_assets" / "hdri" / f"{name}_1k.jpg"
            if p.is_file():
                with Image.open(p) as im:
                    im = im.convert("RGB").resize((width, width // 2), Image.Resampling.BOX)
                    out.append(srgb_to_linear(np.asarray(im, dtype=np.float32) / 255.0))
    return tuple(out)


def procedural_sky(rng: np.random.Generator, width: int = 256) -> np.ndarray:
    """Return a simple equirectangular sky + distant greenery panorama ``[width // 2, width, 3]`` (linear RGB)."""
    h = width // 2
    lat = (0.5 - (np.arange(h) + 0.5) / h)[:, None, None] * np.pi  # +pi/2 at the top row
    sky = np.array([0.35, 0.55, 0.9]) * (0.6 + 0.4 * np.clip(lat / 1.2, 0, 1)) + 0.25
    ground = np.array([0.12, 0.2, 0.07]) * (1.0 + 0.5 * fractal_noise(rng, (h, width), 1.5)[..., None])
    pano = np.where(lat > 0.05 * rng.random(), sky, ground)
    return np.broadcast_to(pano, (h, width, 3)).astype(np.float32)


def fractal_noise(rng: np.random.Generator, shape: tuple[int, int], beta: float = 2.0,
                  aniso: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Periodic ``1/f^beta`` noise normalised to zero mean and unit standard deviation.

    Args:
        rng: NumPy random generator.
        shape: ``(rows, cols)``.
        beta: spectral exponent (larger = smoother).
        aniso: frequency stretch per axis; ``(1, 8)`` gives streaks along columns (wood grain).

    Returns:
        ``[rows, cols]`` float32 array that tiles seamlessly.
    """
    fy = np.fft.fftfreq(shape[0])[:, None] * aniso[0]
    fx = np.fft.rfftfreq(shape[1])[None, :] * aniso[1]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    spec = np.fft.rfft2(rng.standard_normal(shape)) / f ** (beta / 2)
    spec[0, 0] = 0.0
    n = np.fft.irfft2(spec, s=shape)
    return (n / (n.std() + 1e-8)).astype(np.float32)


def _color(rgb) -> np.ndarray:
    return np.asarray(rgb, dtype=np.float32).reshape(1, 1, 3)


def _jitter(rng: np.random.Generator, rgb, amount: float = 0.08) -> np.ndarray:
    return np.clip(np.asarray(rgb, np.float32) * (1 + amount * rng.standard_normal(3)), 0.005, 1.0)


def plaster(rng, size, color) -> np.ndarray:
    """Painted plaster / drywall: a flat colour with faint low-frequency mottling."""
    n = 0.025 * fractal_noise(rng, (size, size), 2.5) + 0.01 * fractal_noise(rng, (size, size), 1.0)
    return np.clip(_color(color) * (1 + n[..., None]), 0, 1)


def wood_planks(rng, size, color, planks: int = 4) -> np.ndarray:
    """Wood floor / furniture planks along the texture's u axis, with grain, per-plank tone and seams."""
    grain = fractal_noise(rng, (size, size), 2.0, aniso=(1.0, 10.0))
    rows = np.arange(size) * planks // size
    tone = 1 + 0.12 * rng.standard_normal(planks)[rows][:, None]
    offsets = rng.integers(0, size, planks)[rows][:, None]
    cols = (np.arange(size)[None, :] + offsets) % size
    seam = np.ones((size, size), np.float32)
    seam[(np.arange(size) % (size // planks)) == 0, :] = 0.55
    seam[np.broadcast_to(cols < 2, (size, size))] *= 0.7
    img = _color(color) * (tone * (1 + 0.13 * grain) * seam)[..., None]
    return np.clip(img, 0, 1)


def tiles(rng, size, color, n: int = 4, grout=(0.5, 0.5, 0.48)) -> np.ndarray:
    """Square floor / wall tiles with grout lines and per-tile colour jitter."""
    idx = np.arange(size) * n // size
    jitter = 1 + 0.05 * rng.standard_normal((n, n))
    base = _color(color) * jitter[idx[:, None], idx[None, :]][..., None]
    base = base * (1 + 0.03 * fractal_noise(rng, (size, size), 1.5))[..., None]
    line = (np.arange(size) % (size // n)) < max(1, size // 96)
    mask = line[:, None] | line[None, :]
    return np.clip(np.where(mask[..., None], _color(grout) * _color(color) * 1.2, base), 0, 1)


def carpet(rng, size, color) -> np.ndarray:
    """Carpet / rug: high-frequency fibre noise over a soft low-frequency variation."""
    n = 0.12 * fractal_noise(rng, (size, size), 0.3) + 0.05 * fractal_noise(rng, (size, size), 2.5)
    return np.clip(_color(color) * (1 + n[..., None]), 0, 1)


def stripes(rng, size, color_a, color_b, n: int = 8) -> np.ndarray:
    """Wallpaper stripes along the vertical direction (v is the texture row)."""
    sel = ((np.arange(size) * n // size) % 2).astype(bool)[None, :, None]
    img = np.where(sel, _color(color_a), _color(color_b))
    return np.clip(np.broadcast_to(img, (size, size, 3)) * (1 + 0.02 * fractal_noise(rng, (size, size), 2.0))[..., None], 0, 1)


def fabric(rng, size, color) -> np.ndarray:
    """Upholstery: a fine weave plus soft folds."""
    u = np.arange(size)
    weave = 0.06 * (((u[:, None] + u[None, :]) % 4) < 2)
    n = 0.08 * fractal_noise(rng, (size, size), 2.2)
    return np.clip(_color(color) * (1 + n - weave)[..., None], 0, 1)


def marble(rng, size, color) -> np.ndarray:
    """Stone / marble counter tops: pale base with dark veins."""
    n = fractal_noise(rng, (size, size), 2.2)
    veins = np.exp(-np.abs(np.sin(3.0 * n)) * 6.0)
    return np.clip(_color(color) * (1 - 0.35 * veins)[..., None], 0, 1)


def foliage(rng, size, color) -> np.ndarray:
    """Leaves / grass / hedges: clumpy high-contrast green noise."""
    n = fractal_noise(rng, (size, size), 1.2)
    img = _color(color) * np.clip(1 + 0.45 * n, 0.2, 2.0)[..., None]
    return np.clip(img, 0, 1)


def bricks(rng, size, color, rows: int = 8) -> np.ndarray:
    """Running-bond brick wall with mortar lines (facades, fireplaces)."""
    r = np.arange(size) * rows // size
    cols = (np.arange(size)[None, :] + (r[:, None] % 2) * (size // 8)) % size
    brick_id = r[:, None] * 4 + cols * 4 // size
    tone = 1 + 0.12 * rng.standard_normal(rows * 4)[brick_id]
    mortar = ((np.arange(size) % (size // rows)) < 2)[:, None] | ((cols % (size // 4)) < 2)
    img = np.where(mortar[..., None], _color((0.55, 0.53, 0.5)), _color(color) * tone[..., None])
    return np.clip(img * (1 + 0.06 * fractal_noise(rng, (size, size), 1.0))[..., None], 0, 1)


def siding(rng, size, color, boards: int = 8) -> np.ndarray:
    """Horizontal clapboard siding (house facades): shaded board edges."""
    ramp = (np.arange(size) % (size // boards)) / (size // boards)
    shade = 0.8 + 0.2 * ramp
    return np.clip(_color(color) * np.broadcast_to(shade[:, None, None], (size, size, 1)), 0, 1)


def photo_crop(rng: np.random.Generator, photos: tuple[np.ndarray, ...], size: int,
               min_frac: float = 0.3) -> np.ndarray | None:
    """Return a random square crop of a random photograph resized to ``size`` (None when there are none).

    Args:
        rng: random generator.
        photos: arrays from :func:`load_photos`.
        size: output side in pixels.
        min_frac: smallest crop side as a fraction of the photograph's shorter side.
    """
    if not photos:
        return None
    img = photos[int(rng.integers(len(photos)))]
    h, w = img.shape[:2]
    side = int(min(h, w) * rng.uniform(min_frac, 1.0))
    y0 = int(rng.integers(0, h - side + 1))
    x0 = int(rng.integers(0, w - side + 1))
    crop = img[y0 : y0 + side, x0 : x0 + side]
    idx = (np.arange(size) * side // size).clip(0, side - 1)
    return np.ascontiguousarray(crop[idx][:, idx])


WALL_COLORS = [(0.92, 0.9, 0.85), (0.86, 0.82, 0.74), (0.8, 0.8, 0.78), (0.9, 0.88, 0.8), (0.74, 0.78, 0.8),
               (0.8, 0.84, 0.76), (0.95, 0.95, 0.95), (0.78, 0.72, 0.62), (0.7, 0.7, 0.7), (0.85, 0.8, 0.7)]
WOOD_COLORS = [(0.45, 0.25, 0.12), (0.6, 0.38, 0.2), (0.35, 0.2, 0.1), (0.7, 0.52, 0.33), (0.25, 0.14, 0.08),
               (0.55, 0.42, 0.3)]
FABRIC_COLORS = [(0.5, 0.5, 0.5), (0.3, 0.3, 0.32), (0.7, 0.65, 0.55), (0.2, 0.25, 0.4), (0.55, 0.45, 0.35),
                 (0.85, 0.84, 0.8), (0.15, 0.15, 0.15), (0.45, 0.5, 0.4), (0.6, 0.3, 0.25)]
TILE_COLORS = [(0.85, 0.83, 0.78), (0.7, 0.68, 0.62), (0.55, 0.52, 0.48), (0.9, 0.9, 0.9), (0.6, 0.55, 0.45)]
CARPET_COLORS = [(0.7, 0.66, 0.58), (0.55, 0.55, 0.52), (0.6, 0.55, 0.45), (0.4, 0.42, 0.45), (0.75, 0.72, 0.68)]
