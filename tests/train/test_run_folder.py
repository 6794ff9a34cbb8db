"""Run folders under stress (issue 17): step numbers past 999999 (B3), a damaged newest checkpoint (B12), a run
stopped before its first step (B13)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from jog3r.train.__main__ import main as train_main
from jog3r.train.checkpoints import latest_checkpoint, new_tmp_dir, publish_checkpoint
from jog3r.train.trainer import Trainer

MICRO = ["--preset", "micro", "--data", "synth", "--num-frames", "4", "--height", "32", "--width", "48",
         "--batch-size", "1", "--warmup-steps", "1", "--lr", "1e-3", "--threads", "1"]


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_retention_orders_step_folders_by_number_not_by_name(tmp_path):
    """B3: 999998 -> 1000001 with keep=2 kept the two oldest (names sort as text) and deleted the newest."""
    run = tmp_path / "run"
    for step in (999_998, 999_999, 1_000_000, 1_000_001):
        tmp = new_tmp_dir(run / "checkpoints", f"step_{step:06d}")
        (tmp / "trainer_state.json").write_text(json.dumps({"step": step}))
        publish_checkpoint(run, tmp, step, keep=2)
    kept = sorted(p.name for p in (run / "checkpoints").glob("step_*"))
    assert kept == ["step_1000000", "step_1000001"]
    assert latest_checkpoint(run).name == "step_1000001"


def test_resume_falls_back_from_a_truncated_checkpoint(tmp_path, caplog):
    """B12: a truncated model.safetensors in the newest checkpoint gave a raw SafetensorError on --resume."""
    run = tmp_path / "run"
    train_main([*MICRO, "--steps", "2", "--ckpt-every", "1", "--keep-checkpoints", "2", "--out", str(run)])
    straight = _log(run)
    weights = run / "checkpoints" / "step_000002" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a full disk cut it
    with caplog.at_level(logging.WARNING, logger="jog3r.train.trainer"):
        train_main([*MICRO, "--steps", "3", "--ckpt-every", "1", "--keep-checkpoints", "2", "--out", str(run),
                    "--resume"])
    assert "step_000002" in caplog.text and "falling back" in caplog.text
    log = _log(run)
    assert [r["step"] for r in log] == [1, 2, 3]
    assert log[1]["loss_total"] == pytest.approx(straight[1]["loss_total"], rel=1e-5)  # step 2 re-run from step 1
    assert latest_checkpoint(run).name == "step_000003"


def test_resume_with_every_checkpoint_damaged_is_one_clear_error(tmp_path):
    run = tmp_path / "run"
    train_main([*MICRO, "--steps", "1", "--ckpt-every", "1", "--out", str(run)])
    (run / "checkpoints" / "step_000001" / "model.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(ValueError, match="no readable checkpoint.*step_000001"):
        train_main([*MICRO, "--steps", "2", "--out", str(run), "--resume"])


def test_run_stopped_before_its_first_step_can_be_rerun_and_resumed(tmp_path, monkeypatch):
    """B13: a run stopped before step 1 left train_config.json and an empty log.jsonl: neither a re-run of the same
    --out ('already holds a run') nor, when stopped earlier (only the app's console.txt), --resume worked."""
    run = tmp_path / "run"

    def stop(self, batches=None):
        raise KeyboardInterrupt  # the Training tab's Stop

    with monkeypatch.context() as m:
        m.setattr(Trainer, "train_step", stop)
        with pytest.raises(KeyboardInterrupt):
            train_main([*MICRO, "--steps", "2", "--out", str(run)])
    assert (run / "train_config.json").exists() and not _log(run)
    train_main([*MICRO, "--steps", "1", "--out", str(run)])  # the same folder, again, without --resume
    assert [r["step"] for r in _log(run)] == [1]

    early = tmp_path / "early"  # stopped while the model was being built: only the app's console file
    early.mkdir()
    (early / "console.txt").write_text("loading ...\n")
    train_main([*MICRO, "--steps", "1", "--out", str(early), "--resume"])
    assert [r["step"] for r in _log(early)] == [1]
