"""Checkpoints: atomic safetensors/JSON, config round trips, OpenSora and DUSt3R loaders, JOG3R save/load."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import jog3r.checkpoint as ckpt
from jog3r.checkpoint import (
    config_from_dict,
    config_to_dict,
    load_config,
    load_dust3r_checkpoint,
    load_opensora_checkpoint,
    load_state_dict_file,
    save_config,
    save_safetensors,
)
from jog3r.config import get_preset
from jog3r.dit.stdit import STDiT
from jog3r.model import JOG3R, JOG3RConfig, TrainablePart
from jog3r.recon.decoder import DecoderVariant, PointmapDecoder

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"


def small_stdit_config():
    return dataclasses.replace(get_preset("tiny").stdit, depth=2, hidden_size=32, num_heads=2, caption_channels=16,
                               model_max_length=4, input_size=(4, 4, 6))


def small_jog3r_config(**changes) -> JOG3RConfig:
    base = dict(stdit=small_stdit_config(), dec_embed_dim=16, dec_depth=1, dec_num_heads=2, tap_block=1,
                frozen_blocks=0, trainable_after_frozen=TrainablePart.ALL, train_embedders=True)
    base.update(changes)
    return JOG3RConfig(**base)


def random_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in module.state_dict().items()}


# ------------------------------------------------------------------------------------------------ OpenSora
@pytest.mark.parametrize("wrapper,suffix", [("ema", ".pth"), ("state_dict", ".pt"), (None, ".safetensors")])
def test_opensora_layout_loads_without_missing_keys(tmp_path, wrapper, suffix):
    source = STDiT(small_stdit_config())
    state = random_state(source)  # OpenSora key names, including the pos_embed buffers it saves
    path = tmp_path / f"opensora{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({wrapper: state, "step": torch.tensor(80000)}, path)
    target = STDiT(small_stdit_config())
    report = load_opensora_checkpoint(target, path)
    assert report.missing == [] and report.unexpected == []
    assert any(s.startswith("pos_embed:") for s in report.skipped)
    loaded = target.state_dict()
    for key in ("blocks.1.attn_temp.qkv.weight", "y_embedder.y_embedding", "final_layer.linear.bias"):
        assert torch.equal(loaded[key], state[key])
    # the position embeddings are the model's own, not the file's
    assert torch.equal(loaded["pos_embed"], source.state_dict()["pos_embed"])


def test_opensora_shape_mismatch_names_key_and_shapes(tmp_path):
    model = STDiT(small_stdit_config())
    state = dict(model.state_dict())
    state["blocks.0.mlp.fc1.weight"] = torch.zeros(7, 32)
    torch.save({"ema": state}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"blocks\.0\.mlp\.fc1\.weight.*\(7, 32\).*\(128, 32\)"):
        load_opensora_checkpoint(model, tmp_path / "bad.pth")


def test_opensora_reports_missing_and_unexpected(tmp_path):
    model = STDiT(small_stdit_config())
    state = dict(model.state_dict())
    del state["blocks.1.attn_temp.proj.bias"]
    state["some_extra.weight"] = torch.zeros(2)
    x_w = state["x_embedder.proj.weight"]
    state["x_embedder.proj.weight"] = x_w[:, :, 0]  # PixArt's 2-D patch embedding
    torch.save(state, tmp_path / "partial.pth")
    report = load_opensora_checkpoint(model, tmp_path / "partial.pth")
    assert report.missing == ["blocks.1.attn_temp.proj.bias"]
    assert report.unexpected == ["some_extra.weight"]
    assert torch.equal(model.x_embedder.proj.weight, x_w)


def test_bad_paths_and_files(tmp_path):
    model = STDiT(small_stdit_config())
    with pytest.raises(FileNotFoundError, match="not found"):
        load_opensora_checkpoint(model, tmp_path / "nope.pth")
    (tmp_path / "notes.pth").write_text("this is not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_opensora_checkpoint(model, tmp_path / "notes.pth")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 5)
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_state_dict_file(tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="local files only"):
        load_state_dict_file("https://huggingface.co/x/y.pth")
    with pytest.raises(ValueError, match="not a file"):
        load_state_dict_file(tmp_path)
    (tmp_path / "w.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="suffix"):
        load_state_dict_file(tmp_path / "w.npz")
    torch.save({"step": 3}, tmp_path / "no_tensors.pth")
    with pytest.raises(ValueError, match="no tensors"):
        load_state_dict_file(tmp_path / "no_tensors.pth")


# ---------------------------------------------------------------------------------------------------- DUSt3R
def dust3r_file(tmp_path, drop_dec_blocks2=False) -> Path:
    state = torch.load(GOLDEN / "dust3r_small_dec.pth", weights_only=True)
    if drop_dec_blocks2:
        state = {k: v for k, v in state.items() if not k.startswith("dec_blocks2.")}
    state["enc_blocks.0.norm1.weight"] = torch.ones(96)
    state["patch_embed.proj.weight"] = torch.zeros(96, 3, 16, 16)
    args = argparse.Namespace(model="AsymmetricCroCo3DStereo(__import__('os').system('echo never'))", lr=1e-4)
    path = tmp_path / "dust3r.pth"
    torch.save({"model": state, "args": args, "epoch": 3}, path)
    return path


def test_dust3r_checkpoint_loads_decoder_and_heads(tmp_path):
    model = PointmapDecoder(enc_dim=96, dec_dim=64, depth=3, num_heads=4, patch_size=16)
    report = load_dust3r_checkpoint(model, dust3r_file(tmp_path))
    assert report.missing == [] and len(report.loaded) == len(model.state_dict())
    assert sorted(s.split(":")[0] for s in report.skipped) == ["enc_blocks.0.norm1.weight", "patch_embed.proj.weight"]
    with np.load(GOLDEN / "dust3r_small_io.npz") as io, torch.no_grad():
        t = {k: torch.from_numpy(io[k]) for k in ("feat1", "feat2", "pos1", "pos2", "pred2_pts3d_in_other_view")}
        out = model.forward_pair(t["feat1"], t["feat2"], t["pos1"], t["pos2"], (3, 4))
    ref = t["pred2_pts3d_in_other_view"]
    assert float(((out["pts3d_in_other_view"] - ref).abs() - (1e-4 + 1e-4 * ref.abs())).max()) <= 0


def test_dust3r_croco_style_file_duplicates_dec_blocks(tmp_path):
    model = PointmapDecoder(enc_dim=96, dec_dim=64, depth=3, num_heads=4, patch_size=16)
    load_dust3r_checkpoint(model, dust3r_file(tmp_path, drop_dec_blocks2=True))
    for a, b in zip(model.dec_blocks.state_dict().values(), model.dec_blocks2.state_dict().values()):
        assert torch.equal(a, b)


def test_dust3r_into_jog3r_skips_what_does_not_fit(tmp_path):
    # STDiT width 32 != DUSt3R encoder width 96: decoder_embed is skipped; blocks (64 wide, 4 heads) and heads fit.
    model = JOG3R(small_jog3r_config(dec_embed_dim=64, dec_depth=3, dec_num_heads=4))
    report = load_dust3r_checkpoint(model, dust3r_file(tmp_path))
    assert "decoder_embed.weight: shape (64, 96) in the file vs (64, 32) in the model" in report.skipped
    assert report.missing == ["decoder_embed.weight"]  # the bias (64,) fits and is taken, per key
    golden = torch.load(GOLDEN / "dust3r_small_dec.pth", weights_only=True)
    assert torch.equal(model.dec_blocks2[2].cross_attn.projk.weight, golden["dec_blocks2.2.cross_attn.projk.weight"])
    joint = JOG3R(small_jog3r_config(dec_embed_dim=64, dec_depth=3, dec_num_heads=4,
                                     decoder_variant=DecoderVariant.JOINT_3D))
    report = load_dust3r_checkpoint(joint, dust3r_file(tmp_path))
    assert "dec_blocks2.0.norm1.weight" in report.unexpected and "dec_blocks.0.attn.qkv.weight" in report.loaded
    assert torch.equal(joint.dec_blocks[0].mlp.fc1.weight, golden["dec_blocks.0.mlp.fc1.weight"])


# -------------------------------------------------------------------------------------------- atomic writes
def test_save_safetensors_round_trip_and_shared_storage(tmp_path):
    base = torch.randn(4, 3)
    state = {"a": base, "b": base, "c": base.t(), "i": torch.arange(5)}
    path = save_safetensors(state, tmp_path / "sub" / "w.safetensors", metadata={"format": "pt"})
    loaded = load_state_dict_file(path)
    for key, value in state.items():
        assert torch.equal(loaded[key], value)


def test_crash_during_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    good = {"w": torch.ones(3)}
    save_safetensors(good, path)
    before = path.read_bytes()

    def crashing_save_file(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")  # half-written temp file, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "save_file", crashing_save_file)
    with pytest.raises(KeyboardInterrupt):
        save_safetensors({"w": torch.zeros(3)}, path)
    assert path.read_bytes() == before
    assert torch.equal(load_state_dict_file(path)["w"], good["w"])
    assert os.listdir(tmp_path) == ["model.safetensors"]  # the temp file was cleaned up


# ------------------------------------------------------------------------------------------------- configs
def test_config_json_round_trip(tmp_path):
    cfg = small_jog3r_config(decoder_variant=DecoderVariant.JOINT_3D)
    data = config_to_dict(cfg)
    assert data["decoder_variant"] == "joint_3d" and data["stdit"]["patch_size"] == [1, 2, 2]
    json.dumps(data)
    assert config_from_dict(JOG3RConfig, data) == cfg
    save_config(cfg, tmp_path / "config.json")
    assert load_config(JOG3RConfig, tmp_path / "config.json") == cfg
    for preset in ("tiny", "opensora-1.0-16x256"):
        assert config_from_dict(JOG3RConfig, config_to_dict(get_preset(preset))) == get_preset(preset)


def test_config_errors(tmp_path):
    data = config_to_dict(small_jog3r_config())
    with pytest.raises(ValueError, match="unknown JOG3RConfig keys"):
        config_from_dict(JOG3RConfig, {**data, "dec_width": 3})
    with pytest.raises(ValueError):
        config_from_dict(JOG3RConfig, {**data, "depth_mode": "__import__('os')"})
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_config(JOG3RConfig, tmp_path / "c.json")
    with pytest.raises(FileNotFoundError):
        load_config(JOG3RConfig, tmp_path / "missing.json")


# ----------------------------------------------------------------------------------------- JOG3R pretrained
def test_save_pretrained_round_trip(tmp_path):
    model = JOG3R(small_jog3r_config()).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    model.save_pretrained(tmp_path / "jog3r")
    assert sorted(os.listdir(tmp_path / "jog3r")) == ["config.json", "model.safetensors"]
    loaded = JOG3R.from_pretrained(tmp_path / "jog3r")
    assert loaded.config == model.config and not loaded.training
    x = torch.randn(1, 32, 4, 4, 6)
    t, y = torch.tensor([2]), model.stdit.null_caption(1)
    with torch.no_grad():
        a, b = model(x, t, y), loaded(x, t, y)
    assert torch.equal(a.dit_out, b.dit_out) and torch.equal(a.pointmaps.pts3d, b.pointmaps.pts3d)


def test_from_pretrained_errors(tmp_path):
    model = JOG3R(small_jog3r_config())
    model.save_pretrained(tmp_path / "m")
    with pytest.raises(FileNotFoundError):
        JOG3R.from_pretrained(tmp_path / "absent")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["dec_embed_dim"] = 32
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"'dec_blocks\.0\.attn\.proj\.weight': checkpoint \(16, 16\) vs model \(32, 32\)"):
        JOG3R.from_pretrained(tmp_path / "m")
