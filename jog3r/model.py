"""The JOG3R network: OpenSora's STDiT stitched to DUSt3R's decoders and linear heads (paper Sec. 3.2, Fig. 2).

::

    latents [B,C,F,h,w], t, caption ──stdit──► blocks 1..n ──► tokens after b^n [B,F,S,D] ──► DiTFeatures
                                                  │                                     │
                                                  ▼  blocks n+1..depth, final_layer      ▼  decoder_embed, dec_blocks(2),
                                          dit_out [B,2C,F,h,w] (L_gen)                  dec_norm, downstream_head1/2
                                                                                     PairwisePointmaps (L_rec)

Blocks after the tap ``n`` only feed ``dit_out``, so ``L_rec`` can never reach them (the paper's "generation
branch", Sec. 4); the reconstruction-only pass (``compute_gen=False``) stops the STDiT at the tap. Module names
are OpenSora's under ``stdit.`` and DUSt3R's at the top level (``decoder_embed``, ``dec_blocks``, ``dec_blocks2``,
``dec_norm``, ``downstream_head1/2``), so both families of checkpoints map by key (:mod:`jog3r.checkpoint`).
"""

from __future__ import annotations

import enum
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from jog3r.checkpoint import check_shapes, load_config, load_state_dict_file, save_config, save_safetensors
from jog3r.dit.stdit import STDiT, STDiTConfig
from jog3r.recon.decoder import DecoderVariant, PointmapDecoder
from jog3r.recon.head import DepthMode
from jog3r.recon.pairs import SceneGraph, make_edges
from jog3r.types import DiTFeatures, Latents, PairwisePointmaps

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


class TrainablePart(str, enum.Enum):
    """What trains in the STDiT blocks after the first ``frozen_blocks`` (JOG3R Sec. 4).

    Members:
        TEMPORAL_ATTENTION: only ``attn_temp`` of each block (the paper's policy; OpenSora ``freeze="not_temporal"``).
        ALL: every parameter of those blocks.
        NONE: nothing (the "frozen OS + rec" baseline: only the decoder and heads train).
    """

    TEMPORAL_ATTENTION = "temporal_attention"
    ALL = "all"
    NONE = "none"


@dataclass(frozen=True)
class JOG3RConfig:
    """Hyper-parameters of :class:`JOG3R`. Presets: :data:`jog3r.config.JOG3R_PRESETS`."""

    stdit: STDiTConfig = field(default_factory=STDiTConfig)
    """The video DiT (OpenSora v1.0 STDiT-XL/2 by default)."""
    dec_embed_dim: int = 768
    """Decoder width (DUSt3R's ViT-Base decoder: 768)."""
    dec_depth: int = 6
    """Decoder blocks per branch (6 in JOG3R; DUSt3R uses 12)."""
    dec_num_heads: int = 12
    """Decoder attention heads (head dim must be a multiple of 4 for RoPE2D)."""
    dec_mlp_ratio: float = 4.0
    """Decoder MLP hidden width / ``dec_embed_dim``."""
    decoder_variant: DecoderVariant = DecoderVariant.TWO_BRANCH
    """Two DUSt3R branches per pair (paper) or one joint-3D decoder over all frames."""
    rope_base: float = 100.0
    """RoPE2D base (DUSt3R ``RoPE100``)."""
    depth_mode: DepthMode = DepthMode.EXP
    """Point activation of the heads (DUSt3R ``('exp', -inf, inf)``)."""
    tap_block: int = 26
    """1-based STDiT block ``b^n`` whose output feeds the decoder (paper: 26 of 28)."""
    vae_factor: int = 8
    """Pixels per latent cell; the head outputs ``vae_factor * patch`` pixels per token side."""
    frozen_blocks: int = 4
    """The first ``frozen_blocks`` STDiT blocks never train (paper: 4)."""
    trainable_after_frozen: TrainablePart = TrainablePart.TEMPORAL_ATTENTION
    """What trains in the remaining blocks (paper: temporal attention only)."""
    train_embedders: bool = False
    """Whether ``x_embedder``, ``t_embedder``, ``t_block``, ``y_embedder`` and ``final_layer`` train (paper: no;
    a model trained from scratch: yes)."""

    def __post_init__(self) -> None:
        """Normalise Enum fields given as strings and check the values."""
        object.__setattr__(self, "decoder_variant", DecoderVariant(self.decoder_variant))
        object.__setattr__(self, "depth_mode", DepthMode(self.depth_mode))
        object.__setattr__(self, "trainable_after_frozen", TrainablePart(self.trainable_after_frozen))
        depth = self.stdit.depth
        if not 1 <= self.tap_block <= depth:
            raise ValueError(f"tap_block must be a 1-based block number in 1..{depth}, got {self.tap_block}")
        if not 0 <= self.frozen_blocks <= depth:
            raise ValueError(f"frozen_blocks must be in 0..{depth}, got {self.frozen_blocks}")
        if self.stdit.patch_size[1] != self.stdit.patch_size[2]:
            raise ValueError(f"the linear head needs square patches, got patch_size {self.stdit.patch_size}")
        if self.vae_factor < 1 or self.dec_depth < 1:
            raise ValueError(f"vae_factor and dec_depth must be >= 1, got {self.vae_factor}, {self.dec_depth}")

    @property
    def head_patch_size(self) -> int:
        """Pixels per token side ``p = vae_factor * patch`` (16 for OpenSora 1.0)."""
        return self.vae_factor * self.stdit.patch_size[1]


