"""Golden parity with DUSt3R's own decoder + linear heads (tests/data/golden/dust3r_small_*, see its README).

Reference config: encoder width 96, decoder width 64, depth 3, 4 heads, patch 16, RoPE100, 48x64 images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jog3r.recon.decoder import PointmapDecoder

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
GRID = (3, 4)  # 48x64 pixels in 16-pixel patches


def excess_over_tolerance(ours: torch.Tensor, ref: np.ndarray) -> float:
    """max(|ours - ref| - (1e-4 + 1e-4 |ref|)); <= 0 means within the golden README's tolerance."""
    ref_t = torch.from_numpy(np.asarray(ref)).float()
    assert ours.shape == ref_t.shape, f"shape {tuple(ours.shape)} != {tuple(ref_t.shape)}"
    return float(((ours.detach().float() - ref_t).abs() - (1e-4 + 1e-4 * ref_t.abs())).max())


@pytest.fixture(scope="module")
def io() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "dust3r_small_io.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def decoder() -> PointmapDecoder:
    state = torch.load(GOLDEN / "dust3r_small_dec.pth", weights_only=True, map_location="cpu")
    model = PointmapDecoder(enc_dim=96, dec_dim=64, depth=3, num_heads=4, patch_size=16)
    model.load_state_dict(state, strict=True)  # every reference key name maps onto ours, none left over
    return model.eval()


def _inputs(io, swap_pos: bool = False):
    t = {k: torch.from_numpy(io[k]) for k in ("feat1", "feat2", "pos1", "pos2")}
    if swap_pos:
        t["pos1"], t["pos2"] = t["pos1"].flip(-1), t["pos2"].flip(-1)
    return t["feat1"], t["feat2"], t["pos1"], t["pos2"]


def test_parameter_count_matches_reference(decoder):
    meta_count = 540736  # dust3r_small_meta.json "n_params_decoder_and_heads"
    assert sum(p.numel() for p in decoder.parameters()) == meta_count


@torch.no_grad()
def test_intermediates_match_reference(decoder, io):
    dec1, dec2, layers1, layers2 = decoder.decode_pair(*_inputs(io), return_layers=True)
    assert excess_over_tolerance(layers1[0], io["decoder_embed_out1"]) <= 0
    assert excess_over_tolerance(layers2[0], io["decoder_embed_out2"]) <= 0
    for layer in (1, 2):
        assert excess_over_tolerance(layers1[layer], io[f"dec1_layer{layer}"]) <= 0, layer
        assert excess_over_tolerance(layers2[layer], io[f"dec2_layer{layer}"]) <= 0, layer
    # DUSt3R's returned list has dec_norm applied to its last entry.
    assert excess_over_tolerance(dec1, io["dec1_layer3"]) <= 0
    assert excess_over_tolerance(dec2, io["dec2_layer3"]) <= 0
    assert excess_over_tolerance(decoder.downstream_head1.proj(dec1), io["head1_proj_out"]) <= 0
    assert excess_over_tolerance(decoder.downstream_head2.proj(dec2), io["head2_proj_out"]) <= 0


@torch.no_grad()
def test_outputs_match_reference(decoder, io):
    out = decoder.forward_pair(*_inputs(io), GRID)
    assert excess_over_tolerance(out["pts3d"], io["pred1_pts3d"]) <= 0
    assert excess_over_tolerance(out["conf"], io["pred1_conf"]) <= 0
    assert excess_over_tolerance(out["pts3d_in_other_view"], io["pred2_pts3d_in_other_view"]) <= 0
    assert excess_over_tolerance(out["conf_in_other_view"], io["pred2_conf"]) <= 0
    assert all(v.dtype == torch.float32 for v in out.values())


@torch.no_grad()
def test_forward_video_matches_reference_pairs(decoder, io):
    """The video path (gather by edges, positions from the grid) reproduces the same pairs."""
    tokens = torch.stack([torch.from_numpy(io["feat1"]), torch.from_numpy(io["feat2"])], dim=1)  # [B, F=2, S, D]
    pm = decoder.forward_video(tokens, GRID, torch.tensor([[0, 1]]))
    assert pm.pts3d.shape == (2, 1, 48, 64, 3)
    assert excess_over_tolerance(pm.pts3d[:, 0], io["pred1_pts3d"]) <= 0
    assert excess_over_tolerance(pm.conf_in_other_view[:, 0], io["pred2_conf"]) <= 0
    assert excess_over_tolerance(pm.pts3d_in_other_view[:, 0], io["pred2_pts3d_in_other_view"]) <= 0


@torch.no_grad()
def test_wiring_errors_leave_tolerance(decoder, io):
    """The comparison has teeth: swapped RoPE axes or swapped views land far outside the tolerance."""
    out = decoder.forward_pair(*_inputs(io, swap_pos=True), GRID)
    assert excess_over_tolerance(out["pts3d"], io["pred1_pts3d"]) > 1e-2
    f1, f2, p1, p2 = _inputs(io)
    swapped = decoder.forward_pair(f2, f1, p2, p1, GRID)
    assert excess_over_tolerance(swapped["pts3d"], io["pred1_pts3d"]) > 1e-2
