"""Camera intrinsics and walkthrough-like camera paths in a synthetic scene.

Motion statistics follow RealEstate10K as the repository's clips show them (measured on
``tests/data/realestate10k``: 0.05-0.2 scene units and 0.5-3.5 degrees of rotation per frame, mostly forward or
backward dollies, often with a slow turn). Paths are built from a heading ``yaw`` (radians about world z), a
``pitch`` (positive looks up) and a small ``roll``; cameras are OpenCV (x right, y down, z forward, see
:mod:`jog3r.geometry.camera`) in the z-up world of :mod:`jog3r.data.synth.scene`.

Every path is checked against a 2D free-space map of the scene: each camera keeps a clearance from walls and
furniture footprints (so it is never inside an object), and the first, middle and last views look across at
least ``min_view_distance`` metres of open floor instead of into a wall.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage

from jog3r.data.synth.scene import Scene

PATH_KINDS = ("dolly", "turn", "pan", "truck", "orbit")
"""Trajectory families: forward/backward dolly, walking turn, pan in place, lateral truck, orbit."""

_CELL = 0.05  # metres per free-space grid cell

LONG_WALK_FRAMES = 48
"""Paths longer than this are walks of several segments (:func:`_long_walk`); one segment of a RealEstate10K-like
kind rarely stays inside a room for more frames, and the single-segment search then fell back to a pan in place."""


def intrinsics(rng: np.random.Generator, height: int, width: int, hfov_deg: tuple[float, float],
               pixel_aspect: tuple[float, float]) -> torch.Tensor:
    """Sample a pinhole ``K`` ``[3, 3]`` float32 (pixels) with a centred principal point.

    Args:
        rng: random generator.
        height: ``H`` in pixels.
        width: ``W`` in pixels.
        hfov_deg: range of the horizontal field of view in degrees.
        pixel_aspect: range of ``fy / fx`` (RealEstate10K frames resized without cropping have ``fy/fx != 1``).
    """
    hfov = math.radians(float(rng.uniform(*hfov_deg)))
    fx = 0.5 * width / math.tan(0.5 * hfov)
    fy = fx * float(rng.uniform(*pixel_aspect))
    return torch.tensor([[fx, 0.0, width / 2], [0.0, fy, height / 2], [0.0, 0.0, 1.0]], dtype=torch.float32)


def look_matrix(position, yaw: float, pitch: float, roll: float) -> np.ndarray:
    """OpenCV ``cam2world`` ``[4, 4]`` float64 for a camera at ``position`` with heading/pitch/roll (radians)."""
    fwd = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)])
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    c, s = math.cos(roll), math.sin(roll)
    right, down = c * right + s * down, -s * right + c * down
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, down, fwd, position
    return m


class FreeSpace:
    """Clearance map of a scene's walkable area (metres to the nearest wall or footprint)."""

    def __init__(self, scene: Scene, tall: float = 1.1):
        x0, y0, x1, y1 = scene.free_space
        self.origin = np.array([x0, y0])
        nx, ny = int(math.ceil((x1 - x0) / _CELL)), int(math.ceil((y1 - y0) / _CELL))
        gx, gy = np.meshgrid(x0 + (np.arange(nx) + 0.5) * _CELL, y0 + (np.arange(ny) + 0.5) * _CELL, indexing="ij")
        blocked = np.zeros((nx, ny), bool)
        blocked_tall = np.zeros((nx, ny), bool)
        for cx, cy, hx, hy, yaw, h in scene.footprints.tolist():
            c, s = math.cos(yaw), math.sin(yaw)
            lx = (gx - cx) * c + (gy - cy) * s
            ly = -(gx - cx) * s + (gy - cy) * c
            inside = (np.abs(lx) <= hx) & (np.abs(ly) <= hy)
            blocked |= inside
            if h > tall:
                blocked_tall |= inside
        pad = lambda m: np.pad(~m, 1, constant_values=False)  # noqa: E731 - the room boundary is blocked too
        self.clearance = ndimage.distance_transform_edt(pad(blocked))[1:-1, 1:-1] * _CELL
        self.tall = blocked_tall
        self.shape = (nx, ny)

    def cell(self, xy) -> tuple[int, int] | None:
        """Grid cell of a world ``(x, y)``, or None outside the map."""
        i, j = np.floor((np.asarray(xy) - self.origin) / _CELL).astype(int)
        return (int(i), int(j)) if 0 <= i < self.shape[0] and 0 <= j < self.shape[1] else None

    def clearance_at(self, xy) -> float:
        """Metres of clearance at ``(x, y)`` (0 outside the walkable area)."""
        c = self.cell(xy)
        return 0.0 if c is None else float(self.clearance[c])

    def view_distance(self, xy, yaw: float, limit: float = 6.0) -> float:
        """Metres of floor in front of ``(x, y)`` along ``yaw`` before a wall or a tall object."""
        d = np.array([math.cos(yaw), math.sin(yaw)])
        for k in range(1, int(limit / _CELL)):
            c = self.cell(np.asarray(xy) + d * k * _CELL)
            if c is None or self.tall[c]:
                return k * _CELL
        return limit

    def random_point(self, rng: np.random.Generator, min_clearance: float) -> np.ndarray | None:
        """A uniformly random point with at least ``min_clearance`` metres of clearance, or None."""
        ok = np.argwhere(self.clearance >= min_clearance)
        if len(ok) == 0:
            return None
        i, j = ok[int(rng.integers(len(ok)))]
        return self.origin + (np.array([i, j]) + rng.random(2)) * _CELL


