"""The video autoencoder interface, and OpenSora v1.0's SD-VAE behind it.

A :class:`VideoVAE` maps a batch of videos ``[B, 3, F, H, W]`` in ``[-1, 1]`` to scaled latents
``[B, C, F, h, w]`` (``h = H / 8``, ``w = W / 8``) and back, **frame by frame**, exactly as OpenSora v1.0's
``VideoAutoencoderKL`` does (REFERENCE.md A.7): the frame axis is folded into the batch, the frames are pushed
through an image autoencoder, optionally in chunks of ``micro_batch_size`` frames, and unfolded again.

Two implementations:

* :class:`SDVAE` - diffusers ``AutoencoderKL`` (``stabilityai/sd-vae-ft-ema`` layout) loaded from a local
  folder; 4 latent channels, ``latent_dist.sample() * 0.18215`` / ``decode(z / 0.18215)``. This is what
  OpenSora v1.0 and JOG3R use.
* :class:`jog3r.encode.taef2.TAEF2VAE` - the tiny TAESD-architecture autoencoder of the FLUX.2 latent space
  (32 channels), whose MIT weights ship in ``assets/taef2/``; the embedded default.

Parameters of both are frozen (``requires_grad=False``) and the modules are put in eval mode; wrap calls in
``torch.no_grad()`` when no gradient through the autoencoder is wanted.
"""

from __future__ import annotations

import abc
import logging
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from einops import rearrange
from torch import nn

from jog3r.types import Latents

logger = logging.getLogger(__name__)

SD_VAE_SCALING_FACTOR = 0.18215
"""OpenSora v1.0's latent scale for ``sd-vae-ft-ema`` (REFERENCE.md A.7, ``opensora/models/vae/vae.py``)."""

_RANGE_TOLERANCE = 1e-3


def default_asset_dir(name: str | None = None) -> Path:
    """Return the repository's ``assets/`` folder (or ``assets/<name>``), where bundled weights live.

    The repository root is the parent of the ``jog3r`` package directory, so this works for an editable
    install or a plain checkout; nothing is downloaded.

    Args:
        name: optional sub-folder, e.g. ``"taef2"``.

    Returns:
        Absolute path of the folder.

    Raises:
        FileNotFoundError: if the folder does not exist (for instance a non-editable install that did not copy
            ``assets/``); the message says how to fix it.
    """
    root = Path(__file__).resolve().parents[2] / "assets"
    path = root if name is None else root / name
    if not path.is_dir():
        raise FileNotFoundError(
            f"Asset folder {path} does not exist. The bundled weights live in the repository's assets/: "
            "install the package in editable mode from a full clone (pip install -e .), or pass an explicit "
            "weights path."
        )
    return path


def check_video(video: torch.Tensor, downsample: int) -> None:
    """Validate a video batch for :meth:`VideoVAE.encode`.

    Args:
        video: ``[B, 3, F, H, W]`` float, expected in ``[-1, 1]``.
        downsample: spatial factor of the autoencoder; ``H`` and ``W`` must be multiples of it.

    Raises:
        ValueError: wrong rank, channel count, dtype, size, non-finite values or values outside ``[-1, 1]``.
    """
    if not isinstance(video, torch.Tensor) or video.ndim != 5:
        shape = tuple(video.shape) if isinstance(video, torch.Tensor) else type(video).__name__
        raise ValueError(
            f"video must be a [B, 3, F, H, W] tensor, got {shape}; for one clip of frames [F, 3, H, W] use "
            "frames.permute(1, 0, 2, 3)[None]."
        )
    if video.shape[1] != 3:
        raise ValueError(f"video must have 3 (RGB) channels on axis 1, got shape {tuple(video.shape)}.")
    if not video.is_floating_point():
        raise ValueError(
            f"video must be a float tensor in [-1, 1], got dtype {video.dtype}; use x / 127.5 - 1."
        )
    height, width = video.shape[-2:]
    if height % downsample or width % downsample:
        raise ValueError(
            f"video height and width must be multiples of {downsample}, got {height}x{width}; resize or crop "
            "first."
        )
    if not torch.isfinite(video).all():
        raise ValueError("video contains NaN or Inf values.")
    lo, hi = float(video.min()), float(video.max())
    if lo < -1 - _RANGE_TOLERANCE or hi > 1 + _RANGE_TOLERANCE:
        raise ValueError(
            f"video values must lie in [-1, 1], got [{lo:.3g}, {hi:.3g}]; map [0, 1] frames with 2 * x - 1 "
            "and uint8 frames with x / 127.5 - 1."
        )


