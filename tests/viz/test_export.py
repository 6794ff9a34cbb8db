"""PLY and GLB export: files read back with trimesh, axes, frustum geometry and the red -> purple ramp."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import roma
import torch
import trimesh

from jog3r.geometry.camera import depth_to_world_points
from jog3r.types import Reconstruction
from jog3r.viz.colors import time_colors, to_uint8
from jog3r.io.scene import (
    WORLD_TO_GLTF,
    auto_frustum_scale,
    reconstruction_to_glb,
    select_points,
    write_ply,
)


def make_recon(F: int = 5, H: int = 12, W: int = 16) -> Reconstruction:
    """Cameras sliding along +x and turning a little, looking at a noisy wall ~3 units ahead."""
    gen = torch.Generator().manual_seed(0)
    cam2world = torch.eye(4).repeat(F, 1, 1)
    for i in range(F):
        a = 0.05 * i
        c, s = np.cos(a), np.sin(a)
        cam2world[i, :3, :3] = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        cam2world[i, 0, 3] = 0.3 * i
    K = torch.tensor([[20.0, 0, W / 2], [0, 22.0, H / 2], [0, 0, 1]]).repeat(F, 1, 1)
    depth = 3.0 + 0.2 * torch.rand(F, H, W, generator=gen)
    return Reconstruction(
        cam2world=cam2world, K=K, depth=depth, pts3d=depth_to_world_points(depth, K, cam2world),
        conf=1.0 + 4.0 * torch.rand(F, H, W, generator=gen), colors=torch.rand(F, H, W, 3, generator=gen),
    )


def _ply_data(path):
    cloud = trimesh.load(path)
    return cloud, cloud.metadata["_ply_raw"]["vertex"]["data"]


def test_ply_round_trip_through_trimesh(tmp_path):
    rng = np.random.default_rng(0)
    pts, rgb, conf = rng.normal(size=(100, 3)), rng.random((100, 3)), rng.uniform(1, 9, 100)
    path = write_ply(tmp_path / "cloud.ply", torch.from_numpy(pts), rgb, torch.from_numpy(conf))
    assert path.read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")
    cloud, raw = _ply_data(path)
    assert isinstance(cloud, trimesh.PointCloud)
    np.testing.assert_allclose(cloud.vertices, pts.astype(np.float32), rtol=0, atol=0)
    np.testing.assert_array_equal(cloud.colors[:, :3], to_uint8(rgb))
    np.testing.assert_array_equal(raw["confidence"], conf.astype(np.float32))


def test_ply_without_conf_and_uint8_colours(tmp_path):
    rgb = np.array([[255, 0, 0], [0, 128, 255]], dtype=np.uint8)
    path = write_ply(tmp_path / "c.ply", np.zeros((2, 3)), rgb)
    cloud, raw = _ply_data(path)
    assert "confidence" not in raw.dtype.names
    np.testing.assert_array_equal(cloud.colors[:, :3], rgb)
    assert b"property float confidence" not in path.read_bytes()[:400]


@pytest.mark.parametrize(
    ("pts", "colors", "conf", "message"),
    [(np.zeros((3, 2)), np.zeros((3, 3)), None, r"pts3d must have shape \[N, 3\]"),
     (np.zeros((3, 3)), np.zeros((2, 3)), None, "colors has 2 rows"),
     (np.full((3, 3), np.nan), np.zeros((3, 3)), None, "NaN"),
     (np.zeros((3, 3)), np.zeros((3, 3)), np.zeros(2), r"conf must be \[3\]")],
)
def test_ply_rejects_bad_input(tmp_path, pts, colors, conf, message):
    with pytest.raises(ValueError, match=message):
        write_ply(tmp_path / "x.ply", pts, colors, conf)


def test_select_points_threshold_subsample_and_index():
    recon = make_recon()
    pts = recon.pts3d.clone()
    pts[0, 0, 0] = float("nan")
    recon = Reconstruction(recon.cam2world, recon.K, recon.depth, pts, recon.conf, recon.colors)
    sel = select_points(recon, conf_threshold=3.0)
    expected = ((recon.conf >= 3.0) & torch.isfinite(pts).all(-1)).reshape(-1)
    assert sel["index"].tolist() == torch.nonzero(expected).reshape(-1).tolist()
    f, v, u = np.unravel_index(sel["index"], recon.depth.shape)
    np.testing.assert_array_equal(sel["xyz"], recon.pts3d[f, v, u].numpy())
    np.testing.assert_array_equal(sel["rgb"], recon.colors[f, v, u].numpy())
    a = select_points(recon, max_points=50, seed=3)
    b = select_points(recon, max_points=50, seed=3)
    assert len(a["index"]) == 50 and (a["index"] == b["index"]).all() and (np.diff(a["index"]) > 0).all()
    with pytest.raises(ValueError, match="max_points"):
        select_points(recon, max_points=0)


def test_glb_points_cameras_and_time_colours(tmp_path):
    recon = make_recon()
    path = reconstruction_to_glb(recon, tmp_path / "scene.glb", conf_threshold=2.0, frustum_scale=0.25)
    scene = trimesh.load(path)
    names = sorted(scene.geometry)
    assert names == ["frustum_000", "frustum_001", "frustum_002", "frustum_003", "frustum_004", "points"]

    sel = select_points(recon, conf_threshold=2.0, max_points=200_000)
    cloud = scene.geometry["points"]
    np.testing.assert_allclose(cloud.vertices, sel["xyz"] @ WORLD_TO_GLTF.T, atol=1e-6)
    np.testing.assert_array_equal(cloud.colors[:, :3], to_uint8(sel["rgb"]))

    ramp = to_uint8(time_colors(5))
    c2w = recon.cam2world.double().numpy()
    for i in range(5):
        mesh = scene.geometry[f"frustum_{i:03d}"]
        assert (mesh.visual.vertex_colors[:, :3] == ramp[i]).all()
        world = mesh.vertices @ WORLD_TO_GLTF  # back to world (the flip is its own inverse)
        np.testing.assert_allclose(world[0], c2w[i, :3, 3], atol=1e-6)  # apex at the camera centre
        in_cam = (world - c2w[i, :3, 3]) @ c2w[i, :3, :3]
        np.testing.assert_allclose(in_cam[1:, 2], 0.25, atol=1e-6)  # base in front of the camera (OpenCV +z)
        K = recon.K[i].double().numpy()
        uv = (in_cam[1:5] / in_cam[1:5, 2:]) @ K.T
        corners = [[0, 0], [16, 0], [16, 12], [0, 12]]
        np.testing.assert_allclose(uv[:, :2], corners, atol=1e-4)  # GLB stores float32
        assert (in_cam[5:, 1] < 0.1).all() and in_cam[7, 1] < in_cam[5, 1]  # "up" triangle above the top edge
    first, last = (colorsys.rgb_to_hsv(*(c / 255.0)) for c in ramp[[0, -1]])
    assert first[0] == pytest.approx(0.0, abs=1e-3) and last[0] * 360 == pytest.approx(280, abs=2)
    # glTF is y-up: the world's "down" (OpenCV +y) becomes -y, the cameras' view direction -z.
    assert np.median(cloud.vertices[:, 2]) < 0


def test_glb_without_cameras_and_auto_scale(tmp_path):
    recon = make_recon()
    path = reconstruction_to_glb(recon, tmp_path / "pts.glb", with_cameras=False, max_points=100)
    scene = trimesh.load(path)
    assert list(scene.geometry) == ["points"] and len(scene.geometry["points"].vertices) == 100
    centres = recon.cam2world[:, :3, 3].double().numpy()
    scale = auto_frustum_scale(centres, recon.pts3d.reshape(-1, 3).double().numpy())
    median_spacing = np.median([0.3 * k for k in (1, 1, 1, 1, 2, 2, 2, 3, 3, 4)])
    assert scale == pytest.approx(0.1 * median_spacing)  # inside the [1 %, 5 %] band of the scene
    scene = trimesh.load(reconstruction_to_glb(recon, tmp_path / "auto.glb"))
    mesh = scene.geometry["frustum_002"]
    depth = ((mesh.vertices @ WORLD_TO_GLTF - centres[2]) @ recon.cam2world[2, :3, :3].double().numpy())[1, 2]
    assert depth == pytest.approx(scale, rel=1e-6)
    assert auto_frustum_scale(np.zeros((3, 3)), np.zeros((0, 3))) == 1.0


def test_glb_with_no_confident_points(tmp_path, caplog):
    recon = make_recon()
    with pytest.raises(ValueError, match="no points to write"):
        reconstruction_to_glb(recon, tmp_path / "x.glb", conf_threshold=100.0, with_cameras=False)
    scene = trimesh.load(reconstruction_to_glb(recon, tmp_path / "y.glb", conf_threshold=100.0))
    assert "points" not in scene.geometry and len(scene.geometry) == 5
    assert "writing cameras only" in caplog.text


def _gltf_json(path) -> dict:
    """The JSON chunk of a GLB file (glTF 2.0 binary: 12-byte header, then a JSON chunk)."""
    import json
    import struct

    data = path.read_bytes()
    magic, version, _ = struct.unpack_from("<4sII", data, 0)
    length, kind = struct.unpack_from("<I4s", data, 12)
    assert magic == b"glTF" and version == 2 and kind == b"JSON"
    return json.loads(data[20:20 + length])


def test_glb_has_a_gltf_camera_per_frame_with_its_field_of_view(tmp_path):
    """Blender (and any glTF viewer) imports one camera object per frame: a perspective glTF camera with the frame's
    vertical field of view and aspect ratio, on a node posed like the frame (glTF cameras look down -z, y up)."""
    recon = make_recon()  # K: fx 20, fy 22 on 16x12 frames (non-square pixels)
    path = reconstruction_to_glb(recon, tmp_path / "scene.glb", frustum_scale=0.25)
    tree = _gltf_json(path)
    assert len(tree["cameras"]) == 5
    nodes = {n["name"]: n for n in tree["nodes"] if "name" in n}
    roots = set(tree["scenes"][tree["scene"]]["nodes"])
    c2w = recon.cam2world.double().numpy()
    for i in range(5):
        node = nodes[f"camera_{i:03d}"]
        assert tree["nodes"].index(node) in roots and "mesh" not in node
        cam = tree["cameras"][node["camera"]]
        assert cam["type"] == "perspective" and cam["name"] == f"camera_{i:03d}"
        persp = cam["perspective"]
        assert persp["yfov"] == pytest.approx(2 * np.arctan(12 / 2 / 22.0))
        assert persp["aspectRatio"] == pytest.approx((16 / 20.0) / (12 / 22.0))  # tan(hfov/2) / tan(vfov/2)
        assert 0 < persp["znear"] < 0.25 and persp.get("zfar", np.inf) > persp["znear"]
        rot = roma.unitquat_to_rotmat(torch.tensor(node["rotation"], dtype=torch.float64)).numpy()  # glTF: XYZW
        assert np.linalg.norm(node["rotation"]) == pytest.approx(1.0)
        expected = WORLD_TO_GLTF @ c2w[i, :3, :3] @ np.diag([1.0, -1.0, -1.0])  # OpenCV camera -> glTF camera
        np.testing.assert_allclose(rot, expected, atol=1e-6)
        np.testing.assert_allclose(node["translation"], WORLD_TO_GLTF @ c2w[i, :3, 3], atol=1e-6)
        assert node["extras"]["frame"] == i
    # the points-only file has no cameras; trimesh reads the first camera back with its field of view
    assert "cameras" not in _gltf_json(reconstruction_to_glb(recon, tmp_path / "p.glb", with_cameras=False))
    back = trimesh.load(path)
    assert back.camera.fov[1] == pytest.approx(np.degrees(2 * np.arctan(6 / 22.0)), rel=1e-5)
