"""Furniture made of boxes, cylinders and ellipsoids.

Each factory builds one object in its own frame: origin on the floor at the object's centre, local ``+y`` is the
object's *front* (it faces the room when its back is against a wall), ``z`` up. It returns the object's
``(half_width, half_depth, height)`` so the layout can record the footprint. Sizes are metres, drawn from the
ranges of real furniture.
"""

from __future__ import annotations

import math

import numpy as np

from jog3r.data.synth.materials import MaterialKit
from jog3r.data.synth.scene import Light, SceneBuilder, yaw_matrix


class Placed:
    """Adds primitives in an object's local frame (origin ``(cx, cy, cz)``, rotated by ``yaw`` about z)."""

    def __init__(self, b: SceneBuilder, cx: float, cy: float, yaw: float, cz: float = 0.0):
        self.b = b
        self.rot = yaw_matrix(yaw)
        self.origin = np.array([cx, cy, cz])

    def world(self, x: float, y: float, z: float) -> np.ndarray:
        """Local point to world (metres)."""
        return self.origin + self.rot @ np.array([x, y, z])

    def box(self, x, y, z, hx, hy, hz, mat) -> None:
        """Box centred at local ``(x, y, z)`` with half extents ``(hx, hy, hz)``."""
        self.b.box(self.world(x, y, z), (hx, hy, hz), mat, self.rot)

    def cyl(self, x, y, z, r, hh, mat) -> None:
        """Vertical cylinder centred at local ``(x, y, z)``."""
        self.b.cylinder(self.world(x, y, z), r, hh, mat, self.rot)

    def ell(self, x, y, z, rx, ry, rz, mat) -> None:
        """Ellipsoid centred at local ``(x, y, z)``."""
        self.b.ellipsoid(self.world(x, y, z), (rx, ry, rz), mat, self.rot)

    def legs(self, hx, hy, h, r, mat, inset=0.04, square=True) -> None:
        """Four legs of height ``h`` under a rectangle of half size ``(hx, hy)``."""
        for sx in (-1, 1):
            for sy in (-1, 1):
                if square:
                    self.box(sx * (hx - inset), sy * (hy - inset), h / 2, r, r, h / 2, mat)
                else:
                    self.cyl(sx * (hx - inset), sy * (hy - inset), h / 2, r, h / 2, mat)


def sofa(p: Placed, kit: MaterialKit, rng: np.random.Generator, seats: int = 3):
    """A sofa (or an armchair with ``seats=1``): base, back, arms and seat cushions."""
    w = (0.8 + 0.6 * seats) * rng.uniform(0.9, 1.1) / 2
    d = rng.uniform(0.42, 0.5)
    fab = kit.fabric()
    p.box(0, 0, 0.24, w, d, 0.14, fab)
    p.box(0, -d + 0.1, 0.55, w, 0.1, 0.3, fab)
    arm_w = rng.uniform(0.08, 0.14)
    for s in (-1, 1):
        p.box(s * (w - arm_w), 0.02, 0.45, arm_w, d - 0.02, 0.2, fab)
    n = max(1, seats)
    cw = (w - 2 * arm_w) / n
    for i in range(n):
        x = -w + 2 * arm_w + cw * (2 * i + 1) - arm_w
        p.box(x, 0.06, 0.43, cw * 0.96, d - 0.14, 0.06, fab)
        if rng.random() < 0.6:
            p.ell(x, -d + 0.26, 0.62, cw * 0.7, 0.08, 0.18, kit.fabric())
    p.legs(w, d, 0.1, 0.025, kit.solid((0.1, 0.08, 0.06)))
    return w, d, 0.85


def table(p: Placed, kit: MaterialKit, rng: np.random.Generator, w: float, d: float, h: float, mat=None):
    """A table: top slab plus four legs."""
    mat = kit.wood() if mat is None else mat
    top = rng.uniform(0.02, 0.05)
    p.box(0, 0, h - top / 2, w, d, top / 2, mat)
    p.legs(w, d, h - top, rng.uniform(0.02, 0.04), mat, inset=0.06, square=rng.random() < 0.6)
    return w, d, h


def chair(p: Placed, kit: MaterialKit, rng: np.random.Generator, mat=None):
    """A dining chair facing local +y (its back is at -y)."""
    mat = kit.wood() if mat is None else mat
    w, d = 0.22, 0.22
    p.box(0, 0, 0.45, w, d, 0.025, mat)
    p.legs(w, d, 0.43, 0.018, mat, inset=0.03)
    p.box(0, -d + 0.02, 0.72, w, 0.02, 0.25, mat)
    return w, d, 0.97


