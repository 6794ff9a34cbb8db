"""Adapter between STDiT tokens and the DUSt3R decoder: token positions and per-pair token gathering.

JOG3R replaces DUSt3R's per-image ViT encoder by the video DiT (paper Sec. 3.2, Fig. 2). The DiT gives tokens for
all ``F`` frames at once, ``[B, F, S, D_dit]`` (tapped after block ``b^n``), on the latent patch grid
``(h_p, w_p)``; each token covers ``p x p`` pixels with ``p = vae_factor * patch`` (8 * 2 = 16 for OpenSora 1.0,
the same as DUSt3R's 16-pixel patches). The learnable part of the adapter is DUSt3R's ``decoder_embed``
``Linear(D_dit -> D_dec)`` (held by :class:`jog3r.recon.decoder.PointmapDecoder`); this module holds the
parameter-free plumbing around it.
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat


def patch_positions(grid: tuple[int, int], batch: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Integer ``(row, col)`` position of every token of one frame (DUSt3R ``PositionGetter``).

    Args:
        grid: ``(h_p, w_p)`` patch grid.
        batch: leading batch size ``B`` of the result.
        device: device of the result.

    Returns:
        ``[B, S, 2]`` int64 with ``S = h_p * w_p``, row-major (``cartesian_prod(rows, cols)``): token
        ``r * w_p + c`` has position ``(r, c)``.

    Raises:
        ValueError: if the grid is empty.
    """
    h_p, w_p = int(grid[0]), int(grid[1])
    if h_p < 1 or w_p < 1:
        raise ValueError(f"patch grid must be at least 1x1, got {grid}")
    rows = torch.arange(h_p, device=device)
    cols = torch.arange(w_p, device=device)
    pos = torch.cartesian_prod(rows, cols)
    return repeat(pos, "s two -> b s two", b=batch)


def check_edges(edges: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Validate a ``[P, 2]`` edge list and return it as int64.

    Args:
        edges: ``[P, 2]`` integer 0-based frame indices ``(i, j)`` (see :func:`jog3r.recon.pairs.make_edges`).
        num_frames: number of frames ``F`` of the video.

    Returns:
        ``[P, 2]`` int64 on the same device.

    Raises:
        ValueError: on a wrong shape, a non-integer dtype, an empty list, an index outside ``0..F-1`` or a
            self-pair ``(i, i)``.
    """
    if edges.ndim != 2 or edges.shape[-1] != 2 or edges.shape[0] == 0:
        raise ValueError(f"edges must be a non-empty [P, 2] tensor of frame indices, got {tuple(edges.shape)}")
    if edges.is_floating_point() or edges.is_complex():
        raise ValueError(f"edges must hold integer frame indices, got dtype {edges.dtype}")
    edges = edges.long()
    if int(edges.min()) < 0 or int(edges.max()) >= num_frames:
        raise ValueError(
            f"edge indices must lie in 0..{num_frames - 1} for a {num_frames}-frame video, got "
            f"{int(edges.min())}..{int(edges.max())}; build edges with jog3r.recon.pairs.make_edges(num_frames)"
        )
    if bool((edges[:, 0] == edges[:, 1]).any()):
        raise ValueError("edges must not pair a frame with itself")
    return edges


def gather_pairs(tokens: torch.Tensor, edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split video tokens into the two views of every frame pair.

    Args:
        tokens: ``[B, F, S, D]`` per-frame tokens.
        edges: ``[P, 2]`` int64 frame indices ``(i, j)`` (validated by :func:`check_edges`).

    Returns:
        ``(view1, view2)``, each ``[B * P, S, D]`` ordered ``(b, p)`` with ``b`` outer: ``view1`` holds frame
        ``i``'s tokens and ``view2`` frame ``j``'s tokens of edge ``p``.
    """
    edges = edges.to(tokens.device)
    view1 = rearrange(tokens[:, edges[:, 0]], "b p s d -> (b p) s d")
    view2 = rearrange(tokens[:, edges[:, 1]], "b p s d -> (b p) s d")
    return view1, view2
