"""Smoke-train the real ``jog3r.train`` entry on the ``micro`` preset: every mode, resume, crash safety."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jog3r.data.synth import SynthConfig
from jog3r.data.synth.writer import write_dataset
from jog3r.model import JOG3R
from jog3r.train.__main__ import main as train_main
from jog3r.train.checkpoints import latest_checkpoint

MICRO = ["--preset", "micro", "--data", "synth", "--num-frames", "4", "--height", "32", "--width", "48",
         "--batch-size", "1", "--warmup-steps", "1", "--lr", "1e-3", "--threads", "1"]


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("mode", ["joint", "frozen-rec", "gen", "rec"])
def test_every_mode_trains_and_resumes(tmp_path, mode):
    run = tmp_path / mode
    train_main([*MICRO, "--mode", mode, "--steps", "2", "--ckpt-every", "1", "--out", str(run)])
    log = _log(run)
    assert [r["step"] for r in log] == [1, 2]
    for r in log:
        assert all(torch.isfinite(torch.tensor(r[k])) for k in r if k.startswith("loss"))
        assert ("loss_gen" in r) == (mode in ("joint", "gen"))
        assert ("loss_rec" in r) == (mode != "gen")
    assert latest_checkpoint(run).name == "step_000002"
    # resume to step 3: continues from the saved step
    train_main([*MICRO, "--mode", mode, "--steps", "3", "--ckpt-every", "1", "--out", str(run), "--resume"])
    assert [r["step"] for r in _log(run)] == [1, 2, 3]
    model = JOG3R.from_pretrained(run / "final")
    assert model.config.stdit.hidden_size == 32


def test_resume_reproduces_the_uninterrupted_loss_curve(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_main([*MICRO, "--steps", "3", "--ckpt-every", "10", "--out", str(straight)])
    train_main([*MICRO, "--steps", "2", "--ckpt-every", "10", "--out", str(resumed)])
    train_main([*MICRO, "--steps", "3", "--ckpt-every", "10", "--out", str(resumed), "--resume"])
    a, b = _log(straight), _log(resumed)
    assert [r["step"] for r in b] == [1, 2, 3]
    for ra, rb in zip(a, b):
        assert ra["loss_total"] == pytest.approx(rb["loss_total"], rel=1e-5, abs=1e-6)


def test_refuses_to_overwrite_a_run_without_resume(tmp_path):
    run = tmp_path / "run"
    train_main([*MICRO, "--steps", "1", "--out", str(run)])
    with pytest.raises(ValueError, match="--resume"):
        train_main([*MICRO, "--steps", "1", "--out", str(run)])


def test_killed_checkpoint_write_leaves_the_previous_one(tmp_path):
    run = tmp_path / "run"
    train_main([*MICRO, "--steps", "1", "--ckpt-every", "1", "--out", str(run)])
    # a run killed while writing step 2 leaves only a staging folder behind
    stale = run / "checkpoints" / ".tmp-step_000002"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"partial")
    assert latest_checkpoint(run).name == "step_000001"
    train_main([*MICRO, "--steps", "2", "--ckpt-every", "1", "--out", str(run), "--resume"])
    assert latest_checkpoint(run).name == "step_000002"
    assert not stale.exists()


def test_cli_subprocess_help_lists_documented_fields():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "jog3r.train", "--help"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "L_rec uses timesteps" in out.stdout and "--mode" in out.stdout


def test_folder_dataset_source(tmp_path):
    data = write_dataset(tmp_path / "data", 2, SynthConfig(height=32, width=48, num_frames=6), start_seed=5)
    run = tmp_path / "run"
    train_main([*MICRO, "--data", str(data), "--steps", "2", "--out", str(run)])
    assert [r["step"] for r in _log(run)] == [1, 2]


def test_data_parallel_with_torchrun(tmp_path):
    """Two CPU processes (gloo) average their gradients; rank 0 alone writes the log and checkpoints."""
    run = tmp_path / "ddp"
    torchrun = Path(sys.executable).with_name("torchrun")
    out = subprocess.run([str(torchrun), "--nproc_per_node", "2", "-m", "jog3r.train", *MICRO, "--steps", "2",
                          "--out", str(run)], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert [r["step"] for r in _log(run)] == [1, 2]
    assert (run / "final" / "model.safetensors").exists()


def test_resume_with_other_options_is_refused(tmp_path):
    run = tmp_path / "run"
    train_main([*MICRO, "--steps", "1", "--out", str(run)])
    with pytest.raises(ValueError, match="--lr"):
        train_main([*MICRO, "--steps", "2", "--lr", "0.5", "--out", str(run), "--resume"])


@pytest.mark.parametrize("warmup", [True, False])
def test_ema_warmup(tmp_path, warmup):
    """Update n uses min(decay, (1 + n) / (10 + n)): the EMA of a short run is not dominated by its random init."""
    from safetensors.torch import load_file

    run = tmp_path / "run"
    flag = "--ema-warmup" if warmup else "--no-ema-warmup"
    train_main([*MICRO, "--steps", "2", "--ckpt-every", "1", "--keep-checkpoints", "2", flag, "--out", str(run)])
    ema1 = load_file(str(run / "checkpoints" / "step_000001" / "ema.safetensors"))
    ema2 = load_file(str(run / "checkpoints" / "step_000002" / "ema.safetensors"))
    raw2 = load_file(str(run / "checkpoints" / "step_000002" / "model.safetensors"))
    decay = 2 / 11 if warmup else 0.999  # the second update, n = 1
    name = next(n for n in ema2 if not torch.equal(ema1[n], raw2[n]))
    torch.testing.assert_close(ema2[name], decay * ema1[name] + (1 - decay) * raw2[name], rtol=1e-5, atol=1e-6)


def test_init_with_decoder_overrides_keeps_the_trained_generator(tmp_path, caplog):
    """--init + --model-overrides (issue 18's wider-decoder variants): the STDiT is the init's, bit for bit; the
    overridden decoder has the new shape and starts fresh; a deeper decoder keeps the init's first blocks."""
    from jog3r.config import get_preset
    from jog3r.train.trainer import init_with_overrides

    torch.manual_seed(0)
    src = JOG3R(get_preset("micro"))
    src.save_pretrained(tmp_path / "init")
    saved = src.state_dict()

    wide = init_with_overrides(tmp_path / "init", {"dec_embed_dim": "48"})
    assert wide.config.dec_embed_dim == 48 and wide.config.stdit == src.config.stdit
    state = wide.state_dict()
    stdit_keys = [k for k in saved if k.startswith("stdit.")]
    assert stdit_keys and all(torch.equal(state[k], saved[k]) for k in stdit_keys)
    changed = [k for k in state if not k.startswith("stdit.") and state[k].shape != saved[k].shape]
    assert changed  # the decoder really is wider

    deep = init_with_overrides(tmp_path / "init", {"dec_depth": "2"})
    dstate = deep.state_dict()
    new_keys = [k for k in dstate if k not in saved]
    assert new_keys and all(".1." in k for k in new_keys)  # only the second decoder block is new
    assert all(torch.equal(dstate[k], saved[k]) for k in saved)

    with pytest.raises(ValueError, match="unknown field"):
        init_with_overrides(tmp_path / "init", {"dec_width": "48"})
    with pytest.raises(ValueError, match="dec_embed_dim: expected an integer .* got 'abc'"):
        init_with_overrides(tmp_path / "init", {"dec_embed_dim": "abc"})
    with pytest.raises(ValueError, match="valid: stdit.caption_channels, "):
        init_with_overrides(tmp_path / "init", {"stdit.foo": "1"})
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        init_with_overrides(tmp_path / "nowhere", {"dec_embed_dim": "48"})

    # the command line: one step of a fine-tune from the init with a wider decoder
    run = tmp_path / "run"
    train_main([*MICRO, "--mode", "frozen-rec", "--steps", "1", "--init", str(tmp_path / "init"),
                "--model-overrides", "dec_embed_dim", "48", "--out", str(run)])
    assert JOG3R.from_pretrained(run / "final").config.dec_embed_dim == 48
    # --resume of that run says that the checkpoint's weights replace the --init ones just loaded (the log's
    # "taken over" line comes first and read as if the init were trained on)
    with caplog.at_level(logging.INFO, logger="jog3r.train.trainer"):
        train_main([*MICRO, "--mode", "frozen-rec", "--steps", "2", "--init", str(tmp_path / "init"),
                    "--model-overrides", "dec_embed_dim", "48", "--out", str(run), "--resume"])
    assert any("resumed from" in r.message and "replace the --init ones" in r.message for r in caplog.records)


def test_module_entry_point_gives_one_line_errors(tmp_path):
    """``python -m jog3r.train`` (the documented form, torchrun's too) reports a bad option as ``jog3r train`` does:
    one ``error:`` line, no traceback."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    res = subprocess.run([sys.executable, "-m", "jog3r.train", *MICRO, "--steps", "1", "--out", str(tmp_path / "r"),
                          "--init", str(tmp_path / "nowhere"), "--model-overrides", "dec_embed_dim", "48"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    assert "error: --init" in res.stderr and "save_pretrained" in res.stderr, res.stderr
