"""Long-video V2C (:mod:`jog3r.align.windows`, :mod:`jog3r.long_v2c`): windows linked through shared frames."""

from __future__ import annotations

import dataclasses
import math

import pytest
import roma
import torch

from jog3r.align import ALIGN_PRESETS, fit
from jog3r.align.joint import JointConfig, joint_align
from jog3r.align.refine import RefineConfig
from jog3r.align.synthetic import make_scene
from jog3r.align.windows import WindowedAligner, plan_windows
from jog3r.long_v2c import MAX_FRAMES, check_long_frame_count
from jog3r.metrics.pose import pose_metrics
from jog3r.types import PairwisePointmaps

from test_align_joint import NOISY, exact_matches  # noqa: E402  (tests/align is on sys.path: rootdir conftest)

UP = 4.0
"""Correspondences given in pixels of 4x frames (as the pipeline matches at the source resolution)."""


def _sub(scene, edges, offset):
    ids = {tuple(e): k for k, e in enumerate(scene.pointmaps.edges.tolist())}
    sel = [ids[e] for e in edges]
    pm = scene.pointmaps
    return PairwisePointmaps(pts3d=pm.pts3d[:, sel], conf=pm.conf[:, sel],
                             pts3d_in_other_view=pm.pts3d_in_other_view[:, sel],
                             conf_in_other_view=pm.conf_in_other_view[:, sel], edges=torch.tensor(edges) - offset)


def _errors(a, b):
    m = pose_metrics(a, b, pairs="all")
    return float(m["Rot. err."]), float(m["Trans. err."]), float(m["mAA@30"])


@pytest.fixture(scope="module")
def clip40():
    scene = make_scene(40, 48, 64, graph="complete", noise=NOISY, seed=3)
    matches = [(i, j, UP * a, UP * b) for i, j, a, b in exact_matches(scene)]
    return scene, matches


def test_plan_windows():
    assert plan_windows(40) == [(0, 16), (12, 28), (24, 40)]
    assert plan_windows(10) == [(0, 10)]
    assert plan_windows(600)[-1] == (584, 600) and len(plan_windows(600)) == 50
    for n in (17, 29, 100, 599):
        w = plan_windows(n)
        assert w[0][0] == 0 and w[-1][1] == n and all(b[0] < a[1] for a, b in zip(w, w[1:]))


def test_forty_frames_in_windows_give_the_direct_alignment(clip40):
    """40 frames as 3 windows of 16 (4 shared), each aligned alone, linked and solved once (sparse) == the direct
    (dense) joint alignment of the 40 frames' (1 -> f) point maps, with the same correspondences."""
    scene, matches = clip40
    cfg = JointConfig(niter=30)
    full = _sub(scene, [(0, f) for f in range(1, 40)], 0)
    r0, _ = fit(full, scene.images, ALIGN_PRESETS["jog3r"])
    direct, dinfo = joint_align(r0, None, full, cfg, matches=matches, match_scale=UP)
    acc = WindowedAligner(40, (48, 64), cfg)
    for s, e in plan_windows(40, 16, 12):
        pm = _sub(scene, [(s, f) for f in range(s + 1, e)], s)
        recon, _ = fit(pm, scene.images[s:e], ALIGN_PRESETS["jog3r"])
        link = acc.add_window(s, recon, pm)
        assert link["shared"] == (0 if s == 0 else 4)
    linked = acc.reconstruction()
    out, info = acc.solve(matches, UP)
    assert info["status"] == "aligned" and info["windows"] == 3 and info["edges"] == 45
    assert info["depth_sign_flips"] == dinfo["depth_sign_flips"] == 0  # exact matches: cheirality is right here
    # measured: windowed vs direct 0.024 deg / 0.17 deg, mAA@30 99.99; both ~0.04 deg / ~0.4 deg from the truth
    rot, tr, maa = _errors(out.cam2world, direct.cam2world)
    assert rot < 0.1 and tr < 0.5 and maa > 99
    rot, tr, maa = _errors(out.cam2world, scene.cam2world)
    assert rot < 0.1 and tr < 0.8 and maa > 99
    assert _errors(linked.cam2world, scene.cam2world)[2] < maa  # the global alignment improves on the links
    torch.testing.assert_close(out.K[:, 0, 0], direct.K[:, 0, 0], rtol=0.03, atol=0)
    assert out.depth.shape == (40, 48, 64) and torch.isfinite(out.pts3d).all()


