"""Point-cloud and scene files for other 3D tools: binary PLY and GLB (through trimesh).

Conventions of the files written here:

* **PLY** (:func:`write_ply`): binary little-endian; per vertex ``x y z`` float32 in the reconstruction's
  world frame (OpenCV world of :mod:`jog3r.geometry.camera`, unchanged, scene units), ``red green blue`` uint8
  and ``confidence`` float32. Written with NumPy because trimesh's PLY writer adds an alpha channel and has no
  per-vertex scalar for point clouds; trimesh (and MeshLab, CloudCompare, Open3D) read it back.
* **GLB** (:func:`reconstruction_to_glb`): glTF 2.0 is y-up with cameras looking down -z, so world points are
  written as ``diag(1, -1, -1) @ X_world`` (the OpenCV -> OpenGL flip applied to the world). Nodes: ``points``
  (a POINTS primitive with vertex colours) and, with cameras, per frame ``f``:

  - ``frustum_fff``: a frustum mesh (apex at the camera centre, base at the image corners at depth
    ``frustum_scale``, plus a small triangle on the image's top edge), coloured by
    :func:`jog3r.pixels.time_colors` (frame 0 red -> last frame purple);
  - ``camera_fff``: a glTF perspective camera (Blender imports it as a camera object) with the frame's vertical
    field of view ``yfov = 2 atan(H / (2 fy))`` and ``aspectRatio = (W / fx) / (H / fy)`` (= ``W / H`` for square
    pixels), on a node whose rotation (XYZW) and translation are the frame's pose: ``R = diag(1,-1,-1) R_c2w
    diag(1,-1,-1)`` (glTF cameras look down their -z with +y up), ``t = diag(1,-1,-1) c``; ``extras.frame`` is
    the 0-based frame index. glTF cameras have no principal point: an off-centre ``(cx, cy)`` is not kept.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import roma
import torch
import trimesh

from jog3r.io.atomic import atomic_write_bytes
from jog3r.types import Reconstruction
from jog3r.pixels import time_colors, to_uint8

logger = logging.getLogger(__name__)

#: World -> glTF axes (rotation by 180 degrees about x): OpenCV's y-down, z-forward world becomes y-up.
WORLD_TO_GLTF = np.diag([1.0, -1.0, -1.0])

DEFAULT_KEEP_PERCENT = 60.0
"""The one default confidence cut of the viewer and of every export: keep the 60 % most confident finite points.

