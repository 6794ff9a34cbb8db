"""Building blocks of the DUSt3R-style decoder: 2D RoPE, attention, MLP and decoder blocks.

Everything here follows CroCo / DUSt3R (REFERENCE.md B.1; CC ``models/blocks.py``, ``models/pos_embed.py``):
pre-norm blocks, LayerNorm eps ``1e-6``, exact (erf) GELU, ``qkv_bias=True``, attention scale ``1/sqrt(d_head)``,
RoPE with base 100 on queries and keys. Parameter names match the reference state dict
(``norm1``, ``attn.qkv``, ``attn.proj``, ``norm_y``, ``norm2``, ``cross_attn.projq/projk/projv/proj``,
``norm3``, ``mlp.fc1``, ``mlp.fc2``), so DUSt3R checkpoints load by name.

Attention is the package's single SDPA implementation (:mod:`jog3r.nn.attention`, shared with the STDiT); the
self-attention and MLP modules (:mod:`jog3r.nn`) are the STDiT's too (with exact GELU here). Token sequences are
``[B, N, D]``; positions are ``[B, N, 2]`` int64 ``(row, col)`` patch indices (row-major
``cartesian_prod(rows, cols)``, as DUSt3R's ``PositionGetter``).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from jog3r.nn.attention import SelfAttention, attention
from jog3r.nn.mlp import Mlp

LAYER_NORM_EPS = 1e-6
"""LayerNorm epsilon of every CroCo/DUSt3R norm (``partial(nn.LayerNorm, eps=1e-6)``)."""


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``cat(-x2, x1)`` for ``x = cat(x1, x2)`` along the last axis (the GPT-NeoX / CroCo RoPE convention)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RoPE2D(nn.Module):
    """2D rotary position embedding of CroCo (``RoPE100``; CC ``models/pos_embed.py``, REFERENCE.md B.1).

    The head dimension ``d`` is split in two halves: the first half is a 1D RoPE of the token's row index, the
    second half a 1D RoPE of its column index. Each 1D RoPE of width ``d/2`` uses
    ``inv_freq_k = 1 / base^(2k / (d/2))``, ``k = 0..d/4-1``, tables duplicated as ``[freqs, freqs]`` and
    ``x * cos + rotate_half(x) * sin`` with ``rotate_half(cat(x1, x2)) = cat(-x2, x1)``. No parameters.

    Args:
        base: frequency base (100 for DUSt3R's ``RoPE100``).
    """

    def __init__(self, base: float = 100.0) -> None:
        super().__init__()
        if base <= 0:
            raise ValueError(f"RoPE base must be > 0, got {base}")
        self.base = float(base)

    def _cos_sin(self, dim: int, length: int, device: torch.device, dtype: torch.dtype):
        """Cos/sin tables ``[length, dim]`` for integer positions ``0..length-1``."""
        inv_freq = 1.0 / (self.base ** (torch.arange(0, dim, 2, device=device).float() / dim))
        t = torch.arange(length, device=device, dtype=inv_freq.dtype)
        freqs = torch.einsum("i,j->ij", t, inv_freq).to(dtype)
        freqs = torch.cat((freqs, freqs), dim=-1)
        return freqs.cos(), freqs.sin()

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Rotate queries or keys by their 2D positions.

        Args:
            tokens: ``[B, heads, N, d]`` with ``d`` divisible by 4.
            positions: ``[B, N, 2]`` int64 ``(row, col)`` patch indices, ``>= 0``.

        Returns:
            ``[B, heads, N, d]`` rotated tokens, same dtype.

        Raises:
            ValueError: if ``d`` is not a multiple of 4 or positions have the wrong shape / negative entries.
        """
        d = tokens.shape[-1]
        if d % 4 != 0:
            raise ValueError(f"RoPE2D needs a head dimension divisible by 4, got {d}: pick heads so D/heads % 4 == 0")
        if positions.ndim != 3 or positions.shape[-1] != 2 or positions.shape[1] != tokens.shape[2]:
            raise ValueError(
                f"positions must be [B, N, 2] with N={tokens.shape[2]} (row, col), got {tuple(positions.shape)}"
            )
        if positions.numel() and int(positions.min()) < 0:
            raise ValueError("RoPE2D positions must be non-negative patch indices")
        half = d // 2
        length = int(positions.max()) + 1 if positions.numel() else 1
        cos, sin = self._cos_sin(half, length, tokens.device, tokens.dtype)
        rows, cols = tokens.chunk(2, dim=-1)
        out = []
        for part, pos in ((rows, positions[..., 0]), (cols, positions[..., 1])):
            c = cos[pos][:, None]  # [B, 1, N, d/2]
            s = sin[pos][:, None]
            out.append(part * c + _rotate_half(part) * s)
        return torch.cat(out, dim=-1)


class CrossAttention(nn.Module):
    """Multi-head cross-attention with separate ``projq``/``projk``/``projv`` and RoPE (CroCo ``CrossAttention``).

    Queries are rotated with their own positions, keys with the other view's positions.

    Args:
        dim: token width ``D``.
        num_heads: number of heads.
        rope: shared :class:`RoPE2D`, or ``None``.
    """

    def __init__(self, dim: int, num_heads: int, rope: RoPE2D | None) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"width {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.projq = nn.Linear(dim, dim)
        self.projk = nn.Linear(dim, dim)
        self.projv = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope

    def forward(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, qpos: torch.Tensor, kpos: torch.Tensor
    ) -> torch.Tensor:
        """Attend ``query`` tokens to ``key``/``value`` tokens of the other view.

        Args:
            query: ``[B, N_q, D]`` (normed) tokens of this view.
            key: ``[B, N_k, D]`` (normed) tokens of the other view.
            value: ``[B, N_k, D]`` (DUSt3R passes the same tensor as ``key``).
            qpos: ``[B, N_q, 2]`` int64 (row, col) positions of the queries.
            kpos: ``[B, N_k, 2]`` int64 positions of the keys.

        Returns:
            ``[B, N_q, D]``.
        """
        split = "b n (h d) -> b h n d"
        q = rearrange(self.projq(query), split, h=self.num_heads)
        k = rearrange(self.projk(key), split, h=self.num_heads)
        v = rearrange(self.projv(value), split, h=self.num_heads)
        if self.rope is not None:
            q, k = self.rope(q, qpos), self.rope(k, kpos)
        out = attention(q, k, v)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))