def bed(p: Placed, kit: MaterialKit, rng: np.random.Generator):
    """A bed with frame, mattress, duvet, pillows and headboard (head against the wall at -y)."""
    w = rng.choice([0.5, 0.7, 0.8, 0.95])
    length = 1.05
    frame = kit.wood()
    p.box(0, 0, 0.17, w + 0.03, length, 0.15, frame)
    p.box(0, 0, 0.42, w, length - 0.02, 0.1, kit.solid((0.9, 0.9, 0.88)))
    duvet = kit.photo_tiled(0.8) if rng.random() < 0.3 else kit.fabric()
    p.box(0, 0.25, 0.53, w + 0.04, length - 0.27, 0.035, duvet)
    head_h = rng.uniform(0.9, 1.4)
    p.box(0, -length - 0.03, head_h / 2, w + 0.05, 0.04, head_h / 2, frame)
    pil = kit.fabric((0.92, 0.92, 0.9))
    for s in ((-0.5, 0.5) if w > 0.6 else (0.0,)):
        p.ell(s * w, -length + 0.25, 0.58, min(0.32, w * 0.45), 0.16, 0.08, pil)
    return w + 0.05, length + 0.07, head_h


def cabinet(p: Placed, kit: MaterialKit, rng: np.random.Generator, w: float, d: float, h: float,
            mat=None, drawers: int = 3, top=None):
    """A dresser / nightstand / base cabinet with drawer fronts and an optional separate top."""
    mat = kit.wood() if mat is None else mat
    p.box(0, 0, h / 2, w, d, h / 2, mat)
    if top is not None:
        p.box(0, 0.02, h + 0.02, w + 0.02, d + 0.02, 0.02, top)
    gap = 0.012
    fronts = kit.shared("handles", lambda: kit.solid((0.7, 0.7, 0.68), shininess=0.6))
    dh = (h - 0.1) / max(1, drawers)
    for i in range(drawers):
        z = 0.08 + dh * (i + 0.5)
        p.box(0, d + 0.008, z, w - 0.03, 0.008, dh / 2 - gap, mat)
        p.box(0, d + 0.02, z + dh * 0.2, min(0.08, w / 4), 0.01, 0.008, fronts)
    return w, d, h


def bookshelf(p: Placed, kit: MaterialKit, rng: np.random.Generator):
    """An open bookshelf with rows of books."""
    w, d, h = rng.uniform(0.35, 0.6), rng.uniform(0.14, 0.2), rng.uniform(1.2, 2.0)
    mat = kit.wood()
    th = 0.02
    p.box(0, -d + th / 2, h / 2, w, th / 2, h / 2, mat)
    for s in (-1, 1):
        p.box(s * (w - th / 2), 0, h / 2, th / 2, d, h / 2, mat)
    n = int(h / 0.38)
    for i in range(n + 1):
        p.box(0, 0, i * h / n + th / 2 - (th if i == n else 0), w, d, th / 2, mat)
        if i < n and rng.random() < 0.85:
            bh = rng.uniform(0.18, 0.3)
            bw = w * rng.uniform(0.5, 0.95)
            p.box(-w + th + bw, 0.0, i * h / n + th + bh / 2, bw - th, d * 0.8, bh / 2, kit.books())
    return w, d, h


def lamp(p: Placed, kit: MaterialKit, rng: np.random.Generator, z0: float = 0.0, floor: bool = False):
    """A table or floor lamp (glowing shade) that also adds a point light."""
    h = rng.uniform(1.4, 1.7) if floor else rng.uniform(0.4, 0.6)
    r = rng.uniform(0.12, 0.22)
    base = kit.solid(tuple(rng.uniform(0.1, 0.8, 3)), shininess=0.3)
    p.cyl(0, 0, z0 + 0.02, r * 0.7, 0.02, base)
    p.cyl(0, 0, z0 + h * 0.4, 0.015 if floor else r * 0.35, h * 0.4, base)
    shade = kit.shared("shade", lambda: kit.solid((0.95, 0.9, 0.78), emissive=float(rng.uniform(0.8, 1.6))))
    p.cyl(0, 0, z0 + h - 0.12, r, 0.12, shade)
    p.b.lights.append(Light(tuple(p.world(0, 0, z0 + h - 0.12)), tuple(rng.uniform(0.15, 0.35) * np.array([1.0, 0.85, 0.65]))))
    return r, r, z0 + h


