"""Whole scenes: an indoor home (one room, often with an adjoining room through a doorway) or an outdoor
house front / garden. Entry point :func:`build_scene`.
"""

from __future__ import annotations

import math

import numpy as np

from jog3r.data.synth import textures as tx
from jog3r.data.synth.furnish import PROGRAMS, FloorPlan
from jog3r.data.synth.materials import MaterialKit
from jog3r.data.synth.rooms import Opening, Room, add_opening, build_shell
from jog3r.data.synth.scene import Light, Scene, SceneBuilder, tilt_matrix

ROOM_TYPES = {  # type: (probability, (min, max) side lengths in metres)
    "living room": (0.28, (3.8, 7.0)), "bedroom": (0.2, (3.0, 5.0)), "kitchen": (0.14, (3.0, 5.5)),
    "dining room": (0.1, (3.0, 5.0)), "office": (0.07, (2.8, 4.2)), "bathroom": (0.06, (2.2, 3.2)),
    "empty room": (0.09, (3.0, 6.0)), "hallway": (0.06, (1.3, 1.8)),
}
ADJOINING = {"living room": ["dining room", "kitchen", "hallway"], "kitchen": ["dining room", "living room"],
             "dining room": ["kitchen", "living room"], "bedroom": ["bathroom", "hallway"],
             "office": ["hallway", "living room"], "bathroom": ["bedroom"], "empty room": ["hallway", "empty room"],
             "hallway": ["bedroom", "living room"]}


def _environment(rng: np.random.Generator, width: int = 1024) -> np.ndarray:
    panos = tx.load_panoramas(width)
    if not panos:
        return tx.procedural_sky(rng, width)
    pano = panos[int(rng.integers(len(panos)))]
    return np.roll(pano, int(rng.integers(width)), axis=1)


def _room_type(rng: np.random.Generator) -> str:
    names = list(ROOM_TYPES)
    prob = np.array([ROOM_TYPES[n][0] for n in names])
    return names[int(rng.choice(len(names), p=prob / prob.sum()))]


def _side(rng, room_type) -> tuple[float, float]:
    lo, hi = ROOM_TYPES[room_type][1]
    a = float(rng.uniform(lo, hi))
    if room_type == "hallway":
        return a, float(rng.uniform(4.0, 8.0))
    return a, float(np.clip(a * rng.uniform(0.7, 1.4), lo, hi + 1.0))