A percentile of the reconstruction's own confidences, not an absolute value: DUSt3R-style confidences
(``1 + exp(x)``, >= 1) have a model-dependent range (the embedded default's top out near 1.5 on real video, so an
absolute cut such as DUSt3R's demo default 3 shows nothing), while a share of the points always keeps some."""

MAX_POINTS = 300_000
"""Default cap of the drawn (viewer) and written (PLY / GLB) point clouds; a seeded uniform subsample beyond it."""


def confidence_cut(conf, keep_percent: float = DEFAULT_KEEP_PERCENT) -> float:
    """The confidence threshold that keeps the ``keep_percent`` % most confident values.

    ``conf >= confidence_cut(conf, p)`` holds for at least ``p`` % of the finite values (ties at the threshold
    are all kept), and always for the largest one, so the cut never empties a cloud that has a finite point.

    Args:
        conf: confidences of any shape (array or tensor); non-finite values are ignored.
        keep_percent: share of the values to keep, in ``(0, 100]``.

    Returns:
        The threshold (a value of ``conf``).

    Raises:
        ValueError: if ``keep_percent`` is not a number in ``(0, 100]`` or ``conf`` has no finite value.
    """
    if not isinstance(keep_percent, (int, float)) or not 0.0 < float(keep_percent) <= 100.0:
        raise ValueError(f"the share of points to keep must be a percentage in (0, 100], got {keep_percent}")
    values = conf.detach().cpu().float().numpy() if isinstance(conf, torch.Tensor) else np.asarray(conf, np.float32)
    values = values[np.isfinite(values)]
    if not values.size:
        raise ValueError("no finite confidence: there is no point to keep")
    return float(np.quantile(values, 1.0 - float(keep_percent) / 100.0, method="lower"))


def _numpy(x, what: str, shape_tail: tuple[int, ...]) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim != len(shape_tail) + 1 or arr.shape[1:] != shape_tail:
        dims = "".join(f", {d}" for d in shape_tail)
        raise ValueError(f"{what} must have shape [N{dims}], got {arr.shape}")
    return arr


def write_ply(path: str | Path, pts3d, colors, conf=None) -> Path:
    """Write a coloured point cloud as binary PLY (convention in the module docstring).

    Args:
        path: output ``.ply`` path (parents created; written atomically).
        pts3d: ``[N, 3]`` float world points (scene units).
        colors: ``[N, 3]`` float RGB in ``[0, 1]`` (clipped, with a warning, if outside) or uint8.
        conf: ``[N]`` float confidence, or ``None`` (then no ``confidence`` property is written).

    Returns:
        ``path``.

    Raises:
        ValueError: for wrong shapes, different ``N`` or non-finite points/confidences.
    """
    path = Path(path)
    xyz = _numpy(pts3d, "pts3d", (3,)).astype(np.float32)
    rgb = _numpy(colors, "colors", (3,))
    if len(rgb) != len(xyz):
        raise ValueError(f"colors has {len(rgb)} rows but pts3d has {len(xyz)}")
    if not np.isfinite(xyz).all():
        raise ValueError("pts3d contains NaN or inf; filter the points first")
    if rgb.dtype != np.uint8:
        rgb = rgb.astype(np.float64)
        if rgb.size and (rgb.min() < -1e-3 or rgb.max() > 1 + 1e-3):
            logger.warning("%s: colours outside [0, 1] (%.3f..%.3f) are clipped", path, rgb.min(), rgb.max())
        rgb = to_uint8(rgb)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    if conf is not None:
        conf_arr = np.asarray(conf.detach().cpu() if isinstance(conf, torch.Tensor) else conf).reshape(-1)
        if len(conf_arr) != len(xyz) or not np.isfinite(conf_arr).all():
            raise ValueError(f"conf must be [{len(xyz)}] finite values, got shape {conf_arr.shape}")
        fields.append(("confidence", "<f4"))
    vertices = np.empty(len(xyz), dtype=fields)
    vertices["x"], vertices["y"], vertices["z"] = xyz.T
    vertices["red"], vertices["green"], vertices["blue"] = rgb.T
    if conf is not None:
        vertices["confidence"] = conf_arr
    ply_types = {"<f4": "float", "u1": "uchar"}
    header = ["ply", "format binary_little_endian 1.0",
              "comment JOG3R Studio: world coordinates, OpenCV axes, scene units",
              f"element vertex {len(xyz)}", *(f"property {ply_types[t]} {name}" for name, t in fields),
              "end_header"]
    atomic_write_bytes(path, ("\n".join(header) + "\n").encode("ascii") + vertices.tobytes())
    return path


def select_points(
    recon: Reconstruction,
    *,
    conf_threshold: float | None = None,
    keep_percent: float | None = None,
    max_points: int | None = None,
    seed: int = 0,
    frame: int | None = None,
) -> dict[str, np.ndarray]:
    """Pick the finite (and confident) points of a reconstruction, subsampled reproducibly.

    The viewer (:func:`jog3r.viz.viewer.select_points`) and every export call this, so the same arguments give
    the same point set everywhere.

    Args:
        recon: the reconstruction (``pts3d [F, H, W, 3]``, ``colors``, ``conf``).
        conf_threshold: keep pixels with ``conf >= conf_threshold``; ``None`` keeps every finite point.
        keep_percent: instead of ``conf_threshold``: keep the ``keep_percent`` % most confident finite points
            (:func:`confidence_cut` over all frames); used only when ``conf_threshold`` is ``None``.
        max_points: at most this many points, drawn uniformly without replacement (seeded); ``None``: all.
        seed: seed of the subsampling.
        frame: keep only this 0-based frame's pixels (after the cut, before the subsampling); ``None``: all.

    Returns:
        ``{"xyz": [N, 3] float32, "rgb": [N, 3] float32 in [0, 1], "conf": [N] float32,
        "index": [N] int64 flat indices into [F, H, W] (increasing)}``.

    Raises:
        ValueError: if ``max_points < 1``.
    """
    pts = recon.pts3d.detach().cpu().reshape(-1, 3).float().numpy()
    conf = recon.conf.detach().cpu().reshape(-1).float().numpy()
    rgb = recon.colors.detach().cpu().reshape(-1, 3).float().numpy()
    keep = np.isfinite(pts).all(axis=1) & np.isfinite(conf)
    if not keep.all():
        logger.info("skipping %d of %d points with non-finite xyz or conf", int((~keep).sum()), len(keep))
    if conf_threshold is None and keep_percent is not None and keep.any():
        conf_threshold = confidence_cut(conf[keep], keep_percent)
    if conf_threshold is not None:
        keep &= conf >= conf_threshold
    if frame is not None:
        per_frame = keep.size // max(recon.num_frames, 1)
        if not 0 <= frame < recon.num_frames:
            raise ValueError(f"frame {frame} is outside 0..{recon.num_frames - 1}")
        keep[: frame * per_frame] = False
        keep[(frame + 1) * per_frame :] = False
    index = np.flatnonzero(keep)
    if max_points is not None:
        if max_points < 1:
            raise ValueError(f"max_points must be >= 1, got {max_points}")
        if len(index) > max_points:
            index = np.sort(np.random.default_rng(seed).choice(index, size=max_points, replace=False))
    return {"xyz": pts[index], "rgb": np.clip(rgb[index], 0, 1), "conf": conf[index],
            "index": index.astype(np.int64)}


def auto_frustum_scale(cam_centres: np.ndarray, points: np.ndarray) -> float:
    """Frustum depth: 0.1 x the median distance between camera centres, clamped to [1 %, 5 %] of the scene.

    The scene extent is the diagonal of the 5th-95th percentile box of the points and camera centres.

    Args:
        cam_centres: ``[F, 3]`` camera centres (world).
        points: ``[N, 3]`` world points (may be empty).

    Returns:
        The frustum depth in scene units (``1.0`` for a degenerate scene).
    """
    allpts = np.concatenate([cam_centres, points]) if len(points) else cam_centres
    extent = float(np.linalg.norm(np.percentile(allpts, 95, axis=0) - np.percentile(allpts, 5, axis=0)))
    if extent <= 0:
        return 1.0
    pairwise = np.linalg.norm(cam_centres[:, None] - cam_centres[None], axis=-1)
    dists = pairwise[np.triu_indices(len(cam_centres), 1)]
    traj = 0.1 * float(np.median(dists)) if dists.size else 0.0
    return float(np.clip(traj, 0.01 * extent, 0.05 * extent))


def frustum_mesh(
    cam2world: np.ndarray, K: np.ndarray, image_size: tuple[int, int], scale: float, color
) -> trimesh.Trimesh:
    """One camera as a double-sided frustum mesh in **world** coordinates (OpenCV axes).

    Args:
        cam2world: ``[4, 4]`` camera-to-world, OpenCV axes.
        K: ``[3, 3]`` intrinsics in pixels.
        image_size: ``(H, W)``.
        scale: depth of the base (image plane) below the apex, in scene units.
        color: RGB in ``[0, 1]``.

    Returns:
        A mesh with 8 vertices: apex, 4 image corners, 3 vertices of the "up" triangle above the top edge.
    """
    H, W = image_size
    corners = [[0, 0], [W, 0], [W, H], [0, H]]
    pix = np.array(corners + [[0.35 * W, 0], [0.65 * W, 0], [0.5 * W, -0.15 * H]], dtype=np.float64)
    rays = np.linalg.solve(K, np.concatenate([pix, np.ones((len(pix), 1))], axis=1).T).T
    cam_pts = np.concatenate([np.zeros((1, 3)), rays * scale / rays[:, 2:3]])
    world = cam_pts @ cam2world[:3, :3].T + cam2world[:3, 3]
    faces = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1], [5, 6, 7]])
    faces = np.concatenate([faces, faces[:, ::-1]])  # both windings: visible from inside and outside
    rgba = np.append(to_uint8(np.asarray(color)), 255)
    return trimesh.Trimesh(world, faces, vertex_colors=np.tile(rgba, (len(world), 1)), process=False)