def test_one_window_reproduces_the_dense_solver(clip40):
    scene, matches = clip40
    m8 = [m for m in matches if m[1] < 10]
    pm = _sub(scene, [(0, f) for f in range(1, 10)], 0)
    recon, _ = fit(pm, scene.images[:10], ALIGN_PRESETS["jog3r"])
    chain = JointConfig(matching=RefineConfig(rotation_averaging=False))  # both start from the chained rotations
    dense, dinfo = joint_align(recon, None, pm, chain, matches=m8, match_scale=UP)
    acc = WindowedAligner(10, (48, 64), rotation_fallback=False, rotation_averaging=False)
    acc.add_window(0, recon, pm)
    sparse, sinfo = acc.solve(m8, UP)
    assert sinfo["loss"][-1] == pytest.approx(dinfo["loss"][-1], rel=1e-4)
    torch.testing.assert_close(sparse.cam2world, dense.cam2world, atol=1e-4, rtol=0)


def test_bad_input_is_one_line():
    with pytest.raises(ValueError, match=f"1000 frames is more than the long-video limit of {MAX_FRAMES}"):
        check_long_frame_count(1000)
    with pytest.raises(ValueError, match="at least 2 frames"):
        check_long_frame_count(1)
    with pytest.raises(ValueError, match="stride"):
        plan_windows(40, 16, 16)
    acc = WindowedAligner(40, (48, 64))
    scene = make_scene(4, 48, 64, seed=0)
    recon, _ = fit(scene.pointmaps, scene.images, ALIGN_PRESETS["jog3r"])
    with pytest.raises(ValueError, match="does not fit"):
        acc.add_window(38, recon)
    acc.add_window(0, recon)
    with pytest.raises(ValueError, match="shares no frame"):
        acc.add_window(10, recon)
    with pytest.raises(ValueError, match="in no window"):
        acc.reconstruction()


def _windows_with_a_broken_third(scene, before_add=None) -> tuple[WindowedAligner, list[dict]]:
    """Link the 40-frame clip's windows (0,10) (8,18) (16,26) (24,34) (30,40); the third one's alignment broke
    (depth collapsed 600x, the second half of its cameras flipped). ``before_add(w, acc)`` runs before window ``w``."""
    acc = WindowedAligner(40, (48, 64))
    flip = torch.tensor([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]], dtype=torch.float64)
    links = []
    for w, (s, e) in enumerate(plan_windows(40, 10, 8)):
        pm = _sub(scene, [(s, f) for f in range(s + 1, e)], s)
        recon, _ = fit(pm, scene.images[s:e], ALIGN_PRESETS["jog3r"])
        if w == 2:
            c2w = recon.cam2world.double().clone()
            c2w[5:, :3, :3] = c2w[5:, :3, :3] @ flip
            recon = dataclasses.replace(recon, cam2world=c2w.float(), depth=recon.depth * 600)
        if before_add is not None:
            before_add(w, acc)
        links.append(acc.add_window(s, recon, pm))
    return acc, links


def test_a_broken_window_is_rejected_and_the_next_one_replaces_it(clip40):
    """A window whose own alignment broke (half its cameras flipped, its depth 600x off: as the 60-frame benchmark's
    4th window) is not linked: its new frames continue the previous motion, and the next window, linked to them
    through its shared frames' rotations and path length, replaces them. Without the rejection the flipped cameras
    went into the linked trajectory (mAA@30 < 30)."""
    scene, _ = clip40
    acc, links = _windows_with_a_broken_third(scene)
    assert [link["rejected"] for link in links] == [False, False, True, False, False], links
    assert acc.trusted[:18].all() and not acc.trusted[18:24].any() and acc.trusted[24:].all()
    rot, tr, maa = _errors(acc.reconstruction().cam2world, scene.cam2world)
    assert maa > 45 and rot < 8, (rot, tr, maa)  # measured 57.8 / 4.8 deg (6 frames extrapolated)


def test_a_window_linked_only_to_guessed_frames_is_accepted(clip40):
    """After a rejected window its frames are guesses (the previous motion continued); when the camera turned
    meanwhile, the next window's shared frames disagree with the guesses. That window must still be linked: before,
    it was rejected too, and so was every later one (a 240-frame walk lost 11 of its 20 windows)."""
    scene, _ = clip40

    def turn_the_guesses(w, acc):  # frames 24, 25 guessed 0 and 50 deg apart (a turn the guess did not foresee)
        if w == 3:
            turn = roma.rotvec_to_rotmat(torch.tensor([0.0, math.radians(50.0), 0.0], dtype=torch.float64))
            acc.c2w[25, :3, :3] = acc.c2w[25, :3, :3] @ turn

    acc, links = _windows_with_a_broken_third(scene, turn_the_guesses)
    assert [link["rejected"] for link in links] == [False, False, True, False, False], links
    assert links[3]["linked_to_guesses"] and links[3]["rot_spread_deg"] > 20.0, links[3]
    assert acc.trusted[:18].all() and not acc.trusted[18:24].any() and acc.trusted[24:].all()


