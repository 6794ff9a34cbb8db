"""GlobalAligner: the vectorised objective equals DUSt3R's per-edge formula; JOG3R eq. 3-4; parameter read-out."""

from __future__ import annotations

import math

import pytest
import roma
import torch

from jog3r.align.aligner import GlobalAligner, signed_expm1, signed_log1p
from jog3r.align.config import AlignConfig
from jog3r.align.synthetic import make_scene
from jog3r.geometry.camera import intrinsics_from_focal, transform_points, unproject_depth


def _randomised(aligner: GlobalAligner, seed: int = 0) -> GlobalAligner:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in aligner.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return aligner


def _reference_loss(al: GlobalAligner) -> torch.Tensor:
    """DUSt3R PointCloudOptimizer.forward written as a plain loop over edges (REFERENCE B.5)."""
    c2w = al.cam2world()
    K = al.intrinsics()
    world = transform_points(c2w, unproject_depth(al.depth(), K))
    R = roma.unitquat_to_rotmat(al.pw_quat / al.pw_quat.norm(dim=-1, keepdim=True))
    sigma = al.pw_scales()
    T = signed_expm1(al.pw_trans)
    li = lj = 0.0
    for e in range(al.num_edges):
        i, j = int(al.edge_i[e]), int(al.edge_j[e])
        pose = torch.cat((torch.cat((R[e], T[e, :, None]), 1) * sigma[e], torch.tensor([[0.0, 0, 0, 1]])), 0)
        li = li + ((world[i] - transform_points(pose, al.pred_i[e])).norm(dim=-1) * al.weight_i[e]).sum()
        lj = lj + ((world[j] - transform_points(pose, al.pred_j[e])).norm(dim=-1) * al.weight_j[e]).sum()
    area = al.num_edges * al.H * al.W
    return li / area + lj / area


@pytest.mark.parametrize("symmetrize", [False, True])
def test_vectorised_loss_and_gradients_match_per_edge_reference(symmetrize):
    scene = make_scene(4, 6, 8, graph="complete", symmetrize=symmetrize, seed=1)
    al = _randomised(GlobalAligner(scene.pointmaps, AlignConfig()))
    loss = al.pointmap_loss()
    ref = _reference_loss(al)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=0)
    named = [(n, p) for n, p in al.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [p for _, p in named])
    ref_grads = torch.autograd.grad(ref, [p for _, p in named])
    for (name, _), g, rg in zip(named, grads, ref_grads):
        torch.testing.assert_close(g, rg, rtol=1e-4, atol=1e-7, msg=name)


def test_temporal_terms_follow_paper_equations():
    scene = make_scene(4, 4, 4, seed=0)
    al = GlobalAligner(scene.pointmaps, AlignConfig(w_fl=2.0, w_transl=3.0))
    centres = torch.tensor([[0.0, 0, 0], [1, 0, 0], [3, 0, 0], [3, 1, 0]])
    focals = torch.tensor([4.0, 8.0, 8.0, 4.0])  # l_f = f / max(H, W) = 1, 2, 2, 1
    c2w = torch.eye(4).repeat(4, 1, 1)
    c2w[:, :3, 3] = centres
    al.set_cam2world(c2w)
    al.set_focals(focals)
    # eq. (3): (1-2)^2 + (2-2)^2 + (2-1)^2
    assert float(al.focal_smoothness().detach()) == pytest.approx(2.0, rel=1e-5)
    # eq. (4): v = t_f - t_{f+1} = (-1,0,0), (-2,0,0), (0,-1,0); sum |v|^2 = 6; sum |v_f - v_{f+1}|^2 = 1 + 5
    assert float(al.translation_smoothness().detach()) == pytest.approx(12.0, rel=1e-5)
    terms = al.loss_terms()
    expected = terms["pointmap"] + 2.0 * terms["fl"] + 3.0 * terms["transl"]
    torch.testing.assert_close(terms["total"], expected)
    torch.testing.assert_close(al(), expected)


def test_parameter_readout_and_scale_normalisation():
    scene = make_scene(3, 5, 7, seed=2)
    al = _randomised(GlobalAligner(scene.pointmaps, AlignConfig(base_scale=0.5)), seed=3)
    assert float(al.pw_scales().detach().log().mean().exp()) == pytest.approx(0.5, rel=1e-5)
    c2w = al.cam2world()
    torch.testing.assert_close(c2w[:, :3, :3] @ c2w[:, :3, :3].transpose(1, 2), torch.eye(3).expand(3, 3, 3),
                               atol=1e-5, rtol=0)
    assert al.pts3d().shape == (3, 5, 7, 3)
    torch.testing.assert_close(al.intrinsics(), intrinsics_from_focal(al.focals(), 5, 7, pp=al.principal_points()))
    x = torch.linspace(-5, 5, 11)
    torch.testing.assert_close(signed_expm1(signed_log1p(x)), x)


def test_shared_focal_and_fixed_intrinsics():
    scene = make_scene(3, 5, 7, seed=0)
    al = GlobalAligner(scene.pointmaps, AlignConfig(shared_focal=True))
    al.set_focals(torch.tensor([10.0, 20.0, 40.0]))
    torch.testing.assert_close(al.focals(), torch.full((3,), 20.0))
    assert al.log_focal.shape == (1,)
    K = scene.K.clone()
    K[:, 0, 0] *= 1.1  # non-square pixels are kept as given
    fixed = GlobalAligner(scene.pointmaps, AlignConfig(), K=K)
    torch.testing.assert_close(fixed.intrinsics(), K)
    assert not fixed.log_focal.requires_grad and not fixed.pp_offset.requires_grad
    known = GlobalAligner(scene.pointmaps, AlignConfig(known_focal=33.0))
    assert not known.log_focal.requires_grad
    torch.testing.assert_close(known.focals(), torch.full((3,), 33.0))


def test_principal_point_default_and_override():
    scene = make_scene(3, 6, 10, seed=0)
    assert GlobalAligner(scene.pointmaps, AlignConfig()).principal_points()[0].tolist() == [5.0, 3.0]
    al = GlobalAligner(scene.pointmaps, AlignConfig(principal_point=(5.5, 3.5), optimize_pp=True))
    assert al.principal_points()[1].tolist() == [5.5, 3.5]
    assert al.pp_offset.requires_grad


def test_loss_is_fp32_under_autocast():
    scene = make_scene(3, 4, 4, seed=0)
    al = GlobalAligner(scene.pointmaps, AlignConfig())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = al()
    assert loss.dtype == torch.float32 and math.isfinite(float(loss.detach()))
