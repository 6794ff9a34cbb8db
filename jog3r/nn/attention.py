"""The package's one attention implementation (PyTorch SDPA), shared by the STDiT (:mod:`jog3r.dit`) and the
DUSt3R decoder (:mod:`jog3r.recon`).

:func:`attention` works on the SDPA layout ``[B, heads, N, head_dim]``. :class:`SelfAttention` (fused ``qkv``,
optional rotary hook ``rope(t, pos) -> t`` on queries and keys, as CroCo/DUSt3R's RoPE2D) and
:class:`MultiHeadCrossAttention` (OpenSora's ``q_linear``/``kv_linear``/``proj``) keep the reference key
names. Sources: OpenSora v1.0 ``opensora/models/layers/blocks.py`` (``Attention``,
``MultiHeadCrossAttention``), CroCo ``models/blocks.py`` (``Attention``); REFERENCE.md A.3 and B.1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as nnf
from einops import rearrange
from torch import Tensor, nn

RotaryFn = Callable[[Tensor, Tensor], Tensor]
"""A rotary position hook ``rope(t [B, heads, N, head_dim], pos [B, N, k]) -> [B, heads, N, head_dim]``."""


def attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *, dropout_p: float = 0.0
) -> Tensor:
    """Scaled dot-product attention ``softmax(q k^T / sqrt(head_dim)) v`` via PyTorch SDPA.

    The one attention kernel of the package (STDiT spatial/temporal/cross attention, DUSt3R decoder).
    Numerically it is OpenSora's non-flash ``Attention`` path and CroCo's ``Attention`` (scale
    ``head_dim ** -0.5``).

    Args:
        q: ``[B, heads, Nq, head_dim]`` queries.
        k: ``[B, heads, Nk, head_dim]`` keys (same dtype as ``q``).
        v: ``[B, heads, Nk, head_dim_v]`` values.
        mask: optional bool mask broadcastable to ``[B, heads, Nq, Nk]``; ``True`` = the key takes part in
            the attention. Every query must keep at least one key, otherwise its output would be NaN.
        dropout_p: attention-probability dropout (apply only while training).

    Returns:
        ``[B, heads, Nq, head_dim_v]``, dtype of ``q``.

    Raises:
        ValueError: if the tensors are not 4-D or the mask is not boolean.
    """
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(
            f"attention expects [B, heads, N, head_dim] tensors, got q {tuple(q.shape)}, k {tuple(k.shape)}, "
            f"v {tuple(v.shape)}; split heads first (e.g. einops 'B N (h d) -> B h N d')"
        )
    if mask is not None and mask.dtype != torch.bool:
        raise ValueError(f"attention mask must be bool (True = attend), got {mask.dtype}; use mask.bool()")
    return nnf.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


def _check_heads(dim: int, num_heads: int) -> None:
    if num_heads < 1 or dim % num_heads != 0:
        raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}; use a head count dividing it")


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection (OpenSora / CroCo ``Attention``).

    State-dict keys: ``qkv.weight [3D, D]``, ``qkv.bias [3D]``, ``proj.weight [D, D]``, ``proj.bias [D]``; the
    ``3D`` outputs are ordered ``(three, heads, head_dim)`` as in both references. OpenSora's
    ``q_norm``/``k_norm`` are ``Identity`` in v1.0 and therefore omitted.

    Args:
        dim: token width ``D``.
        num_heads: number of heads; must divide ``dim``.
        qkv_bias: whether ``qkv`` has a bias (``True`` in OpenSora and CroCo).
        rope: optional rotary hook applied to ``q`` and ``k`` (``[B, heads, N, head_dim]``) with the ``pos``
            passed to :meth:`forward`, as CroCo's ``Attention`` does.

    Raises:
        ValueError: if ``num_heads`` does not divide ``dim``.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, rope: RotaryFn | None = None) -> None:
        super().__init__()
        _check_heads(dim, num_heads)
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope

    def forward(self, x: Tensor, pos: Tensor | None = None) -> Tensor:
        """Attend every token to every token of the same sequence.

        Args:
            x: ``[B, N, D]`` tokens.
            pos: positions handed to the rotary hook (e.g. ``[B, N, 2]`` int64 (row, col) for CroCo
                RoPE2D); required when the module has a ``rope`` hook, ignored otherwise.

        Returns:
            ``[B, N, D]``.

        Raises:
            ValueError: if a rotary hook is set and ``pos`` is missing.
        """
        qkv = rearrange(self.qkv(x), "B N (three h d) -> three B h N d", three=3, h=self.num_heads)
        q, k, v = qkv.unbind(0)
        if self.rope is not None:
            if pos is None:
                raise ValueError("this SelfAttention has a rotary hook: pass the token positions as pos")
            q, k = self.rope(q, pos), self.rope(k, pos)
        out = attention(q, k, v)
        return self.proj(rearrange(out, "B h N d -> B N (h d)"))


class MultiHeadCrossAttention(nn.Module):
    """Multi-head cross-attention from video tokens to caption tokens (OpenSora ``MultiHeadCrossAttention``).

    OpenSora packs all samples into one sequence and restricts each sample's queries to its own valid caption
    tokens with an xformers ``BlockDiagonalMask.from_seqlens([N] * B, y_lens)``. Here every sample attends to
    its own ``L`` caption tokens under a key-padding mask, which is the same computation.

    State-dict keys: ``q_linear [D, D]``, ``kv_linear [2D, D]`` (outputs ordered ``(two, heads, head_dim)``),
    ``proj [D, D]``, each with a bias.

    Args:
        dim: token width ``D`` (video and caption tokens share it).
        num_heads: number of heads; must divide ``dim``.

    Raises:
        ValueError: if ``num_heads`` does not divide ``dim``.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        _check_heads(dim, num_heads)
        self.num_heads = num_heads
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, cond: Tensor, cond_mask: Tensor | None = None) -> Tensor:
        """Attend video tokens to the caption tokens of the same sample.

        Args:
            x: ``[B, N, D]`` video tokens (queries).
            cond: ``[B, L, D]`` caption tokens (keys/values).
            cond_mask: optional ``[B, L]`` bool, ``True`` for valid (non-padding) caption tokens; every row
                needs at least one ``True``. ``None`` = all tokens valid.

        Returns:
            ``[B, N, D]``.
        """
        q = rearrange(self.q_linear(x), "B N (h d) -> B h N d", h=self.num_heads)
        kv = rearrange(self.kv_linear(cond), "B L (two h d) -> two B h L d", two=2, h=self.num_heads)
        k, v = kv.unbind(0)
        mask = None if cond_mask is None else rearrange(cond_mask, "B L -> B 1 1 L")
        out = attention(q, k, v, mask)
        return self.proj(rearrange(out, "B h N d -> B N (h d)"))


__all__ = ["RotaryFn", "attention", "SelfAttention", "MultiHeadCrossAttention"]
