"""TUM trajectories: round trip, quaternion order in the file, timestamps, bad files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from jog3r.io.tum import read_tum, write_tum


def test_round_trip(tmp_path, cameras):
    cam2world, _ = cameras(9, seed=8)
    unix_us = [1_305_031_102_175_304, 1_305_031_102_211_214] + [1_305_031_103_000_000 + i for i in range(7)]
    ts = torch.tensor(unix_us)
    path = write_tum(tmp_path / "traj.txt", cam2world, ts)
    back = read_tum(path)
    torch.testing.assert_close(back.cam2world, cam2world, atol=1e-6, rtol=0)
    torch.testing.assert_close(back.timestamps, ts)  # exact microseconds, even for Unix times
    assert back.K is None and back.image_size is None
    assert back.names[0] == "1305031102.175304"


def test_file_layout_is_translation_then_xyzw(tmp_path):
    """A camera at (1, 2, 3) rotated 90 degrees about z: ``t = 1 2 3`` then ``qx qy qz qw = 0 0 s s``."""
    c2w = torch.eye(4)
    c2w[:3, :3] = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    c2w[:3, 3] = torch.tensor([1.0, 2.0, 3.0])
    path = write_tum(tmp_path / "t.txt", c2w[None], fps=2.0)
    values = [float(v) for v in path.read_text().splitlines()[1].split()]
    s = math.sqrt(0.5)
    np.testing.assert_allclose(values, [0.0, 1, 2, 3, 0, 0, s, s], atol=1e-9)


def test_default_timestamps_and_comments(tmp_path, cameras):
    cam2world, _ = cameras(3, seed=9)
    path = write_tum(tmp_path / "t.txt", cam2world, fps=4.0)
    assert path.read_text().startswith("#")
    assert read_tum(path).timestamps.tolist() == [0, 250_000, 500_000]


def test_reads_unnormalised_quaternions_and_commas(tmp_path, caplog):
    (tmp_path / "t.txt").write_text("# comment\n0.5, 0, 0, 0, 0, 0, 0, 2\n\n1.25 1 1 1 0 0 0 1\n")
    cams = read_tum(tmp_path / "t.txt")
    torch.testing.assert_close(cams.cam2world[0], torch.eye(4))
    assert cams.timestamps.tolist() == [500_000, 1_250_000]
    assert "not unit" in caplog.text


@pytest.mark.parametrize(
    ("content", "message"),
    [("0 1 2 3 0 0 0\n", r"bad.txt:1: expected 8 numbers"), ("0 1 2 3 0 0 0 0\n", "zero norm"),
     ("# only comments\n", "no poses"), ("", "empty"), ("0 a 2 3 0 0 0 1\n", "expected 8 numbers")],
)
def test_bad_files(tmp_path, content, message):
    (tmp_path / "bad.txt").write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        read_tum(tmp_path / "bad.txt")
    assert "bad.txt" in str(info.value)


def test_writer_rejects_bad_input(tmp_path, cameras):
    cam2world, _ = cameras(2, seed=10)
    with pytest.raises(ValueError, match="timestamps"):
        write_tum(tmp_path / "t.txt", cam2world, [1])
    with pytest.raises(ValueError, match="fps"):
        write_tum(tmp_path / "t.txt", cam2world, fps=0)
    with pytest.raises(ValueError, match="NaN"):
        write_tum(tmp_path / "t.txt", cam2world * float("nan"))