def indoor(rng: np.random.Generator, photos, texture_size: int) -> Scene:
    """An indoor scene: main room (cameras move here) plus, half of the time, an adjoining room.

    Args:
        rng: random generator of the scene.
        photos: photographs for pictures / rugs / TVs.
        texture_size: texture side ``S`` in pixels.

    Returns:
        The packed :class:`~jog3r.data.synth.scene.Scene`.
    """
    b = SceneBuilder(texture_size)
    kit = MaterialKit(b, rng, photos)
    th = float(rng.uniform(0.1, 0.16))
    height = float(rng.uniform(2.4, 3.0))
    kind = _room_type(rng)
    lx, ly = _side(rng, kind)
    if rng.random() < 0.5:
        lx, ly = ly, lx
    main = Room(0.0, 0.0, lx, ly, height, kind)
    rooms = [main]
    adjoining = ""
    if rng.random() < 0.55:
        kind_b = ADJOINING[kind][int(rng.integers(len(ADJOINING[kind])))]
        bx, by = _side(rng, kind_b)
        by = min(by, ly)
        yb0 = float(rng.uniform(0.0, ly - by))
        other = Room(lx + th, yb0, lx + th + bx, yb0 + by, height, kind_b)
        width = float(rng.uniform(0.85, max(0.9, min(2.6, by - 0.5))))
        a0 = float(rng.uniform(yb0 + 0.2, max(yb0 + 0.21, yb0 + by - width - 0.2)))
        top = 2.05 if width < 1.2 else float(rng.uniform(2.05, height - 0.1))
        main.walls[1].openings.append(Opening(a0, a0 + width, 0.0, top, "doorway"))
        main.walls[1].exterior = False
        west = other.walls[3]  # runs from (x0, y1) down to (x0, y0): a' = y1 - y
        west.openings.append(Opening(other.y1 - (a0 + width), other.y1 - a0, 0.0, top, "doorway"))
        west.build, west.exterior = False, False
        rooms.append(other)
        adjoining = kind_b
    for room in rooms:
        exterior = [w for w in room.walls if w.exterior]
        for _ in range(int(rng.choice([0, 1, 1, 2, 2, 3]) if room.room_type != "hallway" else rng.integers(0, 2))):
            wall = exterior[int(rng.integers(len(exterior)))]
            if room.room_type in ("living room", "dining room", "kitchen") and rng.random() < 0.2:
                add_opening(wall, rng, "slider", float(rng.uniform(1.5, 2.4)), 0.0, min(2.15, height - 0.15))
            else:
                sill = float(rng.uniform(0.45, 1.0))
                add_opening(wall, rng, "window", float(rng.uniform(0.7, 1.9)), sill,
                            float(min(height - 0.15, rng.uniform(1.9, 2.5))))
        for _ in range(int(rng.choice([0, 1, 1, 2]))):
            add_opening(room.walls[int(rng.integers(4))], rng, "door", float(rng.uniform(0.75, 0.92)), 0.0,
                        float(rng.uniform(2.0, 2.1)))
    floors = build_shell(b, kit, rng, rooms, th)
    env = _environment(rng)
    env_gain = float(rng.uniform(1.8, 4.0))
    daylight = env.reshape(-1, 3).mean(0) * env_gain
    for wall in (w for room in rooms for w in room.walls if w.build):
        for o in wall.openings:
            if o.kind in ("window", "slider"):  # light spilling in through the window
                x, y = wall.point((o.a0 + o.a1) / 2, 0.7)
                area = (o.a1 - o.a0) * (o.z1 - o.z0)
                b.lights.append(Light((x, y, (o.z0 + o.z1) / 2), tuple(daylight * area * float(rng.uniform(0.2, 0.45)))))
    labels = []
    for i, room in enumerate(rooms):
        got = floors[i] + PROGRAMS[room.room_type](FloorPlan(b, kit, rng, room))
        if i == 0:
            labels = got
            n_win = sum(o.kind in ("window", "slider") for w in room.walls for o in w.openings)
            n_door = sum(o.kind == "door" for w in room.walls for o in w.openings)
            labels += ["windows"] * (n_win > 1) + ["a window"] * (n_win == 1) + ["a door"] * (n_door > 0)
    b.labels = labels
    warm = rng.uniform(0.9, 1.1, 3) * np.array([1.0, 0.96, 0.9])
    azim = float(rng.uniform(0, 2 * math.pi))
    elev = float(rng.uniform(0.3, 1.0))
    sun = (math.cos(azim) * math.cos(elev), math.sin(azim) * math.cos(elev), math.sin(elev))
    return b.build(env=env, env_gain=env_gain, sun_dir=sun,
                   sun_color=tuple(float(rng.uniform(0.15, 0.45)) * warm),
                   ambient=tuple(float(rng.uniform(0.35, 0.6)) * warm), free_space=(0.0, 0.0, lx, ly),
                   room_type=kind, adjoining=adjoining)


