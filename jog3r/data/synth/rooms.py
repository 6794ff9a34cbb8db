"""Room shells: floors, ceilings and walls with window, door and doorway openings.

A room is the rectangle ``[x0, x1] x [y0, y1]`` (metres, floor at ``z = 0``, ceiling at ``height``). Its walls are
traversed counter-clockwise, so along each wall (unit direction ``e``) the room lies on the left: the wall's
local frame has ``x`` along the wall, ``y`` pointing *into* the room, ``z`` up. Walls are built outside the
rectangle (thickness ``th``) and extended by ``th`` at both ends to close the corners. Openings are holes in a
wall, decomposed into full-height pieces between holes and sill/lintel pieces above and below each hole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from jog3r.data.synth.furniture import Placed
from jog3r.data.synth.materials import MaterialKit
from jog3r.data.synth.scene import Light, SceneBuilder


@dataclass
class Opening:
    """A hole in a wall: ``[a0, a1]`` metres along the wall, ``[z0, z1]`` metres high.

    Attributes:
        kind: ``"window"``, ``"slider"`` (glass door), ``"door"`` (closed door panel) or ``"doorway"`` (open
            passage to an adjoining room).
    """

    a0: float
    a1: float
    z0: float
    z1: float
    kind: str


@dataclass
class Wall:
    """One wall of a room: start point, unit direction, length and openings."""

    start: tuple[float, float]
    direction: tuple[float, float]
    length: float
    openings: list[Opening] = field(default_factory=list)
    exterior: bool = True
    build: bool = True

    @property
    def yaw(self) -> float:
        """Rotation about z taking local x to the wall direction."""
        return math.atan2(self.direction[1], self.direction[0])

    @property
    def inward(self) -> np.ndarray:
        """Unit normal pointing into the room."""
        return np.array([-self.direction[1], self.direction[0]])

    def point(self, a: float, offset: float = 0.0) -> np.ndarray:
        """World ``(x, y)`` at ``a`` metres along the wall and ``offset`` metres into the room."""
        return np.asarray(self.start) + a * np.asarray(self.direction) + offset * self.inward

    def free_intervals(self, margin: float = 0.1, max_z: float | None = None) -> list[tuple[float, float]]:
        """Intervals along the wall not blocked by openings (only openings below ``max_z`` block when given)."""
        blocked = sorted((o.a0 - margin, o.a1 + margin) for o in self.openings
                         if max_z is None or o.z0 < max_z or o.kind in ("door", "doorway", "slider"))
        out, a = [], margin
        for b0, b1 in blocked:
            if b0 > a:
                out.append((a, b0))
            a = max(a, b1)
        if self.length - margin > a:
            out.append((a, self.length - margin))
        return out


@dataclass
class Room:
    """A rectangular room and its four walls (south, east, north, west; counter-clockwise)."""

    x0: float
    y0: float
    x1: float
    y1: float
    height: float
    room_type: str
    walls: list[Wall] = field(default_factory=list)

    def __post_init__(self):
        if not self.walls:
            x0, y0, x1, y1 = self.x0, self.y0, self.x1, self.y1
            self.walls = [Wall((x0, y0), (1.0, 0.0), x1 - x0), Wall((x1, y0), (0.0, 1.0), y1 - y0),
                          Wall((x1, y1), (-1.0, 0.0), x1 - x0), Wall((x0, y1), (0.0, -1.0), y1 - y0)]

    @property
    def center(self) -> np.ndarray:
        """Centre ``(x, y)`` of the floor rectangle."""
        return np.array([(self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2])


def add_opening(wall: Wall, rng: np.random.Generator, kind: str, width: float, z0: float, z1: float,
                at: float | None = None) -> Opening | None:
    """Add an opening of ``width`` metres where the wall is still free; returns it, or None if it does not fit."""
    fits = [(a, b) for a, b in wall.free_intervals(0.25) if b - a >= width]
    if at is not None:
        fits = [(at, at + width)] if any(a <= at and at + width <= b for a, b in fits) else []
    if not fits:
        return None
    a, b = fits[int(rng.integers(len(fits)))]
    a0 = at if at is not None else float(rng.uniform(a, b - width))
    op = Opening(a0, a0 + width, z0, z1, kind)
    wall.openings.append(op)
    return op


def build_wall(b: SceneBuilder, kit: MaterialKit, rng: np.random.Generator, wall: Wall, height: float,
               th: float, paint: int, trim: int, baseboard: float) -> None:
    """Add a wall's pieces, its baseboard, and the casings, panels and mullions of its openings."""
    p = Placed(b, *wall.start, wall.yaw)
    holes = sorted(wall.openings, key=lambda o: o.a0)
    a = -th
    for o in holes:
        if o.a0 > a:
            p.box((a + o.a0) / 2, -th / 2, height / 2, (o.a0 - a) / 2, th / 2, height / 2, paint)
        mid, half = (o.a0 + o.a1) / 2, (o.a1 - o.a0) / 2
        if o.z0 > 0:
            p.box(mid, -th / 2, o.z0 / 2, half, th / 2, o.z0 / 2, paint)
        if o.z1 < height:
            p.box(mid, -th / 2, (o.z1 + height) / 2, half, th / 2, (height - o.z1) / 2, paint)
        a = o.a1
    if wall.length + th > a:
        p.box((a + wall.length + th) / 2, -th / 2, height / 2, (wall.length + th - a) / 2, th / 2, height / 2, paint)
    # baseboard along the interior face, interrupted by floor-level openings
    a = 0.0
    for o in [o for o in holes if o.z0 <= 0.01] + [Opening(wall.length, wall.length, 0, 0, "end")]:
        if o.a0 - 0.07 > a:
            p.box((a + o.a0 - 0.07) / 2, 0.008, baseboard / 2, (o.a0 - 0.07 - a) / 2, 0.008, baseboard / 2, trim)
        a = o.a1 + 0.07
    for o in holes:
        _dress_opening(p, kit, rng, o, th, trim)