class VideoVAE(nn.Module, metaclass=abc.ABCMeta):
    """Frame-wise video autoencoder: ``[B, 3, F, H, W]`` in ``[-1, 1]`` <-> latents ``[B, C, F, h, w]``.

    Subclasses implement the per-image :meth:`encode_images` / :meth:`decode_images` and set the attributes.

    Attributes:
        name: identifier of the autoencoder (stored in :class:`jog3r.types.Latents` and used as a cache key).
        latent_channels: ``C`` of the latents.
        downsample: spatial factor ``H / h`` (8 for both implementations).
        scaling_factor: multiplier applied to the raw latents after encoding (divided out before decoding).
        micro_batch_size: frames per autoencoder call, or ``None`` for all ``B * F`` frames at once.
    """

    name: str
    latent_channels: int
    downsample: int
    scaling_factor: float

    def __init__(self, micro_batch_size: int | None = None):
        super().__init__()
        if micro_batch_size is not None and micro_batch_size < 1:
            raise ValueError(f"micro_batch_size must be >= 1 or None, got {micro_batch_size}.")
        self.micro_batch_size = micro_batch_size

    @abc.abstractmethod
    def encode_images(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Encode images ``[N, 3, H, W]`` in ``[-1, 1]`` to scaled latents ``[N, C, h, w]`` float32."""

    @abc.abstractmethod
    def decode_images(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode scaled latents ``[N, C, h, w]`` to images ``[N, 3, H, W]`` float32 (about ``[-1, 1]``)."""

    @property
    def device(self) -> torch.device:
        """Device of the autoencoder's parameters."""
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the autoencoder's parameters (inputs are cast to it)."""
        return next(self.parameters()).dtype

    def _chunks(self, n: int) -> list[slice]:
        size = n if self.micro_batch_size is None else self.micro_batch_size
        return [slice(i, min(i + size, n)) for i in range(0, n, size)]

    def encode(self, video: torch.Tensor, generator: torch.Generator | None = None) -> Latents:
        """Encode a batch of videos frame by frame (OpenSora ``VideoAutoencoderKL.encode``, REFERENCE.md A.7).

        Args:
            video: ``[B, 3, F, H, W]`` float in ``[-1, 1]``; ``H`` and ``W`` multiples of :attr:`downsample`.
            generator: seeds the posterior sample of stochastic autoencoders (ignored by deterministic ones).

        Returns:
            :class:`jog3r.types.Latents` with ``x`` ``[B, C, F, H / 8, W / 8]`` float32, already multiplied by
            :attr:`scaling_factor`.

        Raises:
            ValueError: if ``video`` has the wrong shape, dtype, size or value range (see
                :func:`check_video`).
        """
        check_video(video, self.downsample)
        batch = video.shape[0]
        images = rearrange(video, "B C F H W -> (B F) C H W").to(device=self.device, dtype=self.dtype)
        z = torch.cat([self.encode_images(images[s], generator) for s in self._chunks(images.shape[0])])
        x = rearrange(z.float(), "(B F) C h w -> B C F h w", B=batch)
        return Latents(x=x, scaling_factor=self.scaling_factor, vae_name=self.name)

    def decode(self, latents: Latents | torch.Tensor) -> torch.Tensor:
        """Decode scaled latents frame by frame (OpenSora ``VideoAutoencoderKL.decode``, REFERENCE.md A.7).

        Args:
            latents: :class:`jog3r.types.Latents` from this autoencoder, or its ``x`` tensor
                ``[B, C, F, h, w]`` (scaled by :attr:`scaling_factor`).

        Returns:
            ``[B, 3, F, 8 h, 8 w]`` float32 video, clamped to ``[-1, 1]``.

        Raises:
            ValueError: wrong rank or channel count, non-finite values, or ``Latents`` made by another
                autoencoder / with another scaling factor.
        """
        if isinstance(latents, Latents):
            if latents.vae_name and latents.vae_name != self.name:
                raise ValueError(
                    f"latents were made by autoencoder {latents.vae_name!r} but this is {self.name!r}; "
                    "decode them with the autoencoder that encoded them."
                )
            if abs(latents.scaling_factor - self.scaling_factor) > 1e-9:
                raise ValueError(
                    f"latents carry scaling_factor {latents.scaling_factor} but this autoencoder uses "
                    f"{self.scaling_factor}; rescale x by {self.scaling_factor / latents.scaling_factor:.6g} "
                    "first."
                )
            x = latents.x
        else:
            x = latents
        if not isinstance(x, torch.Tensor) or x.ndim != 5 or x.shape[1] != self.latent_channels:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"latents must be [B, {self.latent_channels}, F, h, w], got {shape}.")
        if not torch.isfinite(x).all():
            raise ValueError("latents contain NaN or Inf values; check the sampler or the model output.")
        batch = x.shape[0]
        z = rearrange(x, "B C F h w -> (B F) C h w").to(device=self.device, dtype=self.dtype)
        images = torch.cat([self.decode_images(z[s]) for s in self._chunks(z.shape[0])])
        return rearrange(images.float().clamp(-1, 1), "(B F) C H W -> B C F H W", B=batch)


