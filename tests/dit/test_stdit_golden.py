"""Golden parity with OpenSora v1.0's own STDiT (tests/data/golden/README.md), every weight randomised."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

HOOKED = {
    "x_embedder": "x_embedder_out",
    "t_embedder": "t_embedder_out",
    "t_block": "t_block_out",
    "y_embedder": "y_embedder_out",
    "final_layer": "final_layer_out",
    **{f"blocks.{i}": f"block_out_{i}" for i in range(4)},
}


def run_with_hooks(model, x, timestep, y, mask):
    """Run ``model`` and capture the outputs of the modules in :data:`HOOKED`."""
    captured = {}
    handles = [
        model.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, key=key: captured.__setitem__(key, out)
        )
        for name, key in HOOKED.items()
    ]
    try:
        with torch.no_grad():
            out = model(x, timestep, y, mask)
    finally:
        for handle in handles:
            handle.remove()
    return out, captured


def test_parameter_count_and_state_dict_layout(golden_model, golden_meta):
    state = golden_model.state_dict()
    assert sum(p.numel() for p in golden_model.parameters()) == golden_meta["n_params"]
    assert {k: list(v.shape) for k, v in state.items()} == golden_meta["state_dict"]
    buffers = {name for name, _ in golden_model.named_buffers()}
    assert buffers == {"pos_embed", "pos_embed_temporal", "y_embedder.y_embedding"}


def test_position_embedding_buffers(golden_model, golden_io, assert_close_ref):
    assert_close_ref(golden_model.pos_embed, golden_io["pos_embed"], "pos_embed")
    assert_close_ref(golden_model.pos_embed_temporal, golden_io["pos_embed_temporal"], "pos_embed_temporal")


def test_output_and_intermediates_fp32(golden_model, golden_io, assert_close_ref):
    io = golden_io
    out, captured = run_with_hooks(golden_model, io["x"], io["timestep"], io["y"], io["mask"])
    assert out.dtype == torch.float32
    for key, value in captured.items():
        assert_close_ref(value, io[key], key)
    assert_close_ref(out, io["out"], "out")


def test_cfg_batch_with_repeated_mask(golden_model, golden_io, assert_close_ref):
    io = golden_io
    assert io["cfg_mask"].shape[0] * 2 == io["cfg_x"].shape[0]
    with torch.no_grad():
        out = golden_model(io["cfg_x"], io["cfg_timestep"], io["cfg_y"], io["cfg_mask"])
    assert_close_ref(out, io["cfg_out"], "cfg_out")


def test_float64_run(golden_config, build_golden_model, golden_io, assert_close_ref):
    io = golden_io
    model = build_golden_model(golden_config).double()
    out, captured = run_with_hooks(model, io["x"].double(), io["timestep"], io["y"].double(), io["mask"])
    assert out.dtype == torch.float32  # OpenSora casts the output to fp32 whatever the model dtype
    for i in range(4):
        assert captured[f"block_out_{i}"].dtype == torch.float64
        assert_close_ref(captured[f"block_out_{i}"], io[f"block_out_{i}_f64"], f"block_out_{i}_f64")
    assert_close_ref(out, io["out_f64"], "out_f64")


@pytest.mark.parametrize("taps", [1, (1, 2, 3, 4), (3, 2)])
def test_feature_taps_are_block_outputs(golden_model, golden_io, assert_close_ref, taps):
    io = golden_io
    num_frames = io["x"].shape[2]
    with torch.no_grad():
        out, feats = golden_model(io["x"], io["timestep"], io["y"], io["mask"], return_features=taps)
    wanted = (taps,) if isinstance(taps, int) else taps
    assert sorted(feats) == sorted(wanted)
    for n in wanted:
        assert feats[n].shape == (3, num_frames, 24, 96)  # [B, F, S, D] with S = 4 x 6 patches
        ref = rearrange(io[f"block_out_{n - 1}"], "B (F S) D -> B F S D", F=num_frames)
        assert_close_ref(feats[n], ref, f"b^{n}")
    assert_close_ref(out, io["out"], "out with taps")


def test_stop_after_features_gives_identical_features(golden_model, golden_io):
    io = golden_io
    args = (io["x"], io["timestep"], io["y"], io["mask"])
    with torch.no_grad():
        _, full = golden_model(*args, return_features=(1, 3))
        out, stopped = golden_model(*args, return_features=(1, 3), stop_after_features=True)
    assert out is None
    assert sorted(stopped) == [1, 3]
    for n in (1, 3):
        assert torch.equal(full[n], stopped[n])
