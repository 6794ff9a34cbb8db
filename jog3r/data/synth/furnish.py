"""Furnishing programs per room type, and the floor plan that keeps furniture from overlapping.

Each program places objects against walls (backs to the wall, avoiding doors and, for tall objects, windows)
or in the open floor, records their footprints (contact shadows, camera collision) and returns caption labels.
"""

from __future__ import annotations

import math

import numpy as np

from jog3r.data.synth import furniture as fu
from jog3r.data.synth.materials import MaterialKit
from jog3r.data.synth.rooms import Room, Wall
from jog3r.data.synth.scene import Light, SceneBuilder


class FloorPlan:
    """Axis-aligned occupied rectangles of one room (metres) with placement helpers."""

    def __init__(self, b: SceneBuilder, kit: MaterialKit, rng: np.random.Generator, room: Room):
        self.b, self.kit, self.rng, self.room = b, kit, rng, room
        self.rects: list[tuple[float, float, float, float]] = []
        for wall in room.walls:  # keep door swings and passages clear
            for o in wall.openings:
                if o.kind in ("door", "doorway", "slider"):
                    depth = 0.6 if o.kind == "slider" else 0.95
                    p0, p1 = wall.point(o.a0 - 0.1), wall.point(o.a1 + 0.1, depth)
                    self.rects.append((min(p0[0], p1[0]), min(p0[1], p1[1]), max(p0[0], p1[0]), max(p0[1], p1[1])))

    def is_free(self, rect, margin: float = 0.05) -> bool:
        """True when ``rect = (x0, y0, x1, y1)`` lies in the room and overlaps no occupied rectangle."""
        x0, y0, x1, y1 = rect
        r = self.room
        if x0 < r.x0 - 1e-6 or y0 < r.y0 - 1e-6 or x1 > r.x1 + 1e-6 or y1 > r.y1 + 1e-6:
            return False
        return all(x1 + margin <= a0 or a1 + margin <= x0 or y1 + margin <= b0 or b1 + margin <= y0
                   for a0, b0, a1, b1 in self.rects)

    @staticmethod
    def _rect(cx, cy, hw, hd, yaw):
        ex = abs(math.cos(yaw)) * hw + abs(math.sin(yaw)) * hd
        ey = abs(math.sin(yaw)) * hw + abs(math.cos(yaw)) * hd
        return cx - ex, cy - ey, cx + ex, cy + ey

    def claim(self, cx, cy, hw, hd, yaw, height) -> None:
        """Occupy the object's rectangle and record its footprint."""
        self.rects.append(self._rect(cx, cy, hw, hd, yaw))
        self.b.footprint(cx, cy, hw, hd, yaw, height)

    def on_wall(self, hw: float, hd: float, height: float, walls: list[Wall] | None = None, tries: int = 16):
        """Find a spot with the object's back against a wall; returns ``(Placed, wall)`` or None."""
        walls = self.room.walls if walls is None else walls
        for _ in range(tries):
            wall = walls[int(self.rng.integers(len(walls)))]
            spans = [(a, b) for a, b in wall.free_intervals(0.1, max_z=height) if b - a >= 2 * hw]
            if not spans:
                continue
            a, b = spans[int(self.rng.integers(len(spans)))]
            c = wall.point(float(self.rng.uniform(a + hw, b - hw)), hd + 0.02)
            if self.is_free(self._rect(c[0], c[1], hw, hd, wall.yaw)):
                self.claim(c[0], c[1], hw, hd, wall.yaw, height)
                return fu.Placed(self.b, c[0], c[1], wall.yaw), wall
        return None

    def at(self, cx: float, cy: float, hw: float, hd: float, yaw: float, height: float):
        """Claim a given spot if it is free; returns a :class:`~furniture.Placed` or None."""
        if self.is_free(self._rect(cx, cy, hw, hd, yaw)):
            self.claim(cx, cy, hw, hd, yaw, height)
            return fu.Placed(self.b, cx, cy, yaw)
        return None

    def anywhere(self, hw: float, hd: float, height: float, tries: int = 16):
        """A free spot in the open floor (axis-aligned yaw, slightly jittered); returns Placed or None."""
        r = self.room
        for _ in range(tries):
            yaw = float(self.rng.integers(4)) * math.pi / 2 + float(self.rng.normal(0, 0.05))
            cx = float(self.rng.uniform(r.x0 + hw + 0.3, max(r.x0 + hw + 0.31, r.x1 - hw - 0.3)))
            cy = float(self.rng.uniform(r.y0 + hd + 0.3, max(r.y0 + hd + 0.31, r.y1 - hd - 0.3)))
            placed = self.at(cx, cy, hw, hd, yaw, height)
            if placed is not None:
                return placed
        return None


