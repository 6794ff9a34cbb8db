"""Model presets: a registry of named, documented configuration objects (no ``eval``, no placeholder paths).

Each preset is a frozen dataclass instance; derive variants with :func:`dataclasses.replace`. The classes are
defined next to the modules they configure (:class:`jog3r.dit.stdit.STDiTConfig`); this module only names
instances of them.

STDiT presets (:data:`STDIT_PRESETS`, REFERENCE.md A.1 and A.9):

* ``opensora-1.0-16x256``: STDiT-XL/2 for 16 x 256 x 256 videos (SD-VAE latent 4 x 16 x 32 x 32), T5-XXL
  captions (4096 x 120), ``space_scale`` 0.5. 759,620,768 parameters.
* ``opensora-1.0-16x512``: the same network for 16 x 512 x 512 (latent 16 x 64 x 64), ``space_scale`` 1.0.
* ``tiny``: the embedded CPU-trainable default: TAEF2 latents (32 channels), MiniLM captions (384 x 32),
  width 192, depth 6, 4 heads, built for 16 x 128 x 192 videos (latent 16 x 16 x 24).
* ``micro``: width 32, depth 2, for 4 x 32 x 48 videos; only for tests.
"""

from __future__ import annotations

from jog3r.dit.stdit import STDiTConfig

_OPENSORA_XL2 = dict(
    in_channels=4,
    patch_size=(1, 2, 2),
    hidden_size=1152,
    depth=28,
    num_heads=16,
    mlp_ratio=4.0,
    class_dropout_prob=0.1,
    pred_sigma=True,
    caption_channels=4096,
    model_max_length=120,
    time_scale=1.0,
)

STDIT_PRESETS: dict[str, STDiTConfig] = {
    "opensora-1.0-16x256": STDiTConfig(input_size=(16, 32, 32), space_scale=0.5, **_OPENSORA_XL2),
    "opensora-1.0-16x512": STDiTConfig(input_size=(16, 64, 64), space_scale=1.0, **_OPENSORA_XL2),
    "tiny": STDiTConfig(
        input_size=(16, 16, 24),
        in_channels=32,
        patch_size=(1, 2, 2),
        hidden_size=192,
        depth=6,
        num_heads=4,
        mlp_ratio=4.0,
        class_dropout_prob=0.1,
        pred_sigma=True,
        caption_channels=384,
        model_max_length=32,
        space_scale=1.0,
        time_scale=1.0,
    ),
    "micro": STDiTConfig(
        input_size=(4, 4, 6),
        in_channels=32,
        patch_size=(1, 2, 2),
        hidden_size=32,
        depth=2,
        num_heads=2,
        mlp_ratio=2.0,
        caption_channels=384,
        model_max_length=32,
    ),
}
"""Named :class:`~jog3r.dit.stdit.STDiTConfig` presets (see the module docstring)."""


def get_stdit_preset(name: str) -> STDiTConfig:
    """Return the STDiT preset called ``name``.

    Args:
        name: a key of :data:`STDIT_PRESETS`.

    Returns:
        The (frozen) config; use :func:`dataclasses.replace` to change fields.

    Raises:
        ValueError: if ``name`` is unknown, listing the valid names.
    """
    if name not in STDIT_PRESETS:
        raise ValueError(f"unknown STDiT preset {name!r}; valid presets: {', '.join(sorted(STDIT_PRESETS))}")
    return STDIT_PRESETS[name]


__all__ = ["STDIT_PRESETS", "get_stdit_preset", "STDiTConfig"]


# ================================================================================================================
# JOG3R presets (STDiT + DUSt3R decoder/heads). Owned by the recon/model area; the STDiT presets above are not
# modified here. Source of the numbers: JOG3R Sec. 4 (tap b^26 of 28, first 4 blocks frozen, only temporal
# attention trained, 6-block decoders) and DUSt3R's ViT-Base decoder (768 wide, 12 heads; REFERENCE.md B.1).
# ================================================================================================================

from jog3r.model import JOG3RConfig, TrainablePart  # noqa: E402  (section appended after the STDiT presets)
from jog3r.recon.decoder import DecoderVariant  # noqa: E402

_JOG3R_PAPER = dict(
    dec_embed_dim=768,
    dec_depth=6,
    dec_num_heads=12,
    decoder_variant=DecoderVariant.TWO_BRANCH,
    tap_block=26,
    vae_factor=8,
    frozen_blocks=4,
    trainable_after_frozen=TrainablePart.TEMPORAL_ATTENTION,
    train_embedders=False,
)

JOG3R_PRESETS: dict[str, JOG3RConfig] = {
    "opensora-1.0-16x256": JOG3RConfig(stdit=STDIT_PRESETS["opensora-1.0-16x256"], **_JOG3R_PAPER),
    "opensora-1.0-16x512": JOG3RConfig(stdit=STDIT_PRESETS["opensora-1.0-16x512"], **_JOG3R_PAPER),
    "tiny": JOG3RConfig(
        stdit=STDIT_PRESETS["tiny"],
        dec_embed_dim=128,
        dec_depth=4,
        dec_num_heads=4,
        decoder_variant=DecoderVariant.TWO_BRANCH,
        tap_block=STDIT_PRESETS["tiny"].depth - 1,
        vae_factor=8,
        frozen_blocks=0,
        trainable_after_frozen=TrainablePart.ALL,
        train_embedders=True,
    ),
    "micro": JOG3RConfig(
        stdit=STDIT_PRESETS["micro"],
        dec_embed_dim=32,
        dec_depth=1,
        dec_num_heads=2,
        tap_block=1,
        frozen_blocks=0,
        trainable_after_frozen=TrainablePart.ALL,
        train_embedders=True,
    ),
}
"""Named :class:`~jog3r.model.JOG3RConfig` presets.

* ``opensora-1.0-16x256`` / ``opensora-1.0-16x512``: the paper's model on the matching STDiT-XL/2 preset: tap
  block 26, two-branch 6-block decoder (768 wide, 12 heads), linear heads with 16-pixel tokens, first 4 blocks
  frozen, only temporal attention trained afterwards.
* ``tiny``: the CPU-trainable default on the ``tiny`` STDiT: decoder 128 wide, depth 4, 4 heads, tap at block
  ``depth - 1``, everything trained (it starts from scratch).
* ``micro``: a few-thousand-parameter model on 4 x 32 x 48 videos for fast tests of training and pipelines
  (same encoders as ``tiny``).
"""


def get_preset(name: str) -> JOG3RConfig:
    """Return the JOG3R preset called ``name``.

    Args:
        name: a key of :data:`JOG3R_PRESETS`.

    Returns:
        The (frozen) config; derive variants with :func:`dataclasses.replace`.

    Raises:
        ValueError: if ``name`` is unknown, listing the valid names.
    """
    if name not in JOG3R_PRESETS:
        raise ValueError(f"unknown JOG3R preset {name!r}; valid presets: {', '.join(sorted(JOG3R_PRESETS))}")
    return JOG3R_PRESETS[name]


__all__ += ["JOG3R_PRESETS", "get_preset", "JOG3RConfig"]
