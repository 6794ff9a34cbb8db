"""TAEF2: the tiny TAESD-architecture autoencoder of the FLUX.2 latent space, behind :class:`VideoVAE`.

Architecture (written to match the state-dict keys of ``assets/taef2/taef2_{encoder,decoder}.pth``, MIT
weights from ``madebyollin/taesd``; see ``LICENSE.taesd.txt``). Every conv is 3x3 with padding 1 unless noted;
``Block`` is ``relu(conv3(relu(conv2(relu(conv1(x))))) + x)``; a *mid block* first adds a GroupNorm branch,
``x <- x + conv1x1(relu(GroupNorm(4, 256)(conv1x1(x))))`` (64 -> 256 -> 64 channels, no biases)::

    encoder (RGB [0, 1] -> 32 x H/8 x W/8)          decoder (32 x h x w -> RGB ~[0, 1])
     0 conv 3->64                                     0 soft clamp 3 tanh(z / 3)
     1 Block                                          1 conv 32->64, 2 ReLU
     2 conv stride 2 (H/2), 3-5 Block x3              3-5 mid Block x3 (GroupNorm branch)
     6 conv stride 2 (H/4), 7-9 Block x3              6 upsample x2 (nearest), 7 conv, 8-10 Block x3
    10 conv stride 2 (H/8), 11-13 mid Block x3       11 upsample, 12 conv, 13-15 Block x3
    14 conv 64->32 (the latent)                      16 upsample, 17 conv, 18 Block, 19 conv 64->3

The latents are FLUX.2's 32-channel latents *before* its 2x2 patch packing. Their standard deviation on real
frames is about 0.83 (measured, see :data:`TAEF2_SCALING_FACTOR`), so they are multiplied by
``TAEF2_SCALING_FACTOR = 1.2`` to get roughly unit variance for the diffusion process.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from jog3r.encode.vae import VideoVAE, default_asset_dir

logger = logging.getLogger(__name__)

TAEF2_LATENT_CHANNELS = 32

TAEF2_SCALING_FACTOR = 1.2
"""Latent scale of :class:`TAEF2VAE`, ``~1 / std`` of raw TAEF2 latents on real frames.

Measured on all 96 RealEstate10K frames of ``tests/data/realestate10k/clips16_384x256`` (6 clips x 16 frames,
384x256): raw latents have mean -0.007 and std 0.833 over all elements (per-channel std 0.54 ... 1.19,
per-channel mean -0.35 ... 0.39, max |z| 5.5); 1 / 0.833 = 1.20. The analogue of SD-VAE's 0.18215. Script in
``docs/notes/encode_diffusion.md``.
"""

FEATURE_LAYERS = (10, 11, 12, 13, 14)
"""Encoder layers whose output is at ``H / 8``: valid ``layer`` values of ``TAEF2VAE.encode_features``."""


def _conv(c_in: int, c_out: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=bias)


class SoftClamp(nn.Module):
    """Smooth clamp of latents to ``(-3, 3)``: ``3 tanh(z / 3)`` (TAESD decoder input)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Apply ``3 tanh(z / 3)`` elementwise."""
        return 3.0 * torch.tanh(z / 3.0)


class TAEBlock(nn.Module):
    """Residual block of three 3x3 convs, with the optional GroupNorm branch of TAEF2's mid blocks.

    Args:
        channels: input = output channels (64 throughout TAEF2).
        groupnorm: add the ``conv1x1 -> GroupNorm(4) -> ReLU -> conv1x1`` branch (keys ``pool.*``) first.
    """

    def __init__(self, channels: int = 64, groupnorm: bool = False):
        super().__init__()
        self.conv = nn.Sequential(
            _conv(channels, channels),
            nn.ReLU(),
            _conv(channels, channels),
            nn.ReLU(),
            _conv(channels, channels),
        )
        self.pool = None
        if groupnorm:
            wide = 4 * channels
            self.pool = nn.Sequential(
                nn.Conv2d(channels, wide, 1, bias=False),
                nn.GroupNorm(4, wide),
                nn.ReLU(),
                nn.Conv2d(wide, channels, 1, bias=False),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W] -> [N, C, H, W]``."""
        if self.pool is not None:
            x = x + self.pool(x)
        return torch.relu(self.conv(x) + x)


def build_encoder(latent_channels: int = TAEF2_LATENT_CHANNELS) -> nn.Sequential:
    """TAEF2 encoder: RGB ``[N, 3, H, W]`` in ``[0, 1]`` -> raw latents ``[N, 32, H/8, W/8]`` (see above)."""
    layers: list[nn.Module] = [_conv(3, 64), TAEBlock()]
    for level in range(3):
        layers.append(_conv(64, 64, stride=2, bias=False))
        layers += [TAEBlock(groupnorm=level == 2) for _ in range(3)]
    layers.append(_conv(64, latent_channels))
    return nn.Sequential(*layers)


