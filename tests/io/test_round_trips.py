"""Property test: random cameras survive every format's write -> read to 1e-6 (hypothesis, derandomised)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jog3r.io import (
    read_colmap_text,
    read_re10k,
    read_transforms_json,
    read_tum,
    write_colmap_text,
    write_re10k,
    write_transforms_json,
    write_tum,
)


# ``cameras`` is a stateless factory, so sharing it across hypothesis examples is safe.
@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(num=st.integers(1, 6), seed=st.integers(0, 10_000), H=st.integers(8, 1080), W=st.integers(8, 1920),
       shared=st.booleans())
def test_all_formats_round_trip(cameras, num, seed, H, W, shared):
    cam2world, K = cameras(num, seed, shared_K=shared, size=(H, W))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        re10k = read_re10k(write_re10k(tmp / "c.txt", cam2world, K, (H, W)), (H, W))
        ns = read_transforms_json(write_transforms_json(tmp / "t.json", cam2world, K, (H, W)), check_images=False)
        names = [f"{i:04d}.png" for i in range(num)]
        colmap, _ = read_colmap_text(write_colmap_text(tmp / "m", cam2world, K, (H, W), names=names))
        tum = read_tum(write_tum(tmp / "traj.txt", cam2world))
    for cams in (re10k, ns, colmap, tum):
        torch.testing.assert_close(cams.cam2world, cam2world, atol=1e-6, rtol=0)
    for cams in (re10k, ns, colmap):
        torch.testing.assert_close(cams.K, K, atol=1e-6, rtol=0)
        assert cams.image_size == (H, W)
