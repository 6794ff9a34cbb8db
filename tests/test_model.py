"""JOG3R model: output shapes on the tiny preset, the paper's freeze policy and gradient routing, presets."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from jog3r.config import JOG3R_PRESETS, get_preset
from jog3r.losses import reconstruction_loss
from jog3r.model import JOG3R, JOG3RConfig, TrainablePart
from jog3r.recon.decoder import DecoderVariant
from jog3r.recon.pairs import SceneGraph, make_edges
from jog3r.types import Latents


def small_paper_config(**changes) -> JOG3RConfig:
    """The paper's policy scaled down: 8 blocks, tap at 6 (two 'generation' blocks after it), first 2 frozen."""
    tiny = get_preset("tiny")
    stdit = dataclasses.replace(tiny.stdit, depth=8, hidden_size=64, num_heads=4, caption_channels=32,
                                model_max_length=6, class_dropout_prob=0.0)
    base = dict(stdit=stdit, dec_embed_dim=32, dec_depth=2, dec_num_heads=2, tap_block=6, frozen_blocks=2,
                trainable_after_frozen=TrainablePart.TEMPORAL_ATTENTION, train_embedders=False)
    base.update(changes)
    return JOG3RConfig(**base)


def randomise(model: nn.Module) -> None:
    """Give every parameter a non-zero value (OpenSora zero-initialises some projections, which would hide paths)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.05)


def inputs(model: JOG3R, batch=1, frames=4, h=4, w=6):
    cfg = model.config.stdit
    x = torch.randn(batch, cfg.in_channels, frames, h, w)
    return x, torch.full((batch,), 3), model.stdit.null_caption(batch)


def rec_loss(pointmaps) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    gt1 = torch.randn(pointmaps.pts3d.shape, generator=gen)
    gt2 = torch.randn(pointmaps.pts3d.shape, generator=gen)
    valid = torch.ones(pointmaps.conf.shape, dtype=torch.bool)
    return reconstruction_loss(pointmaps, gt1, gt2, valid, valid)["loss"]


def grad_norm(module: nn.Module) -> float:
    grads = [p.grad.abs().sum() for p in module.parameters() if p.grad is not None]
    return float(sum(grads)) if grads else 0.0


def has_no_grad(module: nn.Module) -> bool:
    return all(p.grad is None for p in module.parameters())


@torch.no_grad()
def test_tiny_preset_forward_shapes():
    model = JOG3R(get_preset("tiny")).eval()
    x, t, y = inputs(model, batch=2, frames=4, h=4, w=6)
    out = model(x, t, y)
    assert out.dit_out.shape == (2, 64, 4, 4, 6) and out.dit_out.dtype == torch.float32
    pm = out.pointmaps
    assert pm.pts3d.shape == (2, 3, 32, 48, 3)  # 3 edges (0 -> f); 4x6 latent x 8 = 32x48 pixels
    assert pm.conf.shape == (2, 3, 32, 48) and pm.conf_in_other_view.shape == (2, 3, 32, 48)
    assert pm.pts3d_in_other_view.shape == (2, 3, 32, 48, 3)
    assert torch.equal(pm.edges, make_edges(4, SceneGraph.FIRST_TO_ALL))
    assert bool((pm.conf >= 1).all()) and bool(torch.isfinite(pm.pts3d).all())
    feats = out.features
    assert feats.tokens.shape == (2, 4, 6, 192) and feats.grid == (2, 3) and feats.block == 5
    assert feats.timestep.dtype == torch.int64
    # decode_pointmaps on the tapped features reproduces the forward's point maps; a Latents input works too.
    torch.testing.assert_close(model.decode_pointmaps(feats).pts3d, pm.pts3d)
    rec_only = model(Latents(x=x), t, y, compute_gen=False, edges=make_edges(4, SceneGraph.COMPLETE))
    assert rec_only.dit_out is None and rec_only.pointmaps.pts3d.shape[1] == 6
    torch.testing.assert_close(rec_only.pointmaps.pts3d[:, :3], pm.pts3d)
    gen_only = model(x, t, y, compute_rec=False)
    assert gen_only.pointmaps is None
    torch.testing.assert_close(gen_only.dit_out, out.dit_out)
    feats_only = model(x, t, y, compute_gen=False, compute_rec=False)  # V2C feature extraction
    assert feats_only.dit_out is None and feats_only.pointmaps is None
    torch.testing.assert_close(feats_only.features.tokens, feats.tokens)


def test_paper_freeze_policy_routes_gradients():
    model = JOG3R(small_paper_config())
    randomise(model)
    counts = model.apply_freeze_policy()
    blocks = model.stdit.blocks
    temporal = sum(p.numel() for b in blocks[2:] for p in b.attn_temp.parameters())
    assert counts["trainable"] == temporal + model.num_parameters("decoder")
    x, t, y = inputs(model)

    # L_rec through a full forward (gen branch computed but unused): only blocks 3..6 temporal attention + decoder.
    rec_loss(model(x, t, y).pointmaps).backward()
    for i, block in enumerate(blocks, start=1):
        if i <= 2 or i > 6:
            assert has_no_grad(block), f"block {i} must get no gradient from L_rec"
        else:
            assert grad_norm(block.attn_temp) > 0, f"temporal attention of block {i} must learn from L_rec"
            for frozen in (block.attn, block.cross_attn, block.mlp):
                assert has_no_grad(frozen)
    for part in (model.decoder_embed, model.dec_blocks, model.dec_blocks2, model.dec_norm,
                 model.downstream_head1, model.downstream_head2):
        assert grad_norm(part) > 0
    for stem in (model.stdit.x_embedder, model.stdit.y_embedder, model.stdit.final_layer):
        assert has_no_grad(stem)

    # L_gen (any function of dit_out) reaches the blocks after the tap.
    model.zero_grad(set_to_none=True)
    model(x, t, y, compute_rec=False).dit_out.square().mean().backward()
    for i in (7, 8):
        assert grad_norm(blocks[i - 1].attn_temp) > 0, f"block {i} must learn from L_gen"
    assert has_no_grad(model.dec_blocks)


def test_reconstruction_pass_stops_at_the_tap():
    model = JOG3R(small_paper_config())
    randomise(model)
    model.apply_freeze_policy()
    x, t, y = inputs(model)
    calls = []
    hooks = [b.register_forward_hook(lambda m, a, o, i=i: calls.append(i)) for i, b in enumerate(model.stdit.blocks, 1)]
    out = model(x, t, y, compute_gen=False)
    for h in hooks:
        h.remove()
    assert calls == [1, 2, 3, 4, 5, 6] and out.dit_out is None
    rec_loss(out.pointmaps).backward()
    assert all(has_no_grad(b) for b in model.stdit.blocks[6:])


@pytest.mark.parametrize("part,trainable_blocks", [(TrainablePart.ALL, "all"), (TrainablePart.NONE, "none")])
def test_other_freeze_policies(part, trainable_blocks):
    model = JOG3R(small_paper_config(trainable_after_frozen=part, frozen_blocks=3, train_embedders=True))
    model.apply_freeze_policy()
    blocks = model.stdit.blocks
    assert not any(p.requires_grad for b in blocks[:3] for p in b.parameters())
    later = [p.requires_grad for b in blocks[3:] for p in b.parameters()]
    assert all(later) if trainable_blocks == "all" else not any(later)
    assert all(p.requires_grad for p in model.stdit.x_embedder.parameters())
    assert all(p.requires_grad for p in model.dec_blocks.parameters())


def test_tiny_preset_trains_everything():
    model = JOG3R(get_preset("tiny"))
    counts = model.apply_freeze_policy()
    assert counts["frozen"] == 0


def test_joint_3d_variant_forward():
    model = JOG3R(small_paper_config(decoder_variant=DecoderVariant.JOINT_3D)).eval()
    x, t, y = inputs(model)
    with torch.no_grad():
        out = model(x, t, y, compute_gen=False)
    assert out.pointmaps.pts3d.shape == (1, 3, 32, 48, 3)
    assert model.dec_blocks2 is None


def test_config_validation():
    with pytest.raises(ValueError, match="tap_block"):
        small_paper_config(tap_block=9)
    with pytest.raises(ValueError, match="frozen_blocks"):
        small_paper_config(frozen_blocks=-1)
    with pytest.raises(ValueError):
        small_paper_config(decoder_variant="three_branch")
    with pytest.raises(ValueError, match="unknown JOG3R preset"):
        get_preset("huge")


def test_opensora_presets_match_the_paper():
    for name in ("opensora-1.0-16x256", "opensora-1.0-16x512"):
        cfg = JOG3R_PRESETS[name]
        assert (cfg.tap_block, cfg.stdit.depth, cfg.frozen_blocks, cfg.dec_depth) == (26, 28, 4, 6)
        assert cfg.head_patch_size == 16 and cfg.trainable_after_frozen is TrainablePart.TEMPORAL_ATTENTION
    with torch.device("meta"):
        model = JOG3R(JOG3R_PRESETS["opensora-1.0-16x256"])
    assert model.num_parameters("stdit") == 759_620_768  # REFERENCE.md A.1
    # decoder_embed 1152->768, 2 x 6 blocks of 9,453,312 (REFERENCE.md B.1), dec_norm, 2 heads 768->1024.
    expected = (1152 * 768 + 768) + 12 * 9_453_312 + 2 * 768 + 2 * (768 * 1024 + 1024)
    assert model.num_parameters("decoder") == expected
