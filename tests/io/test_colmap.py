"""COLMAP text models: the real maupertuis model, round trips, camera models, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jog3r.io.colmap import ColmapPoints, read_colmap_points3d, read_colmap_text, write_colmap_text


def _model(data_dir):
    return data_dir / "kapture_maupertuis" / "colmap" / "reconstruction"


def _rotmat_from_wxyz(w, x, y, z):
    """Hamilton quaternion (scalar first) -> rotation matrix, written out by hand as an independent check."""
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def test_real_model_values(data_dir):
    cams, points = read_colmap_text(_model(data_dir))
    assert cams.names == ("00.jpg", "01.jpg", "02.jpg", "03.jpg")  # sorted by name, file order is 4 3 1 2
    assert cams.extra["image_ids"] == [1, 2, 3, 4] and cams.extra["camera_models"] == ["SIMPLE_PINHOLE"] * 4
    assert cams.image_size == (1079, 1919) and cams.timestamps is None
    expected_K = [[1847.53, 0, 959.5], [0, 1847.53, 539.5], [0, 0, 1]]
    np.testing.assert_allclose(cams.K[0].numpy(), expected_K, rtol=1e-6)
    # Image 4 (03.jpg): "0.860298 0.0113506 0.344769 0.375358 -7.96417 -4.99505 4.3645".
    q = np.array([0.860298, 0.0113506, 0.344769, 0.375358])
    R = _rotmat_from_wxyz(*(q / np.linalg.norm(q)))
    world2cam = cams.world2cam[3].double().numpy()
    np.testing.assert_allclose(world2cam[:3, :3], R, atol=1e-6)
    np.testing.assert_allclose(world2cam[:3, 3], [-7.96417, -4.99505, 4.3645], atol=5e-6)
    assert len(points) == 1039 and points.ids[0] == 708
    np.testing.assert_allclose(points.xyz[0], [-2.39675, 4.62278, 13.2759])
    assert points.rgb[0].tolist() == [57, 57, 49] and points.error[0] == pytest.approx(0.326014)
    assert points.tracks[0].tolist() == [[2, 4561], [3, 3389], [1, 4975], [4, 3472]]
    assert cams.extra["points2d"][3][0].tolist() == [355.968, 4.50115, -1.0]


def test_real_model_reprojects(data_dir):
    """Every 3D point projects onto its 2D observations: checks quaternion order, direction and K together."""
    cams, points = read_colmap_text(_model(data_dir))
    index = {image_id: i for i, image_id in enumerate(cams.extra["image_ids"])}
    world2cam, K = cams.world2cam.double().numpy(), cams.K.double().numpy()
    errors = []
    for xyz, track in zip(points.xyz, points.tracks):
        for image_id, point2d_idx in track:
            i = index[int(image_id)]
            cam = world2cam[i, :3, :3] @ xyz + world2cam[i, :3, 3]
            assert cam[2] > 0
            uv = (K[i] @ (cam / cam[2]))[:2]
            errors.append(np.linalg.norm(uv - cams.extra["points2d"][i][point2d_idx, :2]))
    assert len(errors) == sum(len(t) for t in points.tracks) > 3000
    assert np.median(errors) < 1.0 and np.percentile(errors, 99) < 5.0


def test_round_trip_with_points(tmp_path, cameras):
    cam2world, K = cameras(4, seed=6)
    K[2] = K[0]  # 3 distinct cameras for 4 images
    rng = np.random.default_rng(0)
    points = ColmapPoints(
        ids=np.arange(1, 11, dtype=np.int64),
        xyz=rng.normal(size=(10, 3)),
        rgb=rng.integers(0, 256, size=(10, 3)).astype(np.uint8),
        error=rng.uniform(0, 2, size=10),
        tracks=tuple(np.array([[1 + i % 4, i]], dtype=np.int64) for i in range(10)),
    )
    points2d = [np.array([[10.5, 20.25, 1 + i], [3.0, 4.0, -1]]) for i in range(4)]
    names = ["b_10.png", "b_2.png", "b_3.png", "b_4.png"]  # natural order differs from text order
    write_colmap_text(tmp_path / "model", cam2world, K, (256, 384), names=names, points=points,
                      points2d=points2d)
    assert len((tmp_path / "model" / "cameras.txt").read_text().splitlines()) == 3 + 3

    back, back_pts = read_colmap_text(tmp_path / "model")
    order = [1, 2, 3, 0]  # b_2, b_3, b_4, b_10
    assert back.names == tuple(names[i] for i in order)
    assert back.extra["image_ids"] == [i + 1 for i in order]
    torch.testing.assert_close(back.cam2world, cam2world[order], atol=1e-6, rtol=0)
    torch.testing.assert_close(back.K, K[order], atol=1e-6, rtol=0)
    assert back.extra["camera_models"] == ["PINHOLE"] * 4
    np.testing.assert_allclose(back.extra["points2d"][3], points2d[0])
    np.testing.assert_array_equal(back_pts.ids, points.ids)
    np.testing.assert_allclose(back_pts.xyz, points.xyz, atol=1e-6)
    np.testing.assert_array_equal(back_pts.rgb, points.rgb)
    np.testing.assert_allclose(back_pts.error, points.error, atol=1e-6)
    assert [t.tolist() for t in back_pts.tracks] == [t.tolist() for t in points.tracks]


def test_real_model_rewrite(tmp_path, data_dir):
    cams, points = read_colmap_text(_model(data_dir))
    write_colmap_text(tmp_path / "m", cams.cam2world, cams.K, cams.image_size, names=cams.names,
                      points=points, points2d=cams.extra["points2d"])
    back, back_pts = read_colmap_text(tmp_path / "m")
    torch.testing.assert_close(back.cam2world, cams.cam2world, atol=1e-6, rtol=0)
    np.testing.assert_allclose(back_pts.xyz, points.xyz)
    assert back.extra["points2d"][0].shape == cams.extra["points2d"][0].shape


def _write_model(folder, camera_line, image_line="1 1 0 0 0 0 0 0 1 im.png", points_text=""):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cameras.txt").write_text("# c\n" + camera_line + "\n")
    (folder / "images.txt").write_text("# i\n" + image_line + "\n\n")
    (folder / "points3D.txt").write_text(points_text)
    return folder


@pytest.mark.parametrize(
    ("camera_line", "K", "distortion"),
    [
        ("1 SIMPLE_RADIAL 64 48 50 32 24 0.1", [50, 50, 32, 24], {"k": 0.1}),
        ("1 RADIAL 64 48 50 32 24 0.1 -0.2", [50, 50, 32, 24], {"k1": 0.1, "k2": -0.2}),
        ("1 OPENCV 64 48 50 51 32 24 0.1 0.2 0.003 0.004", [50, 51, 32, 24],
         {"k1": 0.1, "k2": 0.2, "p1": 0.003, "p2": 0.004}),
        ("1 PINHOLE 64 48 50 51 32 24", [50, 51, 32, 24], {}),
    ],
)
def test_camera_models(tmp_path, camera_line, K, distortion):
    cams, points = read_colmap_text(_write_model(tmp_path / "m", camera_line))
    fx, fy, cx, cy = K
    np.testing.assert_allclose(cams.K[0].numpy(), [[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    assert cams.extra["distortion"] == [distortion] and cams.image_size == (48, 64)
    torch.testing.assert_close(cams.cam2world[0], torch.eye(4))
    assert len(points) == 0  # an empty points3D.txt is a model without points


@pytest.mark.parametrize(
    ("camera_line", "image_line", "points_text", "message"),
    [
        ("1 FOV 64 48 50 32 24 0.1", "1 1 0 0 0 0 0 0 1 im.png", "", r"cameras.txt:2: unsupported.*'FOV'"),
        ("1 PINHOLE 64 48 50 32 24", "1 1 0 0 0 0 0 0 1 im.png", "", "PINHOLE needs 4 parameters"),
        ("1 PINHOLE 64 48 50 50 32 24", "1 1 0 0 0 0 0 0 7 im.png", "", r"images.txt:2: CAMERA_ID 7"),
        ("1 PINHOLE 64 48 50 50 32 24", "1 0 0 0 0 0 0 0 1 im.png", "", "zero norm"),
        ("1 PINHOLE 64 48 50 50 32 24", "1 1 0 0 0 0 0 1 im.png", "", "IMAGE_ID QW"),
        ("1 PINHOLE 64 48 50 50 32 24", "1 1 0 0 0 0 0 0 1 im.png", "1 0 0 0 300 0 0 0.1\n", "colours"),
        ("1 PINHOLE 64 48 50 50 32 24", "1 1 0 0 0 0 0 0 1 im.png", "1 0 0 0 1 2 3 0.1 1\n",
         r"points3D.txt:1"),
    ],
)
def test_bad_models_name_the_file(tmp_path, camera_line, image_line, points_text, message):
    folder = _write_model(tmp_path / "m", camera_line, image_line, points_text)
    with pytest.raises(ValueError, match=message):
        read_colmap_text(folder)


def test_missing_points_file_and_writer_checks(tmp_path, cameras):
    folder = _write_model(tmp_path / "m", "1 PINHOLE 64 48 50 50 32 24")
    (folder / "points3D.txt").unlink()
    with pytest.raises(FileNotFoundError, match="points3D.txt"):
        read_colmap_points3d(folder / "points3D.txt")
    assert read_colmap_text(folder, points=False)[1] is None
    cam2world, K = cameras(2, seed=7)
    bad = ColmapPoints(np.array([1]), np.zeros((1, 3)), np.zeros((1, 3), np.uint8), np.zeros(1),
                       (np.array([[5, 0]]),))
    with pytest.raises(ValueError, match="outside 1..2"):
        write_colmap_text(tmp_path / "w", cam2world, K, (256, 384), points=bad)
    with pytest.raises(ValueError, match="names"):
        write_colmap_text(tmp_path / "w", cam2world, K, (256, 384), names=["a\nb", "c"])


def test_camera_ids_follow_the_frames(tmp_path, cameras):
    """Per-frame intrinsics (a long run's focal varies) get CAMERA_IDs in frame order, shared ones keep one id:
    image 1 uses camera 1 (np.unique's sort by focal had given image 1 of a walk the last id)."""
    cam2world, K = cameras(4, seed=6)
    K[:, 0, 0] = K[:, 1, 1] = torch.tensor([140.0, 120.0, 140.0, 100.0], dtype=K.dtype)  # decreasing, one repeat
    K[:, 0, 2], K[:, 1, 2] = K[0, 0, 2], K[0, 1, 2]
    write_colmap_text(tmp_path, cam2world, K, (64, 96))
    ids = [int(line.split()[8]) for line in (tmp_path / "images.txt").read_text().splitlines()[4::2]]
    assert ids == [1, 2, 1, 3]
    cams, _ = read_colmap_text(tmp_path, points=False)
    assert cams.extra["camera_ids"] == [1, 2, 1, 3]
    np.testing.assert_allclose(cams.K.double().numpy(), K.double().numpy(), rtol=1e-6)
