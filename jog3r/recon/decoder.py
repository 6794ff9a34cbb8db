"""DUSt3R-style decoders and heads that turn DiT tokens into pairwise point maps.

Two variants (JOG3R Sec. 4, "Implementation details"):

* :attr:`DecoderVariant.TWO_BRANCH` - DUSt3R's decoder (D3 ``dust3r/model.py::_decoder``, REFERENCE.md B.1):
  ``dec_blocks`` for view 1 and ``dec_blocks2`` for view 2, with simultaneous information sharing: at layer
  ``l`` both branches read the *previous* layer's tokens of the other view,
  ``F1^l = dec_blocks[l](F1^{l-1}, F2^{l-1})``, ``F2^l = dec_blocks2[l](F2^{l-1}, F1^{l-1})``; the shared
  ``dec_norm`` is applied to the last layer. Each edge ``(i, j)`` is one pair: view 1 = frame ``i``,
  view 2 = frame ``j``.
* :attr:`DecoderVariant.JOINT_3D` - the paper's single decoder "with full 3D attention across all the frames":
  ``dec_blocks`` are :class:`~jog3r.recon.layers.JointBlock` self-attention blocks over all ``F * S`` tokens
  of the video (RoPE2D with each token's in-frame position; frame identity comes from the DiT features). How
  it maps to pairs: for a reference frame ``r`` a learned ``ref_embed`` vector is added to frame ``r``'s
  tokens, the video is decoded once, ``downstream_head1`` reads frame ``r``'s tokens (``pts3d``, camera-``r``
  frame) and ``downstream_head2`` reads frame ``j``'s tokens (``pts3d_in_other_view`` of edge ``(r, j)``).
  The video is decoded once per distinct first index of ``edges`` (once for the paper's ``(1 -> f)`` pairs).

Module names are DUSt3R's (``decoder_embed``, ``dec_blocks``, ``dec_blocks2``, ``dec_norm``,
``downstream_head1``/``2``), so DUSt3R state dicts load by key (see :mod:`jog3r.checkpoint`).
"""

from __future__ import annotations

import enum

import torch
from einops import rearrange, repeat
from torch import nn

from jog3r.recon.adapter import check_edges, gather_pairs, patch_positions
from jog3r.recon.head import DepthMode, LinearPts3dHead
from jog3r.recon.layers import LAYER_NORM_EPS, DecoderBlock, JointBlock, RoPE2D
from jog3r.types import PairwisePointmaps


class DecoderVariant(str, enum.Enum):
    """Decoder architecture (JOG3R Sec. 4).

    Members:
        TWO_BRANCH: DUSt3R's two cross-attending decoders, one per view of a pair (the paper's reported model).
        JOINT_3D: one decoder with full 3D self-attention over all frames (reported on par in Table 2).
    """

    TWO_BRANCH = "two_branch"
    JOINT_3D = "joint_3d"


