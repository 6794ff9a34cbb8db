"""The ``jog3r`` command line and ``jog3r eval`` on a tiny real model (``micro`` preset)."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jog3r.cli import main
from jog3r.io.re10k import read_re10k

CLIPS = Path(__file__).parent / "data" / "realestate10k" / "clips16_384x256"
CLIP, GT = CLIPS / "0bf152ef84195293.mp4", CLIPS / "0bf152ef84195293.txt"


@pytest.fixture
def weights(micro_model_dir) -> Path:
    return micro_model_dir


def test_v2c_writes_every_export_and_the_metrics(weights, tmp_path):
    out = tmp_path / "v2c"
    main(["v2c", str(CLIP), "--weights", str(weights), "--out", str(out), "--gt", str(GT)])
    for name in ("video.mp4", "cameras_re10k.txt", "transforms.json", "colmap", "trajectory_tum.txt",
                 "pointcloud.ply", "scene.glb", "scene_no_cameras.glb", "depth", "metrics.json", "CONVENTIONS.txt"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"RRA@5", "RTA@5", "mAA@30", "Rot. err.", "Trans. err."} <= set(metrics["all"])
    cams = read_re10k(out / "cameras_re10k.txt", (32, 48))
    assert cams.cam2world.shape == (4, 4, 4)


def test_v2c_refuses_a_used_folder_and_overwrite_leaves_no_stale_files(weights, tmp_path):
    out = tmp_path / "v2c"
    out.mkdir()
    (out / "old.txt").write_text("from another run")
    with pytest.raises(SystemExit, match="--overwrite"):
        main(["v2c", str(CLIP), "--weights", str(weights), "--out", str(out)])
    main(["v2c", str(CLIP), "--weights", str(weights), "--out", str(out), "--overwrite"])
    assert not (out / "old.txt").exists() and (out / "transforms.json").exists()


@pytest.mark.parametrize("args,match", [
    (["--gt", "README.md"], "ground truth must be"),
    (["--gt", "nope.txt"], "does not exist"),
    (["--focal", "-5"], "positive focal"),
    (["--focal", "1e6"], "field of view"),
])
def test_v2c_bad_options_are_one_line_errors(weights, tmp_path, args, match):
    with pytest.raises(SystemExit, match=match):
        main(["v2c", str(CLIP), "--weights", str(weights), "--out", str(tmp_path / "o"), *args])


def test_v2c_matches_on_the_source_frames_and_names_the_method(weights, tmp_path):
    """The default matches on the 384x256 source frames, not the micro model's 48x32 ones, and metrics.json names
    the method and the point cloud's reprojection error; ``--matches none`` is the paper's V2C."""
    out = tmp_path / "v2c"
    main(["v2c", str(CLIP), "--weights", str(weights), "--out", str(out), "--num-frames", "6"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["matches"]["match_size"] == [256, 384] and metrics["matches"]["status"] == "aligned"
    assert metrics["method"] == "JOG3R point maps + correspondences (not the paper's)"
    assert metrics["matches"]["cloud_reprojection_px"] < metrics["matches"]["cloud_reprojection_px_before"]
    main(["v2c", str(CLIP), "--weights", str(weights), "--out", str(tmp_path / "p"), "--num-frames", "6",
          "--matches", "none"])
    metrics = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert metrics["method"] == "JOG3R V2C (paper)" and "matches" not in metrics


def test_v2c_focal_with_images_of_mixed_sizes_is_refused(weights, tmp_path):
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, size in enumerate([(96, 64), (90, 60), (96, 64)]):
        Image.new("RGB", size, (40 * i, 90, 120)).save(folder / f"{i}.png")
    with pytest.raises(SystemExit, match="mixes sizes"):
        main(["v2c", str(folder), "--weights", str(weights), "--out", str(tmp_path / "o"), "--focal", "80"])


def test_gt_with_too_few_poses_fails_before_the_run(weights, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("\n".join(GT.read_text().splitlines()[:6]) + "\n")
    with pytest.raises(SystemExit, match="5 poses"):
        main(["v2c", str(CLIP), "--weights", str(weights), "--out", str(tmp_path / "o"), "--gt", str(short)])


def test_t2vc_and_met3r(weights, tmp_path):
    main(["t2vc", "a kitchen", "--weights", str(weights), "--out", str(tmp_path / "t"), "--steps", "2"])
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["steps"] == 2 and set(summary["self_consistency_deg"]) == {"rot_deg", "transl_deg"}
    assert (tmp_path / "t" / "cascade_v2c" / "transforms.json").exists()
    main(["met3r", str(tmp_path / "t" / "video.mp4"), "--weights", str(weights), "--out", str(tmp_path / "m"),
          "--backbone", "rgb"])
    scores = json.loads((tmp_path / "m" / "met3r.json").read_text())
    assert scores["backbone"] and len(scores["per_frame"]) == 3
    assert (tmp_path / "m" / "met3r_error_maps.mp4").stat().st_size > 0


def test_eval_writes_tables(weights, tmp_path, monkeypatch):
    main(["eval", "--weights", str(weights), "--out", str(tmp_path / "e"), "--windows", "clips16_384x256",
          "--num-frames", "4", "--synth-test", "1", "--t2v-prompts", "1", "--steps", "2"])
    results = json.loads((tmp_path / "e" / "results.json").read_text())
    # every row names the method that made the cameras (the default: point maps + correspondences)
    names = list(results["v2c"])
    assert names == [f"{n} - JOG3R point maps + correspondences (not the paper's)"
                     for n in ("RealEstate10K clips16_384x256", "synthetic test (1)")]
    assert all(0 <= c["mAA@30"] <= 100 and c["method"] for c in results["v2c"][names[0]]["clips"].values())
    t2v = results["t2v"]
    assert t2v["MEt3R points"] == str(weights) and 0 <= t2v["MEt3R"] < 10
    assert results["config"]["num_frames"] == 4 and results["config"]["known_intrinsics"] is False
    # T2V+C vs T2V -> V2C self-consistency ran: angles in degrees
    assert 0 <= t2v["T2V+C vs T2V->V2C rot. diff."] <= 180 and 0 <= t2v["T2V+C vs T2V->V2C trans. diff."] <= 180
    assert len(results["v2c"][names[0]]["clips"]) == 6
    assert "mAA@30" in results["v2c"][names[1]]["mean"]
    assert results["t2v"]["FID"].startswith("not available")
    tables = (tmp_path / "e" / "tables.md").read_text()
    assert "| data | clips |" in tables and "### Per clip" in tables and "0bf152ef84195293" in tables
    import jog3r.eval as eval_module
    loads = []
    real_load = eval_module.JOG3RPipeline.from_pretrained
    monkeypatch.setattr(eval_module.JOG3RPipeline, "from_pretrained",
                        lambda *a, **k: loads.append(a) or real_load(*a, **k))
    with pytest.raises(SystemExit, match="nosuch do not exist"):
        main(["eval", "--weights", str(weights), "--out", str(tmp_path / "e2"), "--windows", "clips16_384x256",
              "nosuch"])
    assert loads == []  # refused before the model loads
    # T2V only (no window, as for a --mode gen model), MEt3R scored with another model's point maps
    main(["eval", "--weights", str(weights), "--out", str(tmp_path / "e4"), "--windows", "--synth-test", "0",
          "--t2v-prompts", "1", "--steps", "2", "--no-consistency", "--met3r-weights", str(weights)])
    t2v_only = json.loads((tmp_path / "e4" / "results.json").read_text())
    assert t2v_only["v2c"] == {} and t2v_only["t2v"]["MEt3R points"] == str(weights)
    assert t2v_only["t2v"]["T2V+C vs T2V->V2C rot. diff."] == "not run"
    t2v_tables = (tmp_path / "e4" / "tables.md").read_text()
    assert "Not run (no --windows" in t2v_tables and "### Per clip" not in t2v_tables
    with pytest.raises(SystemExit, match="first --windows folder"):
        main(["eval", "--weights", str(weights), "--out", str(tmp_path / "e5"), "--windows", "--models", str(weights)])
    # with the ground-truth intrinsics (camera files' K adjusted to the model's resize + crop; the synthetic K)
    from jog3r.pipeline import JOG3RPipeline

    given, v2c = [], JOG3RPipeline.video_to_cameras

    def spy(self, video, **kw):
        given.append((kw.get("known_K"), video.size))
        return v2c(self, video, **kw)

    monkeypatch.setattr(JOG3RPipeline, "video_to_cameras", spy)
    main(["eval", "--weights", str(weights), "--out", str(tmp_path / "e3"), "--windows", "clips16_384x256",
          "--num-frames", "4", "--synth-test", "1", "--t2v-prompts", "0", "--known-intrinsics"])
    known = json.loads((tmp_path / "e3" / "results.json").read_text())["v2c"]
    method = "JOG3R point maps + correspondences (not the paper's)"
    assert set(known) == {f"RealEstate10K clips16_384x256 (known K) - {method}", f"synthetic test (1) (known K) - {method}"}
    assert all(0 <= m["mAA@30"] <= 100 for res in known.values() for m in res["clips"].values())
    assert len(given) == 7 and all(K is not None for K, _ in given)
    for K, (h, w) in given:  # in pixels of the frames handed over: principal point near the centre
        assert K.shape[-2:] == (3, 3) and abs(float(K[..., 0, 2].mean()) - w / 2) < 2 and abs(float(K[..., 1, 2].mean()) - h / 2) < 2


def test_train_resume_needs_a_run_folder_and_the_same_options(tmp_path):
    with pytest.raises(SystemExit, match="not a training run folder"):
        main(["train", "--preset", "micro", "--out", str(tmp_path / "nope"), "--resume"])


def test_python_dash_m_entry_points():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for module in ("jog3r", "jog3r.cli"):
        out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=env,
                             timeout=180)
        assert out.returncode == 0 and "v2c" in out.stdout, out.stderr[-1000:]


# ---------------------------------------------------------------------------------------------- bad input (issue 17)


def _no_model_load(monkeypatch):
    import jog3r.cli as cli

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr(cli.JOG3RPipeline, "from_pretrained", refuse)


@pytest.mark.parametrize("argv,match", [
    (["v2c", "nosuch.mp4"], "nosuch.mp4: no such video file or image folder"),
    (["met3r", "nosuch.mp4"], "nosuch.mp4: no such video file or image folder"),
    (["v2c", str(CLIP), "--device", "garbage"], "device 'garbage' is not a torch device"),
    (["v2c", str(CLIP), "--device", "cuda"], "CUDA is not available"),
    (["t2v", "a room", "--device", "cuda:0"], "CUDA is not available"),
    (["v2c", str(CLIP), "--dtype", "bfloat16"], "--dtype bfloat16 needs a GPU --device"),
    (["t2v", "a room", "--seed", str(2**70)], r"seed must be in \[0, 2\*\*64 - 1\]"),
    (["v2c", str(CLIP), "--seed", "-1"], r"seed must be in \[0, 2\*\*64 - 1\]"),
    (["t2v", "a room", "--guidance-scale", "inf"], "guidance_scale must be a finite number"),
    (["t2v", "a room", "--guidance-scale", "nan"], "guidance_scale must be a finite number"),
    (["t2v", "a room", "--steps", "1"], r"steps must be a whole number in \[2, 1000\]"),
    (["t2v", "a room", "--weights", str(CLIP)], "is a file; pass the model folder"),
    (["eval", "--windows", "--device", "garbage"], "device 'garbage' is not a torch device"),
    (["eval", "--windows", "--steps", "0"], r"steps must be a whole number in \[2, 1000\]"),
])
def test_bad_options_are_refused_before_the_model_loads(tmp_path, monkeypatch, argv, match):
    """B9, B17: one line, before the 10-50 s model load, and no output or partial folder left behind."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    if "--weights" not in argv:  # a weights path that is a file is refused by from_pretrained, before loading
        _no_model_load(monkeypatch)
    with pytest.raises(SystemExit, match=match) as err:
        main([*argv, "--out", "o"])
    assert str(err.value).startswith("error: ") and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_failed_runs_leave_no_partial_folder(weights, tmp_path):
    """B5: every failed run left a hidden .<out>.partial/ folder."""
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(SystemExit, match="file is empty"):
        main(["v2c", str(empty), "--weights", str(weights), "--out", str(tmp_path / "o")])
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "keep.txt").write_text("an earlier result")
    short = tmp_path / "short.txt"
    short.write_text("\n".join(GT.read_text().splitlines()[:6]) + "\n")
    with pytest.raises(SystemExit, match="5 poses"):
        main(["v2c", str(CLIP), "--weights", str(weights), "--out", str(tmp_path / "old"), "--overwrite",
              "--gt", str(short)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.mp4", "old", "short.txt"]
    assert (tmp_path / "old" / "keep.txt").read_text() == "an earlier result"  # --overwrite only on success


def test_v2c_on_a_full_disk_is_one_line_and_leaves_nothing(weights, tmp_path, monkeypatch):
    """B4: a full disk gave a raw 'No space left on device' traceback and left a partial folder."""
    import errno

    def full_disk(*args, **kwargs):  # the exports (jog3r.jobs.export writes them into the staging folder)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("jog3r.jobs.export.export_all", full_disk)
    with pytest.raises(SystemExit, match=r"^error: no space left on the disk while writing .*free some space") as err:
        main(["v2c", str(CLIP), "--weights", str(weights), "--out", str(tmp_path / "o"), "--num-frames", "3"])
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_train_on_a_full_disk_is_a_clear_error(tmp_path, monkeypatch):
    """B4: a full disk during a checkpoint gave torch.save's opaque 'unexpected pos' traceback."""
    def full_disk(obj, f, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr("torch.save", full_disk)
    with pytest.raises(SystemExit, match=r"^error: writing .* failed .*the disk is probably full .* free") as err:
        main(["train", "--preset", "micro", "--data", "synth", "--num-frames", "4", "--height", "32", "--width", "48",
              "--batch-size", "1", "--warmup-steps", "1", "--threads", "1", "--steps", "1", "--ckpt-every", "1",
              "--out", str(tmp_path / "run")])
    assert "\n" not in str(err.value)


def test_v2c_frames_above_the_model_runs_the_long_video_v2c(weights, tmp_path, capsys):
    """``--frames 24`` (more than the model's frames) -> windows + one global alignment, one camera per frame;
    ``--frames`` above the limit is refused before the model loads (no weights needed)."""
    from jog3r.io.video import read_video, write_video
    clip, _ = read_video(CLIP)
    frames = torch.cat((clip.frames, clip.frames.flip(0)[1:9]))  # 24 frames: forward, then 8 back
    video = write_video(tmp_path / "long.mp4", frames, fps=8)
    out = tmp_path / "o"
    main(["v2c", str(video), "--weights", str(weights), "--out", str(out), "--frames", "all"])
    printed = capsys.readouterr().out
    assert re.search(r"long-video V2C: \d+ windows, estimated \d+ s and \d+ MB", printed), printed  # quoted first
    assert re.search(r"reprojection error \(median, px\): [0-9.]+\n", printed) and not re.search(r"px\): \d+\.\d{3}", printed)
    cams = read_re10k(out / "cameras_re10k.txt", (32, 48))
    assert cams.cam2world.shape == (24, 4, 4) and torch.isfinite(cams.cam2world).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"]
    with pytest.raises(SystemExit, match="more than the long-video limit of 600"):
        main(["v2c", str(video), "--weights", str(tmp_path / "missing"), "--out", str(tmp_path / "p"),
              "--frames", "1000"])


def test_v2c_num_frames_takes_the_frames_path(tmp_path, monkeypatch):
    """``--num-frames N`` is ``--frames N``: above the model's 16 the long-video V2C (one pass of the 16-frame model
    over 60 frames of a walkthrough scored mAA@30 19.5, the windows 86.9); ``--matches none`` keeps the paper's one
    pass. Counts below 2 name the option, not the video (checked before the model loads: no weights needed)."""
    import jog3r.cli as cli

    seen = []
    monkeypatch.setattr(cli, "_pipeline", lambda opts: (_ for _ in ()).throw(RuntimeError("stop")))
    monkeypatch.setattr(cli, "_print_estimate", lambda *a: None)
    import jog3r.jobs.v2c as job
    real = job.resolve_frames
    monkeypatch.setattr(job, "resolve_frames", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    for n in ("12", "40"):
        with pytest.raises(RuntimeError, match="stop"):
            main(["v2c", str(CLIP), "--out", str(tmp_path / n), "--num-frames", n])
    with pytest.raises(RuntimeError, match="stop"):
        main(["v2c", str(CLIP), "--out", str(tmp_path / "p"), "--num-frames", "40", "--matches", "none"])
    assert seen == [(12, False), (40, False)]  # the clip has 16 frames: 40 asked, 16 exist -> one pass
    from jog3r.io.video import read_video, write_video
    clip, _ = read_video(CLIP)
    video = write_video(tmp_path / "long.mp4", torch.cat((clip.frames, clip.frames.flip(0)[1:9])), fps=8)
    with pytest.raises(RuntimeError, match="stop"):
        main(["v2c", str(video), "--out", str(tmp_path / "l"), "--num-frames", "20"])
    assert seen[-1] == (20, True)  # 24 frames exist: 20 of them -> the long-video V2C
    for flag in ("--num-frames", "--frames"):
        with pytest.raises(SystemExit, match=f"{flag} must be at least 2 .* got 0"):
            main(["v2c", str(CLIP), "--out", str(tmp_path / "z"), flag, "0"])
