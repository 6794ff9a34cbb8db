"""SDVAE (OpenSora's frame-wise AutoencoderKL wrapper) on a tiny random AutoencoderKL saved to disk."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL

from jog3r.encode import SD_VAE_SCALING_FACTOR, SDVAE, default_asset_dir
from jog3r.types import Latents


@pytest.fixture(scope="module")
def tiny_vae_dir(tmp_path_factory) -> Path:
    """A 4-level (8x downsampling) AutoencoderKL, 8 channels per level, 4 latent channels, random weights."""
    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=32,
    )
    path = tmp_path_factory.mktemp("sd-vae-tiny")
    vae.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def sdvae(tiny_vae_dir) -> SDVAE:
    return SDVAE(tiny_vae_dir)


def _video(batch=2, frames=3, size=32) -> torch.Tensor:
    return torch.rand(batch, 3, frames, size, size) * 2 - 1


def test_encode_is_framewise_posterior_sample_times_scale(sdvae, tiny_vae_dir):
    video = _video()
    latents = sdvae.encode(video, generator=torch.Generator().manual_seed(7))
    assert isinstance(latents, Latents)
    assert latents.x.shape == (2, 4, 3, 4, 4) and latents.x.dtype == torch.float32
    assert latents.scaling_factor == SD_VAE_SCALING_FACTOR == 0.18215
    assert latents.vae_name == sdvae.name == f"sd-vae:{tiny_vae_dir.name}"
    # reference computation: fold frames into the batch in (B, F) order, sample the posterior, scale
    reference = AutoencoderKL.from_pretrained(tiny_vae_dir)
    frames = video.permute(0, 2, 1, 3, 4).reshape(6, 3, 32, 32)
    with torch.no_grad():
        z = reference.encode(frames).latent_dist.sample(torch.Generator().manual_seed(7)) * 0.18215
    expected = z.reshape(2, 3, 4, 4, 4).permute(0, 2, 1, 3, 4)
    torch.testing.assert_close(latents.x, expected)


def test_encode_seeded_and_stochastic(sdvae):
    video = _video()
    a = sdvae.encode(video, generator=torch.Generator().manual_seed(1)).x
    b = sdvae.encode(video, generator=torch.Generator().manual_seed(1)).x
    c = sdvae.encode(video, generator=torch.Generator().manual_seed(2)).x
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_decode_divides_by_scale_and_clamps(sdvae, tiny_vae_dir):
    latents = sdvae.encode(_video(), generator=torch.Generator().manual_seed(3))
    out = sdvae.decode(latents)
    assert out.shape == (2, 3, 3, 32, 32) and out.dtype == torch.float32
    reference = AutoencoderKL.from_pretrained(tiny_vae_dir)
    z = latents.x.permute(0, 2, 1, 3, 4).reshape(6, 4, 4, 4)
    with torch.no_grad():
        expected = reference.decode(z / 0.18215).sample.clamp(-1, 1)
    torch.testing.assert_close(out, expected.reshape(2, 3, 3, 32, 32).permute(0, 2, 1, 3, 4))
    torch.testing.assert_close(sdvae.decode(latents.x), out)  # a bare tensor works too


def test_micro_batches_give_the_same_result(tiny_vae_dir):
    video = _video(batch=1, frames=5)
    whole = SDVAE(tiny_vae_dir, sample_posterior=False)
    chunked = SDVAE(tiny_vae_dir, sample_posterior=False, micro_batch_size=2)
    torch.testing.assert_close(chunked.encode(video).x, whole.encode(video).x)
    z = whole.encode(video)
    torch.testing.assert_close(chunked.decode(z), whole.decode(z))


def test_bad_inputs_raise_clear_errors(sdvae):
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        sdvae.encode(torch.rand(1, 3, 2, 32, 32) * 255)
    with pytest.raises(ValueError, match="multiples of 8"):
        sdvae.encode(torch.zeros(1, 3, 2, 30, 32))
    with pytest.raises(ValueError, match=r"\[B, 3, F, H, W\]"):
        sdvae.encode(torch.zeros(3, 2, 32, 32))
    with pytest.raises(ValueError, match="NaN"):
        sdvae.encode(torch.full((1, 3, 1, 32, 32), float("nan")))
    with pytest.raises(ValueError, match="made by autoencoder 'taef2'"):
        sdvae.decode(Latents(x=torch.zeros(1, 4, 1, 4, 4), scaling_factor=0.18215, vae_name="taef2"))
    with pytest.raises(ValueError, match="scaling_factor"):
        sdvae.decode(Latents(x=torch.zeros(1, 4, 1, 4, 4), scaling_factor=1.0, vae_name=sdvae.name))
    with pytest.raises(ValueError, match=r"\[B, 4, F, h, w\]"):
        sdvae.decode(torch.zeros(1, 32, 1, 4, 4))


def test_missing_folder_says_what_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="sd-vae-ft-ema"):
        SDVAE(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="micro_batch_size"):
        SDVAE(tmp_path, micro_batch_size=0)


def test_default_asset_dir_points_at_the_repository():
    assets = default_asset_dir()
    assert assets == Path(__file__).resolve().parents[2] / "assets"
    assert (default_asset_dir("taef2") / "taef2_encoder.pth").is_file()
    with pytest.raises(FileNotFoundError, match="assets"):
        default_asset_dir("no-such-weights")