class DecoderBlock(nn.Module):
    """DUSt3R decoder block: self-attention, cross-attention to the other view, MLP (CroCo ``DecoderBlock``).

    ``x += SelfAttn(norm1(x)); y_ = norm_y(y); x += CrossAttn(norm2(x), y_, y_); x += MLP(norm3(x))``
    (``norm_im2_in_dec=True``; REFERENCE.md B.1).

    Args:
        dim: token width ``D``.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width / ``D``.
        rope: shared :class:`RoPE2D` (or ``None``).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, rope: RoPE2D | None = None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = SelfAttention(dim, num_heads, qkv_bias=True, rope=rope)
        self.cross_attn = CrossAttention(dim, num_heads, rope)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.norm3 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), approximate="none")
        self.norm_y = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, xpos: torch.Tensor, ypos: torch.Tensor
    ) -> torch.Tensor:
        """Update this view's tokens given the other view's tokens.

        Args:
            x: ``[B, N_x, D]`` tokens of this view (previous layer).
            y: ``[B, N_y, D]`` tokens of the other view (previous layer; not modified).
            xpos: ``[B, N_x, 2]`` int64 (row, col) positions of ``x``.
            ypos: ``[B, N_y, 2]`` int64 positions of ``y``.

        Returns:
            ``[B, N_x, D]`` updated tokens (the reference also returns ``y`` unchanged; we do not).
        """
        x = x + self.attn(self.norm1(x), xpos)
        y_ = self.norm_y(y)
        x = x + self.cross_attn(self.norm2(x), y_, y_, xpos, ypos)
        return x + self.mlp(self.norm3(x))


class JointBlock(nn.Module):
    """Self-attention-only decoder block for the single-decoder, full-3D-attention variant (JOG3R Sec. 4).

    ``x += SelfAttn(norm1(x)); x += MLP(norm3(x))`` over all tokens of all frames at once. The MLP norm is
    named ``norm3`` (not ``norm2``) so the self-attention and MLP weights of a DUSt3R :class:`DecoderBlock`
    load into it by name; only ``norm2``, ``norm_y`` and ``cross_attn`` have no counterpart.

    Args:
        dim: token width ``D``.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width / ``D``.
        rope: shared :class:`RoPE2D` (or ``None``).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, rope: RoPE2D | None = None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = SelfAttention(dim, num_heads, qkv_bias=True, rope=rope)
        self.norm3 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), approximate="none")

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Self-attention over all tokens of the video, then the MLP.

        Args:
            x: ``[B, N, D]`` tokens of all frames (``N = F * S``).
            pos: ``[B, N, 2]`` int64 in-frame (row, col) positions.

        Returns:
            ``[B, N, D]``.
        """
        x = x + self.attn(self.norm1(x), pos)
        return x + self.mlp(self.norm3(x))