def build_decoder(latent_channels: int = TAEF2_LATENT_CHANNELS) -> nn.Sequential:
    """TAEF2 decoder: raw latents ``[N, 32, h, w]`` -> RGB ``[N, 3, 8h, 8w]``, about ``[0, 1]``."""
    layers: list[nn.Module] = [SoftClamp(), _conv(latent_channels, 64), nn.ReLU()]
    for level in range(3):
        layers += [TAEBlock(groupnorm=level == 0) for _ in range(3)]
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), _conv(64, 64, bias=False)]
    layers += [TAEBlock(), _conv(64, 3)]
    return nn.Sequential(*layers)


def _load_weights(module: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(
            f"TAEF2 weights not found at {path}. They ship in the repository's assets/taef2/ "
            "(taef2_encoder.pth, taef2_decoder.pth from github.com/madebyollin/taesd); pass the folder that "
            "holds them."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    module.load_state_dict(state, strict=True)


class TAEF2VAE(VideoVAE):
    """Tiny FLUX.2-latent autoencoder (TAESD architecture) as a :class:`VideoVAE`; the embedded default.

    The network itself works on RGB in ``[0, 1]``; this class converts from / to the ``[-1, 1]`` interface.
    Deterministic (there is no posterior to sample).

    Args:
        path: folder with ``taef2_encoder.pth`` and ``taef2_decoder.pth``; defaults to ``assets/taef2/``
            (:func:`jog3r.encode.default_asset_dir`).
        micro_batch_size: frames per autoencoder call (``None``: all at once).
        scaling_factor: multiplier of the raw latents (:data:`TAEF2_SCALING_FACTOR`, measured for unit std).
        device: device to load to.
        dtype: parameter dtype.

    Raises:
        FileNotFoundError: if the folder or a weight file is missing.
    """

    downsample = 8
    latent_channels = TAEF2_LATENT_CHANNELS

    def __init__(
        self,
        path: str | Path | None = None,
        micro_batch_size: int | None = None,
        scaling_factor: float = TAEF2_SCALING_FACTOR,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__(micro_batch_size)
        folder = default_asset_dir("taef2") if path is None else Path(path)
        self.encoder = build_encoder()
        self.decoder = build_decoder()
        _load_weights(self.encoder, folder / "taef2_encoder.pth")
        _load_weights(self.decoder, folder / "taef2_decoder.pth")
        self.to(device=device, dtype=dtype).requires_grad_(False).eval()
        self.scaling_factor = float(scaling_factor)
        self.name = "taef2"
        logger.info("Loaded TAEF2 from %s", folder)

    def encode_images(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Encode ``[N, 3, H, W]`` in ``[-1, 1]`` to scaled latents ``[N, 32, H/8, W/8]``.

        Args:
            images: ``[N, 3, H, W]`` in ``[-1, 1]``, on the autoencoder's device and dtype.
            generator: unused (the encoder is deterministic); accepted for interface compatibility.

        Returns:
            ``encoder((images + 1) / 2) * scaling_factor``.
        """
        return self.encoder((images + 1.0) * 0.5) * self.scaling_factor

    def decode_images(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode scaled latents ``[N, 32, h, w]`` to ``[N, 3, 8h, 8w]`` in about ``[-1, 1]``.

        Args:
            latents: scaled latents (divided by ``scaling_factor`` before the decoder).

        Returns:
            ``2 decoder(latents / scaling_factor) - 1`` (clamped later by :meth:`VideoVAE.decode`).
        """
        return self.decoder(latents / self.scaling_factor) * 2.0 - 1.0

    def encode_features(self, images: torch.Tensor, layer: int = 13) -> torch.Tensor:
        """Intermediate encoder features, e.g. as a dense feature backbone for MEt3R.

        The default, ``layer=13``, is the output of the last mid block (after its GroupNorm branch and ReLU
        fuse): 64 non-negative channels at ``H / 8``, the deepest features before the 64 -> 32 latent
        projection. ``layer=14`` returns the raw (unscaled) latents.

        Args:
            images: ``[B, 3, H, W]`` float RGB in ``[0, 1]`` (note: not ``[-1, 1]``); ``H``, ``W`` multiples
                of 8.
            layer: encoder layer index whose output is returned, one of :data:`FEATURE_LAYERS`.

        Returns:
            ``[B, C', H / 8, W / 8]`` float32 with ``C' = 64`` (``32`` for ``layer=14``).

        Raises:
            ValueError: wrong shape, size, non-finite values, values outside ``[0, 1]`` or an invalid
                ``layer``.
        """
        if layer not in FEATURE_LAYERS:
            raise ValueError(f"layer must be one of {FEATURE_LAYERS} (outputs at H/8), got {layer}.")
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be a [B, 3, H, W] tensor, got {shape}.")
        if images.shape[-2] % 8 or images.shape[-1] % 8:
            raise ValueError(
                f"image height and width must be multiples of 8, got {tuple(images.shape[-2:])}."
            )
        if not torch.isfinite(images).all():
            raise ValueError("images contain NaN or Inf values.")
        lo, hi = float(images.min()), float(images.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(
                f"images must be RGB in [0, 1], got [{lo:.3g}, {hi:.3g}]; map [-1, 1] inputs with (x + 1) / 2"
            )
        x = images.to(device=self.device, dtype=self.dtype)
        for index, module in enumerate(self.encoder):
            x = module(x)
            if index == layer:
                break
        return x.float()