def gltf_cameras(
    cam2world: np.ndarray, K: np.ndarray, image_size: tuple[int, int], *, znear: float
) -> tuple[list[dict], list[dict]]:
    """glTF 2.0 perspective cameras and their nodes for ``F`` OpenCV cameras (convention in the module docstring).

    Args:
        cam2world: ``[F, 4, 4]`` camera-to-world, OpenCV axes, in the reconstruction's world.
        K: ``[F, 3, 3]`` intrinsics in pixels of ``image_size``.
        image_size: ``(H, W)``.
        znear: near clipping distance in scene units (glTF requires one > 0); no far plane (infinite).

    Returns:
        ``cameras`` (``{"name", "type": "perspective", "perspective": {"yfov", "aspectRatio", "znear"}}``) and
        ``nodes`` (``{"name", "rotation" [x, y, z, w], "translation", "extras": {"frame"}}``; the caller sets each
        node's ``"camera"`` index), both named ``camera_fff``.
    """
    height, width = image_size
    flip = np.diag([1.0, -1.0, -1.0])  # OpenCV camera axes (x right, y down, z forward) -> glTF's (y up, -z forward)
    rotations = WORLD_TO_GLTF @ cam2world[:, :3, :3] @ flip
    quats = roma.rotmat_to_unitquat(torch.as_tensor(rotations, dtype=torch.float64)).numpy()  # XYZW, glTF's order
    cameras, nodes = [], []
    for i in range(len(cam2world)):
        fx, fy = float(K[i, 0, 0]), float(K[i, 1, 1])
        name = f"camera_{i:03d}"
        cameras.append({"name": name, "type": "perspective", "perspective": {
            "yfov": float(2.0 * np.arctan2(height / 2.0, fy)),
            "aspectRatio": float((width / fx) / (height / fy)),
            "znear": float(znear),
        }})
        nodes.append({"name": name, "rotation": [float(q) for q in quats[i]],
                      "translation": [float(t) for t in WORLD_TO_GLTF @ cam2world[i, :3, 3]],
                      "extras": {"frame": i}})
    return cameras, nodes


