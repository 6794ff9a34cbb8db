"""Model folders written by ``jog3r train`` / ``jog3r.train.export`` carry the T2V sampling options (issue #20)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from jog3r.diffusion import read_sampling_options
from jog3r.diffusion.sampling import SAMPLING_FILE
from jog3r.train.__main__ import main as train_main
from jog3r.train.checkpoints import latest_checkpoint
from jog3r.train.export import export_checkpoint
from jog3r.train.pack import load_packed_clip, main as pack_main, packed_clips

SIZE = ["--num-frames", "4", "--height", "32", "--width", "48"]
MICRO = ["--preset", "micro", *SIZE, "--batch-size", "1", "--warmup-steps", "1", "--lr", "1e-3", "--threads", "1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, float]:
    """A 3-step run on 3 packed clips (batch 1: every clip is drawn once) and E[z^2] of those clips' latents."""
    root = tmp_path_factory.mktemp("export")
    packed, out = root / "packed", root / "run"
    pack_main(["--out", str(packed), "--num", "3", *SIZE, "--threads", "1"])
    train_main([*MICRO, "--data", str(packed), "--steps", "3", "--ckpt-every", "3", "--out", str(out)])
    z = torch.cat([load_packed_clip(f)[0].float().flatten() for f in packed_clips(packed)])
    return out, float(z.pow(2).mean())


def test_trained_taef2_model_folders_turn_on_the_gain_correction(run, tmp_path):
    out, m2 = run
    # before issue 20's export fix the folders had no sampling.json: OpenSora's reference sampling, colour noise
    for folder in (out / "final", export_checkpoint(latest_checkpoint(out), tmp_path / "model")):
        options = read_sampling_options(folder)
        assert options.eps_gain_second_moment == pytest.approx(m2, rel=1e-3)
        assert options.x0_threshold is None
    assert 0.05 < m2 < 20  # a real statistic of TAEF2 latents, not a placeholder


def test_export_measures_older_checkpoints_from_the_packed_data(run, tmp_path):
    out, m2 = run
    old = tmp_path / "run" / "checkpoints" / "step_000003"  # a run folder whose checkpoint predates the fix
    shutil.copytree(latest_checkpoint(out), old)
    shutil.copy2(out / "train_config.json", tmp_path / "run" / "train_config.json")
    (old / SAMPLING_FILE).unlink()
    model = export_checkpoint(old, tmp_path / "model")
    assert read_sampling_options(model).eps_gain_second_moment == pytest.approx(m2, rel=1e-3)


def test_opensora_vae_models_keep_the_reference_sampling(run, tmp_path):
    out, _ = run
    sd_vae = tmp_path / "sd-vae-ft-ema"  # components.json naming a diffusers AutoencoderKL: OpenSora's latents
    sd_vae.mkdir()
    (sd_vae / "config.json").write_text("{}")
    ckpt = tmp_path / "run" / "checkpoints" / "step_000003"
    shutil.copytree(latest_checkpoint(out), ckpt)
    shutil.copy2(out / "train_config.json", tmp_path / "run" / "train_config.json")
    (ckpt / "components.json").write_text(json.dumps({"vae": str(sd_vae), "text_encoder": "minilm"}))
    (ckpt / SAMPLING_FILE).unlink(missing_ok=True)
    target = tmp_path / "model"
    export_checkpoint(latest_checkpoint(out), target)  # a TAEF2 folder first: it has a sampling.json ...
    assert (target / SAMPLING_FILE).exists()
    export_checkpoint(ckpt, target)  # ... which an OpenSora-latent export neither keeps nor measures
    assert not (target / SAMPLING_FILE).exists()
    assert read_sampling_options(target).is_reference


def test_the_measured_moment_survives_resume(run, tmp_path):
    out, m2 = run
    packed = json.loads((out / "train_config.json").read_text())["data"]
    resumed = tmp_path / "resumed"
    train_main([*MICRO, "--data", packed, "--steps", "2", "--ckpt-every", "2", "--out", str(resumed)])
    train_main([*MICRO, "--data", packed, "--steps", "3", "--ckpt-every", "3", "--out", str(resumed), "--resume"])
    assert read_sampling_options(resumed / "final").eps_gain_second_moment == pytest.approx(m2, rel=1e-3)