def _dress_opening(p: Placed, kit: MaterialKit, rng: np.random.Generator, o: Opening, th: float, trim: int) -> None:
    cw = 0.06  # casing width
    mid, half = (o.a0 + o.a1) / 2, (o.a1 - o.a0) / 2
    zc, zh = (o.z0 + o.z1) / 2, (o.z1 - o.z0) / 2
    zlo = o.z0 - cw if o.z0 > 0 else 0.0
    for s in (-1, 1):
        p.box(mid + s * (half + cw / 2), 0.01, (zlo + o.z1) / 2, cw / 2, 0.01, (o.z1 - zlo) / 2, trim)
    p.box(mid, 0.01, o.z1 + cw / 2, half + cw, 0.01, cw / 2, trim)
    if o.kind in ("window", "slider"):
        if o.z0 > 0:
            p.box(mid, 0.03, o.z0 - 0.015, half + cw, 0.04, 0.015, trim)
        bar = 0.025
        if o.kind == "slider" or half > 0.5 or rng.random() < 0.5:
            p.box(mid, -th / 2, zc, bar, th / 2 - 0.01, zh, trim)
        if o.kind == "window" and rng.random() < 0.5:
            p.box(mid, -th / 2, zc + zh * 0.2, half, th / 2 - 0.01, bar, trim)
        if rng.random() < 0.35:  # curtains on both sides
            cloth = kit.shared("curtain", kit.fabric)
            for s in (-1, 1):
                p.box(mid + s * (half + 0.18), 0.1, (o.z1 + 0.25) / 2 + 0.01, 0.2, 0.025, (o.z1 + 0.25) / 2 - 0.01, cloth)
            p.box(mid, 0.1, o.z1 + 0.27, half + 0.42, 0.012, 0.012, kit.shared("rod", lambda: kit.solid((0.2, 0.2, 0.2))))
    elif o.kind == "door":
        door = kit.shared("door", lambda: kit.solid((0.94, 0.93, 0.9), shininess=0.2) if rng.random() < 0.7 else kit.wood())
        p.box(mid, -th / 2, zc, half, 0.02, zh, door)
        for row, (z0, z1) in enumerate(((0.15, 0.9), (1.05, o.z1 - 0.15))):
            for s in (-1, 1):
                if half > 0.3:
                    p.box(mid + s * half * 0.45, -th / 2 + 0.022, (z0 + z1) / 2, half * 0.35, 0.004, (z1 - z0) / 2, door)
        knob = kit.shared("handles", lambda: kit.solid((0.7, 0.7, 0.68), shininess=0.6))
        p.ell(o.a1 - 0.08, -th / 2 + 0.05, 0.95, 0.03, 0.03, 0.03, knob)


