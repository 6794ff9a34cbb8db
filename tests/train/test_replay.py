"""The replay pool (render in workers, encode once, draw while it grows) and --model-overrides."""

from __future__ import annotations

import json

import pytest

from jog3r.model import JOG3R
from jog3r.train.__main__ import main as train_main

MICRO = ["--preset", "micro", "--data", "synth", "--num-frames", "4", "--height", "32", "--width", "48",
         "--batch-size", "2", "--warmup-steps", "1", "--lr", "1e-3", "--threads", "1"]


def test_replay_pool_feeds_training_and_grows(tmp_path):
    run = tmp_path / "run"
    train_main([*MICRO, "--mode", "joint", "--steps", "3", "--replay-pool", "64", "--replay-workers", "1",
                "--replay-warmup", "3", "--model-overrides", "dec_embed_dim", "64", "dec_num_heads", "4",
                "--out", str(run)])
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert all(r["pool_size"] >= 3 for r in log) and log[-1]["pool_total"] >= log[0]["pool_total"]
    assert all(r["loss_rec"] > 0 and r["loss_gen"] > 0 for r in log)
    model = JOG3R.from_pretrained(run / "final")
    assert model.config.dec_embed_dim == 64 and model.decoder_embed.out_features == 64


def test_unknown_model_override_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown field 'dec_width'.*dec_embed_dim"):
        train_main([*MICRO, "--steps", "1", "--model-overrides", "dec_width", "64", "--out", str(tmp_path / "r")])


def test_replay_pool_needs_synthetic_data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(ValueError, match="--replay-pool works with --data synth only"):
        train_main([*MICRO[:2], "--data", str(data), *MICRO[4:], "--steps", "1", "--replay-pool", "4",
                    "--out", str(tmp_path / "r")])
