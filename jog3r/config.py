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