def _smooth_noise(rng: np.random.Generator, n: int, sigma: float, corr: float = 3.0) -> np.ndarray:
    x = ndimage.gaussian_filter1d(rng.standard_normal(n + 8), corr, mode="nearest")[4:-4]
    return sigma * x / (x.std() + 1e-9) if n > 1 else np.zeros(n)


def _simulate(rng: np.random.Generator, kind: str, n: int, start: np.ndarray, yaw0: float, target: np.ndarray,
              speed_scale: float):
    deg = math.pi / 180
    ease = 0.75 + 0.25 * np.sin(np.linspace(0, math.pi, n)) + _smooth_noise(rng, n, 0.08, 4)
    sgn = 1.0 if rng.random() < 0.5 else -1.0
    if kind == "orbit":
        rel = start - target
        radius = float(np.linalg.norm(rel))
        step = sgn * float(rng.uniform(0.04, 0.13)) * speed_scale / max(radius, 0.5)
        ang = math.atan2(rel[1], rel[0]) + np.cumsum(np.r_[0.0, step * ease[1:]])
        xy = target + radius * np.stack([np.cos(ang), np.sin(ang)], -1)
        yaw = np.arctan2(target[1] - xy[:, 1], target[0] - xy[:, 0]) + float(rng.normal(0, 8 * deg))
        return xy, yaw
    forward = {"dolly": (1 if rng.random() < 0.7 else -1) * rng.uniform(0.04, 0.2), "turn": rng.uniform(0.02, 0.13),
               "pan": rng.normal(0, 0.01), "truck": rng.normal(0, 0.02)}[kind] * speed_scale
    lateral = (sgn * rng.uniform(0.03, 0.15) if kind == "truck" else rng.normal(0, 0.01)) * speed_scale
    yaw_rate = {"dolly": rng.normal(0, 0.6), "turn": sgn * rng.uniform(1.0, 3.5), "pan": sgn * rng.uniform(1.5, 4.5),
                "truck": rng.normal(0, 0.8)}[kind] * deg
    yaw = yaw0 + np.cumsum(np.r_[0.0, yaw_rate * ease[1:]])
    step_f = forward * ease
    step_l = lateral * ease
    dxy = np.stack([step_f * np.cos(yaw) + step_l * np.sin(yaw), step_f * np.sin(yaw) - step_l * np.cos(yaw)], -1)
    xy = start + np.cumsum(np.r_[np.zeros((1, 2)), dxy[1:]], axis=0)
    return xy, yaw


