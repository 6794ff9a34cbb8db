"""Dense per-pixel feature extractors for MEt3R (:mod:`jog3r.metrics.met3r`).

Every extractor maps RGB frames ``[B, 3, H, W]`` in ``[0, 1]`` to features ``[B, C, H, W]`` at the SAME pixel
resolution (low-resolution backbones are upsampled bilinearly), and carries a ``name`` that MEt3R reports as
its backbone. MEt3R itself uses FeatUp-upsampled DINO ViT-S/16 features (REFERENCE C.2 step 1); the JOG3R
paper says "DINO features" (Sec. 4.1). DINO weights cannot be downloaded here, so:

* :class:`RGBFeatures` - no network at all (always available; the default, for tests and quick checks);
* :class:`DINOv2Features` - a DINOv2 model loaded with ``transformers.AutoModel`` from a LOCAL folder;
* :class:`TAEF2Features` - the bundled TAEF2 image encoder's intermediate features (real pretrained weights).
"""

from __future__ import annotations

import abc
import logging
from pathlib import Path

import torch
import torch.nn.functional as nnf

logger = logging.getLogger(__name__)

#: ImageNet statistics used to normalise inputs of DINO/DINOv2 (``featup.util.norm``, DINOv2 image processor).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_images(images: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``images`` is a finite ``[B, 3, H, W]`` tensor in ``[0, 1]``."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a [B, 3, H, W] tensor, got {shape}")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or Inf values")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1e-3 or hi > 1.0 + 1e-3:
        raise ValueError(f"images must be RGB in [0, 1], got values in [{lo:.3g}, {hi:.3g}]")