def test_the_sparse_solve_factorises_a_banded_matrix(clip40, monkeypatch):
    """Each LM step of the long-video solve factorises its normal matrix in frame order (edges beside their
    frames), so the LU fills only a band of (widest coupling + 1) frames, whatever the length: O(N) per step. A
    window's point-map edges couple its first frame with its last, so the band is at least a window (16 frames).
    The first order (edges after all frames, SuperLU's MMD) made one factorisation of the 240-frame walkthrough
    take 3.4 s."""
    import scipy.sparse.linalg

    scene, matches = clip40
    near = [m for m in matches if m[1] - m[0] <= 3]
    acc = WindowedAligner(40, (48, 64), JointConfig(niter=3))
    for s, e in plan_windows(40, 16, 12):
        pm = _sub(scene, [(s, f) for f in range(s + 1, e)], s)
        acc.add_window(s, fit(pm, scene.images[s:e], ALIGN_PRESETS["jog3r"])[0], pm)
    seen = []
    real = scipy.sparse.linalg.splu

    def spy(A, *args, **kwargs):
        seen.append(A.tocoo())
        return real(A, *args, **kwargs)

    monkeypatch.setattr(scipy.sparse.linalg, "splu", spy)
    out, info = acc.solve(near, UP)
    assert info["status"] == "aligned"
    steps = [A for A in seen if A.shape[0] > 40 * 3]  # the LM's normal matrices (not the centres' 39 x 39)
    assert steps
    per_frame = 7 + 12 + 7  # frame unknowns + one edge's
    for A in steps:
        assert int(abs(A.row - A.col).max()) < (16 + 1) * per_frame, "the normal matrix is not banded"
    rot, tr, maa = _errors(out.cam2world, scene.cam2world)
    assert rot < 0.1 and maa > 99


def _rot_err_deg(a, b):
    rel = a[:, :3, :3].double().transpose(1, 2) @ b[:, :3, :3].double()
    return torch.rad2deg(roma.rotmat_to_rotvec(rel).norm(dim=-1))


def test_the_rotation_prior_carries_frames_without_evidence(clip40):
    """Frames 18-21 have no correspondences and no point maps (a blank wall: the matches vanish and the model's
    point maps of a plane leave the rotation free), and their window's cameras there are off by 6 deg. The long
    runs' constant-angular-velocity prior (``w_rot``, :func:`jog3r.long_v2c.long_config`) carries the rotation
    through them from the frames on either side; without it they keep the bad start."""
    from jog3r.long_v2c import long_config

    scene, matches = clip40
    gap = range(18, 22)
    kept = [m for m in matches if m[0] not in gap and m[1] not in gap]
    gen = torch.Generator().manual_seed(5)
    errors = {}
    for w_rot in (0.0, long_config().w_rot):
        acc = WindowedAligner(40, (48, 64), dataclasses.replace(long_config(), w_rot=w_rot))
        for s, e in plan_windows(40, 16, 12):
            pm = _sub(scene, [(s, f) for f in range(s + 1, e)], s)
            recon, _ = fit(pm, scene.images[s:e], ALIGN_PRESETS["jog3r"])
            if s == 12:  # the window that holds the gap: bad cameras there, and its point maps not kept
                c2w = recon.cam2world.clone()
                axis = torch.randn(len(gap), 3, generator=gen)
                turn = roma.rotvec_to_rotmat(math.radians(6.0) * axis / axis.norm(dim=1, keepdim=True))
                c2w[18 - s:22 - s, :3, :3] = c2w[18 - s:22 - s, :3, :3] @ turn
                recon, pm = dataclasses.replace(recon, cam2world=c2w), None
            acc.add_window(s, recon, pm)
        out, info = acc.solve(kept, UP)
        assert info["status"] == "aligned"
        # the gap's rotations relative to frame 17's, against the truth's
        rel = torch.linalg.inv(out.cam2world[17]) @ out.cam2world[18:22]
        true = torch.linalg.inv(scene.cam2world[17]) @ scene.cam2world[18:22]
        errors[w_rot] = _rot_err_deg(rel, true)
    assert long_config().w_rot > 0
    assert float(errors[0.0].max()) > 3.0  # no evidence: the bad start stays
    assert float(errors[long_config().w_rot].max()) < 1.0
