"""DUSt3R's linear point-map head and the one function holding every output activation.

The head maps each decoder token to a ``p x p`` block of pixels (``p`` = pixels per token: 16 in DUSt3R and for
OpenSora, whose tokens cover 2x2 latents of an x8 VAE), 3 point coordinates plus one confidence per pixel.
Cite: D3 ``dust3r/heads/linear_head.py`` (``LinearPts3d``), ``dust3r/heads/postprocess.py``; REFERENCE.md B.1.
Heads run in fp32 with autocast disabled, whatever the caller's precision (D3 ``model.py``: heads under
``autocast(enabled=False)``).
"""

from __future__ import annotations

import enum

import torch
from einops import rearrange
from torch import nn


class DepthMode(str, enum.Enum):
    """How the norm ``d = ||xyz||`` of the raw 3-vector becomes the point's distance (DUSt3R ``depth_mode``).

    Members:
        EXP: ``pts = xyz / d * expm1(d)`` (DUSt3R's released models, ``('exp', -inf, inf)``).
        LINEAR: ``pts = xyz``.
        SQUARE: ``pts = xyz / d * d^2 = xyz * d``.
    """

    EXP = "exp"
    LINEAR = "linear"
    SQUARE = "square"


def postprocess(
    raw: torch.Tensor, depth_mode: DepthMode = DepthMode.EXP, *, has_conf: bool = True, conf_min: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Turn a raw head output into points and confidences (D3 ``dust3r/heads/postprocess.py``).

    Args:
        raw: ``[B, 3 + has_conf, H, W]`` raw head output (any float dtype; computed in fp32).
        depth_mode: see :class:`DepthMode`; ``d`` is clipped ``>= 1e-8`` before dividing.
        has_conf: whether channel 3 is a confidence logit.
        conf_min: ``vmin`` of DUSt3R's ``conf_mode=('exp', vmin, inf)``: ``conf = vmin + exp(x)``.

    Returns:
        ``(pts3d, conf)``: ``pts3d`` ``[B, H, W, 3]`` float32 (camera-1 OpenCV frame, up to scale), ``conf``
        ``[B, H, W]`` float32 ``>= conf_min`` (``None`` if ``has_conf`` is False).

    Raises:
        ValueError: if ``raw`` does not have ``3 + has_conf`` channels.
    """
    depth_mode = DepthMode(depth_mode)
    expected = 3 + int(has_conf)
    if raw.ndim != 4 or raw.shape[1] != expected:
        raise ValueError(f"raw head output must be [B, {expected}, H, W], got {tuple(raw.shape)}")
    fmap = rearrange(raw.float(), "b c h w -> b h w c")
    xyz = fmap[..., :3]
    if depth_mode is DepthMode.LINEAR:
        pts3d = xyz
    else:
        d = xyz.norm(dim=-1, keepdim=True)
        unit = xyz / d.clip(min=1e-8)
        pts3d = unit * (torch.expm1(d) if depth_mode is DepthMode.EXP else d.square())
    conf = conf_min + fmap[..., 3].exp() if has_conf else None
    return pts3d, conf


class LinearPts3dHead(nn.Module):
    """Linear head: one ``Linear(dim_in, (3 + has_conf) * p^2)`` per token, then pixel shuffle (DUSt3R ``LinearPts3d``).

    The ``(3 + has_conf) * p^2`` outputs of a token are ordered channel-major, ``c * p^2 + i * p + j`` for
    channel ``c`` and pixel ``(i, j)`` inside the token's ``p x p`` block (``F.pixel_shuffle`` order).

    Args:
        dim_in: decoder width ``D``.
        patch_size: pixels per token side ``p``.
        has_conf: whether to predict a confidence channel.
        depth_mode: activation of the points, see :class:`DepthMode`.
        conf_min: minimum confidence (``1`` in DUSt3R).
    """

    def __init__(
        self,
        dim_in: int,
        patch_size: int,
        has_conf: bool = True,
        depth_mode: DepthMode = DepthMode.EXP,
        conf_min: float = 1.0,
    ) -> None:
        super().__init__()
        if dim_in <= 0 or patch_size <= 0:
            raise ValueError(f"dim_in and patch_size must be positive, got {dim_in}, {patch_size}")
        self.patch_size = int(patch_size)
        self.has_conf = bool(has_conf)
        self.depth_mode = DepthMode(depth_mode)
        self.conf_min = float(conf_min)
        self.proj = nn.Linear(dim_in, (3 + int(has_conf)) * patch_size**2)

    def raw(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Project and pixel-shuffle, without activations.

        Args:
            tokens: ``[B, S, D]`` last decoder layer (after ``dec_norm``), row-major over ``grid``.
            grid: ``(h_p, w_p)`` token grid, ``S = h_p * w_p``.

        Returns:
            ``[B, 3 + has_conf, h_p * p, w_p * p]`` float32.
        """
        h_p, w_p = grid
        if tokens.ndim != 3 or tokens.shape[1] != h_p * w_p:
            raise ValueError(f"tokens must be [B, S={h_p * w_p}, D] for grid {grid}, got {tuple(tokens.shape)}")
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            feat = self.proj(tokens.float())
            return rearrange(
                feat, "b (hp wp) (c i j) -> b c (hp i) (wp j)", hp=h_p, wp=w_p, i=self.patch_size, j=self.patch_size
            )

    def forward(self, tokens: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Point map and confidence of one view.

        Args:
            tokens: ``[B, S, D]`` decoder tokens, row-major over ``grid``.
            grid: ``(h_p, w_p)`` token grid.

        Returns:
            ``(pts3d [B, H, W, 3], conf [B, H, W] | None)`` float32 with ``H = h_p * p``, ``W = w_p * p``;
            see :func:`postprocess`.
        """
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            return postprocess(self.raw(tokens, grid), self.depth_mode, has_conf=self.has_conf, conf_min=self.conf_min)
