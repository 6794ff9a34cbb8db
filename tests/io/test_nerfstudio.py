"""nerfstudio / instant-ngp transforms.json: the real fox files, round trips, intrinsics variants, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jog3r.io.nerfstudio import read_transforms_json, write_transforms_json

FLIP = np.diag([1.0, -1.0, -1.0, 1.0])


def _fox(data_dir: Path) -> Path:
    return data_dir / "instant_ngp_fox"


def test_real_fox_images_4(data_dir):
    path = _fox(data_dir) / "transforms_images_4.json"
    meta = json.loads(path.read_text())
    cams = read_transforms_json(path)

    assert cams.num_frames == 50 and cams.image_size == (480, 270)
    assert cams.extra["missing_images"] == []
    with Image.open(cams.extra["image_paths"][0]) as im:
        assert (im.height, im.width) == cams.image_size
    assert cams.names[0] == "images_4/0001.jpg" and cams.names[-1] == "images_4/0115.jpg"
    expected_K = np.array([[343.88, 0, 138.6395], [0, 343.6225, 241.317], [0, 0, 1]])
    np.testing.assert_allclose(cams.K.numpy(), np.broadcast_to(expected_K, (50, 3, 3)), rtol=1e-6)
    expected_dist = {"k1": 0.0578421, "k2": -0.0805099, "p1": -0.000980296, "p2": 0.00015575}
    assert cams.extra["distortion"][0] == expected_dist
    assert cams.extra["meta"] == {"aabb_scale": 4}
    for i in (0, 17, 49):
        gl = np.asarray(meta["frames"][i]["transform_matrix"])
        np.testing.assert_allclose(cams.cam2world[i].numpy(), gl @ FLIP, atol=1e-6)
        # OpenCV +z (viewing direction) is OpenGL -z.
        np.testing.assert_allclose(cams.cam2world[i, :3, 2].numpy(), -gl[:3, 2], atol=1e-6)


def test_real_fox_cameras_look_at_the_figurine(data_dir):
    """After the OpenGL -> OpenCV flip, the point nearest to all optical axes is in front of every camera."""
    cams = read_transforms_json(_fox(data_dir) / "transforms_images_4.json")
    c2w = cams.cam2world.double().numpy()
    centres, dirs = c2w[:, :3, 3], c2w[:, :3, 2]
    # Least-squares point closest to all rays: sum (I - d d^T) (x - c) = 0.
    proj = np.eye(3) - dirs[:, :, None] * dirs[:, None, :]
    target = np.linalg.solve(proj.sum(0), (proj @ centres[:, :, None]).sum(0))[:, 0]
    z_in_camera = np.einsum("fij,fi->fj", c2w[:, :3, :3], target - centres)[:, 2]
    assert (z_in_camera > 0).all()


def test_real_fox_original_reports_missing_images(data_dir, caplog):
    full = read_transforms_json(_fox(data_dir) / "transforms.json")
    small = read_transforms_json(_fox(data_dir) / "transforms_images_4.json")
    assert full.num_frames == 67 and full.image_size == (1920, 1080)
    assert len(full.extra["missing_images"]) == 67  # only images_4/ is copied into the repo
    assert "67 of 67 images are missing" in caplog.text
    np.testing.assert_allclose(full.K[0, 0, 0].item(), 1375.52, rtol=1e-6)
    # The 50 frames that exist at 1/4 size have the same cameras and K / 4.
    by_name = {Path(n).name: i for i, n in enumerate(full.names)}
    idx = [by_name[Path(n).name] for n in small.names]
    torch.testing.assert_close(full.cam2world[idx], small.cam2world, atol=1e-6, rtol=0)
    torch.testing.assert_close(full.K[idx, :2] / 4, small.K[:, :2], atol=1e-3, rtol=0)


@pytest.mark.parametrize("shared_K", [True, False])
def test_round_trip(tmp_path, cameras, shared_K):
    cam2world, K = cameras(5, seed=4, shared_K=shared_K)
    dist = {"k1": 0.01, "k2": -0.002, "p1": 1e-4, "p2": -2e-4}
    names = [f"rgb/{i:03d}.jpg" for i in range(5)]
    path = write_transforms_json(tmp_path / "transforms.json", cam2world, K, (256, 384), file_paths=names,
                                 distortion=dist, meta={"aabb_scale": 16})
    back = read_transforms_json(path)
    torch.testing.assert_close(back.cam2world, cam2world, atol=1e-6, rtol=0)
    torch.testing.assert_close(back.K, K, atol=1e-6, rtol=0)
    assert back.names == tuple(names) and back.image_size == (256, 384)
    assert back.extra["distortion"] == [dist] * 5 and back.extra["camera_model"] == "OPENCV"
    assert back.extra["missing_images"] == names
    raw = json.loads(path.read_text())
    assert ("fl_x" in raw) == shared_K and ("fl_x" in raw["frames"][0]) != shared_K
    if shared_K:  # instant-ngp readers use camera_angle_x
        assert math.isclose(raw["camera_angle_x"], 2 * math.atan(192 / K[0, 0, 0].item()), rel_tol=1e-9)


def test_camera_angle_only_and_size_from_image(tmp_path):
    Image.new("RGB", (40, 30)).save(tmp_path / "a.png")
    frame = {"file_path": "a", "transform_matrix": np.eye(4).tolist()}  # no suffix: NeRF-synthetic style
    (tmp_path / "t.json").write_text(json.dumps({"camera_angle_x": 0.8, "frames": [frame]}))
    cams = read_transforms_json(tmp_path / "t.json")
    assert cams.image_size == (30, 40) and cams.extra["missing_images"] == []
    fx = 20 / math.tan(0.4)
    np.testing.assert_allclose(cams.K[0].numpy(), [[fx, 0, 20], [0, fx, 15], [0, 0, 1]], rtol=1e-6)


def test_per_frame_intrinsics_override(tmp_path):
    frames = [
        {"file_path": "x.png", "transform_matrix": np.eye(4).tolist()},
        {"file_path": "y.png", "transform_matrix": np.eye(4)[:3].tolist(), "fl_x": 50.0, "w": 64, "h": 48},
    ]
    meta = {"fl_x": 30.0, "fl_y": 31.0, "cx": 16.0, "cy": 12.0, "w": 32, "h": 24, "frames": frames}
    (tmp_path / "t.json").write_text(json.dumps(meta))
    cams = read_transforms_json(tmp_path / "t.json", check_images=False)
    assert cams.K[1, 0, 0].item() == 50.0 and cams.K[1, 1, 1].item() == 31.0
    assert cams.extra["image_sizes"] == [(24, 32), (48, 64)] and cams.image_size == (24, 32)
    assert cams.extra["image_paths"] == [None, None]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"frames": []}), "non-empty 'frames'"),
        (json.dumps({"fl_x": 1, "w": 2, "h": 2, "frames": [{"file_path": "a"}]}), "frame 0 needs"),
        (json.dumps({"fl_x": 1, "w": 2, "h": 2,
                     "frames": [{"file_path": "a", "transform_matrix": [[1, 2]]}]}), "finite 4x4"),
        (json.dumps({"fl_x": 1, "w": 2, "h": 2,
                     "frames": [{"file_path": "a", "transform_matrix": (2 * np.eye(4)).tolist()}]}),
         "not a rotation"),
        (json.dumps({"w": 2, "h": 2, "frames": [{"file_path": "a", "transform_matrix": np.eye(4).tolist()}]}),
         "neither 'fl_x' nor 'camera_angle_x'"),
        (json.dumps({"fl_x": 1, "frames": [{"file_path": "a", "transform_matrix": np.eye(4).tolist()}]}),
         "size is unknown"),
    ],
)
def test_bad_files_name_the_file(tmp_path, content, message):
    (tmp_path / "broken.json").write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        read_transforms_json(tmp_path / "broken.json")
    assert "broken.json" in str(info.value)


def test_writer_rejects_bad_input(tmp_path, cameras):
    cam2world, K = cameras(2, seed=5)
    with pytest.raises(ValueError, match="file_paths"):
        write_transforms_json(tmp_path / "t.json", cam2world, K, (256, 384), file_paths=["a"])
    with pytest.raises(ValueError, match="unknown distortion"):
        write_transforms_json(tmp_path / "t.json", cam2world, K, (256, 384), distortion={"k9": 1.0})
    with pytest.raises(ValueError, match="clash"):
        write_transforms_json(tmp_path / "t.json", cam2world, K, (256, 384), meta={"w": 3})
    with pytest.raises(FileNotFoundError, match="none.json"):
        read_transforms_json(tmp_path / "none.json")


def test_unreadable_image_for_size_is_named(tmp_path):
    (tmp_path / "a.png").write_bytes(b"not a png")
    frame = {"file_path": "a.png", "transform_matrix": np.eye(4).tolist()}
    (tmp_path / "t.json").write_text(json.dumps({"camera_angle_x": 0.8, "frames": [frame]}))
    with pytest.raises(ValueError, match=r"a.png: cannot read the image"):
        read_transforms_json(tmp_path / "t.json")