def upsample_features(features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize ``[B, C, h, w]`` features to ``size = (H, W)`` (``align_corners=False``).

    Args:
        features: ``[B, C, h, w]`` float features.
        size: target ``(H, W)`` in pixels.

    Returns:
        ``[B, C, H, W]`` float32.
    """
    if tuple(features.shape[-2:]) == tuple(size):
        return features.float()
    return nnf.interpolate(features.float(), size=size, mode="bilinear", align_corners=False)


class FeatureExtractor(abc.ABC):
    """A dense feature backbone: ``extractor(images [B, 3, H, W] in [0, 1]) -> [B, C, H, W]`` float32.

    Attributes:
        name: backbone identifier reported in :class:`jog3r.metrics.met3r.Met3RResult`.
    """

    name: str = "base"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Validate ``images`` and return per-pixel features at their resolution.

        Args:
            images: ``[B, 3, H, W]`` float RGB in ``[0, 1]``.

        Returns:
            ``[B, C, H, W]`` float32 features on ``images``' device.

        Raises:
            ValueError: for a wrong shape, non-finite values or values outside ``[0, 1]``.
        """
        _check_images(images)
        with torch.no_grad():
            out = self.extract(images)
        return upsample_features(out, tuple(images.shape[-2:])).to(images.device)

    @abc.abstractmethod
    def extract(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone-specific features, at any resolution (``__call__`` upsamples them).

        Args:
            images: ``[B, 3, H, W]`` float RGB in ``[0, 1]``, already validated.

        Returns:
            ``[B, C, h, w]`` float features.
        """


class RGBFeatures(FeatureExtractor):
    """Colour as a feature: ``(r - 0.5, g - 0.5, b - 0.5, 0.5)`` per pixel.

    Centring makes the cosine similarity of two colours sensitive to brightness and hue (raw RGB would call
    every grey level identical), and the constant fourth channel keeps every vector away from zero so the
    cosine is always defined (mid-grey is ``(0, 0, 0, 0.5)``). Identical colours give cosine 1 exactly.
    """

    name = "rgb"

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        """Centred colour plus a constant channel.

        Args:
            images: ``[B, 3, H, W]`` float RGB in ``[0, 1]``.

        Returns:
            ``[B, 4, H, W]`` float32 ``(r - 0.5, g - 0.5, b - 0.5, 0.5)``.
        """
        const = torch.full_like(images[:, :1], 0.5)
        return torch.cat([images.float() - 0.5, const.float()], dim=1)


class DINOv2Features(FeatureExtractor):
    """DINOv2 patch tokens (``transformers`` ``AutoModel``, local folder only), upsampled to the image size.

    Frames are resized (bilinear, antialiased) so that the short side is ``short_side`` pixels and both sides
    are multiples of the patch size, normalised with ImageNet statistics, and the last layer's patch tokens
    (``last_hidden_state`` after the CLS and any register tokens) are reshaped to the patch grid and upsampled
    bilinearly back to ``H x W``. (MEt3R upsamples with FeatUp's learned JBU instead, REFERENCE C.2.)

    Args:
        path: folder with ``config.json`` and the weights (``save_pretrained`` layout), e.g. a local copy of
            ``facebook/dinov2-small``. Nothing is downloaded.
        short_side: target short side in pixels before patching (default 224: 16 patches of 14).
        device: device to run on.

    Raises:
        FileNotFoundError: if ``path`` is not a folder holding ``config.json``.
    """

    def __init__(self, path: str | Path, *, short_side: int = 224, device: torch.device | str = "cpu"):
        from transformers import AutoModel  # lazy: seconds to import, only this extractor needs it

        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"No DINOv2 model at {folder}: expected a folder with config.json and model weights "
                "(transformers save_pretrained layout, e.g. a local copy of facebook/dinov2-small). "
                "DINO weights are never downloaded; pass the folder explicitly, or use RGBFeatures or "
                "TAEF2Features."
            )
        self.model = AutoModel.from_pretrained(folder, local_files_only=True).to(device).eval()
        self.patch_size = int(self.model.config.patch_size)
        self.num_prefix_tokens = 1 + int(getattr(self.model.config, "num_register_tokens", 0) or 0)
        self.short_side = int(short_side)
        self.device = torch.device(device)
        self.name = f"dinov2:{folder.name}"
        logger.info("Loaded DINOv2 features from %s (patch %d)", folder, self.patch_size)

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        """Patch tokens of the resized, normalised frames.

        Args:
            images: ``[B, 3, H, W]`` float RGB in ``[0, 1]``.

        Returns:
            ``[B, D, H_p, W_p]`` last-layer patch tokens on the patch grid.
        """
        height, width = images.shape[-2:]
        scale = self.short_side / min(height, width)
        grid = tuple(max(1, round(side * scale / self.patch_size)) for side in (height, width))
        x = nnf.interpolate(
            images.float().to(self.device),
            size=(grid[0] * self.patch_size, grid[1] * self.patch_size),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        tokens = self.model(pixel_values=(x - mean) / std).last_hidden_state[:, self.num_prefix_tokens :]
        return tokens.transpose(1, 2).reshape(len(images), -1, *grid)


class TAEF2Features(FeatureExtractor):
    """Intermediate features of the bundled TAEF2 image encoder, upsampled to the image size.

    Uses :meth:`jog3r.encode.taef2.TAEF2VAE.encode_features`.

    Frames are padded (replicate) to multiples of 8, encoded to ``[B, 64, H/8, W/8]`` (``layer=13``, the last
    mid block) and the features are upsampled bilinearly back to ``H x W`` after cropping the padding.

    Args:
        path: folder with the TAEF2 weights; default the repository's ``assets/taef2/``.
        layer: encoder layer (see :data:`jog3r.encode.taef2.FEATURE_LAYERS`).
        device: device to run on.

    Raises:
        FileNotFoundError: if the weights are missing (raised by :class:`~jog3r.encode.taef2.TAEF2VAE`).
    """

    def __init__(
        self, path: str | Path | None = None, *, layer: int = 13, device: torch.device | str = "cpu"
    ):
        # Imported here: jog3r.encode pulls in diffusers (seconds to import) that the rest of MEt3R never
        # needs.
        from jog3r.encode.taef2 import TAEF2VAE


        self.vae = TAEF2VAE(path, device=device)
        self.layer = int(layer)
        self.name = f"taef2:layer{self.layer}"

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        """TAEF2 encoder features with the padding cropped at the feature resolution.

        Args:
            images: ``[B, 3, H, W]`` float RGB in ``[0, 1]``, any size (replicate-padded to multiples of 8).

        Returns:
            ``[B, 64, ceil(H/8), ceil(W/8)]`` float32.
        """
        height, width = images.shape[-2:]
        pad_h, pad_w = (-height) % 8, (-width) % 8
        x = images.float()
        if pad_h or pad_w:
            x = nnf.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        feats = self.vae.encode_features(x, layer=self.layer)
        # Keep only the feature cells covering the original image, then resize those to H x W.
        return feats[..., : -(-height // 8), : -(-width // 8)]


__all__ = [
    "FeatureExtractor",
    "RGBFeatures",
    "DINOv2Features",
    "TAEF2Features",
    "upsample_features",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]
