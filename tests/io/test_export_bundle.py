"""export_all / zip_bundle: every file is written and reads back consistently (our readers, trimesh, PyAV)."""

from __future__ import annotations

import json
import zipfile

import cv2
import numpy as np
import pytest
import roma
import torch
import trimesh

from jog3r.geometry.camera import depth_to_world_points
from jog3r.io import read_colmap_text, read_re10k, read_transforms_json, read_tum
from jog3r.io.export_bundle import export_all, zip_bundle
from jog3r.types import Reconstruction
from jog3r.io.video import read_video

F, H, W = 4, 12, 16


@pytest.fixture
def recon() -> Reconstruction:
    gen = torch.Generator().manual_seed(0)
    cam2world = torch.eye(4).repeat(F, 1, 1)
    cam2world[:, :3, :3] = roma.rotvec_to_rotmat(0.1 * torch.randn(F, 3, generator=gen))
    cam2world[:, :3, 3] = torch.randn(F, 3, generator=gen)
    K = torch.tensor([[18.0, 0, 8.2], [0, 21.0, 5.9], [0, 0, 1]]).repeat(F, 1, 1)  # non-square pixels
    depth = 2.0 + torch.rand(F, H, W, generator=gen)
    conf = 1.0 + 9.0 * torch.rand(F, H, W, generator=gen)
    colors = torch.rand(F, H, W, 3, generator=gen)
    pts3d = depth_to_world_points(depth, K, cam2world)
    return Reconstruction(cam2world=cam2world, K=K, depth=depth, pts3d=pts3d, conf=conf, colors=colors)


