"""The shared SDPA attention: the textbook formula, masks, rotary hook, packed-caption equivalence."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

from jog3r.nn.attention import MultiHeadCrossAttention, SelfAttention, attention


def naive_attention(q, k, v, mask=None):
    """softmax(q k^T / sqrt(d)) v written out, in float64."""
    q, k, v = q.double(), k.double(), v.double()
    logits = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    return torch.softmax(logits, dim=-1) @ v


def test_attention_matches_the_formula_with_and_without_mask():
    q, k, v = torch.randn(3, 2, 4, 5, 8).unbind(0)
    mask = torch.rand(2, 1, 5, 7) > 0.4
    mask[..., 0] = True
    k7, v7 = torch.randn(2, 2, 4, 7, 8).unbind(0)
    torch.testing.assert_close(attention(q, k, v).double(), naive_attention(q, k, v), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        attention(q, k7, v7, mask).double(), naive_attention(q, k7, v7, mask), rtol=1e-5, atol=1e-6
    )


def test_attention_rejects_bad_inputs():
    q = torch.randn(2, 4, 8)
    with pytest.raises(ValueError, match="heads"):
        attention(q, q, q)
    q4 = q[None]
    with pytest.raises(ValueError, match="bool"):
        attention(q4, q4, q4, torch.ones(1, 1, 4, 4))


def test_self_attention_is_qkv_attention_proj():
    layer = SelfAttention(16, num_heads=4)
    x = torch.randn(2, 6, 16)
    q, k, v = rearrange(layer.qkv(x), "B N (three h d) -> three B h N d", three=3, h=4)
    expected = layer.proj(rearrange(naive_attention(q, k, v).float(), "B h N d -> B N (h d)"))
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)


def test_self_attention_rotary_hook_sees_queries_and_keys():
    calls = []

    def rope(t, pos):
        calls.append((tuple(t.shape), pos))
        return t * 0  # zero queries and keys -> uniform attention -> every token gets the mean value

    layer = SelfAttention(8, num_heads=2, rope=rope)
    x = torch.randn(1, 5, 8)
    pos = torch.arange(5)[None, :, None].expand(1, 5, 2)
    out = layer(x, pos)
    assert [shape for shape, _ in calls] == [(1, 2, 5, 4), (1, 2, 5, 4)]
    assert all(p is pos for _, p in calls)
    v = layer.qkv(x)[..., 16:]
    torch.testing.assert_close(out, layer.proj(v.mean(dim=1, keepdim=True)).expand(1, 5, 8))
    with pytest.raises(ValueError, match="pos"):
        layer(x)


def test_cross_attention_mask_equals_per_sample_valid_tokens():
    """OpenSora packs valid caption tokens with a block-diagonal mask; a padding mask is the same thing."""
    layer = MultiHeadCrossAttention(16, num_heads=2)
    x = torch.randn(3, 10, 16)
    cond = torch.randn(3, 6, 16)
    lengths = [6, 3, 1]
    mask = torch.arange(6)[None] < torch.tensor(lengths)[:, None]
    out = layer(x, cond, mask)
    for b, n in enumerate(lengths):
        alone = layer(x[b : b + 1], cond[b : b + 1, :n])
        torch.testing.assert_close(out[b : b + 1], alone, rtol=1e-5, atol=1e-6)
    assert (layer(x, cond)[1] - out[1]).abs().max() > 1e-4


def test_heads_must_divide_width():
    with pytest.raises(ValueError, match="num_heads"):
        SelfAttention(10, num_heads=3)
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadCrossAttention(10, num_heads=4)
