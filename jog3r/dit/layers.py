"""Generic transformer blocks of the STDiT (OpenSora v1.0), and the shared attention used by the whole package.

Everything here is a faithful re-implementation of OpenSora v1.0 ``opensora/models/layers/blocks.py``
(tag ``v1.0.0``, see ``docs/notes/dit.md`` and REFERENCE.md A.2-A.3), with the same module and parameter names so
that OpenSora state dicts load without remapping.

**Shared attention.** :func:`attention` and :class:`SelfAttention` are the package's single attention
implementation (PyTorch SDPA, ``torch.nn.functional.scaled_dot_product_attention``); the DUSt3R-style decoder in
:mod:`jog3r.recon` reuses them. Both work on the SDPA layout ``[B, heads, N, head_dim]``; :class:`SelfAttention`
takes an optional rotary hook ``rope(t, pos) -> t`` applied to queries and keys (CroCo/DUSt3R RoPE2D).

Shapes use the package axis alphabet (:mod:`jog3r`): ``B`` batch, ``F`` frames, ``S`` tokens per frame,
``N`` tokens, ``D`` hidden width, ``L`` caption tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as nnf
from einops import rearrange
from torch import Tensor, nn

RotaryFn = Callable[[Tensor, Tensor], Tensor]
"""A rotary position hook ``rope(t [B, heads, N, head_dim], pos [B, N, k]) -> [B, heads, N, head_dim]``."""


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *, dropout_p: float = 0.0) -> Tensor:
    """Scaled dot-product attention ``softmax(q k^T / sqrt(head_dim)) v`` via PyTorch SDPA.

    The one attention kernel of the package (STDiT spatial/temporal/cross attention, DUSt3R decoder). Numerically
    it is OpenSora's non-flash ``Attention`` path and CroCo's ``Attention`` (scale ``head_dim ** -0.5``).

    Args:
        q: ``[B, heads, Nq, head_dim]`` queries.
        k: ``[B, heads, Nk, head_dim]`` keys (same dtype as ``q``).
        v: ``[B, heads, Nk, head_dim_v]`` values.
        mask: optional bool mask broadcastable to ``[B, heads, Nq, Nk]``; ``True`` = the key takes part in the
            attention. Every query must keep at least one key, otherwise its output would be NaN.
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


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection (OpenSora ``Attention``, CroCo ``Attention``).

    State-dict keys: ``qkv.weight [3D, D]``, ``qkv.bias [3D]``, ``proj.weight [D, D]``, ``proj.bias [D]``; the
    ``3D`` outputs are ordered ``(three, heads, head_dim)`` as in both references. OpenSora's ``q_norm``/``k_norm``
    are ``Identity`` in v1.0 and therefore omitted.

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
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}; pick a head count dividing it")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope

    def forward(self, x: Tensor, pos: Tensor | None = None) -> Tensor:
        """Attend every token to every token of the same sequence.

        Args:
            x: ``[B, N, D]`` tokens.
            pos: positions handed to the rotary hook (e.g. ``[B, N, 2]`` int64 (row, col) for CroCo RoPE2D);
                required when the module has a ``rope`` hook, ignored otherwise.

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
    its own ``L`` caption tokens with a key-padding mask, which is the same computation.

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
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}; pick a head count dividing it")
        self.num_heads = num_heads
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, cond: Tensor, cond_mask: Tensor | None = None) -> Tensor:
        """Attend video tokens to the caption tokens of the same sample.

        Args:
            x: ``[B, N, D]`` video tokens (queries).
            cond: ``[B, L, D]`` caption tokens (keys/values).
            cond_mask: optional ``[B, L]`` bool, ``True`` for valid (non-padding) caption tokens; every row needs
                at least one ``True``. ``None`` = all tokens valid.

        Returns:
            ``[B, N, D]``.
        """
        q = rearrange(self.q_linear(x), "B N (h d) -> B h N d", h=self.num_heads)
        kv = rearrange(self.kv_linear(cond), "B L (two h d) -> two B h L d", two=2, h=self.num_heads)
        k, v = kv.unbind(0)
        mask = None if cond_mask is None else rearrange(cond_mask, "B L -> B 1 1 L")
        out = attention(q, k, v, mask)
        return self.proj(rearrange(out, "B h N d -> B N (h d)"))


class Mlp(nn.Module):
    """timm ``Mlp``: ``fc2(act(fc1(x)))`` with state-dict keys ``fc1`` and ``fc2`` (dropout 0, as OpenSora).

    Args:
        in_features: input width.
        hidden_features: width of ``fc1``'s output.
        out_features: output width (default ``in_features``).
        approximate: GELU variant, ``"tanh"`` (OpenSora ``approx_gelu``) or ``"none"`` (timm's default, DUSt3R).
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        out_features: int | None = None,
        approximate: Literal["tanh", "none"] = "tanh",
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU(approximate=approximate)
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the MLP to the last axis: ``[..., in_features] -> [..., out_features]``."""
        return self.fc2(self.act(self.fc1(x)))


def t2i_modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN modulation of PixArt/OpenSora: ``x * (1 + scale) + shift`` (OS ``blocks.py`` ``t2i_modulate``).

    Args:
        x: ``[B, N, D]`` normalised tokens.
        shift: ``[B, 1, D]``.
        scale: ``[B, 1, D]``.

    Returns:
        ``[B, N, D]``.
    """
    return x * (1 + scale) + shift


class PatchEmbed3D(nn.Module):
    """Video latents to tokens with a strided ``Conv3d`` (OpenSora ``PatchEmbed3D``, key ``proj``).

    Args:
        patch_size: ``(p_F, p_h, p_w)`` kernel and stride.
        in_channels: latent channels ``C``.
        hidden_size: token width ``D``.
    """

    def __init__(self, patch_size: tuple[int, int, int], in_channels: int, hidden_size: int) -> None:
        super().__init__()
        self.patch_size = tuple(patch_size)
        self.proj = nn.Conv3d(in_channels, hidden_size, kernel_size=self.patch_size, stride=self.patch_size)

    def forward(self, x: Tensor) -> Tensor:
        """Embed patches.

        Args:
            x: ``[B, C, F, h, w]`` latents with ``F, h, w`` divisible by the patch size (the caller checks).

        Returns:
            ``[B, N, D]`` tokens, ``N = F_p * h_p * w_p``, ordered frame-major then row-major
            (token index ``f * S + row * w_p + col``).
        """
        return rearrange(self.proj(x), "B D F h w -> B (F h w) D")


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal timestep features ``[cos(t f_k), sin(t f_k)]``, ``f_k = max_period^(-k / (dim/2))``.

    Computed in float32 whatever the model dtype, exactly as OpenSora/DiT ``TimestepEmbedder.timestep_embedding``
    (REFERENCE.md A.2).

    Args:
        t: ``[B]`` timesteps on the original 0..999 scale (float or int; fractional values allowed).
        dim: feature width (even).
        max_period: controls the lowest frequency.

    Returns:
        ``[B, dim]`` float32.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


class TimestepEmbedder(nn.Module):
    """Timestep to vector: 256-d sinusoid, then ``mlp`` = Linear -> SiLU -> Linear (keys ``mlp.0``, ``mlp.2``).

    Args:
        hidden_size: output width ``D``.
        frequency_embedding_size: sinusoid width (256 in OpenSora).
    """

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256) -> None:
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size),
        )

    def forward(self, t: Tensor) -> Tensor:
        """Embed timesteps.

        Args:
            t: ``[B]`` timesteps (original 0..999 scale).

        Returns:
            ``[B, D]`` in the dtype of the MLP weights.
        """
        t_freq = timestep_embedding(t, self.frequency_embedding_size)
        return self.mlp(t_freq.to(self.mlp[0].weight.dtype))


