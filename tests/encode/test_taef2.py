"""TAEF2VAE: the bundled tiny FLUX.2-latent autoencoder on real RealEstate10K frames."""

from __future__ import annotations

import imageio.v3 as iio
import pytest
import torch

from jog3r.encode import TAEF2_SCALING_FACTOR, TAEF2VAE
from jog3r.encode.taef2 import FEATURE_LAYERS, build_decoder, build_encoder

FRAMES = "realestate10k/clips16_384x256/frames"
CLIP_IDS = [
    "0bf152ef84195293",
    "0c11dbe781b1c11c",
    "0c9b371cc6225682",
    "0f47577ab3441480",
    "2c80f9eb0d3b2bb4",
    "3c35b868a8ec3433",
]


@pytest.fixture(scope="module")
def taef2() -> TAEF2VAE:
    return TAEF2VAE()


def _frame(data_dir, clip_id: str, index: int = 0) -> torch.Tensor:
    """``[3, 256, 384]`` float RGB in [0, 1]."""
    image = iio.imread(data_dir / FRAMES / clip_id / f"{index:02d}.jpg")
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10(((a - b) ** 2).mean()))


def test_modules_match_the_checkpoint_key_layout(data_dir):
    assets = data_dir.parent.parent / "assets" / "taef2"
    for module, name in ((build_encoder(), "taef2_encoder.pth"), (build_decoder(), "taef2_decoder.pth")):
        state = torch.load(assets / name, map_location="cpu", weights_only=True)
        ours = module.state_dict()
        assert list(ours) == list(state)
        assert all(ours[k].shape == state[k].shape for k in state)


def test_reconstructs_a_real_frame_above_30db(taef2, data_dir):
    # 0c11dbe781b1c11c/00.jpg measures 32.3 dB; all six clips' first frames: 30.0 .. 33.1 dB (notes).
    image = _frame(data_dir, "0c11dbe781b1c11c")
    with torch.no_grad():
        latents = taef2.encode((image * 2 - 1)[None, :, None])
        recon = taef2.decode(latents)
    assert latents.x.shape == (1, 32, 1, 32, 48)
    assert latents.vae_name == "taef2" and latents.scaling_factor == TAEF2_SCALING_FACTOR
    assert recon.shape == (1, 3, 1, 256, 384)
    assert _psnr((recon[0, :, 0] + 1) / 2, image) >= 30.0
    # the chosen scaling factor gives about unit-variance latents on real frames (measured 1.00 here)
    assert 0.8 < float(latents.x.std()) < 1.25
    assert abs(float(latents.x.mean())) < 0.2


def test_encode_features_layers(taef2, data_dir):
    image = _frame(data_dir, "0c9b371cc6225682")[:, :64, :96][None]  # a 64x96 crop keeps this fast
    with torch.no_grad():
        feats = taef2.encode_features(image)
        raw = taef2.encode_features(image, layer=14)
        latents = taef2.encode((image * 2 - 1)[:, :, None]).x[:, :, 0]
    assert feats.shape == (1, 64, 8, 12) and feats.dtype == torch.float32
    assert (feats >= 0).all()  # output of a ReLU fuse
    assert feats.std() > 0
    torch.testing.assert_close(raw * TAEF2_SCALING_FACTOR, latents)
    assert set(FEATURE_LAYERS) == {10, 11, 12, 13, 14}
    with pytest.raises(ValueError, match="layer"):
        taef2.encode_features(image, layer=3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        taef2.encode_features(image * 2 - 1)
    with pytest.raises(ValueError, match="multiples of 8"):
        taef2.encode_features(image[..., :60])


def test_micro_batches_and_determinism(data_dir):
    crops = torch.stack([_frame(data_dir, cid)[:, :32, :48] for cid in CLIP_IDS[:3]], dim=1)[None] * 2 - 1
    whole, chunked = TAEF2VAE(), TAEF2VAE(micro_batch_size=2)
    with torch.no_grad():
        a, b = whole.encode(crops), chunked.encode(crops)
        assert a.x.shape == (1, 32, 3, 4, 6)
        torch.testing.assert_close(a.x, b.x)
        torch.testing.assert_close(whole.decode(a), chunked.decode(a))
        assert torch.equal(a.x, whole.encode(crops).x)


def test_weights_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="taef2_encoder.pth"):
        TAEF2VAE(tmp_path)


@pytest.mark.slow
def test_first_frames_of_all_clips(taef2, data_dir):
    psnrs = []
    for clip_id in CLIP_IDS:
        image = _frame(data_dir, clip_id)
        with torch.no_grad():
            recon = taef2.decode(taef2.encode((image * 2 - 1)[None, :, None]))
        psnrs.append(_psnr((recon[0, :, 0] + 1) / 2, image))
    assert min(psnrs) >= 29.9 and sum(psnrs) / len(psnrs) >= 31.0