def test_export_all_files_read_back(tmp_path, recon):
    frames = recon.colors.permute(0, 3, 1, 2).contiguous()
    metrics = {"RRA@5": torch.tensor(87.5), "per_frame": np.arange(3), "name": "synthetic"}
    paths = export_all(recon, tmp_path / "bundle", metrics=metrics, video_frames=frames, fps=8,
                       max_points=100)
    out = tmp_path / "bundle"
    for name in ["cameras_re10k.txt", "transforms.json", "colmap/cameras.txt", "colmap/images.txt",
                 "colmap/points3D.txt", "trajectory_tum.txt", "pointcloud.ply", "scene.glb",
                 "scene_no_cameras.glb", "depth/frame_00001.png", "depth/depth.npz", "images/frame_00004.png",
                 "video.mp4", "metrics.json", "CONVENTIONS.txt"]:
        assert (out / name).is_file(), name
    assert set(paths) == {"images", "video", "re10k", "transforms", "colmap", "tum", "ply", "glb",
                          "glb_no_cameras", "depth", "depth_npz", "metrics", "conventions"}
    threshold = float(np.quantile(recon.conf.numpy(), 0.4, method="lower"))  # default: the 60 % most confident

    re10k = read_re10k(paths["re10k"], (H, W))
    torch.testing.assert_close(re10k.cam2world, recon.cam2world, atol=1e-6, rtol=0)
    torch.testing.assert_close(re10k.K, recon.K, atol=1e-5, rtol=0)
    assert re10k.timestamps.tolist() == [0, 125_000, 250_000, 375_000]
    ns = read_transforms_json(paths["transforms"])
    torch.testing.assert_close(ns.cam2world, recon.cam2world, atol=1e-6, rtol=0)
    assert ns.extra["missing_images"] == [] and ns.image_size == (H, W)
    tum = read_tum(paths["tum"])
    torch.testing.assert_close(tum.cam2world, recon.cam2world, atol=1e-6, rtol=0)
    assert tum.timestamps.tolist() == re10k.timestamps.tolist()

    # COLMAP: each point is observed at the centre of the pixel it came from, so it reprojects exactly there.
    cams, points = read_colmap_text(paths["colmap"])
    torch.testing.assert_close(cams.cam2world, recon.cam2world, atol=1e-6, rtol=0)
    assert cams.names == tuple(f"frame_{i:05d}.png" for i in range(1, F + 1))
    assert len(points) == int((recon.conf >= threshold).sum())  # below colmap_max_points: all of them
    world2cam, K = cams.world2cam.double().numpy(), cams.K.double().numpy()
    for xyz, track in zip(points.xyz, points.tracks):
        (image_id, k), = track
        i = image_id - 1
        cam = world2cam[i, :3, :3] @ xyz + world2cam[i, :3, 3]
        uv = (K[i] @ (cam / cam[2]))[:2]
        obs = cams.extra["points2d"][i][k]
        np.testing.assert_allclose(uv, obs[:2], atol=1e-3)
        u, v = int(obs[0] - 0.5), int(obs[1] - 0.5)
        assert obs[0] - 0.5 == u and recon.conf[i, v, u] >= threshold

    cloud = trimesh.load(paths["ply"])
    conf = cloud.metadata["_ply_raw"]["vertex"]["data"]["confidence"]
    assert len(cloud.vertices) == 100 and (conf >= threshold).all()
    scene = trimesh.load(paths["glb"])
    assert len(scene.geometry) == F + 1 and len(scene.geometry["points"].vertices) == 100
    assert list(trimesh.load(paths["glb_no_cameras"]).geometry) == ["points"]

    npz = np.load(paths["depth_npz"])
    np.testing.assert_array_equal(npz["depth"], recon.depth.numpy())
    png = cv2.imread(str(out / "depth" / "frame_00002.png"), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16 and png.shape == (H, W) and png.max() <= 65535
    scale = npz["png_scale"]
    np.testing.assert_allclose(png / scale, recon.depth[1].numpy(), atol=0.5 / scale + 1e-6)
    rgb = cv2.cvtColor(cv2.imread(str(out / "images" / "frame_00001.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_allclose(rgb / 255.0, recon.colors[0].numpy(), atol=0.5 / 255 + 1e-6)
    video, _ = read_video(paths["video"])
    assert video.frames.shape == (F, 3, H, W) and video.fps == 8

    expected = {"RRA@5": 87.5, "per_frame": [0, 1, 2], "name": "synthetic"}
    assert json.loads(paths["metrics"].read_text()) == expected
    conventions = paths["conventions"].read_text().splitlines()
    for name in ["cameras_re10k.txt", "transforms.json", "colmap/", "trajectory_tum.txt", "pointcloud.ply",
                 "scene.glb", "scene_no_cameras.glb", "images/", "depth/", "video.mp4", "metrics.json"]:
        assert sum(line.startswith(name) for line in conventions) == 1, name
    assert f"depth = value / {npz['png_scale']:.9g}" in paths["conventions"].read_text()


def test_zip_bundle(tmp_path, recon):
    export_all(recon, tmp_path / "run", max_points=50)
    archive = zip_bundle(tmp_path / "run")
    assert archive == tmp_path / "run.zip"
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        assert names == sorted(names) and "run/colmap/images.txt" in names and "run/video.mp4" not in names
        assert z.read("run/transforms.json") == (tmp_path / "run" / "transforms.json").read_bytes()
    with pytest.raises(FileNotFoundError, match="not a folder"):
        zip_bundle(tmp_path / "missing")


def test_export_all_rejects_bad_input(tmp_path, recon):
    with pytest.raises(ValueError, match=r"video_frames must be \[4, 3, 12, 16\]"):
        export_all(recon, tmp_path / "a", video_frames=torch.zeros(4, 3, 8, 8))
    bad = Reconstruction(recon.cam2world, recon.K[:2], recon.depth, recon.pts3d, recon.conf, recon.colors)
    with pytest.raises(ValueError, match=r"Reconstruction.K has shape \(2, 3, 3\)"):
        export_all(bad, tmp_path / "b")
    with pytest.raises(ValueError, match="no point has conf >= 100"):
        export_all(recon, tmp_path / "c", conf_threshold=100.0)
    with pytest.raises(ValueError, match="fps"):
        export_all(recon, tmp_path / "d", fps=0)


def test_every_export_records_the_source_frames(tmp_path, recon):
    """B8: frames 0, 20, 40, 60 of a 30 fps source keep their numbers in every file of the bundle."""
    indices = [0, 20, 40, 60]
    paths = export_all(recon, tmp_path / "b", frame_indices=torch.tensor(indices), fps=1.5, max_points=50,
                       metrics={"RRA@5": 50.0})
    names = [f"frame_{i + 1:05d}.png" for i in indices]  # 1-based source frame numbers
    assert sorted(p.name for p in (tmp_path / "b" / "images").iterdir()) == names
    assert sorted(p.name for p in (tmp_path / "b" / "depth").glob("*.png")) == names
    assert read_colmap_text(paths["colmap"])[0].names == tuple(names)
    ns = json.loads(paths["transforms"].read_text())
    assert [f["source_frame_index"] for f in ns["frames"]] == indices
    assert [f["file_path"] for f in ns["frames"]] == [f"images/{n}" for n in names]
    micro = [round(i * 1e6 / 30) for i in indices]  # source fps = 1.5 fps x 20 frames apart
    re10k = read_re10k(paths["re10k"], (H, W))
    assert re10k.timestamps.tolist() == micro
    assert re10k.extra["url"] == "# source frames (0-based): 0 20 40 60"
    assert read_tum(paths["tum"]).timestamps.tolist() == micro
    assert "# source frames (0-based): 0 20 40 60" in paths["tum"].read_text()
    assert json.loads(paths["metrics"].read_text()) == {"source_frame_indices": indices, "source_fps": 30.0,
                                                         "RRA@5": 50.0}
    assert np.load(paths["depth_npz"])["frame_indices"].tolist() == indices
    assert "Frames: source frames (0-based): 0 20 40 60 (source at 30 fps)" in paths["conventions"].read_text()
    # without metrics the indices still get a metrics.json; explicit source fps wins over the inferred one
    paths = export_all(recon, tmp_path / "c", frame_indices=indices, source_fps=25.0, max_points=50)
    assert json.loads(paths["metrics"].read_text())["source_fps"] == 25.0
    assert read_tum(paths["tum"]).timestamps.tolist() == [round(i * 1e6 / 25) for i in indices]
    for bad in ([0, 0, 1, 2], [0, 1, 2], [-1, 0, 1, 2], [0.5, 1, 2, 3]):
        with pytest.raises(ValueError, match="frame_indices"):
            export_all(recon, tmp_path / "d", frame_indices=bad)
