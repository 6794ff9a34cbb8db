"""Two-branch and joint-3D decoders on video tokens: pair mapping, shapes and input checks."""

from __future__ import annotations

import pytest
import torch

from jog3r.recon.adapter import check_edges, gather_pairs, patch_positions
from jog3r.recon.decoder import DecoderVariant, PointmapDecoder
from jog3r.recon.pairs import SceneGraph, make_edges

GRID = (2, 3)


def tiny(variant=DecoderVariant.TWO_BRANCH) -> PointmapDecoder:
    return PointmapDecoder(enc_dim=24, dec_dim=32, depth=2, num_heads=2, patch_size=4, variant=variant).eval()


@torch.no_grad()
def test_two_branch_video_equals_pairwise_calls():
    model = tiny()
    tokens = torch.randn(2, 4, 6, 24)
    edges = make_edges(4, SceneGraph.COMPLETE)
    pm = model.forward_video(tokens, GRID, edges)
    assert pm.pts3d.shape == (2, 6, 8, 12, 3) and pm.conf.shape == (2, 6, 8, 12)
    assert pm.pts3d_in_other_view.shape == (2, 6, 8, 12, 3) and pm.conf_in_other_view.shape == (2, 6, 8, 12)
    assert pm.edges.dtype == torch.int64 and torch.equal(pm.edges, edges)
    pos = patch_positions(GRID, 2)
    for p, (i, j) in enumerate(edges.tolist()):
        ref = model.forward_pair(tokens[:, i], tokens[:, j], pos, pos, GRID)
        torch.testing.assert_close(pm.pts3d[:, p], ref["pts3d"])
        torch.testing.assert_close(pm.pts3d_in_other_view[:, p], ref["pts3d_in_other_view"])
        torch.testing.assert_close(pm.conf_in_other_view[:, p], ref["conf_in_other_view"])


@torch.no_grad()
def test_joint_variant_maps_to_reference_pairs():
    model = tiny(DecoderVariant.JOINT_3D)
    assert model.dec_blocks2 is None and model.ref_embed is not None
    tokens = torch.randn(1, 4, 6, 24)
    pm = model.forward_video(tokens, GRID, make_edges(4))  # (0, 1), (0, 2), (0, 3)
    assert pm.pts3d.shape == (1, 3, 8, 12, 3)
    # One decoding pass for reference frame 0: its point map is shared by all its edges.
    torch.testing.assert_close(pm.pts3d[:, 0], pm.pts3d[:, 2])
    assert (pm.pts3d_in_other_view[:, 0] - pm.pts3d_in_other_view[:, 1]).abs().max() > 1e-4
    # Edge order does not matter, and mixed references (one pass each) are placed in their slots.
    edges = torch.tensor([[2, 0], [0, 3], [0, 1], [2, 3]])
    mixed = model.forward_video(tokens, GRID, edges)
    torch.testing.assert_close(mixed.pts3d_in_other_view[:, 1], pm.pts3d_in_other_view[:, 2])
    torch.testing.assert_close(mixed.pts3d_in_other_view[:, 2], pm.pts3d_in_other_view[:, 0])
    torch.testing.assert_close(mixed.pts3d[:, 0], mixed.pts3d[:, 3])
    # The reference marker changes what the same frame's tokens decode to.
    own_frame_as_ref = model.forward_video(tokens, GRID, torch.tensor([[2, 0]])).pts3d
    as_other = model.forward_video(tokens, GRID, torch.tensor([[0, 2]])).pts3d_in_other_view
    assert (own_frame_as_ref - as_other).abs().max() > 1e-4


def test_joint_variant_has_no_pair_path():
    with pytest.raises(RuntimeError, match="two_branch"):
        tiny(DecoderVariant.JOINT_3D).decode_pair(*(torch.zeros(1, 6, 24),) * 2, *(patch_positions(GRID, 1),) * 2)


def test_bad_inputs_name_the_problem():
    model = tiny()
    tokens = torch.randn(1, 3, 6, 24)
    with pytest.raises(ValueError, match="0..2"):
        model.forward_video(tokens, GRID, torch.tensor([[0, 3]]))
    with pytest.raises(ValueError, match="itself"):
        model.forward_video(tokens, GRID, torch.tensor([[1, 1]]))
    with pytest.raises(ValueError, match="integer"):
        model.forward_video(tokens, GRID, torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="STDiT hidden size"):
        model.forward_video(torch.randn(1, 3, 6, 16), GRID, make_edges(3))
    with pytest.raises(ValueError, match="grid"):
        model.forward_video(tokens, (3, 3), make_edges(3))
    with pytest.raises(ValueError, match="head dim"):
        PointmapDecoder(enc_dim=8, dec_dim=30, depth=1, num_heads=5, patch_size=2)


def test_gather_pairs_layout():
    tokens = torch.arange(2 * 3).float().reshape(2, 3, 1, 1)  # value = 3 b + f
    edges = check_edges(torch.tensor([[0, 2], [1, 0]]), 3)
    v1, v2 = gather_pairs(tokens, edges)
    assert v1.flatten().tolist() == [0, 1, 3, 4] and v2.flatten().tolist() == [2, 0, 5, 3]
    assert patch_positions((2, 3), 1)[0].tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]


def test_decoder_backward_reaches_every_parameter():
    for variant in DecoderVariant:
        model = tiny(variant).train()
        tokens = torch.randn(1, 3, 6, 24)
        pm = model.forward_video(tokens, GRID, make_edges(3))
        (pm.pts3d.sum() + pm.pts3d_in_other_view.sum() + pm.conf.sum() + pm.conf_in_other_view.sum()).backward()
        dead = [n for n, p in model.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
        assert not dead, (variant, dead)