def outdoor(rng: np.random.Generator, photos, texture_size: int) -> Scene:
    """A house front or garden: lawn, house with windows, door and pitched roof, trees, bushes, fence, pool."""
    b = SceneBuilder(texture_size)
    kit = MaterialKit(b, rng, photos)
    labels = []
    lawn = kit.foliage(tuple(tx._jitter(rng, (0.24, 0.32, 0.15), 0.1)))
    b.box_minmax((-30, -30, -0.2), (30, 30, 0.0), lawn)
    labels.append("a lawn")
    hw, hd, wall_h = float(rng.uniform(4, 8)), float(rng.uniform(3.5, 5)), float(rng.uniform(2.8, 5.8))
    house_y = hd  # front facade at y = 0
    facade = kit.bricks() if rng.random() < 0.4 else kit.siding()
    b.box((0, house_y, wall_h / 2), (hw, hd, wall_h / 2), facade)
    roof = kit.solid(tuple(rng.uniform(0.15, 0.45) * np.array([1.0, 0.9, 0.85])), scale=1.0)
    pitch = float(rng.uniform(0.35, 0.6))
    slope = hd / math.cos(pitch)
    for s in (-1, 1):
        rot = tilt_matrix(0.0, -s * pitch)
        cy = house_y + s * hd / 2
        b.box((0, cy, wall_h + hd / 2 * math.tan(pitch) - 0.05), (hw + 0.4, slope / 2 + 0.3, 0.08), roof, rot)
    b.footprint(0, house_y, hw, hd, 0.0, wall_h)
    trim = kit.trim()
    glass = kit.solid((0.06, 0.08, 0.1), shininess=0.9)
    floors = 1 if wall_h < 4 else 2
    for f in range(floors):
        n = int(rng.integers(2, 5))
        for k in range(n):
            x = -hw + (2 * k + 1) * hw / n
            z = 1.0 + f * 2.7 + 0.7
            if f == 0 and k == n // 2:
                door = kit.wood() if rng.random() < 0.5 else kit.solid(tuple(rng.uniform(0.1, 0.8, 3)))
                b.box((x, -0.05, 1.05), (0.5, 0.06, 1.05), door)
                b.box((x, -0.08, 1.05), (0.58, 0.03, 1.12), trim)
                b.box((x, -0.6, 0.08), (0.9, 0.6, 0.08), kit.stone())
                continue
            w = float(rng.uniform(0.45, 0.8))
            b.box((x, -0.04, z), (w + 0.07, 0.04, 0.67), trim)
            b.box((x, -0.05, z), (w, 0.045, 0.6), glass)
    labels.append("a house")
    plan_trees = int(rng.integers(1, 5))
    for _ in range(plan_trees):
        x, y = float(rng.uniform(-14, 14)), float(rng.uniform(-14, -4))
        h = float(rng.uniform(2.5, 6))
        b.cylinder((x, y, h / 2), 0.12, h / 2, kit.wood((0.3, 0.22, 0.15), planks=1))
        leaf = kit.foliage()
        for _ in range(3):
            r = float(rng.uniform(1.0, 2.0))
            b.ellipsoid((x + rng.normal(0, 0.5), y + rng.normal(0, 0.5), h + rng.uniform(-0.5, 0.8)), (r, r, r * 1.2), leaf)
        b.footprint(x, y, 0.3, 0.3, 0.0, h)
    labels.append("trees")
    bush = kit.foliage()
    for k in range(int(rng.integers(2, 7))):
        x = -hw + 0.6 + (2 * hw - 1.2) * rng.random()
        r = float(rng.uniform(0.4, 0.8))
        b.ellipsoid((x, -r * 0.9, r * 0.6), (r, r * 0.8, r * 0.8), bush)
        b.footprint(x, -r * 0.9, r, r * 0.8, 0.0, r * 1.4)
    fence = kit.wood(planks=8)
    b.box_minmax((-15, -15.1, 0), (15, -15, 1.6), fence)
    b.box_minmax((-15.1, -15, 0), (-15, 0, 1.6), fence)
    b.box_minmax((15, -15, 0), (15.1, 0, 1.6), fence)
    b.box_minmax((-0.7, -15, 0), (0.7, -0.6, 0.01), kit.stone())
    if rng.random() < 0.25:
        pool_mat = kit.solid((0.25, 0.55, 0.75), shininess=0.9)
        x0 = float(rng.uniform(-12, 3))
        b.box_minmax((x0, -12, 0), (x0 + 6, -8.5, 0.02), pool_mat)
        b.box_minmax((x0 - 0.4, -12.4, 0), (x0 + 6.4, -8.1, 0.015), kit.stone())
        labels.append("a swimming pool")
        b.footprint(x0 + 3, -10.25, 3.2, 1.95, 0.0, 0.1)
    b.labels = labels
    azim = float(rng.uniform(0, 2 * math.pi))
    elev = float(rng.uniform(0.4, 1.1))
    sun = (math.cos(azim) * math.cos(elev), math.sin(azim) * math.cos(elev), math.sin(elev))
    return b.build(env=_environment(rng), env_gain=float(rng.uniform(1.0, 1.6)), sun_dir=sun,
                   sun_color=tuple(float(rng.uniform(0.8, 1.3)) * np.array([1.0, 0.95, 0.85])),
                   ambient=tuple(float(rng.uniform(0.45, 0.7)) * np.array([0.85, 0.92, 1.0])),
                   free_space=(-13.5, -13.5, 13.5, -1.2), room_type="house exterior",
                   focus=(float(rng.uniform(-hw, hw)), hd))


def build_scene(rng: np.random.Generator, outdoor_prob: float, texture_size: int,
                include_realestate10k_photos: bool = False) -> Scene:
    """Build a random scene.

    Args:
        rng: random generator (the scene is a pure function of its state).
        outdoor_prob: probability of an outdoor house/garden scene instead of an indoor home.
        texture_size: texture side ``S`` in pixels.
        include_realestate10k_photos: also crop textures from the RealEstate10K test frames (off: leakage).

    Returns:
        The packed :class:`~jog3r.data.synth.scene.Scene`.
    """
    photos = tx.load_photos(include_realestate10k_photos)
    if rng.random() < outdoor_prob:
        return outdoor(rng, photos, texture_size)
    return indoor(rng, photos, texture_size)


__all__ = ["build_scene", "indoor", "outdoor", "ROOM_TYPES"]
