"""STDiT beyond the golden run: presets and key layout, caption mask, grid sizes, dropout, checkpointing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from jog3r.config import STDIT_PRESETS, get_stdit_preset
from jog3r.dit.stdit import STDiT, load_opensora_state_dict

GOLDEN_PTH = Path(__file__).parent.parent / "data" / "golden" / "stdit_small.pth"
XL_PARAMS = 759_620_768  # REFERENCE.md A.1
XL_TEMPORAL_PARAMS = 148_764_672

# REFERENCE.md A.4, written out by hand: every key of one STDiT-XL/2 block and of the top level.
XL_BLOCK_KEYS = {
    "scale_shift_table": (6, 1152),
    "attn.qkv.weight": (3456, 1152),
    "attn.qkv.bias": (3456,),
    "attn.proj.weight": (1152, 1152),
    "attn.proj.bias": (1152,),
    "attn_temp.qkv.weight": (3456, 1152),
    "attn_temp.qkv.bias": (3456,),
    "attn_temp.proj.weight": (1152, 1152),
    "attn_temp.proj.bias": (1152,),
    "cross_attn.q_linear.weight": (1152, 1152),
    "cross_attn.q_linear.bias": (1152,),
    "cross_attn.kv_linear.weight": (2304, 1152),
    "cross_attn.kv_linear.bias": (2304,),
    "cross_attn.proj.weight": (1152, 1152),
    "cross_attn.proj.bias": (1152,),
    "mlp.fc1.weight": (4608, 1152),
    "mlp.fc1.bias": (4608,),
    "mlp.fc2.weight": (1152, 4608),
    "mlp.fc2.bias": (1152,),
}
XL_TOP_KEYS = {
    "pos_embed_temporal": (1, 16, 1152),
    "x_embedder.proj.weight": (1152, 4, 1, 2, 2),
    "x_embedder.proj.bias": (1152,),
    "t_embedder.mlp.0.weight": (1152, 256),
    "t_embedder.mlp.0.bias": (1152,),
    "t_embedder.mlp.2.weight": (1152, 1152),
    "t_embedder.mlp.2.bias": (1152,),
    "t_block.1.weight": (6912, 1152),
    "t_block.1.bias": (6912,),
    "y_embedder.y_embedding": (120, 4096),
    "y_embedder.y_proj.fc1.weight": (1152, 4096),
    "y_embedder.y_proj.fc1.bias": (1152,),
    "y_embedder.y_proj.fc2.weight": (1152, 1152),
    "y_embedder.y_proj.fc2.bias": (1152,),
    "final_layer.scale_shift_table": (2, 1152),
    "final_layer.linear.weight": (32, 1152),
    "final_layer.linear.bias": (32,),
}


@pytest.mark.parametrize(
    ("preset", "spatial_tokens"), [("opensora-1.0-16x256", 256), ("opensora-1.0-16x512", 1024)]
)
def test_opensora_presets_match_reference_layout(preset, spatial_tokens):
    with torch.device("meta"):
        model = STDiT(get_stdit_preset(preset))
    assert sum(p.numel() for p in model.parameters()) == XL_PARAMS
    temporal = sum(p.numel() for n, p in model.named_parameters() if ".attn_temp." in n)
    assert temporal == XL_TEMPORAL_PARAMS
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k[len("blocks.0.") :]: s for k, s in shapes.items() if k.startswith("blocks.0.")} == XL_BLOCK_KEYS
    top = {k: s for k, s in shapes.items() if not k.startswith("blocks.")}
    assert top == {**XL_TOP_KEYS, "pos_embed": (1, spatial_tokens, 1152)}
    for i in range(28):
        block = {k.split(".", 2)[2]: s for k, s in shapes.items() if k.startswith(f"blocks.{i}.")}
        assert block == XL_BLOCK_KEYS, f"block {i}"
    assert len(shapes) == len(XL_TOP_KEYS) + 1 + 28 * len(XL_BLOCK_KEYS)


def test_tiny_preset_forward_and_features():
    config = get_stdit_preset("tiny")
    model = STDiT(config).eval()
    x = torch.randn(1, 32, 16, 16, 24)
    y = torch.randn(1, 1, 32, 384)
    with torch.no_grad():
        out, feats = model(x, torch.tensor([3]), y, return_features=4)
    assert out.shape == (1, 64, 16, 16, 24) and out.dtype == torch.float32
    assert feats[4].shape == (1, 16, 8 * 12, 192)
    assert model.patch_grid(16, 24) == (8, 12)


def test_get_stdit_preset_lists_valid_names():
    with pytest.raises(ValueError, match="tiny"):
        get_stdit_preset("opensora-2")
    assert set(STDIT_PRESETS) >= {"opensora-1.0-16x256", "opensora-1.0-16x512", "tiny"}


def test_fresh_model_is_initialised_as_opensora():
    model = STDiT(get_stdit_preset("tiny")).eval()
    assert "y_embedder.y_embedding" not in dict(model.named_parameters())
    for block in model.blocks:
        for linear in (block.attn_temp.proj, block.cross_attn.proj):
            assert not linear.weight.any() and not linear.bias.any()
    x = torch.randn(2, 32, 2, 4, 6)
    with torch.no_grad():
        out = model(x, torch.tensor([10, 500]), model.null_caption(2))
    assert not out.any()  # zero final layer -> exactly zero prediction at initialisation


def test_padded_caption_tokens_do_not_matter(golden_model, golden_io):
    io = golden_io
    x, t, y, mask = io["x"], io["timestep"], io["y"], io["mask"]
    y_padded = y.clone()
    y_padded[1, :, 7:] = 100 * torch.randn_like(y_padded[1, :, 7:])
    y_padded[2, :, 2:] = -y_padded[2, :, 2:] + 3.0
    y_valid = y.clone()
    y_valid[1, :, 3] += 1.0
    with torch.no_grad():
        out = golden_model(x, t, y, mask)
        out_padded = golden_model(x, t, y_padded, mask)
        out_valid = golden_model(x, t, y_valid, mask)
        out_unmasked = golden_model(x, t, y_padded, None)
    torch.testing.assert_close(out_padded, out, rtol=0, atol=1e-6)
    assert (out_valid[1] - out[1]).abs().max() > 1e-3  # a valid token does matter ...
    torch.testing.assert_close(out_valid[[0, 2]], out[[0, 2]], rtol=0, atol=1e-6)  # ... only for its sample
    assert (out_unmasked[1] - out[1]).abs().max() > 1e-3  # and without a mask the padding is attended


def test_cfg_mask_is_repeated(golden_model, golden_io):
    io = golden_io
    with torch.no_grad():
        short = golden_model(io["cfg_x"], io["cfg_timestep"], io["cfg_y"], io["cfg_mask"])
        full = golden_model(io["cfg_x"], io["cfg_timestep"], io["cfg_y"], io["cfg_mask"].repeat(2, 1))
    assert torch.equal(short, full)


@pytest.mark.parametrize("size", [(2, 6, 10), (4, 12, 8), (5, 8, 12)])
def test_other_grid_sizes_match_a_model_built_at_that_size(
    golden_model, golden_config, build_golden_model, size
):
    fresh = build_golden_model(dataclasses.replace(golden_config, input_size=size))
    x = torch.randn(2, 4, *size)
    t = torch.tensor([999.0, 5.0])
    y = torch.randn(2, 1, 12, 64)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 4:] = 0
    spatial, temporal = golden_model.pos_embeds(size[0], size[1] // 2, size[2] // 2, x)
    torch.testing.assert_close(spatial, fresh.pos_embed, rtol=0, atol=0)
    torch.testing.assert_close(temporal, fresh.pos_embed_temporal, rtol=0, atol=0)
    with torch.no_grad():
        out = golden_model(x, t, y, mask)
        ref = fresh(x, t, y, mask)
    assert out.shape == (2, 8, *size)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    assert golden_model.pos_embed.shape == (1, 24, 96)  # the buffers are untouched


def test_force_drop_ids_and_training_dropout_use_the_null_caption(
    golden_config, build_golden_model, golden_io
):
    io = golden_io
    model = build_golden_model(golden_config)
    x, t, y, mask = io["x"], io["timestep"], io["y"], io["mask"]
    with torch.no_grad():
        null = model(x, t, model.null_caption(3), mask)
        forced = model(x, t, y, mask, force_drop_ids=torch.tensor([1, 0, 1]))
        conditional = model(x, t, y, mask)
    torch.testing.assert_close(forced[[0, 2]], null[[0, 2]], rtol=0, atol=1e-6)
    torch.testing.assert_close(forced[1], conditional[1], rtol=0, atol=1e-6)
    assert (null[1] - conditional[1]).abs().max() > 1e-3

    always_drop = build_golden_model(dataclasses.replace(golden_config, class_dropout_prob=1.0)).train()
    never_drop = build_golden_model(dataclasses.replace(golden_config, class_dropout_prob=0.0)).train()
    with torch.no_grad():
        torch.testing.assert_close(always_drop(x, t, y, mask), null, rtol=0, atol=1e-6)
        torch.testing.assert_close(never_drop(x, t, y, mask), conditional, rtol=0, atol=1e-6)


def test_gradient_checkpointing_gives_the_same_gradients(golden_config, build_golden_model, golden_io):
    io = golden_io
    grads = []
    for ckpt in (False, True):
        config = dataclasses.replace(golden_config, class_dropout_prob=0.0, grad_checkpointing=ckpt)
        model = build_golden_model(config).train()
        loss = model(io["x"], io["timestep"], io["y"], io["mask"]).square().mean()
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-5, atol=1e-7, msg=name)


def test_timestep_int_float_and_scalar_agree(golden_model, golden_io):
    io = golden_io
    x, y, mask = io["x"][:2], io["y"][:2], io["mask"][:2]
    with torch.no_grad():
        as_float = golden_model(x, torch.tensor([7.0, 7.0]), y, mask)
        as_int = golden_model(x, torch.tensor([7, 7]), y, mask)
        as_scalar = golden_model(x, torch.tensor(7), y, mask)
    assert torch.equal(as_float, as_int) and torch.equal(as_float, as_scalar)


def test_bfloat16_model_returns_float32(golden_config, build_golden_model, golden_io):
    io = golden_io
    model = build_golden_model(golden_config).to(torch.bfloat16)
    with torch.no_grad():
        out = model(io["x"], io["timestep"], io["y"], io["mask"])
    assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())
    assert (out - io["out"]).abs().mean() < 0.05 * io["out"].abs().mean()


def test_load_opensora_state_dict_rejects_wrong_config(golden_config):
    wrong = STDiT(dataclasses.replace(golden_config, depth=3))
    state_dict = torch.load(GOLDEN_PTH, map_location="cpu", weights_only=True)
    with pytest.raises(ValueError, match="unexpected"):
        load_opensora_state_dict(wrong, state_dict)
    assert load_opensora_state_dict(wrong, {"ema": state_dict}, strict=False) == []
