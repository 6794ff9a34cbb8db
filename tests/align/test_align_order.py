"""Image folders that are not a sequence: ordered by their match graph before V2C (:mod:`jog3r.align.order`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from jog3r.align.order import match_graph, order_by_matches
from jog3r.jobs import load_source_frames, load_video
from jog3r.pipeline import JOG3RPipeline
from jog3r.io.video import read_video

FRAMES = Path(__file__).parents[1] / "data" / "realestate10k" / "clips16_384x256" / "frames" / "0bf152ef84195293"
PERM = [5, 2, 7, 0, 4, 1, 6, 3]  # file k of the shuffled folder is frame PERM[k] of the clip


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    video, _ = read_video(FRAMES, num_frames=8)
    return video.frames


def test_a_shuffled_clip_is_put_back_in_order_and_a_sequence_stays(frames):
    counts = match_graph(frames[PERM])
    order, info = order_by_matches(frames[PERM], counts=counts)
    recovered = [PERM[k] for k in order]
    assert info["reordered"] and recovered in (list(range(8)), list(range(8))[::-1])
    order, info = order_by_matches(frames)
    assert order == list(range(8)) and not info["reordered"] and info["weak_links"] == 0


def _write(folder: Path, files: list[Path], names: list[str]) -> Path:
    folder.mkdir()
    for src, name in zip(files, names):
        shutil.copy(src, folder / f"{name}{src.suffix}")
    return folder


def test_unordered_folder_gets_the_cameras_of_the_ordered_one(micro_model_dir, tmp_path):
    """A folder of a clip's frames under shuffled names is read in its match-graph order and says so; its cameras are
    those of the same frames given as a sequence in that order, up to the permutation."""
    pipe = JOG3RPipeline.from_pretrained(micro_model_dir)
    files = sorted(FRAMES.iterdir())
    step = len(files) // 8
    files = files[::step][:8]
    shuffled = _write(tmp_path / "shuffled", [files[p] for p in PERM], [f"img_{k}" for k in "abcdefgh"])
    video, info = load_video(pipe, shuffled, num_frames=8)
    assert info.order["reordered"] and "ordered by their match graph" in info.message
    clip_order = [PERM[k] for k in info.order["order"]]
    assert clip_order in (list(range(8)), list(range(8))[::-1])
    ordered = _write(tmp_path / "ordered", [files[k] for k in clip_order], [f"{n:02d}" for n in range(8)])
    video2, info2 = load_video(pipe, ordered, num_frames=8)
    assert not info2.order["reordered"] and "match graph" not in info2.message
    torch.testing.assert_close(video.frames, video2.frames)
    a = pipe.video_to_cameras(video, matches="none").reconstruction.cam2world
    b = pipe.video_to_cameras(video2, matches="none").reconstruction.cam2world
    torch.testing.assert_close(a, b)


def test_portrait_video_gets_a_note_and_pad_keeps_the_whole_frame(micro_model_dir, tmp_path):
    from PIL import Image

    pipe = JOG3RPipeline.from_pretrained(micro_model_dir)
    folder = tmp_path / "portrait"
    folder.mkdir()
    for k in range(2):
        Image.new("RGB", (60, 120), (200, 100 * k, 50)).save(folder / f"{k}.png")
    video, info = load_video(pipe, folder, num_frames=2)
    assert "NOTE" in info.message and info.crop_kept < 0.4 and video.size == pipe.resolution
    video, info = load_video(pipe, folder, num_frames=2, fit="pad")
    assert info.crop_kept == 1.0 and "padded" in info.message and video.size == pipe.resolution
    assert float(video.frames[:, :, :, :8].max()) == 0.0  # black bars left and right of the portrait frame
    assert load_source_frames(pipe, folder, video, info).shape[-2:] == (120, 180)
    with pytest.raises(ValueError, match="fit must be"):
        load_video(pipe, folder, fit="stretch")