def _long_walk(rng: np.random.Generator, space: FreeSpace, n: int, start: np.ndarray, speed_scale: float,
               min_clearance: float, min_ahead: float = 1.0, tries: int = 30):
    """A walk of ``n`` frames through free space, built from segments of 20-40 frames, or None.

    Each segment is a forward dolly, a walking turn or a lateral truck (the moving kinds of
    :data:`PATH_KINDS`) that starts at the previous segment's last position and heading, keeps ``min_clearance``
    and ends looking across at least ``min_ahead`` metres of floor. When no segment fits (a corner), the camera
    turns in place towards the most open heading (a short pan), then walks on. Returns ``(xy [n, 2], yaw [n])``.
    """
    deg = math.pi / 180
    headings = np.linspace(0, 2 * math.pi, 36, endpoint=False)
    yaw0 = float(headings[int(np.argmax([space.view_distance(start, h) for h in headings]))])
    xy, yaw = [np.asarray(start, dtype=np.float64)], [yaw0]
    while len(xy) < n:
        seg_len = min(int(rng.integers(20, 41)), n - len(xy)) + 1  # + the shared first frame
        for _ in range(tries):
            kind = str(rng.choice(["dolly", "turn", "truck"], p=[0.5, 0.3, 0.2]))
            sxy, syaw = _simulate(rng, kind, seg_len, xy[-1], yaw[-1], xy[-1], speed_scale)
            if kind == "dolly" and (sxy[-1] - sxy[0]) @ np.array([math.cos(yaw[-1]), math.sin(yaw[-1])]) < 0:
                continue  # walk forwards: a long backward dolly leaves the room behind the camera
            if min(space.clearance_at(p) for p in sxy) >= min_clearance and \
                    space.view_distance(sxy[-1], syaw[-1]) >= min_ahead:
                break
        else:  # turn in place towards the most open heading, 1.5-3 deg per frame
            target = float(headings[int(np.argmax([space.view_distance(xy[-1], h) for h in headings]))])
            delta = (target - yaw[-1] + math.pi) % (2 * math.pi) - math.pi
            steps = max(2, int(abs(delta) / (float(rng.uniform(1.5, 3.0)) * deg)) + 1)  # cut to n at the end
            if abs(delta) < 1e-6 or space.view_distance(xy[-1], target) < min_ahead:
                return None
            sxy = np.repeat(xy[-1][None], steps + 1, 0)
            syaw = yaw[-1] + delta * np.linspace(0, 1, steps + 1)
        xy.extend(sxy[1:])
        yaw.extend(syaw[1:])
    return np.stack(xy[:n]), np.asarray(yaw[:n])