def reconstruction_to_glb(
    recon: Reconstruction,
    path: str | Path,
    *,
    conf_threshold: float | None = None,
    with_cameras: bool = True,
    frustum_scale: float | None = None,
    max_points: int | None = MAX_POINTS,
    seed: int = 0,
) -> Path:
    """Write a reconstruction as a GLB scene: coloured points and, optionally, one frustum per frame.

    Args:
        recon: the reconstruction (``cam2world [F, 4, 4]`` OpenCV, ``K [F, 3, 3]``, ``pts3d``, ``colors``,
            ``conf``).
        path: output ``.glb`` path (parents created; written atomically).
        conf_threshold: keep pixels with ``conf >= conf_threshold``; ``None`` keeps every finite point.
        with_cameras: add the frustum meshes (red -> purple over time) and one glTF camera per frame
            (:func:`gltf_cameras`); ``False`` writes the points only.
        frustum_scale: frustum depth in scene units; ``None`` picks :func:`auto_frustum_scale`.
        max_points: subsample to at most this many points (seeded, :func:`select_points`); ``None``: all.
        seed: seed of the subsampling.

    Returns:
        ``path``. Coordinates follow the module docstring (world flipped to glTF's y-up).

    Raises:
        ValueError: if no point survives the filter and there are no cameras to write, or for a
            non-positive ``frustum_scale``.
    """
    path = Path(path)
    sel = select_points(recon, conf_threshold=conf_threshold, max_points=max_points, seed=seed)
    cam2world = recon.cam2world.detach().cpu().double().numpy()
    if not len(sel["xyz"]) and not with_cameras:
        raise ValueError(f"{path}: no points to write (conf_threshold={conf_threshold})")
    if not len(sel["xyz"]):
        logger.warning("%s: no point passes conf_threshold=%s; writing cameras only", path, conf_threshold)
    scene = trimesh.Scene()
    if len(sel["xyz"]):
        colors = np.concatenate([to_uint8(sel["rgb"]), np.full((len(sel["xyz"]), 1), 255, np.uint8)], axis=1)
        cloud = trimesh.PointCloud(sel["xyz"].astype(np.float64) @ WORLD_TO_GLTF.T, colors=colors)
        scene.add_geometry(cloud, node_name="points", geom_name="points")
    add_cameras = None
    if with_cameras:
        if frustum_scale is None:
            frustum_scale = auto_frustum_scale(cam2world[:, :3, 3], sel["xyz"].astype(np.float64))
        if frustum_scale <= 0:
            raise ValueError(f"frustum_scale must be positive, got {frustum_scale}")
        K = recon.K.detach().cpu().double().numpy()
        for i, color in enumerate(time_colors(recon.num_frames)):
            mesh = frustum_mesh(cam2world[i], K[i], recon.image_size, frustum_scale, color)
            mesh.vertices = mesh.vertices @ WORLD_TO_GLTF.T
            scene.add_geometry(mesh, node_name=f"frustum_{i:03d}", geom_name=f"frustum_{i:03d}")
        cameras, nodes = gltf_cameras(cam2world, K, recon.image_size, znear=0.1 * frustum_scale)

        def add_cameras(tree: dict) -> None:
            """trimesh's ``tree_postprocessor``: append the cameras and their nodes to the glTF JSON."""
            first = len(tree.setdefault("cameras", []))
            tree["cameras"].extend(cameras)
            start = len(tree["nodes"])
            tree["nodes"].extend({**node, "camera": first + i} for i, node in enumerate(nodes))
            tree["scenes"][tree.get("scene", 0)].setdefault("nodes", []).extend(range(start, start + len(nodes)))

    atomic_write_bytes(path, scene.export(file_type="glb", tree_postprocessor=add_cameras))
    logger.info("%s: %d points, %s cameras", path, len(sel["xyz"]), recon.num_frames if with_cameras else 0)
    return path


__all__ = ["DEFAULT_KEEP_PERCENT", "MAX_POINTS", "WORLD_TO_GLTF", "auto_frustum_scale", "confidence_cut", "gltf_cameras", "frustum_mesh", "reconstruction_to_glb", "select_points",
           "write_ply"]
