"""A per-scene kit of materials (procedural patterns and photo crops) with caption-friendly names.

Procedural colours in :mod:`jog3r.data.synth.textures` are written as display (sRGB) values and converted to
linear RGB here; photo crops are already linear.
"""

from __future__ import annotations

import numpy as np

from jog3r.data.synth import textures as tx
from jog3r.data.synth.scene import SceneBuilder


def color_name(rgb) -> str:
    """A coarse English colour word for a display-RGB triple (used in captions)."""
    r, g, b = (float(c) for c in rgb)
    hi, lo = max(r, g, b), min(r, g, b)
    if hi - lo < 0.08:
        return "white" if hi > 0.8 else "gray" if hi > 0.35 else "black"
    if r >= g >= b and r - b > 0.15:
        return "brown" if hi < 0.7 else "beige"
    if b > r and b > g:
        return "blue"
    if g > r and g > b:
        return "green"
    return "red" if r > g + 0.2 else "beige"


class MaterialKit:
    """Creates materials on demand for one scene, deterministic for a given ``rng``.

    Args:
        builder: the scene builder receiving textures and materials.
        rng: NumPy random generator of the scene.
        photos: real photographs (from :func:`~jog3r.data.synth.textures.load_photos`) for pictures, rugs, TVs.
    """

    def __init__(self, builder: SceneBuilder, rng: np.random.Generator, photos: tuple[np.ndarray, ...]):
        self.b = builder
        self.rng = rng
        self.photos = photos
        self.size = builder.texture_size
        self._cache: dict[str, int] = {}

    def _add(self, srgb_tex: np.ndarray, scale: float, **kw) -> int:
        return self.b.add_material(tx.srgb_to_linear(srgb_tex), scale=scale, **kw)

    def pick(self, palette) -> tuple[float, float, float]:
        """A jittered colour from a palette list."""
        return tuple(tx._jitter(self.rng, palette[int(self.rng.integers(len(palette)))], 0.06))

    def shared(self, key: str, factory) -> int:
        """Return the material cached under ``key``, creating it with ``factory()`` the first time."""
        if key not in self._cache:
            self._cache[key] = factory()
        return self._cache[key]

    def paint(self, color=None, scale: float = 2.0) -> int:
        """Painted plaster (walls, ceilings)."""
        color = self.pick(tx.WALL_COLORS) if color is None else color
        return self._add(tx.plaster(self.rng, self.size, color), scale)

    def trim(self) -> int:
        """White semi-gloss trim (baseboards, door and window casings); shared per scene."""
        return self.shared("trim", lambda: self._add(tx.plaster(self.rng, self.size, (0.93, 0.92, 0.9)), 1.0,
                                                     shininess=0.15))

    def wood(self, color=None, planks: int = 2, scale: float = 1.0, shininess: float = 0.1) -> int:
        """Wood (furniture, doors, floors with more planks)."""
        color = self.pick(tx.WOOD_COLORS) if color is None else color
        return self._add(tx.wood_planks(self.rng, self.size, color, planks), scale, shininess=shininess)

    def floor(self) -> tuple[int, str]:
        """A floor material and its caption phrase (hardwood, tile or carpet)."""
        r = self.rng.random()
        if r < 0.5:
            return self.wood(planks=int(self.rng.integers(5, 9)), scale=float(self.rng.uniform(0.9, 1.4)),
                             shininess=0.2), "hardwood floors"
        if r < 0.75:
            c = self.pick(tx.TILE_COLORS)
            return self._add(tx.tiles(self.rng, self.size, c, int(self.rng.integers(2, 5))),
                             float(self.rng.uniform(0.8, 1.6)), shininess=0.25), "tile floors"
        return self._add(tx.carpet(self.rng, self.size, self.pick(tx.CARPET_COLORS)), 1.0), "carpet"

    def fabric(self, color=None) -> int:
        """Upholstery."""
        color = self.pick(tx.FABRIC_COLORS) if color is None else color
        return self._add(tx.fabric(self.rng, self.size, color), 0.5)

    def solid(self, color, shininess: float = 0.0, emissive: float = 0.0, scale: float = 1.0) -> int:
        """A nearly uniform colour (metal, plastic, glass, lamp shades)."""
        return self._add(tx.plaster(self.rng, self.size, color), scale, shininess=shininess, emissive=emissive)

    def stone(self) -> int:
        """Marble / granite counter tops."""
        return self._add(tx.marble(self.rng, self.size, self.pick(tx.TILE_COLORS)), 1.2, shininess=0.4)

    def foliage(self, color=None) -> int:
        """Leaves, hedges, lawns."""
        color = (tx._jitter(self.rng, (0.25, 0.42, 0.15), 0.15) if color is None else color)
        return self._add(tx.foliage(self.rng, self.size, color), 0.8)

    def bricks(self) -> int:
        """Brick masonry (fireplaces, facades)."""
        return self._add(tx.bricks(self.rng, self.size, tx._jitter(self.rng, (0.55, 0.3, 0.22), 0.12)), 1.0)

    def siding(self) -> int:
        """House siding boards."""
        return self._add(tx.siding(self.rng, self.size, self.pick(tx.WALL_COLORS)), 1.6)

    def stripes(self) -> int:
        """Striped wallpaper."""
        a = self.pick(tx.WALL_COLORS)
        b = tuple(np.clip(np.asarray(a) * self.rng.uniform(0.8, 0.95), 0, 1))
        return self._add(tx.stripes(self.rng, self.size, a, b, int(self.rng.integers(6, 16))), 1.2)

    def books(self) -> int:
        """A row of book spines (vertical stripes of random colours)."""
        n = int(self.rng.integers(10, 20))
        cols = np.arange(self.size) * n // self.size
        colors = np.stack([tx._jitter(self.rng, self.pick(tx.FABRIC_COLORS), 0.25) for _ in range(n)])
        img = np.broadcast_to(colors[cols][None], (self.size, self.size, 3)).copy()
        img[:, (np.arange(self.size) * n % self.size) < n] *= 0.4
        return self._add(img, 0.6)

    def photo(self, emissive: float = 0.0, fallback=None) -> int:
        """A photograph stretched once over a face (wall pictures, TV content, rugs)."""
        crop = tx.photo_crop(self.rng, self.photos, self.size)
        if crop is None:
            return self.fabric(fallback)
        return self.b.add_material(crop, scale=0.0, emissive=emissive)

    def photo_tiled(self, scale: float) -> int:
        """A photograph crop used as a repeating texture (upholstery prints, rugs)."""
        crop = tx.photo_crop(self.rng, self.photos, self.size, min_frac=0.15)
        if crop is None:
            return self.fabric()
        return self.b.add_material(crop, scale=scale)
