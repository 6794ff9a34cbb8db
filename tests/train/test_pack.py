"""Packed training data (``jog3r.train.pack``) and the learning-rate schedule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from jog3r.components import build_vae
from jog3r.data.annotate import pointmaps_in_first
from jog3r.data.synth import SynthConfig, generate_clip
from jog3r.train.__main__ import main as train_main
from jog3r.train.config import TrainConfig, TrainMode
from jog3r.train.data import build_batch_source, reverse_clip
from jog3r.train.pack import SYNTH_SEED_STRIDE, load_packed_clip, main as pack_main, packed_clips
from jog3r.train.trainer import Trainer

SIZE = ["--num-frames", "4", "--height", "32", "--width", "48"]
MICRO = ["--preset", "micro", *SIZE, "--batch-size", "1", "--warmup-steps", "1", "--lr", "1e-3", "--threads", "1"]


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packed") / "set"
    pack_main(["--out", str(out), "--num", "3", *SIZE, "--threads", "1"])
    return out


def test_pack_stores_the_synth_clip_and_its_latents(packed):
    files = packed_clips(packed)
    assert [f.stem for f in files] == ["000000", "000001", "000002"]
    z, clip = load_packed_clip(files[1])
    ref = generate_clip(0 * SYNTH_SEED_STRIDE + 1, SynthConfig(height=32, width=48, num_frames=4))
    assert torch.allclose(clip.cam2world, ref.cam2world) and torch.allclose(clip.K, ref.K)
    assert torch.allclose(clip.depth, ref.depth, rtol=1e-3)  # float16 storage
    vae = build_vae("taef2")
    with torch.no_grad():
        z_ref = vae.encode(ref.frames.permute(1, 0, 2, 3)[None] * 2 - 1).x[0]
    assert z.shape == z_ref.shape == (32, 4, 4, 6)
    assert (z - z_ref).abs().max() < 1e-2 * z_ref.abs().max()
    assert clip.caption == ref.caption


def test_pack_is_resumable_and_refuses_other_settings(packed):
    before = {f: f.stat().st_mtime_ns for f in packed_clips(packed)}
    pack_main(["--out", str(packed), "--num", "3", *SIZE, "--threads", "1"])  # nothing left to do
    assert {f: f.stat().st_mtime_ns for f in packed_clips(packed)} == before
    with pytest.raises(ValueError, match="other settings"):
        pack_main(["--out", str(packed), "--num", "3", "--num-frames", "4", "--height", "48", "--width", "48"])


def test_packed_batches_cover_each_clip_once_per_epoch_with_consistent_reversal(packed):
    cfg = TrainConfig(data=str(packed), num_frames=4, batch_size=1)
    source = build_batch_source(cfg, height=32, width=48)
    zs = {load_packed_clip(f)[0].sum().item(): load_packed_clip(f) for f in packed_clips(packed)}
    seen = []
    for step in range(3):
        batch = source(step, 0)
        assert batch.frames is None and batch.latents.shape == (1, 32, 4, 4, 6)
        z = batch.latents[0]
        key = z.sum().item()
        assert key in zs
        seen.append(key)
        z_file, clip = zs[key]
        forward = torch.equal(z, z_file)
        assert forward or torch.equal(z, z_file.flip(1))
        if not forward:  # reversed: the points are expressed in the (new) first frame, the old last one
            clip = reverse_clip(clip)
        pts, valid = pointmaps_in_first(clip.depth, clip.K, clip.cam2world)
        assert torch.allclose(batch.pts3d[0], pts, atol=1e-5) and torch.equal(batch.valid[0], valid)
    assert sorted(seen) == sorted(zs)  # one epoch = each clip once


def test_train_on_packed_data_and_resume(packed, tmp_path):
    run = tmp_path / "run"
    train_main([*MICRO, "--data", str(packed), "--steps", "2", "--ckpt-every", "1", "--out", str(run)])
    train_main([*MICRO, "--data", str(packed), "--steps", "3", "--ckpt-every", "1", "--out", str(run), "--resume"])
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(r["loss_rec"])) and r["loss_gen"] > 0 for r in log)


def test_packed_data_must_match_the_run(packed, tmp_path):
    with pytest.raises(ValueError, match="packed at 4 x 32 x 48"):
        train_main([*MICRO[:-8], "--height", "64", "--width", "48", "--num-frames", "4", "--data", str(packed),
                    "--steps", "1", "--out", str(tmp_path / "r")])


def test_cosine_schedule_pins_its_horizon_across_resume(tmp_path):
    cfg = TrainConfig(out=tmp_path / "r", preset="micro", num_frames=4, height=32, width=48, lr=1e-3,
                      warmup_steps=2, lr_schedule="cosine", min_lr=1e-4, steps=10, mode=TrainMode.JOINT)
    trainer = Trainer(cfg)
    lrs = [trainer._lr(s) for s in range(10)]
    assert lrs[0] == pytest.approx(5e-4) and lrs[1] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:])) and lrs[-1] == pytest.approx(1e-4)
    assert trainer.cfg.decay_steps == 10
    # a resume with more steps keeps the horizon of the first start
    (tmp_path / "r").mkdir()
    from jog3r.checkpoint import config_to_dict
    (tmp_path / "r" / "train_config.json").write_text(json.dumps(config_to_dict(trainer.cfg), default=str))
    longer = Trainer(TrainConfig(**{**cfg.__dict__, "steps": 20, "resume": True}))
    longer._check_resumable()
    assert longer.cfg.decay_steps == 10 and longer._lr(15) == pytest.approx(1e-4)


def test_incomplete_packed_set_is_refused(packed, tmp_path):
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(packed, partial)
    (partial / "clips" / "000001.safetensors").unlink()
    with pytest.raises(ValueError, match="incomplete"):
        build_batch_source(TrainConfig(data=str(partial), num_frames=4), height=32, width=48)


def test_cosine_horizon_survives_two_resumes_through_run(tmp_path):
    run = tmp_path / "run"
    args = [*MICRO, "--data", "synth", "--lr-schedule", "cosine", "--min-lr", "1e-4", "--ckpt-every", "1",
            "--out", str(run)]
    train_main([*args, "--steps", "2"])
    train_main([*args, "--steps", "4", "--resume"])
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["decay_steps"] == 2  # the horizon of the first start, written back unchanged
    lrs = {r["step"]: r["lr"] for r in (json.loads(x) for x in (run / "log.jsonl").read_text().splitlines())}
    assert lrs[3] == pytest.approx(1e-4) and lrs[4] == pytest.approx(1e-4)


def test_resume_of_a_run_saved_before_the_schedule_options_existed(tmp_path):
    run = tmp_path / "old"
    train_main([*MICRO, "--data", "synth", "--steps", "1", "--ckpt-every", "1", "--out", str(run)])
    saved = json.loads((run / "train_config.json").read_text())
    for key in ("lr_schedule", "decay_steps", "min_lr"):
        saved.pop(key)
    (run / "train_config.json").write_text(json.dumps(saved))
    train_main([*MICRO, "--data", "synth", "--steps", "2", "--ckpt-every", "1", "--out", str(run), "--resume"])
    assert [json.loads(x)["step"] for x in (run / "log.jsonl").read_text().splitlines()] == [1, 2]


def test_schedule_options_are_validated(tmp_path):
    with pytest.raises(ValueError, match="only with --lr-schedule cosine"):
        Trainer(TrainConfig(out=tmp_path / "a", preset="micro", num_frames=4, height=32, width=48, min_lr=1e-5))
    with pytest.raises(ValueError, match="must exceed --warmup-steps"):
        Trainer(TrainConfig(out=tmp_path / "b", preset="micro", num_frames=4, height=32, width=48,
                            lr_schedule="cosine", steps=5, warmup_steps=10))
