"""Stage 1: prompt -> caption tokens ``[B, 1, L, Dy]``; video ``[B, 3, F, H, W]`` -> ``types.Latents``.

* :mod:`jog3r.encode.vae` - the :class:`VideoVAE` interface (frame-wise, ``[-1, 1]`` pixels, scaled latents),
  :class:`SDVAE` (OpenSora's ``sd-vae-ft-ema``, local folder) and :func:`default_asset_dir`;
* :mod:`jog3r.encode.taef2` - :class:`TAEF2VAE`, the bundled tiny FLUX.2-latent autoencoder (32 channels),
  with ``encode_features`` for dense image features;
* :mod:`jog3r.encode.text` - :class:`TextEncoder` with :class:`T5TextEncoder` (OpenSora's t5-v1_1-xxl, local
  folder) and :class:`MiniLMTextEncoder` (bundled all-MiniLM-L6-v2).
"""

from jog3r.encode.taef2 import TAEF2_SCALING_FACTOR, TAEF2VAE
from jog3r.encode.text import MiniLMTextEncoder, T5TextEncoder, TextEncoder, clean_caption
from jog3r.encode.vae import SD_VAE_SCALING_FACTOR, SDVAE, VideoVAE, default_asset_dir

__all__ = [
    "VideoVAE",
    "SDVAE",
    "TAEF2VAE",
    "SD_VAE_SCALING_FACTOR",
    "TAEF2_SCALING_FACTOR",
    "default_asset_dir",
    "TextEncoder",
    "T5TextEncoder",
    "MiniLMTextEncoder",
    "clean_caption",
]