def pictures(plan: FloorPlan, n: int) -> int:
    """Hang up to ``n`` framed photographs on walls; returns how many were hung."""
    kit, rng, hung = plan.kit, plan.rng, 0
    for _ in range(n * 3):
        if hung >= n:
            break
        wall = plan.room.walls[int(rng.integers(4))]
        w = float(rng.uniform(0.15, 0.5))
        h = w * float(rng.uniform(0.6, 1.3))
        spans = [(a, b) for a, b in wall.free_intervals(0.2) if b - a > 2 * w + 0.1]
        if not spans:
            continue
        a, b = spans[int(rng.integers(len(spans)))]
        p = fu.Placed(plan.b, *wall.point(float(rng.uniform(a + w, b - w))), wall.yaw)
        z = float(rng.uniform(1.3, min(1.75, plan.room.height - h - 0.25)))
        frame = kit.shared("frame", lambda: kit.solid(tuple(rng.choice([0.05, 0.9, 0.45], 1).repeat(3) * (1, 0.95, 0.9))))
        p.box(0, 0.012, z, w + 0.03, 0.012, h + 0.03, frame)
        p.box(0, 0.026, z, w, 0.003, h, kit.photo())
        hung += 1
    return hung


def _rug(plan: FloorPlan, cx, cy, hw, hd, yaw) -> None:
    kit = plan.kit
    mat = kit.photo_tiled(float(plan.rng.uniform(0.8, 2.0))) if plan.rng.random() < 0.5 else kit.fabric()
    fu.Placed(plan.b, cx, cy, yaw).box(0, 0, 0.004, hw, hd, 0.004, mat)


def living(plan: FloorPlan) -> list[str]:
    """Couch facing a TV, coffee table on a rug, armchair, lamps, plants, shelves, fireplace."""
    kit, rng, labels = plan.kit, plan.rng, []
    seats = int(rng.choice([2, 3, 3, 4]))
    spot = plan.on_wall((0.8 + 0.6 * seats) * 0.55, 0.5, 0.9)
    if spot is not None:
        p, wall = spot
        w, d, _ = fu.sofa(p, kit, rng, seats=seats)
        labels.append("couch")
        front = p.world(0, d + 0.45 + 0.3, 0)
        table = plan.at(front[0], front[1], 0.5, 0.3, wall.yaw, 0.45)
        if table is not None:
            fu.table(table, kit, rng, float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.25, 0.35)), 0.42)
            labels.append("coffee table")
            if rng.random() < 0.6:
                _rug(plan, front[0], front[1], 1.1, 0.8, wall.yaw)
                labels.append("rug")
        opposite = [w for w in plan.room.walls if abs(abs(w.yaw - wall.yaw) - math.pi) < 0.1]
        if rng.random() < 0.75 and (tvspot := plan.on_wall(0.7, 0.22, 0.55, opposite)) is not None:
            q, _ = tvspot
            fu.cabinet(q, kit, rng, 0.7, 0.2, 0.5, drawers=1)
            fu.tv(q, kit, rng, 0.5, float(rng.uniform(0.9, 1.4)))
            labels.append("television")
    if rng.random() < 0.25 and (spot := plan.on_wall(0.75, 0.22, 1.2)) is not None:
        p, _ = spot
        p.box(0, 0, 0.55, 0.75, 0.22, 0.55, kit.bricks() if rng.random() < 0.5 else kit.stone())
        p.box(0, 0.221, 0.35, 0.4, 0.002, 0.3, kit.solid((0.03, 0.03, 0.03)))
        p.box(0, 0.03, 1.13, 0.85, 0.28, 0.03, kit.wood())
        labels.append("fireplace")
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        if (spot := plan.on_wall(0.45, 0.45, 0.9)) is not None:
            fu.sofa(spot[0], kit, rng, seats=1)
            labels.append("armchair")
    if rng.random() < 0.3 and (spot := plan.on_wall(0.95, 0.5, 0.9)) is not None:
        fu.sofa(spot[0], kit, rng, seats=2)
    _extras(plan, labels, lamp=0.5, plant=0.6, shelf=0.35)
    return labels


