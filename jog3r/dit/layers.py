"""Generic blocks of the STDiT (OpenSora v1.0): embedders, modulation, MLP, position embeddings, final layer.

Faithful re-implementations of OpenSora tag ``v1.0.0`` ``opensora/models/layers/blocks.py`` (REFERENCE.md
A.2-A.3) with the same module and parameter names, so OpenSora state dicts load without remapping. The
attention modules and the timm ``Mlp`` are shared with the DUSt3R decoder and live in :mod:`jog3r.nn`.

Shapes use the package axis alphabet (:mod:`jog3r`): ``B`` batch, ``F`` frames, ``S`` tokens per frame,
``N`` tokens, ``D`` hidden width, ``L`` caption tokens.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from einops import rearrange
from torch import Tensor, nn

from jog3r.nn.mlp import Mlp

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

    Computed in float32 whatever the model dtype, exactly as OpenSora/DiT
    ``TimestepEmbedder.timestep_embedding`` (REFERENCE.md A.2).

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
    """Timestep to vector: 256-d sinusoid, then ``mlp`` = Linear -> SiLU -> Linear (``mlp.0``, ``mlp.2``).

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
    """Caption tokens to model width, with classifier-free-guidance dropout (OpenSora ``CaptionEmbedder``).

    ``y_proj`` is a timm :class:`Mlp` (``fc1``, GELU-tanh, ``fc2``). ``y_embedding`` is a persistent
    **buffer** ``[L, Dy]`` (init ``randn / sqrt(Dy)``): the learned-in-PixArt "null" caption, used for dropped
    captions and as the empty prompt. During training each sample's whole caption is replaced by it with
    probability ``uncond_prob``; ``force_drop_ids`` (1 = drop) overrides the random draw.

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
    channels encode the **column** coordinate and the last half the **row** coordinate (NumPy
    ``meshgrid(w, h)`` puts ``w`` first; REFERENCE.md A.2). Tokens are row-major.

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


__all__ = [
    "t2i_modulate",
    "PatchEmbed3D",
    "timestep_embedding",
    "TimestepEmbedder",
    "CaptionEmbedder",
    "get_1d_sincos_pos_embed_from_grid",
    "get_2d_sincos_pos_embed",
    "get_1d_sincos_pos_embed",
    "T2IFinalLayer",
]