class SDVAE(VideoVAE):
    """OpenSora v1.0's VAE: diffusers ``AutoencoderKL`` (``stabilityai/sd-vae-ft-ema``) from a local folder.

    Encoding draws a posterior **sample** (not the mode) and multiplies it by 0.18215; decoding divides by it
    (REFERENCE.md A.7, ``opensora/models/vae/vae.py``).

    Args:
        path: local folder in diffusers layout (``config.json`` + ``diffusion_pytorch_model.safetensors``).
        micro_batch_size: frames per autoencoder call (OpenSora uses 128 at 512x512, ``None`` at 256x256).
        scaling_factor: latent scale, 0.18215 by default.
        sample_posterior: draw ``latent_dist.sample()`` (OpenSora) or use the mean when ``False``.
        device: device to load to.
        dtype: parameter dtype (float32 default; float16 halves memory on GPU).

    Raises:
        FileNotFoundError: if ``path`` is not a folder with ``config.json``; the message says what to
            download.
    """

    downsample = 8

    def __init__(
        self,
        path: str | Path,
        micro_batch_size: int | None = None,
        scaling_factor: float = SD_VAE_SCALING_FACTOR,
        sample_posterior: bool = True,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__(micro_batch_size)
        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"No diffusers AutoencoderKL found at {path} (config.json missing). Download "
                "stabilityai/sd-vae-ft-ema (config.json + diffusion_pytorch_model.safetensors) into that "
                f"folder, e.g. `huggingface-cli download stabilityai/sd-vae-ft-ema --local-dir {path}`, "
                "or use the bundled TAEF2VAE."
            )
        self.vae = AutoencoderKL.from_pretrained(path, local_files_only=True, torch_dtype=dtype).to(device)
        self.vae.requires_grad_(False).eval()
        levels = len(self.vae.config.block_out_channels) - 1
        if 2**levels != self.downsample:
            raise ValueError(
                f"AutoencoderKL at {path} downsamples by {2**levels}, expected {self.downsample} "
                "(block_out_channels must have 4 entries)."
            )
        self.latent_channels = int(self.vae.config.latent_channels)
        self.scaling_factor = float(scaling_factor)
        self.sample_posterior = sample_posterior
        self.name = f"sd-vae:{path.name}"
        logger.info("Loaded SD-VAE from %s (%d latent channels)", path, self.latent_channels)

    def encode_images(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Encode ``[N, 3, H, W]`` in ``[-1, 1]`` to ``latent_dist.sample() * scaling_factor``.

        Args:
            images: ``[N, 3, H, W]`` in ``[-1, 1]``, on the autoencoder's device and dtype.
            generator: seeds the posterior sample (on the autoencoder's device).

        Returns:
            ``[N, C, H / 8, W / 8]`` scaled latents.
        """
        dist = self.vae.encode(images).latent_dist
        z = dist.sample(generator) if self.sample_posterior else dist.mode()
        return z * self.scaling_factor

    def decode_images(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode scaled latents ``[N, C, h, w]`` with ``vae.decode(z / scaling_factor).sample``.

        Args:
            latents: ``[N, C, h, w]`` scaled latents.

        Returns:
            ``[N, 3, 8 h, 8 w]`` images, about ``[-1, 1]`` (not clamped here).
        """
        return self.vae.decode(latents / self.scaling_factor).sample
