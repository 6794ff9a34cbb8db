"""Latent / caption-embedding cache: keyed by encoder name, atomic, round-trips exactly."""

from __future__ import annotations

import pytest
import torch

from jog3r.data.cache import LatentCache
from jog3r.data.synth import SynthConfig, generate_clip
from jog3r.types import Latents, PosedClip


class TinyVAE:
    """8x spatial average pooling + a fixed channel projection: a deterministic stand-in for jog3r.encode.vae."""

    def __init__(self, name: str = "tiny/vae:v1", channels: int = 4):
        self.name = name
        self.proj = torch.linspace(-1, 1, 3 * channels).view(channels, 3)
        self.calls = 0

    def encode(self, video: torch.Tensor) -> Latents:
        assert video.ndim == 5 and video.shape[1] == 3 and video.min() >= -1 and video.max() <= 1
        self.calls += 1
        pooled = torch.nn.functional.avg_pool3d(video, (1, 8, 8))
        return Latents(x=torch.einsum("kc,bcfhw->bkfhw", self.proj, pooled) * 0.5, scaling_factor=0.5,
                       vae_name=self.name)


class TinyText:
    """Character codes as embeddings: a deterministic stand-in for jog3r.encode.text."""

    name = "tiny-text:8"

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        codes = torch.zeros(len(prompts), 8, 2)
        mask = torch.zeros(len(prompts), 8, dtype=torch.int64)
        for i, p in enumerate(prompts):
            for j, ch in enumerate(p[:8]):
                codes[i, j] = torch.tensor([ord(ch), j])
                mask[i, j] = 1
        return codes, mask


@pytest.fixture(scope="module")
def clip():
    return generate_clip(4, SynthConfig(height=32, width=48, num_frames=3))


def test_round_trip_and_layout(tmp_path, clip):
    vae, text = TinyVAE(), TinyText()
    cache = LatentCache(tmp_path, vae, text)
    cache.put(clip)
    lat_file = tmp_path / "tiny_vae_v1" / f"{clip.name}.safetensors"
    txt_file = tmp_path / "tiny-text_8" / f"{clip.name}.safetensors"
    assert lat_file.is_file() and txt_file.is_file()
    got = cache.get_latents(clip.name)
    expect = vae.encode(clip.frames.permute(1, 0, 2, 3)[None] * 2 - 1).x[0]
    assert got["latents"].shape == (4, 3, 4, 6) and torch.equal(got["latents"], expect)
    assert got["scaling_factor"] == 0.5 and got["vae_name"] == "tiny/vae:v1"
    assert torch.equal(got["frame_indices"], clip.frame_indices)
    t = cache.get_text(clip.name)
    y, mask = text.encode([clip.caption])
    assert torch.equal(t["y"], y[0]) and torch.equal(t["mask"], mask[0]) and t["caption"] == clip.caption
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporary files


def test_written_once_unless_overwrite(tmp_path, clip):
    vae = TinyVAE()
    cache = LatentCache(tmp_path, vae)
    cache.precompute([clip, clip])
    assert vae.calls == 1
    cache.put(clip, overwrite=True)
    assert vae.calls == 2


def test_keyed_by_encoder_name(tmp_path, clip):
    LatentCache(tmp_path, TinyVAE("a")).put(clip)
    other = LatentCache(tmp_path, TinyVAE("b", channels=2))
    with pytest.raises(FileNotFoundError, match="not cached"):
        other.get_latents(clip.name)
    other.put(clip)
    assert other.get_latents(clip.name)["latents"].shape[0] == 2
    assert LatentCache(tmp_path, TinyVAE("a")).get_latents(clip.name)["latents"].shape[0] == 4


def test_corrupt_file_is_reported(tmp_path, clip):
    cache = LatentCache(tmp_path, TinyVAE())
    cache.put(clip)
    path = cache.latent_path(clip.name)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(ValueError, match="corrupt cache file"):
        cache.get_latents(clip.name)


def test_caption_needed_for_text(tmp_path, clip):
    bare = PosedClip(frames=clip.frames, cam2world=clip.cam2world, K=clip.K, name="x")
    with pytest.raises(ValueError, match="has no caption"):
        LatentCache(tmp_path, text=TinyText()).put(bare)