class CaptionEmbedder(nn.Module):
    """Caption tokens to the model width, with classifier-free-guidance dropout (OpenSora ``CaptionEmbedder``).

    ``y_proj`` is a timm :class:`Mlp` (``fc1``, GELU-tanh, ``fc2``). ``y_embedding`` is a persistent **buffer**
    ``[L, Dy]`` (init ``randn / sqrt(Dy)``): the learned-in-PixArt "null" caption, used for dropped captions and
    as the empty prompt. During training each sample's whole caption is replaced by it with probability
    ``uncond_prob``; ``force_drop_ids`` (1 = drop) overrides the random draw.

    Args:
        caption_channels: text-encoder width ``Dy``.
        hidden_size: model width ``D``.
        uncond_prob: caption dropout probability while training (0.1 in OpenSora).
        token_num: number of caption tokens ``L`` (``model_max_length``).
    """

    def __init__(self, caption_channels: int, hidden_size: int, uncond_prob: float, token_num: int) -> None:
        super().__init__()
        self.y_proj = Mlp(caption_channels, hidden_size, hidden_size, approximate="tanh")
        self.register_buffer("y_embedding", torch.randn(token_num, caption_channels) / caption_channels**0.5)
        self.uncond_prob = uncond_prob

    def forward(self, caption: Tensor, train: bool, force_drop_ids: Tensor | None = None) -> Tensor:
        """Project (and possibly drop) captions.

        Args:
            caption: ``[B, 1, L, Dy]`` text-encoder tokens.
            train: apply the random caption dropout.
            force_drop_ids: optional ``[B]`` (bool or 0/1 int); samples marked 1/True get the null caption.

        Returns:
            ``[B, 1, L, D]``.

        Raises:
            ValueError: if a caption must be dropped and its shape differs from ``y_embedding``'s ``[L, Dy]``.
        """
        if force_drop_ids is not None or (train and self.uncond_prob > 0):
            if tuple(caption.shape[2:]) != tuple(self.y_embedding.shape):
                raise ValueError(
                    f"caption dropout needs captions of shape [B, 1, {self.y_embedding.shape[0]}, "
                    f"{self.y_embedding.shape[1]}] (the null caption's), got {tuple(caption.shape)}; "
                    "pad/truncate the text tokens to model_max_length"
                )
            if force_drop_ids is None:
                drop = torch.rand(caption.shape[0], device=caption.device) < self.uncond_prob
            else:
                drop = force_drop_ids.to(caption.device) == 1
            caption = torch.where(drop[:, None, None, None], self.y_embedding.to(caption.dtype), caption)
        return self.y_proj(caption)


