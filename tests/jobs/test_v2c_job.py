"""jog3r.jobs.estimate_cameras: the V2C job shared by the app, ``jog3r v2c`` and ``jog3r eval``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from jog3r.jobs import METRIC_KEYS, Intrinsics, IntrinsicsError, estimate_cameras, read_ground_truth, score_cameras
from jog3r.pipeline import JOG3RPipeline

CLIPS = Path(__file__).parents[1] / "data" / "realestate10k" / "clips16_384x256"
CLIP, GT = CLIPS / "0bf152ef84195293.mp4", CLIPS / "0bf152ef84195293.txt"


def test_ground_truth_reader_checks_the_length_and_notes_a_mismatch(tmp_path):
    truth = read_ground_truth(GT, torch.tensor([0, 5, 15]), (256, 384), num_source_frames=16)
    assert truth.cam2world.shape == (3, 4, 4) and truth.K.shape == (3, 3, 3) and truth.image_size == (256, 384)
    assert truth.num_cameras == 16 and truth.note is None
    assert read_ground_truth(GT, torch.tensor([0, 1]), (256, 384), num_source_frames=20).note.startswith(
        "The ground-truth file has 16 cameras for 20 source frames")
    short = tmp_path / "short.txt"
    short.write_text("\n".join(GT.read_text().splitlines()[:6]) + "\n")
    with pytest.raises(ValueError, match="has 5 poses .* frame 15 .*5 cameras"):
        read_ground_truth(short, torch.tensor([0, 15]), (256, 384))
    with pytest.raises(ValueError, match="ground truth must be"):
        read_ground_truth(Path(__file__), torch.tensor([0]), (256, 384))


def test_scores_of_the_ground_truth_itself_are_perfect():
    truth = read_ground_truth(GT, torch.arange(6), (256, 384))
    scores = score_cameras(truth.cam2world, truth.cam2world)
    assert set(scores.all) == set(scores.first) == set(METRIC_KEYS)
    assert scores.all["RRA@5"] == 100.0 and scores.first["mAA@30"] == pytest.approx(100.0)
    assert scores.rot_err_first.shape == (5,) and float(scores.rot_err_first.abs().max()) < 1e-3


def test_intrinsics_are_checked_at_the_source_size():
    K = Intrinsics.centred_at(300.0).matrix((256, 384))
    assert K.tolist() == [[300.0, 0.0, 192.0], [0.0, 300.0, 128.0], [0.0, 0.0, 1.0]]
    with pytest.raises(IntrinsicsError, match="fx must be a number of pixels"):
        Intrinsics(None, 300.0, 192.0, 128.0).matrix((256, 384))


def test_estimate_cameras_scores_exports_and_names_the_method(micro_model_dir, tmp_path):
    torch.set_num_threads(1)
    pipe = JOG3RPipeline.from_pretrained(micro_model_dir)
    report = estimate_cameras(pipe, CLIP, num_frames=3, gt=GT, matches="none", export_dir=tmp_path / "out",
                              zip_exports=True)
    assert report.method == "JOG3R V2C (paper)" and report.reconstruction.cam2world.shape == (3, 4, 4)
    assert report.exports.folder == tmp_path / "out" and report.exports.zip_path == tmp_path / "out.zip"
    assert report.exports.files["metrics"] == tmp_path / "out" / "metrics.json" and report.exports.zip_path.is_file()
    assert report.timings["export"] == report.exports.seconds
    assert report.ground_truth.cam2world.shape == (3, 4, 4) and report.messages[0] == report.info.message
    assert [k for k, _ in report.as_table()] == list(METRIC_KEYS)
    assert {"load", "align", "export", "total"} <= set(report.timings)
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    record = report.record()
    assert written["method"] == record["method"] and written["all"] == pytest.approx(record["all"])
    assert "matches" not in written and (tmp_path / "out" / "video.mp4").is_file()
    with pytest.raises(IntrinsicsError, match="field of view"):
        estimate_cameras(pipe, CLIP, num_frames=3, intrinsics=Intrinsics.centred_at(1e6), matches="none")


def test_padded_bars_are_not_points(micro_model_dir, tmp_path):
    """fit='pad' on a portrait video: the black bars get no points (viewer or exports); cameras are unchanged."""
    import trimesh

    from jog3r.io.video import write_video
    from jog3r.jobs.load import padded_content_box
    from jog3r.viz.viewer import select_points

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(4, 3, 64, 32, generator=g) * 0.6 + 0.2  # portrait 32 x 64, textured, never black
    video = write_video(tmp_path / "portrait.mp4", frames, fps=8)
    pipe = JOG3RPipeline.from_pretrained(micro_model_dir)
    H, W = pipe.resolution
    report = estimate_cameras(pipe, video, num_frames=4, matches="none", fit="pad", export_dir=tmp_path / "out")
    box = report.info.content_box
    assert box == padded_content_box((64, 32), (H, W)) and box[1] > 0 and box[3] < W  # bars left and right
    recon = report.reconstruction
    inside = torch.zeros(H, W, dtype=torch.bool)
    inside[box[0]:box[2], box[1]:box[3]] = True
    assert torch.isfinite(recon.pts3d[:, inside]).all() and torch.isnan(recon.pts3d[:, ~inside]).all()
    assert torch.isnan(recon.conf[:, ~inside]).all() and torch.isfinite(recon.cam2world).all()
    assert torch.isnan(recon.depth[:, ~inside]).all() and torch.isfinite(recon.depth[:, inside]).all()
    import imageio.v3 as iio
    png = iio.imread(sorted((tmp_path / "out" / "depth").glob("*.png"))[0])
    assert (png[~inside.numpy()] == 0).all() and (png[inside.numpy()] > 0).any()  # 0 = invalid in the bars
    xyz, _ = select_points(recon, keep_percent=100.0, max_points=10**9)
    assert len(xyz) == 4 * int(inside.sum())  # every content pixel, no bar pixel
    ply = trimesh.load(tmp_path / "out" / "pointcloud.ply")
    assert 0 < len(ply.vertices) <= 4 * int(inside.sum())
    crop = estimate_cameras(pipe, video, num_frames=4, matches="none")
    assert crop.info.content_box is None and torch.isfinite(crop.reconstruction.pts3d).all()


def test_more_frames_than_the_video_has_stays_on_the_short_path(tmp_path):
    """--frames 100 on a 16-frame clip samples its 16 frames with the 16-frame V2C, not the long-video one."""
    from jog3r.jobs.v2c import resolve_frames
    assert resolve_frames(CLIP, 100) == (100, False)
    assert resolve_frames(CLIP, "all") == (16, False)
    assert resolve_frames(CLIP, 12) == (12, False)
    assert resolve_frames(tmp_path / "missing.mp4", 40) == (40, True)  # the loader reports the missing file
