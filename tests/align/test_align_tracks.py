"""KLT tracks and rotation averaging of long-video V2C (:mod:`jog3r.align.tracks`, issue 16)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import roma
import torch

from jog3r.align.tracks import TrackConfig, TrackStream, average_rotations, merge_matches

H, W = 192, 256
K = np.array([[200.0, 0, W / 2], [0, 200.0, H / 2], [0, 0, 1]])
NEAR, FAR = 2.0, 5.0
"""Depths of the two fronto-parallel textured planes (the near one covers the left half of frame 0's view)."""


def _texture(seed: int, size: int = 512) -> np.ndarray:
    """Smooth random texture (uint8), weak on purpose: blurred noise, as a rendered wall."""
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 3)
    return np.clip((t - t.min()) / (t.max() - t.min()) * 255, 0, 255).astype(np.uint8)


def _plane_h(depth: float, cx: float) -> np.ndarray:
    """Homography texture pixel -> image pixel (cv2 convention) of a plane at ``depth`` seen by a camera at
    ``x = cx`` (no rotation): 1 texture pixel = 0.01 units, texture centre on the optical axis of ``x = 0``."""
    s = 0.01
    # world point of texture pixel (u, v): X = s (u - 256) , Y = s (v - 256), Z = depth
    A = np.array([[s, 0, -256 * s - cx], [0, s, -256 * s], [0, 0, depth]])
    return K @ A


def _render(cx: float) -> tuple[np.ndarray, np.ndarray]:
    """RGB frame ``[3, H, W]`` uint8 of the camera at ``x = cx`` and the mask of the near plane."""
    far = cv2.warpPerspective(_texture(1), _plane_h(FAR, cx), (W, H), flags=cv2.INTER_LINEAR)
    near_tex = _texture(2)
    near_tex[:, 256:] = 0  # the near plane is a half plane: x < 0
    hn = _plane_h(NEAR, cx)
    near = cv2.warpPerspective(near_tex, hn, (W, H), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.pad(np.ones((512, 256), np.uint8), ((0, 0), (0, 256))), hn, (W, H),
                               flags=cv2.INTER_NEAREST) > 0
    img = np.where(mask, near, far)
    return np.repeat(img[None], 3, 0), mask


def _truth(p: np.ndarray, cx_i: float, cx_j: float, mask_i: np.ndarray) -> np.ndarray:
    """Where the points ``p`` (our convention, centres at +0.5) of frame i are in frame j: sideways motion by
    ``cx_j - cx_i`` moves a point at depth ``Z`` by ``-f (cx_j - cx_i) / Z`` pixels."""
    px = np.clip((p - 0.5).round().astype(int), 0, [W - 1, H - 1])
    z = np.where(mask_i[px[:, 1], px[:, 0]], NEAR, FAR)
    return p + np.stack((-K[0, 0] * (cx_j - cx_i) / z, np.zeros(len(p))), 1)


def test_tracks_recover_known_correspondences():
    """A camera sliding sideways past two textured planes (parallax 1 px / frame on the far, 2.5 px on the near
    one): the correspondences of frames 1, 2, 4, 8 apart land where the geometry puts them."""
    step = 0.025
    frames = [_render(k * step) for k in range(10)]
    ts = TrackStream(TrackConfig(gaps=(1, 2, 4, 8), max_matches=400), (H, W))
    for img, _ in frames:
        ts.push(torch.from_numpy(img))
    pairs = {(i, j): (a, b) for i, j, a, b in ts.matches}
    assert {j - i for i, j in pairs} == {1, 2, 4, 8} and (1, 9) in pairs and (0, 8) in pairs
    for (i, j), (a, b) in pairs.items():
        assert len(a) >= 50
        err = np.linalg.norm(b - _truth(a, i * step, j * step, frames[i][1]), axis=1)
        assert np.median(err) < 0.15 and np.quantile(err, 0.9) < 0.6, (i, j, np.median(err))
    # both planes are tracked (the parallax that gives a direction of travel)
    a, b = pairs[(0, 8)]
    shift = a[:, 0] - b[:, 0]
    assert (np.abs(shift - 8 * 200 * step / NEAR) < 1).sum() > 20 and (np.abs(shift - 8 * 200 * step / FAR) < 1).sum() > 20


def test_tracks_are_seeded_and_checked():
    frames = [torch.from_numpy(_render(k * 0.02)[0]) for k in range(3)]
    runs = []
    for _ in range(2):
        ts = TrackStream(TrackConfig(gaps=(1, 2), max_matches=20), (H, W), seed=5)
        for f in frames:
            ts.push(f)
        runs.append(ts.matches)
    assert [(i, j) for i, j, *_ in runs[0]] == [(0, 1), (1, 2), (0, 2)]
    assert all(np.array_equal(x[2], y[2]) and len(x[2]) == 20 for x, y in zip(*runs))
    with pytest.raises(ValueError, match="frame 3 is"):
        ts.push(torch.zeros(3, H + 1, W, dtype=torch.uint8))
    with pytest.raises(ValueError, match="gaps"):
        TrackConfig(gaps=(0, 1))


def test_merge_matches_concatenates_per_pair():
    a = [(0, 1, np.zeros((2, 2)), np.ones((2, 2))), (1, 2, np.zeros((1, 2)), np.zeros((1, 2)))]
    b = [(0, 1, np.full((3, 2), 5.0), np.full((3, 2), 6.0))]
    m = merge_matches(a, b)
    assert [(i, j, len(p)) for i, j, p, _ in m] == [(0, 1, 5), (1, 2, 1)]
    assert m[0][3][-1, 0] == 6.0


def test_rotation_averaging_bridges_a_wrong_step():
    """60 cameras turning 3 deg per frame; relative rotations of pairs 1, 2, 4, 8 apart with 0.2 deg noise, and
    one consecutive step 10 deg wrong (as a step without correspondences). Chaining keeps the 10 deg for every later
    frame; averaging over all pairs does not."""
    gen = torch.Generator().manual_seed(0)
    n = 60
    axis = torch.tensor([0.1, 1.0, 0.2], dtype=torch.float64)
    axis = axis / axis.norm()
    Q = roma.rotvec_to_rotmat(torch.deg2rad(3.0 * torch.arange(n, dtype=torch.float64))[:, None] * axis)
    poses = {}
    for k in (1, 2, 4, 8):
        for i in range(n - k):
            j = i + k
            noise = roma.rotvec_to_rotmat(torch.deg2rad(torch.tensor(0.2)) * torch.randn(3, generator=gen,
                                                                                         dtype=torch.float64))
            poses[(i, j)] = {"kind": "essential", "R": (noise @ Q[j].T @ Q[i]).numpy()}
    bad = roma.rotvec_to_rotmat(torch.tensor([0.0, np.deg2rad(10.0), 0.0], dtype=torch.float64))
    poses[(30, 31)]["R"] = (bad @ torch.as_tensor(poses[(30, 31)]["R"])).numpy()
    poses[(5, 7)] = {"kind": "failed"}
    chain = [Q[0].numpy()]
    for i in range(n - 1):
        chain.append(chain[-1] @ poses[(i, i + 1)]["R"].T)
    chain = np.stack(chain)
    err = lambda R: torch.rad2deg(roma.rotmat_geodesic_distance(torch.as_tensor(R), Q)).numpy()  # noqa: E731
    assert err(chain)[40:].min() > 8.0
    R, info = average_rotations(chain, poses)
    assert info["rotation_pairs"] == len(poses) - 1
    assert err(R).max() < 1.0 and info["rotation_residual_deg"] < 0.5
    assert np.allclose(R[0], Q[0].numpy())