def plant(p: Placed, kit: MaterialKit, rng: np.random.Generator, z0: float = 0.0, scale: float = 1.0):
    """A potted plant: pot plus a few foliage blobs."""
    r = rng.uniform(0.12, 0.22) * scale
    ph = rng.uniform(0.2, 0.4) * scale
    p.cyl(0, 0, z0 + ph / 2, r, ph / 2, kit.solid(tuple(rng.uniform(0.2, 0.8, 3))))
    leaf = kit.foliage()
    top = z0 + ph
    tall = rng.uniform(1.0, 3.0)
    for _ in range(int(rng.integers(4, 9))):
        rr = r * rng.uniform(0.5, 0.9)
        p.ell(rng.uniform(-r, r) * 0.6, rng.uniform(-r, r) * 0.6, top + rng.uniform(0.3, tall) * r, rr, rr,
              rr * rng.uniform(1.0, 1.8), leaf)
    return r * 1.3, r * 1.3, top + (tall + 1.5) * r


def tv(p: Placed, kit: MaterialKit, rng: np.random.Generator, z0: float, width: float):
    """A flat-screen TV standing at height ``z0`` (screen off, or on and showing a photograph)."""
    hw, hh = width / 2, width * 0.29
    frame = kit.solid((0.03, 0.03, 0.03), shininess=0.8)
    p.box(0, 0, z0 + 0.05 + hh, hw, 0.025, hh, frame)
    screen = kit.photo(emissive=1.5) if rng.random() < 0.4 else frame
    p.box(0, 0.026, z0 + 0.05 + hh, hw - 0.02, 0.002, hh - 0.02, screen)
    p.box(0, 0, z0 + 0.025, hw * 0.3, 0.08, 0.025, frame)
    return hw, 0.08, z0 + 0.1 + 2 * hh


def desk_set(p: Placed, kit: MaterialKit, rng: np.random.Generator):
    """A desk with a monitor and an office chair in front of it."""
    w, d, h = rng.uniform(0.5, 0.8), rng.uniform(0.28, 0.38), 0.75
    table(p, kit, rng, w, d, h)
    tv(Placed(p.b, *p.world(0, -d * 0.4, 0)[:2], math.atan2(p.rot[1, 0], p.rot[0, 0])), kit, rng, h, 0.55)
    black = kit.solid((0.08, 0.08, 0.08), shininess=0.3)
    cy = d + 0.35
    p.cyl(0, cy, 0.03, 0.28, 0.02, black)
    p.cyl(0, cy, 0.25, 0.03, 0.2, black)
    p.box(0, cy, 0.48, 0.24, 0.24, 0.04, black)
    p.box(0, cy + 0.22, 0.78, 0.22, 0.03, 0.25, black)
    return w, d + 0.35, h


def kitchen_run(p: Placed, kit: MaterialKit, rng: np.random.Generator, length: float, height: float, fronts: int):
    """A wall of kitchen cabinets: base cabinets, counter top, upper cabinets (``length`` = half length)."""
    d = 0.3
    counter = kit.stone()
    doors = kit.shared("cabinets", lambda: kit.wood(shininess=0.2) if rng.random() < 0.5 else kit.solid(
        (0.92, 0.92, 0.9), shininess=0.2))
    p.box(0, 0, 0.45, length, d, 0.45, doors)
    p.box(0, 0.02, 0.92, length + 0.01, d + 0.02, 0.02, counter)
    handle = kit.shared("handles", lambda: kit.solid((0.7, 0.7, 0.68), shininess=0.6))
    n = max(2, int(length / 0.3))
    for i in range(n):
        x = -length + (2 * i + 1) * length / n
        p.box(x, d + 0.004, 0.45, length / n - 0.01, 0.004, 0.38, doors)
        p.box(x + 0.5 * length / n - 0.05, d + 0.012, 0.7, 0.008, 0.008, 0.06, handle)
        if fronts and height > 2.3:
            p.box(x, -0.13, 1.85, length / n - 0.01, 0.17, 0.35, doors)
    if fronts:
        p.box(0, -d + 0.01, 1.2, length, 0.01, 0.27, kit.shared("splash", lambda: kit.stone()))
    return length, d, 0.94


def side_table(p: Placed, kit: MaterialKit, rng: np.random.Generator, with_lamp: bool):
    """A small side / end table, sometimes with a lamp or a vase on it."""
    hw = rng.uniform(0.2, 0.3)
    h = rng.uniform(0.5, 0.65)
    if rng.random() < 0.5:
        table(p, kit, rng, hw, hw, h)
    else:
        cabinet(p, kit, rng, hw, hw, h, drawers=1)
    if with_lamp:
        lamp(p, kit, rng, z0=h)
    elif rng.random() < 0.6:
        vase = kit.solid(tuple(rng.uniform(0.1, 0.9, 3)), shininess=0.5)
        p.cyl(0, 0, h + 0.1, rng.uniform(0.04, 0.08), 0.1, vase)
    return hw, hw, h