def get_1d_sincos_pos_embed_from_grid(embed_dim: int, pos: Tensor) -> Tensor:
    """MAE/DiT 1D sin-cos embedding ``[sin(pos w_k), cos(pos w_k)]``, ``w_k = 10000^(-k / (embed_dim/2))``.

    Computed in float64 (as OpenSora's NumPy code) and returned as float64.

    Args:
        embed_dim: output width (even).
        pos: positions of any shape (flattened), float.

    Returns:
        ``[M, embed_dim]`` float64, ``M = pos.numel()``.
    """
    omega = torch.arange(embed_dim // 2, dtype=torch.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000**omega
    out = pos.reshape(-1).to(torch.float64)[:, None] * omega[None]
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def get_2d_sincos_pos_embed(embed_dim: int, grid: tuple[int, int], scale: float = 1.0) -> Tensor:
    """Fixed 2D sin-cos spatial position embedding of OpenSora v1.0 (``get_2d_sincos_pos_embed``).

    Positions are ``arange(n) / scale`` (float32, like OpenSora's NumPy grid). The first ``embed_dim / 2``
    channels encode the **column** coordinate and the last half the **row** coordinate (NumPy ``meshgrid(w, h)``
    puts ``w`` first; REFERENCE.md A.2). Tokens are row-major.

    Args:
        embed_dim: width ``D`` (divisible by 4).
        grid: ``(h_p, w_p)`` patch grid.
        scale: ``space_scale`` (0.5 for the 256-px OpenSora configs).

    Returns:
        ``[h_p * w_p, embed_dim]`` float32.

    Raises:
        ValueError: if ``embed_dim`` is not divisible by 4.
    """
    if embed_dim % 4:
        raise ValueError(f"2D sin-cos embedding needs a width divisible by 4, got {embed_dim}")
    h_p, w_p = grid
    rows = torch.arange(h_p, dtype=torch.float32) / scale
    cols = torch.arange(w_p, dtype=torch.float32) / scale
    row_grid, col_grid = torch.meshgrid(rows, cols, indexing="ij")
    emb_col = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, col_grid)
    emb_row = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, row_grid)
    return torch.cat([emb_col, emb_row], dim=1).float()


def get_1d_sincos_pos_embed(embed_dim: int, length: int, scale: float = 1.0) -> Tensor:
    """Fixed 1D sin-cos temporal position embedding of OpenSora v1.0 (positions ``arange(length) / scale``).

    Args:
        embed_dim: width ``D`` (even).
        length: number of positions (``F_p`` frames).
        scale: ``time_scale`` (2/3 for OpenSora's 64-frame configs).

    Returns:
        ``[length, embed_dim]`` float32.
    """
    pos = torch.arange(length, dtype=torch.float64) / scale
    return get_1d_sincos_pos_embed_from_grid(embed_dim, pos).float()


class T2IFinalLayer(nn.Module):
    """PixArt/OpenSora final layer: modulated LayerNorm then a linear map to patch pixels (``T2IFinalLayer``).

    ``shift, scale = scale_shift_table[None] + t[:, None]`` uses the timestep embedding ``t`` (not the
    adaLN-single ``t0``). State-dict keys: ``scale_shift_table [2, D]``, ``linear.weight [P * C_out, D]``,
    ``linear.bias``; ``norm_final`` has no affine parameters.

    Args:
        hidden_size: token width ``D``.
        num_patch: voxels per patch ``p_F * p_h * p_w``.
        out_channels: ``C_out`` (``2C`` with learned sigma).
    """

    def __init__(self, hidden_size: int, num_patch: int, out_channels: int) -> None:
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, num_patch * out_channels)
        self.scale_shift_table = nn.Parameter(torch.randn(2, hidden_size) / hidden_size**0.5)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """Map tokens to patch values.

        Args:
            x: ``[B, N, D]`` tokens.
            t: ``[B, D]`` timestep embedding (``t_embedder`` output).

        Returns:
            ``[B, N, P * C_out]`` with ``C_out`` innermost (see ``STDiT.unpatchify``).
        """
        shift, scale = (self.scale_shift_table[None] + t[:, None]).chunk(2, dim=1)
        return self.linear(t2i_modulate(self.norm_final(x), shift, scale))
