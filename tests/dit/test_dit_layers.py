"""STDiT layers against their formulas (REFERENCE.md A.2-A.3), written out independently here."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

import jog3r.dit
import jog3r.nn.attention
import jog3r.nn.mlp
from jog3r.dit import layers
from jog3r.dit.layers import (
    CaptionEmbedder,
    T2IFinalLayer,
    get_1d_sincos_pos_embed,
    get_2d_sincos_pos_embed,
    timestep_embedding,
)


def sincos(pos: float, width: int) -> list[float]:
    """[sin(pos w_k), cos(pos w_k)], w_k = 10000^(-k / (width / 2))."""
    freqs = [10000 ** (-k / (width / 2)) for k in range(width // 2)]
    return [math.sin(pos * f) for f in freqs] + [math.cos(pos * f) for f in freqs]


@pytest.mark.parametrize(("grid", "scale"), [((3, 5), 1.0), ((4, 2), 0.5)])
def test_spatial_pe_is_column_first_row_major(grid, scale):
    h_p, w_p = grid
    pe = get_2d_sincos_pos_embed(16, grid, scale)
    assert pe.shape == (h_p * w_p, 16) and pe.dtype == torch.float32
    for row in range(h_p):
        for col in range(w_p):
            expected = sincos(col / scale, 8) + sincos(row / scale, 8)
            torch.testing.assert_close(pe[row * w_p + col], torch.tensor(expected, dtype=torch.float32))


def test_temporal_pe_uses_time_scale():
    pe = get_1d_sincos_pos_embed(12, 5, scale=2 / 3)
    expected = torch.tensor([sincos(f / (2 / 3), 12) for f in range(5)], dtype=torch.float32)
    torch.testing.assert_close(pe, expected)


def test_timestep_embedding_is_cos_then_sin():
    t = torch.tensor([0.0, 999.0])
    emb = timestep_embedding(t, 8)
    assert emb.dtype == torch.float32 and emb.shape == (2, 8)
    freqs = torch.exp(-math.log(10000) * torch.arange(4) / 4)
    torch.testing.assert_close(emb[1], torch.cat([torch.cos(999 * freqs), torch.sin(999 * freqs)]))
    torch.testing.assert_close(emb[0], torch.tensor([1.0] * 4 + [0.0] * 4))


def test_caption_embedder_buffer_and_forced_drop():
    embedder = CaptionEmbedder(caption_channels=6, hidden_size=8, uncond_prob=0.0, token_num=3)
    assert "y_embedding" in dict(embedder.named_buffers())
    assert "y_embedding" in embedder.state_dict()
    caption = torch.randn(2, 1, 3, 6)
    out = embedder(caption, train=False, force_drop_ids=torch.tensor([True, False]))
    torch.testing.assert_close(out[0, 0], embedder.y_proj(embedder.y_embedding))
    torch.testing.assert_close(out[1], embedder.y_proj(caption[1]))


def test_final_layer_uses_its_own_table_and_t():
    layer = T2IFinalLayer(hidden_size=8, num_patch=4, out_channels=2)
    x, t = torch.randn(2, 5, 8), torch.randn(2, 8)
    shift, scale = layer.scale_shift_table[0] + t, layer.scale_shift_table[1] + t
    normed = torch.nn.functional.layer_norm(x, (8,), eps=1e-6)
    expected = layer.linear(normed * (1 + scale[:, None]) + shift[:, None])
    torch.testing.assert_close(layer(x, t), expected)


def test_public_api_has_docstrings():
    """Every public function/class (and public method) of jog3r.dit and jog3r.nn has a docstring."""
    missing = []
    for module in (jog3r.dit, layers, jog3r.dit.stdit, jog3r.nn.attention, jog3r.nn.mlp):
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue  # type aliases such as RotaryFn
            if not (obj.__doc__ or "").strip():
                missing.append(f"{module.__name__}.{name}")
            for attr, member in vars(obj).items() if inspect.isclass(obj) else ():
                if not attr.startswith("_") and callable(member) and not (member.__doc__ or "").strip():
                    missing.append(f"{module.__name__}.{name}.{attr}")
    assert not missing, f"missing docstrings: {missing}"
