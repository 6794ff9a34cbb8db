"""Pre-computed VAE latents and caption embeddings (JOG3R Sec. 4.1), stored once as safetensors.

Layout, keyed by the encoder's ``name`` so that changing the VAE or the text encoder never mixes caches::

    <cache>/<vae.name>/<clip_id>.safetensors    "latents" [C, F, h, w] float32 (already scaled),
                                                "frame_indices" [F] int64; metadata: scaling_factor,
                                                vae_name, image_size
    <cache>/<text.name>/<clip_id>.safetensors   "y" [L, D] float32, "mask" [L] int64; metadata: caption

Encoders are duck-typed: ``vae.encode(video [B, 3, F, H, W] in [-1, 1]) -> Latents`` and ``vae.name``;
``text.encode(list[str]) -> (y [B, L, D], mask [B, L])`` and ``text.name`` (see :mod:`jog3r.encode`). Names
may contain ``/`` or ``:``; they are made filesystem-safe. Files are written atomically (temporary file +
``os.replace``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from jog3r.io.atomic import atomic_path
from jog3r.types import PosedClip

logger = logging.getLogger(__name__)


def safe_name(name: str) -> str:
    """A folder name for an encoder name (``/`` and other unsafe characters become ``_``)."""
    if not name:
        raise ValueError("encoder name must be a non-empty string (it is the cache key)")
    return re.sub(r"[^A-Za-z0-9._:+-]", "_", name).replace(":", "_")


def save_atomic(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """``safetensors`` save through :func:`jog3r.io.atomic.atomic_path` (never a half-written cache file)."""
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    return path


class LatentCache:
    """Read/write cache of latents and caption embeddings for clips.

    Args:
        root: cache folder.
        vae: object with ``name`` and ``encode(video) -> Latents`` (None: latents cannot be computed).
        text: object with ``name`` and ``encode(list[str]) -> (y, mask)`` (None: captions are not embedded).
    """

    def __init__(self, root: str | Path, vae=None, text=None):
        self.root = Path(root)
        self.vae, self.text = vae, text

    def latent_path(self, clip_id: str) -> Path:
        """``<root>/<vae name>/<clip_id>.safetensors``."""
        if self.vae is None:
            raise ValueError("LatentCache has no VAE; pass vae= to address latents")
        return self.root / safe_name(self.vae.name) / f"{clip_id}.safetensors"

    def text_path(self, clip_id: str) -> Path:
        """``<root>/<text encoder name>/<clip_id>.safetensors``."""
        if self.text is None:
            raise ValueError("LatentCache has no text encoder; pass text= to address caption embeddings")
        return self.root / safe_name(self.text.name) / f"{clip_id}.safetensors"

    @torch.no_grad()
    def put(self, clip: PosedClip, overwrite: bool = False) -> None:
        """Encode ``clip``'s frames (and caption, with a text encoder) and write them unless already cached.

        Raises:
            ValueError: if the clip has no name, or has a text encoder but no caption.
        """
        if not clip.name:
            raise ValueError("the clip needs a name (the cache key)")
        if self.vae is not None and (overwrite or not self.latent_path(clip.name).is_file()):
            video = clip.frames.permute(1, 0, 2, 3)[None] * 2 - 1  # [1, 3, F, H, W] in [-1, 1]
            lat = self.vae.encode(video)
            idx = clip.frame_indices if clip.frame_indices is not None else torch.arange(clip.num_frames)
            save_atomic(self.latent_path(clip.name), {"latents": lat.x[0].float(), "frame_indices": idx.long()},
                        {"scaling_factor": repr(float(lat.scaling_factor)), "vae_name": str(self.vae.name),
                         "image_size": f"{clip.frames.shape[-2]}x{clip.frames.shape[-1]}"})
        if self.text is not None and (overwrite or not self.text_path(clip.name).is_file()):
            if clip.caption is None:
                raise ValueError(f"clip {clip.name!r} has no caption to embed")
            y, mask = self.text.encode([clip.caption])
            save_atomic(self.text_path(clip.name), {"y": y[0].float(), "mask": mask[0].long()},
                        {"caption": clip.caption, "text_encoder": str(self.text.name)})

    def precompute(self, clips: Iterable[PosedClip], overwrite: bool = False) -> int:
        """Cache every clip of an iterable (a dataset or a list); returns how many were visited."""
        n = 0
        for n, clip in enumerate(clips, start=1):
            self.put(clip, overwrite=overwrite)
        logger.info("cache %s: %d clips", self.root, n)
        return n

    def _read(self, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not cached")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            return load_file(str(path)), meta
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{path}: corrupt cache file ({err}); delete it to recompute") from err

    def get_latents(self, clip_id: str) -> dict:
        """``{"latents": [C, F, h, w], "frame_indices": [F], "scaling_factor": float, "vae_name": str}``.

        Raises:
            FileNotFoundError: if not cached. ValueError: if the file is corrupt.
        """
        tensors, meta = self._read(self.latent_path(clip_id))
        return {**tensors, "scaling_factor": float(meta.get("scaling_factor", "1.0")), "vae_name": meta.get("vae_name", "")}

    def get_text(self, clip_id: str) -> dict:
        """``{"y": [L, D], "mask": [L], "caption": str}``.

        Raises:
            FileNotFoundError: if not cached. ValueError: if the file is corrupt.
        """
        tensors, meta = self._read(self.text_path(clip_id))
        return {**tensors, "caption": meta.get("caption", "")}