@dataclass(frozen=True)
class JOG3ROutput:
    """Output of :meth:`JOG3R.forward`.

    Attributes:
        dit_out: ``[B, 2C, F, h, w]`` float32 STDiT prediction (eps, then variance values) for ``L_gen``, or
            ``None`` with ``compute_gen=False``.
        pointmaps: pairwise point maps for ``L_rec``, or ``None`` with ``compute_rec=False``.
        features: the tapped tokens (block ``tap_block``).
    """

    dit_out: torch.Tensor | None
    pointmaps: PairwisePointmaps | None
    features: DiTFeatures


class JOG3R(PointmapDecoder):
    """STDiT + DUSt3R decoder/heads (JOG3R). The decoder part is inherited from :class:`PointmapDecoder`.

    Args:
        config: :class:`JOG3RConfig`.
    """

    def __init__(self, config: JOG3RConfig) -> None:
        super().__init__(
            enc_dim=config.stdit.hidden_size,
            dec_dim=config.dec_embed_dim,
            depth=config.dec_depth,
            num_heads=config.dec_num_heads,
            patch_size=config.head_patch_size,
            variant=config.decoder_variant,
            mlp_ratio=config.dec_mlp_ratio,
            rope_base=config.rope_base,
            depth_mode=config.depth_mode,
        )
        self.config = config
        self.stdit = STDiT(config.stdit)

    def forward(
        self,
        latents: torch.Tensor | Latents,
        timestep: torch.Tensor,
        y: torch.Tensor,
        mask: torch.Tensor | None = None,
        edges: torch.Tensor | None = None,
        *,
        compute_gen: bool = True,
        compute_rec: bool = True,
    ) -> JOG3ROutput:
        """One STDiT pass, tapping block ``tap_block``, then the decoder on the tapped tokens.

        For ``L_rec`` at a small ``t`` with the empty prompt and ``L_gen`` at another ``t`` with the caption
        (paper Sec. 3.2), call twice: ``compute_gen=False`` (the STDiT stops at the tap) and
        ``compute_rec=False``. With both False only the tapped features are computed (V2C feature extraction).

        Args:
            latents: ``[B, C, F, h, w]`` noisy latents (or :class:`~jog3r.types.Latents`).
            timestep: ``[B]`` diffusion timesteps (0..999).
            y: ``[B, 1, L, Dy]`` caption tokens (``self.stdit.null_caption(B)`` for the empty prompt).
            mask: optional ``[B, L]`` caption validity mask.
            edges: ``[P, 2]`` int64 frame pairs; default :func:`make_edges` ``FIRST_TO_ALL`` (paper's ``1 -> f``).
            compute_gen: run the blocks after the tap and the final layer (``dit_out``).
            compute_rec: decode point maps.

        Returns:
            :class:`JOG3ROutput`; point maps are ``[B, P, h * vae_factor, w * vae_factor(, 3)]`` float32.

        Raises:
            ValueError: on malformed inputs (shapes, edges, caption mask), naming the fix.
        """
        x = latents.x if isinstance(latents, Latents) else latents
        tap = self.config.tap_block
        dit_out, feats = self.stdit(
            x, timestep, y, mask, return_features=tap, stop_after_features=not compute_gen
        )
        if isinstance(timestep, (int, float)) or timestep.ndim == 0:
            timestep = torch.as_tensor(timestep, device=x.device).expand(x.shape[0])
        features = DiTFeatures(
            tokens=feats[tap], grid=self.stdit.patch_grid(*x.shape[-2:]), timestep=timestep.long(), block=tap
        )
        pointmaps = self.decode_pointmaps(features, edges) if compute_rec else None
        return JOG3ROutput(dit_out=dit_out, pointmaps=pointmaps, features=features)

    def decode_pointmaps(self, features: DiTFeatures, edges: torch.Tensor | None = None) -> PairwisePointmaps:
        """Point maps from tapped STDiT tokens (T2V+C: features tapped while sampling; V2C; ``L_rec``).

        Args:
            features: tokens ``[B, F, S, D_dit]`` on grid ``(h_p, w_p)``; any tapped block is accepted (a warning
                is logged if it is not ``config.tap_block``).
            edges: ``[P, 2]`` frame pairs; default ``make_edges(F, SceneGraph.FIRST_TO_ALL)``.

        Returns:
            :class:`~jog3r.types.PairwisePointmaps`, ``[B, P, H, W(, 3)]`` float32 with
            ``H = h_p * head_patch_size``.
        """
        if features.block != self.config.tap_block:
            logger.warning("decoding features of block %d; the decoder was trained on block %d",
                           features.block, self.config.tap_block)
        tokens = features.tokens
        if edges is None:
            edges = make_edges(tokens.shape[1], SceneGraph.FIRST_TO_ALL)
        tokens = tokens.to(self.decoder_embed.weight.dtype)
        return self.forward_video(tokens, features.grid, edges.to(tokens.device))

    def apply_freeze_policy(self) -> dict[str, int]:
        """Set ``requires_grad`` per the config (JOG3R Sec. 4).

        Blocks ``1..frozen_blocks`` are frozen; later blocks train per ``trainable_after_frozen``; embedders and
        final layer per ``train_embedders``; decoder and heads always train. Blocks after ``tap_block`` are
        outside the ``L_rec`` path by construction, so with the paper's policy their temporal attention is
        updated by ``L_gen`` only.

        Returns:
            ``{"trainable": n, "frozen": m}`` parameter counts.
        """
        cfg = self.config
        for p in self.parameters():
            p.requires_grad_(True)
        stdit = self.stdit
        for module in (stdit.x_embedder, stdit.t_embedder, stdit.t_block, stdit.y_embedder, stdit.final_layer):
            module.requires_grad_(cfg.train_embedders)
        for i, block in enumerate(stdit.blocks):
            block.requires_grad_(False)
            if i + 1 <= cfg.frozen_blocks:
                continue
            if cfg.trainable_after_frozen is TrainablePart.ALL:
                block.requires_grad_(True)
            elif cfg.trainable_after_frozen is TrainablePart.TEMPORAL_ATTENTION:
                block.attn_temp.requires_grad_(True)
        counts = {"trainable": 0, "frozen": 0}
        for p in self.parameters():
            counts["trainable" if p.requires_grad else "frozen"] += p.numel()
        logger.info("freeze policy: %d trainable, %d frozen parameters", counts["trainable"], counts["frozen"])
        return counts

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``directory`` (each atomically).

        Returns:
            The directory.
        """
        directory = Path(directory)
        save_safetensors(self.state_dict(), directory / WEIGHTS_NAME, metadata={"format": "pt"})
        save_config(self.config, directory / CONFIG_NAME)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: torch.device | str = "cpu") -> "JOG3R":
        """Build a model from a local directory written by :meth:`save_pretrained` (never downloads).

        Args:
            directory: folder with ``config.json`` and ``model.safetensors``.
            device: where to put the model.

        Returns:
            The model in eval mode.

        Raises:
            FileNotFoundError: if the directory or one of its files is missing.
            ValueError: if the weights do not match the config (naming the key and shapes).
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory} is not a directory; pass a folder written by save_pretrained")
        config = load_config(JOG3RConfig, directory / CONFIG_NAME)
        with torch.device("meta"):
            model = cls(config)
        state = load_state_dict_file(directory / WEIGHTS_NAME)
        check_shapes(model.state_dict(), state, str(directory / WEIGHTS_NAME))
        # to_empty allocates fresh (aligned) storage, so results are bitwise those of the saved model.
        model = model.to_empty(device=device)
        model.load_state_dict(state, strict=True)
        return model.eval()

    def num_parameters(self, part: str = "all") -> int:
        """Parameter count of ``"all"``, ``"stdit"`` or ``"decoder"`` (decoder_embed + decoders + norm + heads)."""
        if part not in ("all", "stdit", "decoder"):
            raise ValueError(f"part must be 'all', 'stdit' or 'decoder', got {part!r}")
        total = 0
        for name, p in self.named_parameters():
            in_stdit = name.startswith("stdit.")
            if part == "all" or (part == "stdit") == in_stdit:
                total += p.numel()
        return total