def _extras(plan: FloorPlan, labels: list[str], lamp: float, plant: float, shelf: float) -> None:
    kit, rng = plan.kit, plan.rng
    for _ in range(int(rng.integers(0, 3))):
        if (spot := plan.on_wall(0.3, 0.3, 0.7)) is not None:
            with_lamp = rng.random() < lamp
            fu.side_table(spot[0], kit, rng, with_lamp)
            labels += ["table"] + ["lamp"] * with_lamp
    if rng.random() < lamp and (spot := plan.on_wall(0.2, 0.2, 1.7)) is not None:
        fu.lamp(spot[0], kit, rng, floor=True)
        labels.append("lamp")
    if rng.random() < plant and (spot := plan.on_wall(0.3, 0.3, 1.2)) is not None:
        fu.plant(spot[0], kit, rng, scale=float(rng.uniform(1.0, 1.8)))
        labels.append("plant")
    if rng.random() < shelf and (spot := plan.on_wall(0.6, 0.2, 2.0)) is not None:
        fu.bookshelf(spot[0], kit, rng)
        labels.append("bookshelf")
    if pictures(plan, int(rng.integers(0, 4))):
        labels.append("pictures on the wall")


def bedroom(plan: FloorPlan) -> list[str]:
    """Bed with nightstands and lamps, dresser, chair, rug."""
    kit, rng, labels = plan.kit, plan.rng, []
    spot = plan.on_wall(1.45, 1.15, 1.0)
    if spot is not None:
        p, wall = spot
        w, _, _ = fu.bed(fu.Placed(plan.b, *p.world(0, 0.02, 0)[:2], wall.yaw), kit, rng)
        labels.append("bed")
        for s in (-1, 1):  # nightstands inside the rectangle claimed for the bed
            c = p.world(s * (w + 0.27), -1.15 + 0.22, 0)
            q = fu.Placed(plan.b, c[0], c[1], wall.yaw)
            plan.b.footprint(c[0], c[1], 0.2, 0.2, wall.yaw, 0.55)
            fu.cabinet(q, kit, rng, 0.2, 0.2, 0.55, drawers=2)
            if rng.random() < 0.7:
                fu.lamp(q, kit, rng, z0=0.55)
        if rng.random() < 0.3:
            _rug(plan, *p.world(0, 0.4, 0)[:2], 1.3, 0.9, wall.yaw)
    if rng.random() < 0.6 and (spot := plan.on_wall(0.6, 0.25, 1.0)) is not None:
        fu.cabinet(spot[0], kit, rng, 0.6, 0.25, float(rng.uniform(0.8, 1.2)), drawers=3)
        labels.append("dresser")
    _extras(plan, labels, lamp=0.2, plant=0.3, shelf=0.15)
    return labels


def kitchen(plan: FloorPlan) -> list[str]:
    """Cabinet runs with counter tops, refrigerator, island with stools, pendant lights."""
    kit, rng, labels = plan.kit, plan.rng, ["kitchen cabinets"]
    for _ in range(int(rng.integers(1, 3))):
        length = float(rng.uniform(0.8, 1.8))
        spot = plan.on_wall(length, 0.3, 0.95)
        if spot is not None:
            fu.kitchen_run(spot[0], kit, rng, length, plan.room.height, fronts=1)
    if (spot := plan.on_wall(0.45, 0.38, 1.8)) is not None:
        steel = kit.solid((0.75, 0.75, 0.74) if rng.random() < 0.6 else (0.92, 0.92, 0.9), shininess=0.6)
        p = spot[0]
        p.box(0, 0, 0.9, 0.45, 0.36, 0.9, steel)
        p.box(0, 0.362, 1.1, 0.447, 0.002, 0.004, kit.solid((0.2, 0.2, 0.2)))
        labels.append("refrigerator")
    r = plan.room
    if min(r.x1 - r.x0, r.y1 - r.y0) > 3.4 and rng.random() < 0.6:
        hw, hd = float(rng.uniform(0.6, 1.0)), 0.45
        p = plan.at(*r.center, hw + 0.4, hd + 0.4, 0.0, 0.95)
        if p is not None:
            fu.kitchen_run(p, kit, rng, hw, r.height, fronts=0)
            labels.append("island")
            for k in range(3):
                fu.chair(fu.Placed(plan.b, *p.world(-hw + (2 * k + 1) * hw / 3, 0.65, 0)[:2], math.pi), kit, rng)
            plan.b.lights.append(Light((*r.center, r.height - 0.6), (0.3, 0.27, 0.22)))
    _extras(plan, labels, lamp=0.0, plant=0.3, shelf=0.0)
    return labels


