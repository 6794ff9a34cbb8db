"""RoPE2D and decoder blocks (CroCo ``pos_embed.py`` / ``blocks.py``)."""

from __future__ import annotations

import pytest
import torch

from jog3r.recon.adapter import patch_positions
from jog3r.recon.layers import DecoderBlock, JointBlock, RoPE2D


def test_rope_scores_depend_only_on_relative_position():
    rope = RoPE2D(100.0)
    q, k = torch.randn(1, 2, 6, 16), torch.randn(1, 2, 6, 16)
    pos = patch_positions((2, 3), 1)
    scores = rope(q, pos) @ rope(k, pos).transpose(-1, -2)
    shifted = pos + torch.tensor([5, 7])
    scores_shifted = rope(q, shifted) @ rope(k, shifted).transpose(-1, -2)
    torch.testing.assert_close(scores, scores_shifted, rtol=1e-4, atol=1e-4)
    # ...and they do depend on it: swapping the axes changes the scores.
    swapped = rope(q, pos.flip(-1)) @ rope(k, pos.flip(-1)).transpose(-1, -2)
    assert (swapped - scores).abs().max() > 1e-2


def test_rope_first_half_rows_second_half_columns():
    rope = RoPE2D(100.0)
    x = torch.randn(1, 1, 4, 8)
    a = torch.tensor([[[0, 0], [1, 0], [2, 0], [3, 0]]])
    b = torch.tensor([[[0, 5], [1, 6], [2, 7], [3, 8]]])  # same rows, other columns
    ra, rb = rope(x, a), rope(x, b)
    torch.testing.assert_close(ra[..., :4], rb[..., :4])
    assert (ra[..., 4:] - rb[..., 4:]).abs().max() > 1e-3
    # Position 0 is the identity; the first frequency of a 1D half is 1 rad per step (base^0).
    torch.testing.assert_close(ra[..., 0, 4:], x[..., 0, 4:])
    c, s = torch.cos(torch.tensor(1.0)), torch.sin(torch.tensor(1.0))
    x1, x2 = x[0, 0, 1, 0], x[0, 0, 1, 2]  # rotate_half pairs dim 0 with dim 2 (half width 4)
    torch.testing.assert_close(ra[0, 0, 1, 0], x1 * c - x2 * s)


def test_rope_rejects_bad_inputs():
    rope = RoPE2D()
    with pytest.raises(ValueError, match="divisible by 4"):
        rope(torch.randn(1, 1, 2, 6), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="positions"):
        rope(torch.randn(1, 1, 2, 8), torch.zeros(1, 3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="non-negative"):
        rope(torch.randn(1, 1, 2, 8), -torch.ones(1, 2, 2, dtype=torch.long))


def test_decoder_block_reads_the_other_view():
    rope = RoPE2D()
    block = DecoderBlock(32, 4, 4.0, rope)
    pos = patch_positions((2, 2), 2)
    x, y = torch.randn(2, 4, 32), torch.randn(2, 4, 32)
    out = block(x, y, pos, pos)
    assert out.shape == x.shape
    # (y + c would not do: norm_y removes a constant shift)
    assert (block(x, torch.randn_like(y), pos, pos) - out).abs().max() > 1e-3


def test_reference_parameter_count_per_block():
    """768-wide, 12-head DUSt3R decoder block: 9,453,312 parameters (REFERENCE.md B.1)."""
    with torch.device("meta"):
        block = DecoderBlock(768, 12, 4.0, RoPE2D())
    assert sum(p.numel() for p in block.parameters()) == 9_453_312
    with torch.device("meta"):
        joint = JointBlock(768, 12, 4.0, RoPE2D())
    names = {k for k, _ in joint.named_parameters()}
    assert names <= {k for k, _ in block.named_parameters()}  # DUSt3R weights map onto it by name
