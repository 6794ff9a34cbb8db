"""Scene description for the synthetic generator: analytic primitives, materials and lights.

World frame of the synthetic scenes: metres, **z up**, floor at ``z = 0`` (cameras still follow the OpenCV
axes of :mod:`jog3r.geometry.camera`; only the world frame is chosen here). Every primitive lives in its own
local frame, ``X_world = rot @ X_local + center``:

* ``BOX``: the axis-aligned box ``|x| <= sx, |y| <= sy, |z| <= sz`` (``size`` = half extents);
* ``CYLINDER``: ``x^2 + y^2 <= sx^2, |z| <= sz`` (``sy`` unused, kept equal to ``sx``);
* ``ELLIPSOID``: ``(x/sx)^2 + (y/sy)^2 + (z/sz)^2 <= 1``.

A :class:`SceneBuilder` collects primitives with Python calls and :meth:`SceneBuilder.build` packs them into the
tensors of a :class:`Scene` that :mod:`jog3r.data.synth.render` ray-casts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

BOX, CYLINDER, ELLIPSOID = 0, 1, 2


def yaw_matrix(yaw: float) -> np.ndarray:
    """Rotation about the world z (up) axis by ``yaw`` radians, ``[3, 3]`` float64."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def tilt_matrix(yaw: float, pitch: float) -> np.ndarray:
    """Yaw about z then a tilt of ``pitch`` radians about the (yawed) x axis (pitched roofs, leaning frames)."""
    c, s = math.cos(pitch), math.sin(pitch)
    return yaw_matrix(yaw) @ np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


@dataclass
class Material:
    """Surface appearance.

    Attributes:
        texture: index into the scene's texture list.
        scale: metres covered by one texture tile; ``<= 0`` stretches the texture once over each face
            (pictures, TV screens, doors).
        tint: linear-RGB multiplier applied to the texture.
        emissive: emitted radiance added after shading (lamp shades, screens); 0 for ordinary surfaces.
        shininess: strength of a Blinn-Phong highlight (0 = matte).
    """

    texture: int
    scale: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    emissive: float = 0.0
    shininess: float = 0.0


@dataclass
class Light:
    """A point light (ceiling lamp, table lamp) with inverse-square fall-off.

    Attributes:
        position: ``(x, y, z)`` metres in the world frame.
        color: linear-RGB intensity (radiance at 1 m).
    """

    position: tuple[float, float, float]
    color: tuple[float, float, float]


@dataclass
class Scene:
    """Packed primitives ready for ray casting (all tensors on the CPU).

    Attributes:
        kind: ``[P]`` int64, ``BOX``/``CYLINDER``/``ELLIPSOID``.
        center: ``[P, 3]`` float32 metres.
        rot: ``[P, 3, 3]`` float32 local-to-world rotation.
        size: ``[P, 3]`` float32 half extents / radii (metres).
        material: ``[P]`` int64 index into ``materials``.
        corners: ``[P, 8, 3]`` float32 world corners of each primitive's local bounding box (for culling).
        materials: list of :class:`Material`.
        textures: ``[M, 2, S, S, 3]`` float32 linear RGB, level 0 sharp and level 1 blurred (cheap mip-map).
        env: ``[He, We, 3]`` float32 equirectangular environment (sky / view through windows), linear RGB.
        env_gain: multiplier of ``env`` (windows are brighter than the room).
        sun_dir: ``(3,)`` unit vector pointing *towards* the directional light.
        sun_color: linear-RGB intensity of the directional light.
        ambient: linear-RGB ambient intensity.
        lights: point lights.
        rooms: ``[R, 5]`` float32 ``(x0, y0, x1, y1, height)`` rectangles of the rooms (ambient occlusion of
            creases); empty for outdoor scenes.
        footprints: ``[O, 6]`` float32 ``(cx, cy, half_x, half_y, yaw, height)`` of furniture standing on the
            floor (soft contact shadows and camera collision).
        free_space: bounds ``(x0, y0, x1, y1)`` inside which cameras may move.
        labels: object names present (for captions), e.g. ``["bed", "window"]``.
        room_type: caption noun, e.g. ``"bedroom"``.
        adjoining: room type seen through a doorway (``""`` when there is none).
        focus: world ``(x, y)`` that first views should head towards (the house in outdoor scenes), or None.
    """

    kind: torch.Tensor
    center: torch.Tensor
    rot: torch.Tensor
    size: torch.Tensor
    material: torch.Tensor
    corners: torch.Tensor
    materials: list[Material]
    textures: torch.Tensor
    env: torch.Tensor
    env_gain: float
    sun_dir: tuple[float, float, float]
    sun_color: tuple[float, float, float]
    ambient: tuple[float, float, float]
    lights: list[Light]
    rooms: torch.Tensor
    footprints: torch.Tensor
    free_space: tuple[float, float, float, float]
    labels: list[str] = field(default_factory=list)
    room_type: str = "room"
    adjoining: str = ""
    focus: tuple[float, float] | None = None

    @property
    def num_primitives(self) -> int:
        """Number of primitives ``P``."""
        return int(self.kind.shape[0])


