"""Gauss-Newton solver: its gradient is the objective's, its Hessian is PSD, its steps descend, and it reaches the
optimum that DUSt3R's Adam loop approaches."""

from __future__ import annotations

import pytest
import torch

from jog3r.align.aligner import GlobalAligner
from jog3r.align.config import AlignConfig, Solver
from jog3r.align.fit import fit
from jog3r.align.gauss_newton import GaussNewtonSolver
from jog3r.align.init import init_mst
from jog3r.align.synthetic import make_scene


def _solver(config: AlignConfig, seed: int = 0, fixed_scale: bool = False) -> GaussNewtonSolver:
    scene = make_scene(5, 12, 16, seed=seed)
    al = GlobalAligner(scene.pointmaps, config)
    init_mst(al)
    if fixed_scale:  # freeze the world scale at its normalised value, so the loss is a function of the increment
        with torch.no_grad():
            A, b = al.pw_similarity()
            sigma = al.pw_scales()
            al.normalize_pw_scale = False
            al.set_pw_similarity(A / sigma[:, None, None], b, sigma)
    solver = GaussNewtonSolver(al)
    solver.solve_depth(200)  # depths at their optimum: the Schur-reduced gradient is then the plain gradient
    return solver


@pytest.mark.parametrize(
    "config",
    [AlignConfig(gn_hessian_pixels=10**6), AlignConfig(w_transl=0.5, w_fl=3.0), AlignConfig(shared_focal=True)],
    ids=["plain", "temporal-terms", "shared-focal"],
)
def test_gradient_matches_finite_differences(config):
    solver = _solver(config, fixed_scale=True)
    al = solver.al
    res = solver.residuals()
    H, g = solver.linearize(res)
    gen = torch.Generator().manual_seed(1)
    saved = [p.detach().clone() for p in al.parameters()]
    for _ in range(3):
        direction = torch.randn(solver.n_act, generator=gen, dtype=torch.float64)
        direction /= direction.norm()
        full = torch.zeros(solver.n_full, dtype=torch.float64)
        valid = solver.full2act >= 0
        full[valid] = direction[solver.full2act[valid]]
        eps = 1e-4  # the L1-type loss has strong curvature near small residuals: keep the step tiny
        losses = []
        for sign in (1.0, -1.0):
            solver.apply((sign * eps * full).float())
            with torch.no_grad():
                losses.append(float(al().double()))
            with torch.no_grad():
                for p, old in zip(al.parameters(), saved):
                    p.copy_(old)
        fd = (losses[0] - losses[1]) / (2 * eps)
        assert float(g @ direction) == pytest.approx(fd, rel=0.01, abs=1e-4 * float(g.norm()))
    assert torch.allclose(H, H.T)
    assert float(torch.linalg.eigvalsh(H).min()) > -1e-9 * float(H.diagonal().max())


def test_steps_descend_and_reach_adams_optimum():
    scene = make_scene(4, 10, 12, seed=2)
    adam_rec, adam_hist = fit(scene.pointmaps, None, AlignConfig(niter=500, lr=0.01))
    gn_rec, gn_hist = fit(scene.pointmaps, None, AlignConfig(solver=Solver.GAUSS_NEWTON, niter=30, early_stop_rtol=1e-9))
    losses = gn_hist["loss"]
    assert all(b <= a + 1e-12 for a, b in zip(losses[1:], losses[2:]))  # accepted steps never increase it
    assert losses[-1] <= adam_hist["loss"][-1] * (1 + 1e-4)
    assert len(losses) < 40 and gn_hist["iter"][-1] <= 31


def test_principal_point_optimisation_is_rejected():
    scene = make_scene(3, 6, 8, seed=0)
    al = GlobalAligner(scene.pointmaps, AlignConfig(optimize_pp=True))
    with pytest.raises(ValueError, match="principal point"):
        GaussNewtonSolver(al)