def sample_path(rng: np.random.Generator, scene: Scene, n_frames: int, height_range: tuple[float, float],
                speed_scale: float = 1.0, min_clearance: float = 0.35, min_view_distance: float = 2.4,
                tries: int = 60, look_at: tuple[float, float] | None = None) -> tuple[torch.Tensor, str]:
    """Sample a collision-free walkthrough path.

    Args:
        rng: random generator.
        scene: the scene (``free_space`` bounds and ``footprints`` are used).
        n_frames: ``F``.
        height_range: camera height range above the floor in metres.
        speed_scale: multiplies every translation speed.
        min_clearance: metres every camera keeps from walls and footprints.
        min_view_distance: metres of open floor required ahead of the first, middle and last camera (capped at
            60% of the walkable area's longer side, so small rooms still get walks).
        tries: attempts before falling back to a slow pan at the most open spot.
        look_at: ``(x, y)`` the first view heads towards (default: a random open point at least 2 m away); not
            used by walks longer than :data:`LONG_WALK_FRAMES`, which start along the most open heading.

    Returns:
        ``(cam2world [F, 4, 4] float32 OpenCV, path kind)``; the kind is one of :data:`PATH_KINDS`, or ``"walk"``
        for a path of several segments (``F > LONG_WALK_FRAMES``).
    """
    space = FreeSpace(scene)
    deg = math.pi / 180
    z0 = float(rng.uniform(*height_range))
    pitch0 = float(np.clip(rng.normal(-4, 5), -20, 12)) * deg
    roll0 = float(rng.normal(0, 1.0)) * deg
    kinds = np.array(PATH_KINDS)
    prob = np.array([0.38, 0.2, 0.12, 0.15, 0.15])
    x0, y0, x1, y1 = scene.free_space
    min_view_distance = min(min_view_distance, 0.6 * max(x1 - x0, y1 - y0))
    found = False
    if n_frames > LONG_WALK_FRAMES:  # long clips: a walk of segments (shorter clips keep their exact draw below)
        for _ in range(tries):
            start = space.random_point(rng, min_clearance + 0.1)
            if start is None:
                break
            walk = _long_walk(rng, space, n_frames, start, speed_scale, min_clearance)
            if walk is not None:
                (xy, yaw), kind, found = walk, "walk", True
                break
        tries = 0 if found else tries
    for _ in range(tries):
        kind = str(kinds[rng.choice(len(kinds), p=prob)])
        start = space.random_point(rng, min_clearance + 0.1)
        if start is None:
            break
        goal = space.random_point(rng, 0.2) if look_at is None else np.asarray(look_at, dtype=np.float64)
        if goal is None or np.linalg.norm(goal - start) < 2.0:
            continue
        yaw0 = math.atan2(goal[1] - start[1], goal[0] - start[0]) + float(rng.normal(0, 20 * deg))
        target = start + float(rng.uniform(1.2, 3.0)) * np.array([math.cos(yaw0), math.sin(yaw0)])
        xy, yaw = _simulate(rng, kind, n_frames, start, yaw0, target, speed_scale)
        if min(space.clearance_at(p) for p in xy) < min_clearance:
            continue
        if min(space.view_distance(xy[i], yaw[i]) for i in {0, n_frames // 2, n_frames - 1}) < min_view_distance:
            continue
        found = True
        break
    if not found:  # no valid walk: a slow pan at the most open spot is always collision-free
        kind = "pan"
        best = np.unravel_index(np.argmax(space.clearance), space.clearance.shape)
        start = space.origin + (np.array(best) + 0.5) * _CELL
        yaw0 = float(rng.uniform(0, 2 * math.pi))
        xy = np.repeat(start[None], n_frames, 0)
        yaw = yaw0 + np.arange(n_frames) * float(rng.choice([-1, 1])) * 1.5 * deg
    jitter = [_smooth_noise(rng, n_frames, s) for s in (0.004, 0.004, 0.004, 0.25 * deg, 0.2 * deg, 0.15 * deg)]
    z = z0 + np.cumsum(np.r_[0.0, np.full(n_frames - 1, rng.normal(0, 0.004))]) + jitter[2]
    pitch = pitch0 + np.cumsum(np.r_[0.0, np.full(n_frames - 1, rng.normal(0, 0.2) * deg)]) + jitter[4]
    if n_frames > LONG_WALK_FRAMES:  # the drifts are per frame: bound them on long walks (no floor or ceiling views)
        z = np.clip(z, *height_range)
        pitch = np.clip(pitch, -20 * deg, 12 * deg)
    mats = [look_matrix((xy[i, 0] + jitter[0][i], xy[i, 1] + jitter[1][i], z[i]), yaw[i] + jitter[3][i],
                        pitch[i], roll0 + jitter[5][i]) for i in range(n_frames)]
    return torch.tensor(np.stack(mats), dtype=torch.float32), kind