def build_shell(b: SceneBuilder, kit: MaterialKit, rng: np.random.Generator, rooms: list[Room],
                th: float) -> list[list[str]]:
    """Add floors, ceilings, walls and ceiling lights of every room; returns each room's caption labels."""
    labels = []
    trim = kit.trim()
    ceiling = kit.paint((0.95, 0.95, 0.94), scale=3.0)
    baseboard = float(rng.uniform(0.07, 0.14))
    for room in rooms:
        floor, phrase = kit.floor()
        labels.append([phrase])
        b.box_minmax((room.x0 - th, room.y0 - th, -0.1), (room.x1 + th, room.y1 + th, 0.0), floor)
        b.box_minmax((room.x0 - th, room.y0 - th, room.height), (room.x1 + th, room.y1 + th, room.height + 0.1), ceiling)
        paint = kit.stripes() if rng.random() < 0.08 else kit.paint()
        for wall in room.walls:
            if wall.build:
                build_wall(b, kit, rng, wall, room.height, th, paint, trim, baseboard)
        b.rooms.append((room.x0, room.y0, room.x1, room.y1, room.height))
        if _ceiling_lights(b, kit, rng, room):
            labels[-1].append("ceiling fan")
    return labels


def _ceiling_lights(b: SceneBuilder, kit: MaterialKit, rng: np.random.Generator, room: Room) -> bool:
    """Add a ceiling fan, ceiling fixtures or recessed lights; True when it is a ceiling fan."""
    cx, cy = room.center
    h = room.height
    warm = np.array([1.0, 0.88, 0.72])
    r = rng.random()
    if r < 0.3 and h > 2.35:
        hub = kit.solid((0.85, 0.85, 0.82) if rng.random() < 0.5 else (0.25, 0.2, 0.15), shininess=0.4)
        p = Placed(b, cx, cy, float(rng.uniform(0, math.pi)))
        p.cyl(0, 0, h - 0.12, 0.015, 0.12, hub)
        p.cyl(0, 0, h - 0.3, 0.1, 0.07, hub)
        blade = kit.shared("blade", lambda: kit.wood())
        n_blades = int(rng.choice([4, 5]))
        for k in range(n_blades):
            ang = 2 * math.pi * k / n_blades
            Placed(b, cx, cy, ang).box(0.45, 0, h - 0.3, 0.35, 0.07, 0.006, blade)
        p.ell(0, 0, h - 0.4, 0.12, 0.12, 0.07, kit.shared("glow", lambda: kit.solid((1, 0.95, 0.85), emissive=2.0)))
        b.lights.append(Light((cx, cy, h - 0.45), tuple(rng.uniform(0.4, 0.9) * warm)))
        return True
    if r < 0.7:
        n = 1 if rng.random() < 0.5 else 2
        xs = [cx] if n == 1 else [room.x0 + (room.x1 - room.x0) * f for f in (0.3, 0.7)]
        for x in xs:
            glow = kit.shared("glow", lambda: kit.solid((1, 0.95, 0.85), emissive=2.0))
            b.ellipsoid((x, cy, h - 0.02), (0.2, 0.2, 0.08), glow)
            b.lights.append(Light((x, cy, h - 0.3), tuple(rng.uniform(0.3, 0.7) * warm)))
        return False
    # recessed can lights
    glow = kit.shared("glow", lambda: kit.solid((1, 0.95, 0.85), emissive=2.5))
    for fx in (0.25, 0.75):
        for fy in (0.25, 0.75):
            x, y = room.x0 + (room.x1 - room.x0) * fx, room.y0 + (room.y1 - room.y0) * fy
            b.cylinder((x, y, h - 0.005), 0.07, 0.006, glow)
    b.lights.append(Light((cx, cy, h - 0.5), tuple(rng.uniform(0.4, 0.8) * warm)))
    return False
