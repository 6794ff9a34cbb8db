"""STDiT, the spatial-temporal diffusion transformer of OpenSora v1.0 (this file plus ``layers.py``).

Faithful to OpenSora tag ``v1.0.0`` ``opensora/models/stdit/stdit.py`` (REFERENCE.md A.1-A.4, quirks F.2-F.3):
module names, state-dict keys and shapes are OpenSora's, so its checkpoints load with
:func:`load_opensora_state_dict`. On top of the reference it can tap the tokens after any block (the JOG3R
paper's ``b^n``, Sec. 3.2) and stop there, and it accepts latent grids other than the one it was built for.

Data flow of :meth:`STDiT.forward`::

    x [B,C,F,h,w] -x_embedder-> [B,N,D] + pos_embed (spatial, per frame)
    timestep [B] -t_embedder-> t [B,D] -t_block-> t0 [B,6D]          (adaLN-single, shared by all blocks)
    y [B,1,L,Dy] -y_embedder-> [B,L,D] (+ caption padding mask)
    blocks 1..depth (STDiTBlock) -> final_layer(x, t) -> unpatchify -> [B, C_out, F, h, w] float32
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from jog3r.dit.layers import (
    CaptionEmbedder,
    PatchEmbed3D,
    T2IFinalLayer,
    TimestepEmbedder,
    get_1d_sincos_pos_embed,
    get_2d_sincos_pos_embed,
    t2i_modulate,
)
from jog3r.nn.attention import MultiHeadCrossAttention, SelfAttention
from jog3r.nn.mlp import Mlp

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class STDiTConfig:
    """Hyper-parameters of :class:`STDiT` (defaults: OpenSora v1.0 ``STDiT.__init__``, REFERENCE.md A.1).

    Presets live in :data:`jog3r.config.STDIT_PRESETS`.
    """

    input_size: tuple[int, int, int] = (1, 32, 32)
    """Latent grid ``(F, h, w)`` the position-embedding buffers are built for (other grids work too)."""
    in_channels: int = 4
    """Latent channels ``C`` (4 for SD-VAE, 32 for TAEF2)."""
    patch_size: tuple[int, int, int] = (1, 2, 2)
    """Patch ``(p_F, p_h, p_w)``; OpenSora never patches time."""
    hidden_size: int = 1152
    """Token width ``D`` (divisible by ``num_heads`` and by 4)."""
    depth: int = 28
    """Number of STDiT blocks (the paper's ``b^1 .. b^depth``)."""
    num_heads: int = 16
    """Attention heads of every attention."""
    mlp_ratio: float = 4.0
    """MLP hidden width / ``hidden_size``."""
    class_dropout_prob: float = 0.1
    """Probability of replacing a caption by the null caption while training (classifier-free guidance)."""
    pred_sigma: bool = True
    """Learned variance: output ``2C`` channels (eps, then variance interpolation ``v``), else ``C``."""
    caption_channels: int = 4096
    """Text-encoder width ``Dy`` (T5-XXL 4096; MiniLM 384)."""
    model_max_length: int = 120
    """Caption tokens ``L``."""
    space_scale: float = 1.0
    """Spatial PE positions are ``arange(n) / space_scale`` (0.5 for 256-px OpenSora, 1.0 for 512-px)."""
    time_scale: float = 1.0
    """Temporal PE positions are ``arange(F) / time_scale`` (2/3 for OpenSora's 64-frame configs)."""
    grad_checkpointing: bool = False
    """Recompute block activations in the backward pass (saves memory while training)."""

    def __post_init__(self) -> None:
        """Check the values and normalise list-valued sizes (from JSON) to tuples."""
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "patch_size", tuple(int(v) for v in self.patch_size))
        sizes = f"input_size {self.input_size}, patch_size {self.patch_size}"
        triples = len(self.input_size) == 3 and len(self.patch_size) == 3
        if not triples or min(self.input_size + self.patch_size) < 1:
            raise ValueError(f"input_size and patch_size must be positive (F, h, w) triples, got {sizes}")
        if any(n % p for n, p in zip(self.input_size, self.patch_size)):
            raise ValueError(f"input_size must be divisible by patch_size, got {sizes}")
        if self.hidden_size % self.num_heads or self.hidden_size % 4:
            raise ValueError(
                f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads} and by 4 "
                "(2D sin-cos position embedding)"
            )
        scales_ok = min(self.space_scale, self.time_scale) > 0 and 0 <= self.class_dropout_prob <= 1
        if self.depth < 1 or not scales_ok:
            raise ValueError(
                f"need depth >= 1, positive space/time scales and 0 <= class_dropout_prob <= 1, got depth "
                f"{self.depth}, scales {self.space_scale}/{self.time_scale}, p {self.class_dropout_prob}"
            )

    @property
    def out_channels(self) -> int:
        """Output channels ``C_out``: ``2 * in_channels`` with learned sigma, else ``in_channels``."""
        return 2 * self.in_channels if self.pred_sigma else self.in_channels

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> STDiTConfig:
        """Build a config from a JSON-style dict (lists accepted for sizes).

        Raises:
            ValueError: on keys that are not fields, listing the valid ones.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown STDiTConfig keys {unknown}; valid keys: {sorted(names)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of the fields (inverse of :meth:`from_dict`)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


class STDiTBlock(nn.Module):
    """One OpenSora v1.0 STDiT block, exact order of operations (REFERENCE.md A.3, quirk F.2).

    With ``(shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp)`` the rows of
    ``scale_shift_table + t0``:

    1. spatial self-attention over each frame's ``S`` tokens on ``LN1(x) * (1 + scale_msa) + shift_msa``,
       ``x += gate_msa * out``;
    2. temporal self-attention over the ``F`` tokens at each position on the **un-normalised** ``x`` (plus the
       temporal PE, given to block 0 only), ``x += gate_msa * out`` (the same gate);
    3. cross-attention to the caption, no norm, no gate: ``x += cross_attn(x, y)``;
    4. ``x += gate_mlp * mlp(LN2(x) * (1 + scale_mlp) + shift_mlp)``.

    Args:
        hidden_size: token width ``D``.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width / ``D``.
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(hidden_size, num_heads, qkv_bias=True)
        self.cross_attn = MultiHeadCrossAttention(hidden_size, num_heads)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio), approximate="tanh")
        self.scale_shift_table = nn.Parameter(torch.randn(6, hidden_size) / hidden_size**0.5)
        self.attn_temp = SelfAttention(hidden_size, num_heads, qkv_bias=True)

    def forward(
        self, x: Tensor, y: Tensor, t0: Tensor, y_mask: Tensor | None, tpe: Tensor | None, num_frames: int
    ) -> Tensor:
        """Run the block.

        Args:
            x: ``[B, N, D]`` tokens, ``N = F * S`` frame-major.
            y: ``[B, L, D]`` embedded caption tokens.
            t0: ``[B, 6D]`` adaLN-single timestep modulation (``t_block`` output).
            y_mask: ``[B, L]`` bool valid-caption mask, or ``None``.
            tpe: ``[1, F, D]`` temporal position embedding (block 0) or ``None``.
            num_frames: ``F``.

        Returns:
            ``[B, N, D]``.
        """
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            self.scale_shift_table[None] + rearrange(t0, "B (six D) -> B six D", six=6)
        ).chunk(6, dim=1)

        x_m = t2i_modulate(self.norm1(x), shift_msa, scale_msa)
        x_s = self.attn(rearrange(x_m, "B (F S) D -> (B F) S D", F=num_frames))
        x = x + gate_msa * rearrange(x_s, "(B F) S D -> B (F S) D", F=num_frames)

        x_t = rearrange(x, "B (F S) D -> (B S) F D", F=num_frames)
        if tpe is not None:
            x_t = x_t + tpe
        x_t = self.attn_temp(x_t)
        x = x + gate_msa * rearrange(x_t, "(B S) F D -> B (F S) D", S=x.shape[1] // num_frames)

        x = x + self.cross_attn(x, y, y_mask)

        x_m = t2i_modulate(self.norm2(x), shift_mlp, scale_mlp)
        return x + gate_mlp * self.mlp(x_m)


class STDiT(nn.Module):
    """OpenSora v1.0 STDiT (STDiT-XL/2 with the default config) with JOG3R feature taps.

    Top-level modules (OpenSora names): ``x_embedder``, ``t_embedder``, ``t_block``, ``y_embedder``,
    ``blocks.{i}`` (``attn``, ``attn_temp``, ``cross_attn``, ``mlp``, ``scale_shift_table``), ``final_layer``;
    persistent buffers ``pos_embed [1, S, D]``, ``pos_embed_temporal [1, F, D]`` (built for
    ``config.input_size``) and ``y_embedder.y_embedding [L, Dy]``. Freezing is left to the caller.

    Args:
        config: the hyper-parameters.
    """

    def __init__(self, config: STDiTConfig) -> None:
        super().__init__()
        self.config = config
        self.grad_checkpointing = config.grad_checkpointing
        d = config.hidden_size
        num_frames, h, w = (n // p for n, p in zip(config.input_size, config.patch_size))
        # The PE buffers are always real CPU tensors, also when the model is built on the meta device.
        self.register_buffer("pos_embed", self._spatial_pos_embed(h, w)[None].cpu())
        self.register_buffer("pos_embed_temporal", self._temporal_pos_embed(num_frames)[None].cpu())
        self._pe_cache: dict[tuple, Tensor] = {}

        self.x_embedder = PatchEmbed3D(config.patch_size, config.in_channels, d)
        self.t_embedder = TimestepEmbedder(d)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.y_embedder = CaptionEmbedder(
            config.caption_channels, d, config.class_dropout_prob, config.model_max_length
        )
        self.blocks = nn.ModuleList(
            [STDiTBlock(d, config.num_heads, config.mlp_ratio) for _ in range(config.depth)]
        )
        self.final_layer = T2IFinalLayer(d, math.prod(config.patch_size), config.out_channels)
        self.initialize_weights()

    def _spatial_pos_embed(self, h_p: int, w_p: int) -> Tensor:
        with torch.device("cpu"):
            return get_2d_sincos_pos_embed(self.config.hidden_size, (h_p, w_p), self.config.space_scale)

    def _temporal_pos_embed(self, num_frames: int) -> Tensor:
        with torch.device("cpu"):
            return get_1d_sincos_pos_embed(self.config.hidden_size, num_frames, self.config.time_scale)

    def initialize_weights(self) -> None:
        """OpenSora ``initialize_weights`` + ``initialize_temporal`` (REFERENCE.md A.3).

        Xavier-uniform Linear weights with zero biases; patch-embed weight Xavier as a 2-D matrix; timestep
        MLP, ``t_block`` and ``y_proj`` weights N(0, 0.02); ``cross_attn.proj``, ``attn_temp.proj`` and
        ``final_layer.linear`` zero (so a fresh model predicts exactly 0).
        """
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        w = self.x_embedder.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        for linear in (self.t_embedder.mlp[0], self.t_embedder.mlp[2], self.t_block[1]):
            nn.init.normal_(linear.weight, std=0.02)
        nn.init.normal_(self.y_embedder.y_proj.fc1.weight, std=0.02)
        nn.init.normal_(self.y_embedder.y_proj.fc2.weight, std=0.02)
        zero = [self.final_layer.linear]
        zero += [b.cross_attn.proj for b in self.blocks] + [b.attn_temp.proj for b in self.blocks]
        for linear in zero:
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)

    def patch_grid(self, h: int, w: int) -> tuple[int, int]:
        """Patch grid ``(h_p, w_p)`` of a latent of size ``h x w`` (``S = h_p * w_p`` tokens per frame).

        Raises:
            ValueError: if ``h`` or ``w`` is not divisible by the spatial patch size.
        """
        _, p_h, p_w = self.config.patch_size
        if h % p_h or w % p_w or h < 1 or w < 1:
            raise ValueError(
                f"latent size {h}x{w} is not divisible by the patch {p_h}x{p_w}; resize or crop the video so "
                f"that the latent height/width are multiples of {p_h}/{p_w}"
            )
        return h // p_h, w // p_w

    def null_caption(self, batch: int) -> Tensor:
        """The null ("empty prompt") caption, ``y_embedding`` repeated: ``[batch, 1, L, Dy]``.

        It is the caption of dropped samples during training, the unconditional half of CFG and the empty
        prompt of the paper's ``L_rec`` and V2C (OpenSora ``T5Encoder.null``).
        """
        return self.y_embedder.y_embedding[None, None].repeat(batch, 1, 1, 1)

    def pos_embeds(self, num_frames: int, h_p: int, w_p: int, ref: Tensor) -> tuple[Tensor, Tensor]:
        """Spatial ``[1, S, D]`` and temporal ``[1, F, D]`` position embeddings for a token grid.

        The buffers are used for ``config.input_size``; any other grid gets embeddings computed with the same
        formulas (cached per grid, device and dtype).

        Args:
            num_frames: ``F_p`` (frames after temporal patching).
            h_p: patch rows.
            w_p: patch columns.
            ref: a tensor whose device and dtype the embeddings are returned in.

        Returns:
            ``(pos_embed [1, h_p * w_p, D], pos_embed_temporal [1, F_p, D])``.
        """
        if self.patch_grid(*self.config.input_size[1:]) == (h_p, w_p):
            spatial = self.pos_embed
        else:
            key = ("s", h_p, w_p, ref.device, ref.dtype)
            if key not in self._pe_cache:
                self._pe_cache[key] = self._spatial_pos_embed(h_p, w_p)[None].to(ref)
            spatial = self._pe_cache[key]
        if self.pos_embed_temporal.shape[1] == num_frames:
            temporal = self.pos_embed_temporal
        else:
            key = ("t", num_frames, ref.device, ref.dtype)
            if key not in self._pe_cache:
                self._pe_cache[key] = self._temporal_pos_embed(num_frames)[None].to(ref)
            temporal = self._pe_cache[key]
        return spatial.to(ref), temporal.to(ref)

    def _check_inputs(
        self, x: Tensor, timestep: Tensor, y: Tensor, mask: Tensor | None, force_drop_ids: Tensor | None
    ) -> None:
        cfg = self.config
        if x.ndim != 5 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"x must be [B, {cfg.in_channels}, F, h, w] latents, got {tuple(x.shape)}")
        batch, _, num_frames, h, w = x.shape
        if num_frames % cfg.patch_size[0]:
            raise ValueError(f"F={num_frames} frames not divisible by the temporal patch {cfg.patch_size[0]}")
        self.patch_grid(h, w)
        if timestep.shape != (batch,):
            raise ValueError(f"timestep must be [B]=[{batch}] (0..999 scale), got {tuple(timestep.shape)}")
        if y.ndim != 4 or y.shape[0] != batch or y.shape[1] != 1 or y.shape[3] != cfg.caption_channels:
            raise ValueError(
                f"y must be [B, 1, L, Dy] = [{batch}, 1, L, {cfg.caption_channels}] caption tokens, got "
                f"{tuple(y.shape)}; use null_caption(B) for the empty prompt"
            )
        if mask is not None:
            if mask.ndim != 2 or mask.shape[1] != y.shape[2] or batch % mask.shape[0]:
                raise ValueError(
                    f"mask must be [B, L] (or [B / k, L], repeated for CFG) with L={y.shape[2]}, got "
                    f"{tuple(mask.shape)} for a batch of {batch}"
                )
            if not bool((mask != 0).any(dim=1).all()):
                raise ValueError("every caption needs at least one valid token in mask (e.g. the EOS token)")
        if force_drop_ids is not None and force_drop_ids.shape != (batch,):
            raise ValueError(f"force_drop_ids must be [B]=[{batch}], got {tuple(force_drop_ids.shape)}")

    def _check_taps(self, return_features: None | int | Sequence[int]) -> tuple[int, ...]:
        if return_features is None:
            return ()
        if isinstance(return_features, Sequence):
            taps = tuple(return_features)
        else:
            taps = (return_features,)
        depth = self.config.depth
        valid = all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= depth for n in taps)
        if not taps or not valid:
            raise ValueError(
                f"return_features must be block numbers in 1..{depth} (1-based, the paper's b^n), got "
                f"{return_features!r}"
            )
        return taps

    def forward(
        self,
        x: Tensor,
        timestep: Tensor,
        y: Tensor,
        mask: Tensor | None = None,
        *,
        return_features: None | int | tuple[int, ...] = None,
        stop_after_features: bool = False,
        force_drop_ids: Tensor | None = None,
    ) -> Tensor | tuple[Tensor | None, dict[int, Tensor]]:
        """Predict noise (and variance) for noisy latents, optionally tapping block outputs.

        Args:
            x: ``[B, C, F, h, w]`` noisy latents; ``F, h, w`` divisible by ``patch_size`` (any such size).
            timestep: ``[B]`` diffusion timesteps on the original 0..999 scale (float or int).
            y: ``[B, 1, L, Dy]`` caption tokens (:meth:`null_caption` for the empty prompt).
            mask: optional ``[B, L]`` caption validity mask (1/True = valid token; T5 attention mask). If its
                batch is ``B / k`` it is repeated ``k`` times (OpenSora CFG: prompts and null captions share
                it).
            return_features: block number(s) ``n`` in ``1..depth`` whose output tokens to return (paper's
                ``b^n``).
            stop_after_features: skip the blocks after the last tapped one and the final layer, returning
                ``None`` as ``out`` (reconstruction branch, V2C).
            force_drop_ids: optional ``[B]``; samples with 1/True get the null caption (also in eval mode).

        Returns:
            ``out [B, C_out, F, h, w]`` float32 (``C_out = 2C`` with ``pred_sigma``: eps then variance values)
            if ``return_features`` is None; otherwise ``(out | None, {n: tokens [B, F, S, D]})`` with
            ``S = h_p * w_p`` row-major tokens in the model dtype.

        Raises:
            ValueError: on malformed inputs (shapes, empty caption mask, bad block numbers), naming the fix.
        """
        taps = self._check_taps(return_features)
        if stop_after_features and not taps:
            raise ValueError("stop_after_features=True needs return_features (the blocks to stop after)")
        timestep = torch.as_tensor(timestep, device=x.device)
        if timestep.ndim == 0:
            timestep = timestep.expand(x.shape[0])
        self._check_inputs(x, timestep, y, mask, force_drop_ids)

        dtype = self.x_embedder.proj.weight.dtype
        x, y = x.to(dtype), y.to(dtype)
        num_frames = x.shape[2] // self.config.patch_size[0]
        h_p, w_p = self.patch_grid(*x.shape[3:])
        pos_embed, pos_embed_temporal = self.pos_embeds(num_frames, h_p, w_p, x)

        # 1. embeddings: patches + spatial PE, timestep (t, and adaLN-single t0), caption
        x = self.x_embedder(x)
        x = rearrange(x, "B (F S) D -> B F S D", F=num_frames) + pos_embed[:, None]
        x = rearrange(x, "B F S D -> B (F S) D")
        t = self.t_embedder(timestep)
        t0 = self.t_block(t)
        y = rearrange(self.y_embedder(y, self.training, force_drop_ids), "B 1 L D -> B L D")
        y_mask = None
        if mask is not None:
            y_mask = (mask != 0).to(x.device).repeat(x.shape[0] // mask.shape[0], 1)

        # 2. blocks, tapping b^n
        last = max(taps) if stop_after_features else self.config.depth
        features: dict[int, Tensor] = {}
        for i, block in enumerate(self.blocks[:last]):
            tpe = pos_embed_temporal if i == 0 else None
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, y, t0, y_mask, tpe, num_frames, use_reentrant=False)
            else:
                x = block(x, y, t0, y_mask, tpe, num_frames)
            if i + 1 in taps:
                features[i + 1] = rearrange(x, "B (F S) D -> B F S D", F=num_frames)
        if stop_after_features:
            return None, features

        # 3. final layer (uses t, not t0) and unpatchify, output in float32
        x = self.final_layer(x, t)
        out = self.unpatchify(x, num_frames, h_p, w_p).float()
        return (out, features) if taps else out

    def unpatchify(self, x: Tensor, num_frames: int, h_p: int, w_p: int) -> Tensor:
        """Patch values back to a latent video (OpenSora ``unpatchify``, ``C_out`` innermost).

        Args:
            x: ``[B, N, p_F * p_h * p_w * C_out]`` final-layer output, ``N = num_frames * h_p * w_p``.
            num_frames: ``F_p``.
            h_p: patch rows.
            w_p: patch columns.

        Returns:
            ``[B, C_out, F_p * p_F, h_p * p_h, w_p * p_w]``.
        """
        p_f, p_h, p_w = self.config.patch_size
        return rearrange(
            x,
            "B (Nf Nh Nw) (pf ph pw C) -> B C (Nf pf) (Nh ph) (Nw pw)",
            Nf=num_frames, Nh=h_p, Nw=w_p, pf=p_f, ph=p_h, pw=p_w,
        )