class SceneBuilder:
    """Collect primitives, materials, textures and lights, then pack them with :meth:`build`."""

    def __init__(self, texture_size: int = 128):
        self.texture_size = texture_size
        self._prims: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, int]] = []
        self.materials: list[Material] = []
        self._textures: list[np.ndarray] = []
        self.lights: list[Light] = []
        self.rooms: list[tuple[float, float, float, float, float]] = []
        self.footprints: list[tuple[float, float, float, float, float, float]] = []
        self.labels: list[str] = []

    def add_texture(self, image: np.ndarray) -> int:
        """Add a ``[S, S, 3]`` linear-RGB texture and return its index."""
        s = self.texture_size
        if image.shape != (s, s, 3):
            raise ValueError(f"texture must be [{s}, {s}, 3], got {list(image.shape)}")
        self._textures.append(np.ascontiguousarray(image, dtype=np.float32))
        return len(self._textures) - 1

    def add_material(self, image: np.ndarray | int, scale: float = 1.0, tint=(1.0, 1.0, 1.0),
                     emissive: float = 0.0, shininess: float = 0.0) -> int:
        """Add a material (from a texture image or an existing texture index) and return its index."""
        tex = image if isinstance(image, int) else self.add_texture(image)
        self.materials.append(Material(tex, scale, tuple(float(t) for t in tint), emissive, shininess))
        return len(self.materials) - 1

    def _add(self, kind: int, center, size, material: int, rot: np.ndarray | None) -> int:
        rot = np.eye(3) if rot is None else np.asarray(rot, dtype=np.float64)
        size = np.maximum(np.asarray(size, dtype=np.float64), 1e-3)
        self._prims.append((kind, np.asarray(center, dtype=np.float64), rot, size, material))
        return len(self._prims) - 1

    def box(self, center, half, material: int, rot: np.ndarray | None = None) -> int:
        """Add a box with half extents ``half`` at ``center`` (rotation ``rot``, default axis-aligned)."""
        return self._add(BOX, center, half, material, rot)

    def box_minmax(self, lo, hi, material: int) -> int:
        """Add an axis-aligned box spanning the corners ``lo`` and ``hi`` (metres)."""
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        return self.box((lo + hi) / 2, np.abs(hi - lo) / 2, material)

    def cylinder(self, center, radius: float, half_height: float, material: int,
                 rot: np.ndarray | None = None) -> int:
        """Add a cylinder (axis = local z) of ``radius`` and ``half_height`` metres."""
        return self._add(CYLINDER, center, (radius, radius, half_height), material, rot)

    def ellipsoid(self, center, radii, material: int, rot: np.ndarray | None = None) -> int:
        """Add an ellipsoid with semi-axes ``radii`` metres."""
        return self._add(ELLIPSOID, center, radii, material, rot)

    def footprint(self, cx: float, cy: float, hx: float, hy: float, yaw: float, height: float) -> None:
        """Record a floor-standing object's footprint (rotated rectangle, metres) and height."""
        self.footprints.append((cx, cy, hx, hy, yaw, height))

    def build(self, env: np.ndarray, env_gain: float, sun_dir, sun_color, ambient,
              free_space: tuple[float, float, float, float], room_type: str, adjoining: str = "",
              focus: tuple[float, float] | None = None) -> Scene:
        """Pack everything into a :class:`Scene` (textures get a blurred second level for distant surfaces)."""
        if not self._prims:
            raise ValueError("a scene needs at least one primitive")
        kind = torch.tensor([p[0] for p in self._prims], dtype=torch.int64)
        center = torch.tensor(np.stack([p[1] for p in self._prims]), dtype=torch.float32)
        rot = torch.tensor(np.stack([p[2] for p in self._prims]), dtype=torch.float32)
        size = torch.tensor(np.stack([p[3] for p in self._prims]), dtype=torch.float32)
        material = torch.tensor([p[4] for p in self._prims], dtype=torch.int64)
        signs = torch.tensor([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=torch.float32)
        corners = torch.einsum("pij,pkj->pki", rot, signs[None] * size[:, None]) + center[:, None]
        tex = torch.from_numpy(np.stack(self._textures))  # [M, S, S, 3]
        blurred = torch.nn.functional.avg_pool2d(tex.permute(0, 3, 1, 2), 4)
        blurred = torch.nn.functional.interpolate(blurred, scale_factor=4, mode="bilinear", align_corners=False)
        textures = torch.stack([tex, blurred.permute(0, 2, 3, 1)], dim=1).contiguous()
        sun = np.asarray(sun_dir, dtype=np.float64)
        return Scene(
            kind=kind, center=center, rot=rot, size=size, material=material, corners=corners,
            materials=list(self.materials), textures=textures,
            env=torch.from_numpy(np.ascontiguousarray(env, dtype=np.float32)), env_gain=float(env_gain),
            sun_dir=tuple(float(v) for v in sun / np.linalg.norm(sun)), sun_color=tuple(float(c) for c in sun_color),
            ambient=tuple(float(a) for a in ambient), lights=list(self.lights),
            rooms=torch.tensor(self.rooms, dtype=torch.float32).reshape(-1, 5),
            footprints=torch.tensor(self.footprints, dtype=torch.float32).reshape(-1, 6),
            free_space=free_space, labels=list(dict.fromkeys(self.labels)), room_type=room_type,
            adjoining=adjoining, focus=focus,
        )
