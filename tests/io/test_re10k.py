"""RealEstate10K camera files: the real clips read correctly, write -> read round-trips, bad files fail."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jog3r.io.re10k import read_re10k, write_re10k

CLIP_IDS = ["0bf152ef84195293", "0c11dbe781b1c11c", "0c9b371cc6225682", "0f47577ab3441480",
            "2c80f9eb0d3b2bb4", "3c35b868a8ec3433"]


# (folder, file suffix, (H, W), frames): the three windows of every clip.
WINDOWS = [("clips16_384x256", "", (256, 384), 16), ("clips25_576x320", "_svdxt", (320, 576), 25),
           ("clips14_576x320", "_svd", (320, 576), 14)]


@pytest.mark.parametrize("clip_id", CLIP_IDS)
@pytest.mark.parametrize(("folder", "suffix", "size", "num"), WINDOWS)
def test_real_files_match_their_numbers(data_dir, clip_id, folder, suffix, size, num):
    path = data_dir / "realestate10k" / folder / f"{clip_id}{suffix}.txt"
    table = np.loadtxt(path, skiprows=1)  # independent parse of the 19 numbers per line
    H, W = size
    cams = read_re10k(path, image_size=size)

    assert cams.num_frames == num and cams.image_size == size
    assert cams.extra["url"] == path.read_text().splitlines()[0].strip()
    assert cams.extra["url"].startswith("https://www.youtube.com/watch?v=")
    assert cams.timestamps.dtype == torch.int64
    np.testing.assert_array_equal(cams.timestamps.numpy(), table[:, 0].astype(np.int64))
    assert cams.names[0] == str(int(table[0, 0]))
    # Pixel intrinsics: fx, cx scale with W; fy, cy with H (non-square pixels at 384x256 and 576x320).
    K = cams.K.double().numpy()
    np.testing.assert_allclose(K[:, 0, 0], table[:, 1] * W, rtol=1e-6)
    np.testing.assert_allclose(K[:, 1, 1], table[:, 2] * H, rtol=1e-6)
    np.testing.assert_allclose(K[:, 0, 2], table[:, 3] * W, rtol=1e-6)
    np.testing.assert_allclose(K[:, 1, 2], table[:, 4] * H, rtol=1e-6)
    assert np.all(np.abs(K[:, 0, 0] - K[:, 1, 1]) > 1.0)
    # The file's 3x4 is world-to-camera: inverse(cam2world) reproduces it.
    world2cam = torch.linalg.inv(cams.cam2world.double()).numpy()
    np.testing.assert_allclose(world2cam[:, :3, :4], table[:, 7:].reshape(-1, 3, 4), atol=2e-6)
    np.testing.assert_allclose(cams.world2cam.numpy()[:, :3, :4], table[:, 7:].reshape(-1, 3, 4), atol=2e-6)


def test_real_windows_share_intrinsics(data_dir):
    """The 576x320 window of the same clip has the same normalised intrinsics, scaled by its own size."""
    clip = CLIP_IDS[0]
    small = read_re10k(data_dir / "realestate10k" / "clips16_384x256" / f"{clip}.txt", image_size=(256, 384))
    large_path = data_dir / "realestate10k" / "clips25_576x320" / f"{clip}_svdxt.txt"
    large = read_re10k(large_path, image_size=(320, 576))
    assert large.num_frames == 25
    np.testing.assert_allclose(small.K[0, 0, 0] / 384, large.K[0, 0, 0] / 576, rtol=1e-6)
    np.testing.assert_allclose(small.K[0, 1, 1] / 256, large.K[0, 1, 1] / 320, rtol=1e-6)


def test_round_trip(tmp_path, cameras):
    cam2world, K = cameras(7, seed=1)
    ts = torch.tensor([5, 33_366, 66_733, 100_100, 133_466, 166_833, 200_200])
    path = write_re10k(tmp_path / "clip.txt", cam2world, K, (256, 384), timestamps=ts, url="https://x.test/v")
    back = read_re10k(path, image_size=(256, 384))
    torch.testing.assert_close(back.cam2world, cam2world, atol=1e-6, rtol=0)
    torch.testing.assert_close(back.K, K, atol=1e-6, rtol=0)  # 10 significant digits in the file
    torch.testing.assert_close(back.timestamps, ts)
    assert back.extra["url"] == "https://x.test/v"
    assert path.read_text().splitlines()[1].split()[5:7] == ["0", "0"]


def test_real_file_rewrite_is_lossless(tmp_path, data_dir):
    src = data_dir / "realestate10k" / "clips16_384x256" / f"{CLIP_IDS[3]}.txt"
    cams = read_re10k(src, image_size=(256, 384))
    out = write_re10k(tmp_path / "out.txt", cams.cam2world, cams.K, cams.image_size, cams.timestamps,
                      url=cams.extra["url"])
    np.testing.assert_allclose(np.loadtxt(out, skiprows=1), np.loadtxt(src, skiprows=1), atol=2e-6)


def test_default_timestamps_and_empty_url(tmp_path, cameras):
    cam2world, K = cameras(3, seed=2, shared_K=True)
    path = write_re10k(tmp_path / "c.txt", cam2world, K[0], (256, 384), fps=4.0)
    back = read_re10k(path, (256, 384))
    assert back.timestamps.tolist() == [0, 250_000, 500_000]
    assert back.extra["url"] == "" and path.read_text().startswith("\n")


def test_file_without_url_line(tmp_path, data_dir, caplog):
    src = data_dir / "realestate10k" / "clips16_384x256" / f"{CLIP_IDS[0]}.txt"
    body = "\n".join(src.read_text().splitlines()[1:]) + "\n"
    (tmp_path / "nourl.txt").write_text(body)
    cams = read_re10k(tmp_path / "nourl.txt", (256, 384))
    assert cams.num_frames == 16 and cams.extra["url"] == ""
    assert "no URL line" in caplog.text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("url\n1 0.5 0.5 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1\n", r"bad\.txt:2: expected 19 numbers"),
        ("url\n1 0.5 0.5 0.5 0.5 0 0 2 0 0 0 0 1 0 0 0 0 1 0\n", "not a rotation"),
        ("url\n1 -0.5 0.5 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n", "focal lengths must be positive"),
        ("url\n1 0.5 0.5 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 zero\n", "non-numeric"),
        ("url\n", "no camera lines"),
        ("", "empty"),
    ],
)
def test_bad_files_name_the_file(tmp_path, body, message):
    (tmp_path / "bad.txt").write_text(body)
    with pytest.raises(ValueError, match=message) as info:
        read_re10k(tmp_path / "bad.txt", (256, 384))
    assert "bad.txt" in str(info.value)


def test_missing_file_and_bad_size(tmp_path, data_dir):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_re10k(tmp_path / "nope.txt", (256, 384))
    with pytest.raises(ValueError, match="image_size"):
        read_re10k(data_dir / "realestate10k" / "clips16_384x256" / f"{CLIP_IDS[0]}.txt", (0, 384))


def test_writer_rejects_bad_input(tmp_path, cameras):
    cam2world, K = cameras(2, seed=3)
    with pytest.raises(ValueError, match="timestamps"):
        write_re10k(tmp_path / "a.txt", cam2world, K, (256, 384), timestamps=[1, 2, 3])
    bad = cam2world.clone()
    bad[0, :3, :3] *= 2.0
    with pytest.raises(ValueError, match="not a rotation"):
        write_re10k(tmp_path / "a.txt", bad, K, (256, 384))
    skewed = K.clone()
    skewed[:, 0, 1] = 3.0
    with pytest.raises(ValueError, match="pinhole"):
        write_re10k(tmp_path / "a.txt", cam2world, skewed, (256, 384))
    with pytest.raises(ValueError, match=r"\[F, 4, 4\]"):
        write_re10k(tmp_path / "a.txt", cam2world[:, :3], K, (256, 384))