class PointmapDecoder(nn.Module):
    """``decoder_embed`` + decoder(s) + ``dec_norm`` + two linear heads: tokens -> pairwise point maps.

    Args:
        enc_dim: width of the incoming tokens (STDiT hidden size, 1152 for OpenSora 1.0).
        dec_dim: decoder width ``D`` (768 in DUSt3R).
        depth: decoder blocks per branch (6 in JOG3R, 12 in DUSt3R).
        num_heads: attention heads (``dec_dim / num_heads`` must be a multiple of 4 for RoPE2D).
        patch_size: pixels per token side ``p`` (16 = VAE factor 8 x DiT patch 2).
        variant: :class:`DecoderVariant`.
        mlp_ratio: MLP hidden width / ``dec_dim``.
        rope_base: RoPE2D frequency base (100 = DUSt3R ``RoPE100``).
        depth_mode: point activation of both heads (:class:`~jog3r.recon.head.DepthMode`).
        conf_min: minimum confidence, ``conf = conf_min + exp(x)``.
    """

    def __init__(
        self,
        enc_dim: int,
        dec_dim: int,
        depth: int,
        num_heads: int,
        patch_size: int,
        variant: DecoderVariant = DecoderVariant.TWO_BRANCH,
        mlp_ratio: float = 4.0,
        rope_base: float = 100.0,
        depth_mode: DepthMode = DepthMode.EXP,
        conf_min: float = 1.0,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"decoder depth must be >= 1, got {depth}")
        if dec_dim % num_heads != 0 or (dec_dim // num_heads) % 4 != 0:
            raise ValueError(
                f"decoder width {dec_dim} with {num_heads} heads gives head dim {dec_dim / num_heads}; RoPE2D needs "
                "an integer head dim divisible by 4 (e.g. 768 / 12 = 64)"
            )
        self.variant = DecoderVariant(variant)
        self.patch_size = int(patch_size)
        self.rope = RoPE2D(rope_base)
        self.decoder_embed = nn.Linear(enc_dim, dec_dim)
        if self.variant is DecoderVariant.TWO_BRANCH:
            self.dec_blocks = nn.ModuleList(DecoderBlock(dec_dim, num_heads, mlp_ratio, self.rope) for _ in range(depth))
            self.dec_blocks2 = nn.ModuleList(
                DecoderBlock(dec_dim, num_heads, mlp_ratio, self.rope) for _ in range(depth)
            )
            self.ref_embed = None
        else:
            self.dec_blocks = nn.ModuleList(JointBlock(dec_dim, num_heads, mlp_ratio, self.rope) for _ in range(depth))
            self.dec_blocks2 = None
            self.ref_embed = nn.Parameter(torch.randn(dec_dim) * 0.02)
        self.dec_norm = nn.LayerNorm(dec_dim, eps=LAYER_NORM_EPS)
        self.downstream_head1 = LinearPts3dHead(dec_dim, patch_size, True, depth_mode, conf_min)
        self.downstream_head2 = LinearPts3dHead(dec_dim, patch_size, True, depth_mode, conf_min)

    @property
    def enc_dim(self) -> int:
        """Width of the tokens :meth:`forward_video` accepts."""
        return self.decoder_embed.in_features

    def decode_pair(
        self,
        feat1: torch.Tensor,
        feat2: torch.Tensor,
        pos1: torch.Tensor,
        pos2: torch.Tensor,
        *,
        return_layers: bool = False,
    ):
        """Two-branch decoder on already-paired tokens (D3 ``_decoder``).

        Args:
            feat1: ``[B, S, enc_dim]`` tokens of view 1.
            feat2: ``[B, S, enc_dim]`` tokens of view 2.
            pos1: ``[B, S, 2]`` int64 (row, col) positions of view 1.
            pos2: ``[B, S, 2]`` int64 positions of view 2.
            return_layers: also return every layer's tokens.

        Returns:
            ``(dec1, dec2)``: ``[B, S, D]`` last-layer tokens after ``dec_norm``. With ``return_layers``:
            ``(dec1, dec2, layers1, layers2)`` where ``layers_v[0]`` is ``decoder_embed``'s output and
            ``layers_v[l]`` the output of block ``l`` (before ``dec_norm``).

        Raises:
            RuntimeError: if the decoder was built as :attr:`DecoderVariant.JOINT_3D`.
        """
        if self.variant is not DecoderVariant.TWO_BRANCH:
            raise RuntimeError("decode_pair needs the two_branch decoder; this one is joint_3d (use forward_video)")
        f1, f2 = self.decoder_embed(feat1), self.decoder_embed(feat2)
        layers1, layers2 = [f1], [f2]
        for blk1, blk2 in zip(self.dec_blocks, self.dec_blocks2):
            # Simultaneous update: both branches read the other view's tokens of the previous layer.
            f1, f2 = blk1(f1, f2, pos1, pos2), blk2(f2, f1, pos2, pos1)
            layers1.append(f1)
            layers2.append(f2)
        dec1, dec2 = self.dec_norm(f1), self.dec_norm(f2)
        if return_layers:
            return dec1, dec2, layers1, layers2
        return dec1, dec2

    def forward_pair(
        self, feat1: torch.Tensor, feat2: torch.Tensor, pos1: torch.Tensor, pos2: torch.Tensor, grid: tuple[int, int]
    ) -> dict[str, torch.Tensor]:
        """DUSt3R's downstream forward for a batch of pairs (two-branch only).

        Args:
            feat1: ``[B, S, enc_dim]`` view-1 tokens; feat2 likewise for view 2.
            feat2: ``[B, S, enc_dim]``.
            pos1: ``[B, S, 2]`` int64 (row, col) positions; pos2 likewise.
            pos2: ``[B, S, 2]``.
            grid: ``(h_p, w_p)`` with ``S = h_p * w_p``.

        Returns:
            dict with DUSt3R's names: ``pts3d`` ``[B, H, W, 3]`` and ``conf`` ``[B, H, W]`` of view 1,
            ``pts3d_in_other_view`` ``[B, H, W, 3]`` and ``conf_in_other_view`` ``[B, H, W]`` of view 2 (all in
            view 1's camera frame, float32).
        """
        dec1, dec2 = self.decode_pair(feat1, feat2, pos1, pos2)
        pts1, conf1 = self.downstream_head1(dec1, grid)
        pts2, conf2 = self.downstream_head2(dec2, grid)
        return {"pts3d": pts1, "conf": conf1, "pts3d_in_other_view": pts2, "conf_in_other_view": conf2}

    def forward_video(self, tokens: torch.Tensor, grid: tuple[int, int], edges: torch.Tensor) -> PairwisePointmaps:
        """Point maps of every edge of a video.

        Args:
            tokens: ``[B, F, S, enc_dim]`` per-frame tokens (e.g. :attr:`jog3r.types.DiTFeatures.tokens`).
            grid: ``(h_p, w_p)`` patch grid, ``S = h_p * w_p``.
            edges: ``[P, 2]`` integer 0-based frame pairs ``(i, j)``.

        Returns:
            :class:`~jog3r.types.PairwisePointmaps` with ``[B, P, H, W(, 3)]`` float32 fields,
            ``H = h_p * p``, ``W = w_p * p``; ``edges`` is returned as int64.

        Raises:
            ValueError: on mismatched token shapes, width or grid, or invalid edges.
        """
        if tokens.ndim != 4:
            raise ValueError(f"tokens must be [B, F, S, D], got {tuple(tokens.shape)}")
        b, f, s, d = tokens.shape
        if d != self.enc_dim:
            raise ValueError(f"tokens have width {d} but decoder_embed expects {self.enc_dim} (the STDiT hidden size)")
        if s != grid[0] * grid[1]:
            raise ValueError(f"tokens have S={s} per frame but grid {tuple(grid)} has {grid[0] * grid[1]}")
        edges = check_edges(edges, f)
        if self.variant is DecoderVariant.TWO_BRANCH:
            out = self._two_branch_video(tokens, grid, edges)
        else:
            out = self._joint_video(tokens, grid, edges)
        p = edges.shape[0]
        split = {k: rearrange(v, "(b p) ... -> b p ...", b=b, p=p) for k, v in out.items()}
        return PairwisePointmaps(edges=edges, **split)

    def _two_branch_video(self, tokens: torch.Tensor, grid: tuple[int, int], edges: torch.Tensor):
        """Run every edge as one pair; returns fields shaped ``[(B P), ...]``."""
        view1, view2 = gather_pairs(tokens, edges)
        pos = patch_positions(grid, view1.shape[0], tokens.device)
        return self.forward_pair(view1, view2, pos, pos, grid)

    def _joint_video(self, tokens: torch.Tensor, grid: tuple[int, int], edges: torch.Tensor):
        """Decode the whole video once per reference frame; returns fields shaped ``[(B P), ...]``."""
        b, f, _, _ = tokens.shape
        x0 = self.decoder_embed(tokens)  # [B, F, S, D]
        pos = repeat(patch_positions(grid, b, tokens.device), "b s two -> b (f s) two", f=f)
        # One result slot per edge, filled reference frame by reference frame.
        fields: dict[str, list] = {k: [None] * edges.shape[0] for k in ("pts3d", "conf", "pts3d_in_other_view",
                                                                         "conf_in_other_view")}
        for ref in torch.unique(edges[:, 0]).tolist():
            sel = torch.nonzero(edges[:, 0] == ref).flatten().tolist()
            marker = torch.zeros(f, 1, 1, device=x0.device, dtype=x0.dtype)
            marker[ref] = 1.0
            x = rearrange(x0 + marker * self.ref_embed, "b f s d -> b (f s) d")
            for blk in self.dec_blocks:
                x = blk(x, pos)
            x = rearrange(self.dec_norm(x), "b (f s) d -> b f s d", f=f)
            pts_ref, conf_ref = self.downstream_head1(x[:, ref], grid)  # [B, H, W, 3], [B, H, W]
            others = edges[sel, 1].tolist()
            pts_oth, conf_oth = self.downstream_head2(rearrange(x[:, others], "b q s d -> (b q) s d"), grid)
            pts_oth = rearrange(pts_oth, "(b q) h w c -> b q h w c", b=b)
            conf_oth = rearrange(conf_oth, "(b q) h w -> b q h w", b=b)
            for q, slot in enumerate(sel):
                fields["pts3d"][slot] = pts_ref
                fields["conf"][slot] = conf_ref
                fields["pts3d_in_other_view"][slot] = pts_oth[:, q]
                fields["conf_in_other_view"][slot] = conf_oth[:, q]
        return {k: rearrange(torch.stack(v, dim=1), "b p ... -> (b p) ...") for k, v in fields.items()}
