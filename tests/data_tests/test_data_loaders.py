"""Real-data loaders: every example in tests/data loads with cameras matching the files; bad input is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from jog3r.data.datasets import load_colmap, load_re10k_clip, load_transforms_json, read_captions, read_rgb_image
from jog3r.data.sampling import ClipDataset

DATA = Path(__file__).parents[1] / "data"
RE10K = DATA / "realestate10k"
RE10K_TXT = sorted(RE10K.glob("clips*/*.txt"))


def _file_cameras(txt: Path, H: int, W: int):
    """Independent parse of a RealEstate10K txt: (cam2world [F,4,4], K [F,3,3]) as float64 numpy."""
    rows = np.loadtxt(txt, skiprows=1, ndmin=2)
    w2c = np.tile(np.eye(4), (len(rows), 1, 1))
    w2c[:, :3, :4] = rows[:, 7:].reshape(-1, 3, 4)
    K = np.zeros((len(rows), 3, 3))
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = rows[:, 1] * W, rows[:, 2] * H, rows[:, 3] * W, rows[:, 4] * H, 1
    return np.linalg.inv(w2c), K


def test_all_realestate10k_windows_are_present():
    assert len(RE10K_TXT) == 18


@pytest.mark.parametrize("txt", RE10K_TXT, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_realestate10k_clip_matches_its_camera_file(txt):
    clip = load_re10k_clip(txt, indices=[0, 3, 1])  # any order; only these frames are decoded
    H, W = clip.frames.shape[-2:]
    assert f"{W}x{H}" in txt.parent.name
    c2w, K = _file_cameras(txt, H, W)
    assert clip.frame_indices.tolist() == [0, 3, 1]
    np.testing.assert_allclose(clip.cam2world.numpy(), c2w[[0, 3, 1]], atol=1e-5)
    np.testing.assert_allclose(clip.K.numpy(), K[[0, 3, 1]], rtol=1e-6)
    assert clip.name == txt.stem and clip.frames.dtype == torch.float32


def test_realestate10k_video_and_frames_folder_agree():
    txt = RE10K / "clips16_384x256" / "0c9b371cc6225682.txt"
    from_mp4 = load_re10k_clip(txt)
    from_jpg = load_re10k_clip(txt, RE10K / "clips16_384x256" / "frames" / txt.stem)
    assert from_mp4.num_frames == from_jpg.num_frames == 16
    assert (from_mp4.frames - from_jpg.frames).abs().mean() < 0.02  # two lossy encodings of the same frames
    assert torch.equal(from_mp4.cam2world, from_jpg.cam2world)


def test_resize_adjusts_intrinsics():
    txt = RE10K / "clips14_576x320" / "0bf152ef84195293_svd.txt"
    full = load_re10k_clip(txt, indices=[0])
    small = load_re10k_clip(txt, indices=[0], size=(128, 192))  # 576x320 -> cover 230x128 -> crop 192
    assert small.frames.shape == (1, 3, 128, 192)
    k, k_full = small.K[0].tolist(), full.K[0].tolist()
    assert k[0][0] == pytest.approx(k_full[0][0] * 230 / 576, rel=1e-5)
    assert k[1][1] == pytest.approx(k_full[1][1] * 128 / 320, rel=1e-5)
    assert k[0][2] == pytest.approx(96.0, abs=1e-3) and k[1][2] == pytest.approx(64.0, abs=1e-3)


def test_nerfstudio_fox_opengl_to_opencv():
    path = DATA / "instant_ngp_fox" / "transforms_images_4.json"
    clip = load_transforms_json(path)
    meta = json.loads(path.read_text())
    frames = sorted(meta["frames"], key=lambda f: f["file_path"])
    assert clip.num_frames == len(frames) == 50 and clip.frames.shape[-2:] == (480, 270)
    gl = np.array([f["transform_matrix"] for f in frames])
    np.testing.assert_allclose(clip.cam2world.numpy(), gl @ np.diag([1.0, -1, -1, 1]), atol=1e-5)
    assert float(clip.K[0, 0, 0]) == pytest.approx(meta["fl_x"]) and float(clip.K[0, 1, 2]) == pytest.approx(meta["cy"])


def test_nerfstudio_missing_images_are_an_error():
    with pytest.raises(ValueError, match=r"transforms\.json: 67 of 67 listed images are missing"):
        load_transforms_json(DATA / "instant_ngp_fox" / "transforms.json")


def test_colmap_maupertuis_matches_images_txt():
    root = DATA / "kapture_maupertuis" / "colmap"
    clip = load_colmap(root / "reconstruction", root / "images", size=(108, 192))
    assert clip.num_frames == 4 and clip.frames.shape[-2:] == (108, 192)
    for line in (root / "reconstruction" / "images.txt").read_text().splitlines():
        tok = line.split()
        if len(tok) == 10 and tok[9].endswith(".jpg"):
            qw, qx, qy, qz, tx, ty, tz = map(float, tok[1:8])
            k = ["00.jpg", "01.jpg", "02.jpg", "03.jpg"].index(tok[9])
            w2c = np.eye(4)
            w2c[:3, :3] = Rotation.from_quat([qx, qy, qz, qw]).as_matrix()
            w2c[:3, 3] = [tx, ty, tz]
            np.testing.assert_allclose(clip.cam2world[k].numpy(), np.linalg.inv(w2c), atol=1e-4)
    assert float(clip.K[0, 0, 0]) == pytest.approx(1847.53 * 108 / 1079, rel=2e-3)


# ---------------------------------------------------------------- bad input

@pytest.fixture
def clip_copy(tmp_path):
    src = RE10K / "clips16_384x256"
    for name in ("0c9b371cc6225682.txt", "0c9b371cc6225682.mp4"):
        shutil.copy(src / name, tmp_path / name)
    shutil.copytree(src / "frames" / "0c9b371cc6225682", tmp_path / "frames" / "0c9b371cc6225682")
    return tmp_path


@pytest.mark.parametrize("change", ["extra_pose", "missing_pose"])
def test_pose_count_mismatch_names_both_files(clip_copy, change):
    txt = clip_copy / "0c9b371cc6225682.txt"
    lines = txt.read_text().splitlines()
    lines = lines + [lines[-1]] if change == "extra_pose" else lines[:-1]
    txt.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"0c9b371cc6225682\.txt has 1[57] camera lines but .*\.mp4 has 16 frames"):
        load_re10k_clip(txt)


def test_missing_frame_image_is_an_error(clip_copy):
    (clip_copy / "frames" / "0c9b371cc6225682" / "07.jpg").unlink()
    with pytest.raises(ValueError, match="16 camera lines but .*frames.* has 15 frames"):
        load_re10k_clip(clip_copy / "0c9b371cc6225682.txt", clip_copy / "frames" / "0c9b371cc6225682")


def test_truncated_video_is_an_error(clip_copy):
    mp4 = clip_copy / "0c9b371cc6225682.mp4"
    mp4.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"0c9b371cc6225682\.mp4"):
        load_re10k_clip(clip_copy / "0c9b371cc6225682.txt")


def test_missing_video_is_an_error(clip_copy):
    (clip_copy / "0c9b371cc6225682.mp4").unlink()
    shutil.rmtree(clip_copy / "frames")
    with pytest.raises(FileNotFoundError, match="no video 0c9b371cc6225682.mp4"):
        load_re10k_clip(clip_copy / "0c9b371cc6225682.txt")


def test_non_rgb_image_is_an_error(clip_copy):
    frame = clip_copy / "frames" / "0c9b371cc6225682" / "03.jpg"
    Image.open(frame).convert("L").save(frame)
    with pytest.raises(ValueError, match=r"03\.jpg: expected an RGB image, got mode 'L'"):
        load_re10k_clip(clip_copy / "0c9b371cc6225682.txt", clip_copy / "frames" / "0c9b371cc6225682")
    with pytest.raises(ValueError, match="expected an RGB image"):
        read_rgb_image(frame)


def test_unreadable_captions_file_is_an_error(clip_copy):
    (clip_copy / "captions.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"captions\.json: unreadable captions file"):
        ClipDataset(clip_copy)
    (clip_copy / "captions.json").write_text('{"a": 3}')
    with pytest.raises(ValueError, match="mapping clip ids to strings"):
        read_captions(clip_copy / "captions.json")


def test_camera_file_without_media_in_dataset_folder_is_an_error(clip_copy):
    (clip_copy / "orphan.txt").write_text((clip_copy / "0c9b371cc6225682.txt").read_text())
    with pytest.raises(FileNotFoundError, match=r"orphan\.txt: no video"):
        ClipDataset(clip_copy)