def load_opensora_state_dict(
    model: STDiT, state_dict: Mapping[str, Tensor], *, strict: bool = True
) -> list[str]:
    """Load an OpenSora v1.0 STDiT state dict as the reference loader does (OS ``ckpt_utils.find_model``).

    An ``"ema"`` entry is unwrapped if present, and ``pos_embed`` / ``pos_embed_temporal`` are dropped so the
    model keeps the buffers computed from its own ``space_scale`` / ``time_scale`` (quirk F.3).

    Args:
        model: the target :class:`STDiT`.
        state_dict: OpenSora-layout tensors (or a dict with an ``"ema"`` state dict).
        strict: raise on any other missing or unexpected key.

    Returns:
        The missing keys besides the dropped position embeddings (empty when ``strict``).

    Raises:
        ValueError: if ``strict`` and keys other than the position embeddings are missing or unexpected.
    """
    if "ema" in state_dict and isinstance(state_dict["ema"], Mapping):
        state_dict = state_dict["ema"]
    pe_keys = {"pos_embed", "pos_embed_temporal"}
    filtered = {k: v for k, v in state_dict.items() if k not in pe_keys}
    result = model.load_state_dict(filtered, strict=False)
    missing = [k for k in result.missing_keys if k not in pe_keys]
    if strict and (missing or result.unexpected_keys):
        raise ValueError(
            f"OpenSora state dict does not match the STDiT config: missing {missing}, unexpected "
            f"{result.unexpected_keys}; build the model with the checkpoint's hyper-parameters"
        )
    if missing or result.unexpected_keys:
        logger.warning("missing keys %s, unexpected keys %s", missing, result.unexpected_keys)
    return missing


__all__ = ["STDiTConfig", "STDiTBlock", "STDiT", "load_opensora_state_dict"]