def dining(plan: FloorPlan) -> list[str]:
    """A dining table with chairs, a sideboard and a chandelier."""
    kit, rng, labels = plan.kit, plan.rng, []
    r = plan.room
    hw, hd = float(rng.uniform(0.6, 1.0)), float(rng.uniform(0.4, 0.5))
    yaw = 0.0 if (r.x1 - r.x0) > (r.y1 - r.y0) else math.pi / 2
    p = plan.at(*r.center, hw + 0.5, hd + 0.5, yaw, 0.8)
    if p is not None:
        mat = kit.wood()
        fu.table(p, kit, rng, hw, hd, 0.76, mat)
        labels += ["dining table", "chairs"]
        for s in (-1, 1):
            for k in range(2 if hw < 0.8 else 3):
                n = 2 if hw < 0.8 else 3
                x = -hw + (2 * k + 1) * hw / n
                fu.chair(fu.Placed(plan.b, *p.world(x, s * (hd + 0.2), 0)[:2], yaw + (math.pi if s > 0 else 0)), kit, rng, mat)
        glow = kit.shared("glow", lambda: kit.solid((1, 0.95, 0.85), emissive=2.0))
        plan.b.ellipsoid((*r.center, r.height - 0.7), (0.3, 0.3, 0.15), glow)
        plan.b.cylinder((*r.center, r.height - 0.3), 0.01, 0.3, kit.solid((0.1, 0.1, 0.1)))
        plan.b.lights.append(Light((*r.center, r.height - 0.9), (0.35, 0.3, 0.24)))
    if rng.random() < 0.5 and (spot := plan.on_wall(0.8, 0.22, 0.9)) is not None:
        fu.cabinet(spot[0], kit, rng, 0.8, 0.22, 0.85, drawers=2)
        labels.append("sideboard")
    _extras(plan, labels, lamp=0.1, plant=0.4, shelf=0.1)
    return labels


def office(plan: FloorPlan) -> list[str]:
    """A desk with a computer and an office chair, shelves, a plant."""
    labels = []
    if (spot := plan.on_wall(0.8, 0.75, 1.3)) is not None:
        fu.desk_set(fu.Placed(plan.b, *spot[0].world(0, -0.35, 0)[:2], spot[1].yaw), plan.kit, plan.rng)
        labels += ["desk", "computer"]
    _extras(plan, labels, lamp=0.3, plant=0.5, shelf=0.7)
    return labels


def bathroom(plan: FloorPlan) -> list[str]:
    """Vanity with sink and mirror, toilet, bathtub."""
    kit, rng, labels = plan.kit, plan.rng, []
    white = kit.solid((0.95, 0.95, 0.94), shininess=0.5)
    if (spot := plan.on_wall(0.5, 0.28, 0.9)) is not None:
        p = spot[0]
        fu.cabinet(p, kit, rng, 0.5, 0.28, 0.85, drawers=1, top=kit.stone())
        p.box(0, 0.05, 0.9, 0.2, 0.15, 0.02, white)
        p.box(0, -0.27, 1.55, 0.45, 0.01, 0.4, kit.solid((0.6, 0.65, 0.68), shininess=0.9))
        labels += ["sink", "mirror"]
    if (spot := plan.on_wall(0.22, 0.35, 0.8)) is not None:
        p = spot[0]
        p.box(0, -0.27, 0.6, 0.2, 0.08, 0.2, white)
        p.ell(0, 0.05, 0.3, 0.18, 0.25, 0.18, white)
        labels.append("toilet")
    if (spot := plan.on_wall(0.78, 0.38, 0.6)) is not None:
        spot[0].box(0, 0, 0.28, 0.78, 0.38, 0.28, white)
        spot[0].box(0, 0, 0.561, 0.7, 0.3, 0.002, kit.solid((0.85, 0.88, 0.9), shininess=0.8))
        labels.append("bathtub")
    return labels


def hallway(plan: FloorPlan) -> list[str]:
    """A corridor: pictures, maybe a console table and a plant."""
    labels = []
    if plan.rng.random() < 0.4 and (spot := plan.on_wall(0.5, 0.18, 0.8)) is not None:
        fu.table(spot[0], plan.kit, plan.rng, 0.5, 0.18, 0.8)
        labels.append("table")
    _extras(plan, labels, lamp=0.0, plant=0.3, shelf=0.0)
    return labels


def empty(plan: FloorPlan) -> list[str]:
    """An empty room (common in real-estate videos); at most a plant or pictures."""
    labels: list[str] = []
    _extras(plan, labels, lamp=0.05, plant=0.15, shelf=0.0)
    return labels


PROGRAMS = {"living room": living, "bedroom": bedroom, "kitchen": kitchen, "dining room": dining,
            "office": office, "bathroom": bathroom, "hallway": hallway, "empty room": empty}
"""Room type (caption noun) -> furnishing program."""
