"""Linear point-map head and its output activations (DUSt3R ``linear_head.py`` / ``postprocess.py``)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from jog3r.recon.head import DepthMode, LinearPts3dHead, postprocess


def test_pixel_shuffle_order_is_dust3rs():
    """Our einops regrouping equals DUSt3R's transpose -> view -> F.pixel_shuffle, channel-major c*p^2+i*p+j."""
    head = LinearPts3dHead(dim_in=8, patch_size=4)
    tokens = torch.randn(2, 3 * 5, 8)
    ours = head.raw(tokens, (3, 5))
    feat = head.proj(tokens).transpose(-1, -2).reshape(2, -1, 3, 5)
    ref = F.pixel_shuffle(feat, 4)
    assert ours.shape == (2, 4, 12, 20)
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)
    # Output channel 1 of pixel (i=2, j=3) of token (row 1, col 4) is proj output 1*16 + 2*4 + 3.
    flat = head.proj(tokens)[0, 1 * 5 + 4]
    assert ours[0, 1, 1 * 4 + 2, 4 * 4 + 3] == flat[1 * 16 + 2 * 4 + 3]


def test_postprocess_hand_values():
    raw = torch.zeros(1, 4, 1, 3)
    raw[0, :3, 0, 0] = torch.tensor([3.0, 4.0, 0.0])  # |xyz| = 5
    raw[0, 3, 0, 0] = 0.0  # conf 1 + e^0 = 2
    raw[0, :3, 0, 1] = torch.tensor([0.0, 0.0, -2.0])  # |xyz| = 2, points behind stay behind
    raw[0, 3, 0, 1] = math.log(3.0)  # conf 4
    # pixel 2: xyz = 0 -> the 1e-8 clip keeps it finite (0 * expm1(0) = 0)
    pts, conf = postprocess(raw, DepthMode.EXP)
    assert pts.shape == (1, 1, 3, 3) and conf.shape == (1, 1, 3)
    e5, e2 = math.expm1(5.0), math.expm1(2.0)
    torch.testing.assert_close(pts[0, 0, 0], torch.tensor([0.6 * e5, 0.8 * e5, 0.0]))
    torch.testing.assert_close(pts[0, 0, 1], torch.tensor([0.0, 0.0, -e2]))
    torch.testing.assert_close(pts[0, 0, 2], torch.zeros(3))
    torch.testing.assert_close(conf[0, 0], torch.tensor([2.0, 4.0, 2.0]))
    lin, _ = postprocess(raw, DepthMode.LINEAR)
    torch.testing.assert_close(lin[0, 0, 0], torch.tensor([3.0, 4.0, 0.0]))
    sq, _ = postprocess(raw, "square")
    torch.testing.assert_close(sq[0, 0, 0], torch.tensor([15.0, 20.0, 0.0]))
    pts_only, none_conf = postprocess(raw[:, :3], DepthMode.EXP, has_conf=False)
    assert none_conf is None
    torch.testing.assert_close(pts_only, pts)


def test_postprocess_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"\[B, 4, H, W\]"):
        postprocess(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError):
        postprocess(torch.zeros(1, 4, 2, 2), "cubic")


def test_head_is_fp32_under_autocast():
    head = LinearPts3dHead(dim_in=16, patch_size=2)
    tokens = torch.randn(1, 6, 16)
    pts_ref, conf_ref = head(tokens, (2, 3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pts, conf = head(tokens.bfloat16(), (2, 3))
    assert pts.dtype == torch.float32 and conf.dtype == torch.float32
    # Only the bf16 rounding of the input tokens differs.
    torch.testing.assert_close(pts, pts_ref, rtol=2e-2, atol=2e-2)
    assert bool((conf >= 1).all())


def test_head_grid_mismatch_is_an_error():
    head = LinearPts3dHead(dim_in=16, patch_size=2)
    with pytest.raises(ValueError, match="grid"):
        head(torch.randn(1, 5, 16), (2, 3))
