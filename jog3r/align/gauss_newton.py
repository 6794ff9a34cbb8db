"""A Gauss-Newton / Levenberg-Marquardt solver for the global-alignment objective (the ``fast`` presets).

Same objective and parameters as :class:`~jog3r.align.aligner.GlobalAligner` (DUSt3R's confidence-weighted
point-map loss + JOG3R eq. 3-4); only the optimiser differs from DUSt3R's Adam loop. Per iteration:

1. residuals ``r = chi_f - (sigma_e R_e X + T_e)`` of every edge, view and pixel (world frame);
2. the Gauss-Newton model of the IRLS majoriser ``1/2 sum a ||r||^2``, ``a = w / ||r||`` (same gradient as
   ``sum w ||r||``, and an upper bound, so steps are stable even with outliers) over camera rotations / centres /
   log-focals and edge rotations / translations / log-scales, with every pixel's log-depth eliminated by a Schur
   complement. ``J^T A J`` is assembled from 10x10 moment matrices of ``z = (1, u, h, m)`` per edge, never from
   per-pixel Jacobians; the Hessian uses a regular pixel subsample, the gradient every pixel;
3. a damped step, the closed-form (1-D IRLS) depth update of :meth:`GaussNewtonSolver.solve_depth`, and an
   acceptance test on the true objective.

Gauge: camera 0's pose is fixed, the mean edge log-scale change is penalised and DUSt3R's scale normalisation
(geometric mean of the edge scales = ``base_scale``) is re-applied exactly after each step.
"""

from __future__ import annotations

import logging
import math

import roma
import torch

from jog3r.align.aligner import GlobalAligner, dot3, sq_norm3
from jog3r.align.solver import History, should_stop

__all__ = ["GaussNewtonSolver", "gauss_newton_loop"]

logger = logging.getLogger(__name__)

_MAX_REJECTED = 4


def _jacobian_basis() -> tuple[torch.Tensor, torch.Tensor]:
    """Constant ``B [10, 3, 14]`` with one observation's Jacobian ``J = sum_q z_q B[q]``, ``z = (1, u, h, m)``.

    Columns: camera rotation ``e_k x u``, camera centre ``e_k``, log-focal ``m``, edge rotation ``-(e_k x h)``,
    edge translation ``-e_k``, edge log-scale ``-h``. ``BB [100, 196]`` maps the moments ``sum a z z^T`` to
    ``sum a J^T J``.
    """
    eye = torch.eye(3, dtype=torch.float64)
    B = torch.zeros(10, 3, 14, dtype=torch.float64)
    for k in range(3):
        B[0, :, 3 + k] = eye[k]
        B[0, :, 10 + k] = -eye[k]
        B[7 + k, k, 6] = 1.0
        B[4 + k, k, 13] = -1.0
        for j in range(3):
            B[1 + j, :, k] = torch.linalg.cross(eye[k], eye[j], dim=0)
            B[4 + j, :, 7 + k] = -torch.linalg.cross(eye[k], eye[j], dim=0)
    BB = torch.einsum("qki,rkj->qrij", B, B).reshape(100, 196)
    return B.float(), BB.float()


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cross product over axis 1 of channel-first ``[P, 3, N]`` tensors (broadcasting), plane by plane: ~50x faster
    on the CPU than ``torch.linalg.cross(dim=1)``."""
    a0, a1, a2 = a.unbind(1)
    b0, b1, b2 = b.unbind(1)
    return torch.stack((a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0), dim=1)


class GaussNewtonSolver:
    """Damped Gauss-Newton steps on cameras, focals and edge similarities with the depths eliminated.

    Args:
        aligner: an initialised :class:`~jog3r.align.aligner.GlobalAligner`, modified in place.

    Raises:
        ValueError: if the principal point is to be optimised (not modelled here; use ``Solver.ADAM``).
    """

    def __init__(self, aligner: GlobalAligner):
        if aligner.pp_offset.requires_grad:
            raise ValueError("the Gauss-Newton solver keeps the principal point fixed; use Solver.ADAM for optimize_pp")
        cfg = aligner.config
        self.al = aligner
        F, P, N = aligner.num_frames, aligner.num_edges, aligner.H * aligner.W
        dev = aligner.grid.device
        self.B, self.BB = (x.to(dev) for x in _jacobian_basis())
        self.ar7 = torch.arange(7, device=dev)
        self.var_idx = [  # [P, 14] full-variable indices of each (view, edge) observation
            torch.cat((7 * frames[:, None] + self.ar7, 7 * F + 7 * torch.arange(P, device=dev)[:, None] + self.ar7), 1)
            for frames in (aligner.edge_i, aligner.edge_j)
        ]
        self.sub = torch.arange(0, N, max(1, N // max(cfg.gn_hessian_pixels, 1)), device=dev)
        self.sub_scale = N / self.sub.numel()
        self.obs = [[torch.nonzero(fr == f).flatten() for fr in (aligner.edge_i, aligner.edge_j)] for f in range(F)]
        # full variables (7 per frame: rotation, centre, log-focal; 7 per edge: rotation, translation, log-scale)
        # -> active index, -1 = held fixed; a shared focal maps every frame's log-focal to one variable
        full2act = torch.full((7 * (F + P),), -1, dtype=torch.long)
        n = 0
        if aligner.quat.requires_grad:
            for f in range(1, F):  # camera 0 fixes the rigid gauge
                full2act[7 * f : 7 * f + 6] = torch.arange(n, n + 6)
                n += 6
        if aligner.log_focal.requires_grad:
            nf = 1 if cfg.shared_focal else F
            full2act[6 : 7 * F : 7] = torch.arange(n, n + nf) if nf > 1 else n
            n += nf
        full2act[7 * F :] = torch.arange(n, n + 7 * P)
        self.sigma_act = (n + 7 * torch.arange(P) + 6).to(dev)
        self.n_full, self.n_act = 7 * (F + P), n + 7 * P
        self.full2act = full2act.to(dev)

    # ------------------------------------------------------------------ state and residuals
    def _state(self) -> dict[str, torch.Tensor]:
        """Current unknowns as plain tensors (``u`` = camera points rotated to the world, ``m`` = d chi / d log f)."""
        al = self.al
        c2w = al.cam2world()
        R, C = c2w[:, :3, :3], c2w[:, :3, 3]
        A, b = al.pw_similarity()
        ray = al.rays().flatten(1, 2).transpose(1, 2).contiguous()
        D = al.depth().flatten(1)
        u = R @ (ray * D[:, None])
        return {"R": R, "C": C, "A": A, "b": b, "ray": ray, "D": D, "u": u, "m": D[:, None] * R[:, :, 2:3] - u}

    def _views(self):
        al = self.al
        return ((al.edge_i, al.pred_i_cf, al.weight_i.flatten(1)), (al.edge_j, al.pred_j_cf, al.weight_j.flatten(1)))

    @torch.no_grad()
    def residuals(self) -> dict:
        """Residuals of every observation and the objective's terms at the current state.

        Returns:
            dict with ``state`` (see :meth:`_state`), ``views`` (per view: frames, ``u`` of those frames,
            ``h = A X``, ``r``, ``||r||``, weights)
            and ``terms`` (``pointmap``, ``fl``, ``transl``, ``total`` as in ``GlobalAligner.loss_terms``).
        """
        al, cfg = self.al, self.al.config
        st = self._state()
        views, total = [], 0.0
        for frames, pred, w in self._views():
            h = torch.bmm(st["A"], pred)
            uf = st["u"][frames]
            r = (uf - h).add_((st["C"][frames] - st["b"])[..., None])
            rn = sq_norm3(r).sqrt_()
            total += float((rn * w).sum())
            views.append((frames, uf, h, r, rn, w))
        terms = {"pointmap": torch.tensor(total / (al.num_edges * al.H * al.W)), "fl": al.focal_smoothness(),
                 "transl": al.translation_smoothness()}
        terms["total"] = terms["pointmap"] + cfg.w_fl * terms["fl"] + cfg.w_transl * terms["transl"]
        return {"state": st, "views": views, "terms": terms}

    @torch.no_grad()
    def solve_depth(self, iters: int) -> None:
        """Closed-form depths: per pixel ``argmin_D sum_k w_k ||D ray - y_k||`` by 1-D IRLS (Weiszfeld).

        ``y_k`` are the pixel's edge predictions in its camera frame. With ``t_k = ray . y_k / |ray|^2`` (the
        prediction's depth along the ray) and ``q_k = |ray x y_k|^2 / |ray|^2`` (its squared distance to the ray),
        ``||D ray - y_k||^2 = |ray|^2 (D - t_k)^2 + q_k``, and each iteration sets ``D = sum a_k t_k / sum a_k``
        with ``a_k = w_k / ||D ray - y_k||``, which never increases the objective for fixed cameras. Pixels without
        weight keep their depth.

        Args:
            iters: number of IRLS iterations.
        """
        st = self._state()
        R, C, A, b, ray, D = st["R"], st["C"], st["A"], st["b"], st["ray"], st["D"]
        ray2 = sq_norm3(ray)
        along = []
        for frames, pred, w in self._views():
            Rt = R[frames].transpose(1, 2)
            y = torch.bmm(Rt @ A, pred).add_(Rt @ (b - C[frames])[..., None])
            ray_e, ray2_e = ray[frames], ray2[frames]
            t = dot3(ray_e, y).div_(ray2_e)
            q = sq_norm3(_cross(ray_e, y)).div_(ray2_e)
            along.append((frames, t, q, ray2_e, w))
        eps2 = (1e-9 * float(D.mean())) ** 2
        for _ in range(iters):
            num, den = torch.zeros_like(D), torch.zeros_like(D)
            for frames, t, q, ray2_e, w in along:
                diff = D[frames] - t
                a = w / (diff.square_().mul_(ray2_e).add_(q).clamp_(min=eps2).sqrt_())
                num.index_add_(0, frames, a * t)
                den.index_add_(0, frames, a)
            D = torch.where(den > 0, num / den.clamp(min=1e-30), D).clamp(min=1e-6 * float(D.mean()))
        self.al.log_depth.copy_(D.log().view_as(self.al.log_depth))

    # ------------------------------------------------------------------ Gauss-Newton system
    @torch.no_grad()
    def linearize(self, res: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Depth-eliminated Gauss-Newton system ``(H, g)`` over the active variables (float64, incl. 1 / (P H W)).

        Args:
            res: output of :meth:`residuals` at the current state.

        Returns:
            ``(H [n, n], g [n])``; the undamped step solves ``H delta = -g``.
        """
        al, st = self.al, res["state"]
        F, P = al.num_frames, al.num_edges
        u, m, D, R = st["u"], st["m"], st["D"], st["R"]
        dev = u.device
        H = torch.zeros(self.n_full, self.n_full, dtype=torch.float64, device=dev)
        g = torch.zeros(self.n_full, dtype=torch.float64, device=dev)
        eps = 1e-6 * float(sq_norm3(u).sqrt().mean())
        # per-pixel depth step beta = b_lambda / H_lambda (the depth block of the system is diagonal)
        num, asum, lin = torch.zeros_like(D), torch.zeros_like(D), []
        for frames, uf, h, r, rn, w in res["views"]:
            a = w / rn.clamp(min=eps)
            num.index_add_(0, frames, a * dot3(uf, r))
            asum.index_add_(0, frames, a)
            lin.append((frames, uf, h, r, a))
        beta = num / (asum * sq_norm3(u)).clamp(min=1e-30)
        us, ms = u[:, :, self.sub], m[:, :, self.sub]
        asum_sub = torch.zeros(F, self.sub.numel(), device=dev)
        sub_obs = []
        for (frames, uf, h, r, a), idx in zip(lin, self.var_idx):
            # gradient with the depth step folded in: sum a J^T (r - beta u), from 10x3 moments per edge
            ar = (r - uf * beta[frames][:, None]).mul_(a[:, None])
            ar_t = ar.transpose(1, 2)
            mom = torch.cat((ar.sum(-1)[:, None], torch.bmm(uf, ar_t), torch.bmm(h, ar_t)), 1)
            mom_m = R[frames][:, :, 2:3] * torch.bmm(D[frames][:, None], ar_t) - mom[:, 1:4]
            grad = torch.cat((mom, mom_m), 1).reshape(P, 30) @ self.B.reshape(30, 14)
            # Hessian sum a J^T J on the pixel subsample, from 10x10 moments per edge
            a_s, h_s = a[:, self.sub], h[:, :, self.sub]
            zs = torch.cat((torch.ones_like(a_s[:, None]), us[frames], h_s, ms[frames]), 1)
            hess = (torch.bmm(zs * a_s[:, None], zs.transpose(1, 2)).reshape(P, 100) @ self.BB).reshape(P, 14, 14)
            H.index_put_((idx[:, :, None].expand(P, 14, 14), idx[:, None, :].expand(P, 14, 14)),
                         (hess * self.sub_scale).double(), accumulate=True)
            g.index_put_((idx,), grad.double(), accumulate=True)
            asum_sub.index_add_(0, frames, a_s)
            sub_obs.append((a_s, h_s))
        self._schur(H, asum_sub * sq_norm3(us), us, ms, sub_obs)
        area = float(P * al.H * al.W)
        H /= area
        g /= area
        self._add_regularizers(H, g, st["C"])
        return self._reduce(H, g)

    def _schur(self, H: torch.Tensor, hdd: torch.Tensor, us: torch.Tensor, ms: torch.Tensor, sub_obs: list) -> None:
        """Subtract ``sum_p c_p c_p^T / H_dd(p)`` (depth elimination), one frame at a time.

        A loop over frames (not edges): each frame's pixels are seen by a different number of edges, and the work of
        one frame is one GEMM over its pixels.
        """
        F = self.al.num_frames
        inv = self.sub_scale / hdd.clamp(min=1e-30) * (hdd > 0)
        for f in range(F):
            u_f = us[f : f + 1]
            cam = torch.zeros(7, us.shape[-1], device=us.device)
            rows, cols = [cam], [7 * f + self.ar7]
            for (a_s, hs), edges in zip(sub_obs, self.obs[f]):
                if edges.numel() == 0:
                    continue
                au = u_f * a_s[edges][:, None]  # [K, 3, n]: a_k J_k^T u has camera part (0, a u, a u.m)
                cam[3:6] += au.sum(0)
                cam[6] += dot3(ms[f : f + 1], au).sum(0)
                he = hs[edges]
                rows.append(torch.cat((_cross(au, he), -au, -dot3(he, au)[:, None]), 1).reshape(-1, us.shape[-1]))
                cols.append((7 * F + 7 * edges[:, None] + self.ar7).flatten())
            Cm, idx = torch.cat(rows, 0), torch.cat(cols)
            k = idx.numel()
            H.index_put_((idx[:, None].expand(k, k), idx[None, :].expand(k, k)), -(Cm @ (Cm * inv[f]).T).double(),
                         accumulate=True)

    def _add_regularizers(self, H: torch.Tensor, g: torch.Tensor, C: torch.Tensor) -> None:
        """JOG3R eq. (4) is quadratic in the centres (exact); eq. (3) enters by Gauss-Newton in the log-focals."""
        al, cfg = self.al, self.al.config
        F, dev, dt = al.num_frames, H.device, torch.float64
        d1 = torch.zeros(F - 1, F, dtype=dt, device=dev)
        d1[torch.arange(F - 1), torch.arange(F - 1)] = 1.0
        d1[torch.arange(F - 1), torch.arange(1, F)] = -1.0
        if cfg.w_transl > 0:
            L = torch.cat((d1, d1[:-1] - d1[1:]), dim=0)
            LtL = 2.0 * cfg.w_transl * (L.T @ L)
            for k in range(3):
                t = 7 * torch.arange(F, device=dev) + 3 + k
                H[t[:, None], t[None, :]] += LtL
                g[t] += LtL @ C[:, k].double()
        if cfg.w_fl > 0 and not cfg.shared_focal:
            lf = al.focals().detach().double() / max(al.H, al.W)
            J = d1 * lf[None, :]
            phi = 7 * torch.arange(F, device=dev) + 6
            H[phi[:, None], phi[None, :]] += 2.0 * cfg.w_fl * (J.T @ J)
            g[phi] += 2.0 * cfg.w_fl * (J.T @ (d1 @ lf))

    def _reduce(self, H: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep the active variables (sum those mapped together) and add the scale-gauge penalty."""
        keep = torch.nonzero(self.full2act >= 0).flatten()
        act = self.full2act[keep]
        k = act.numel()
        Ha = torch.zeros(self.n_act, self.n_act, dtype=H.dtype, device=H.device)
        Ha.index_put_((act[:, None].expand(k, k), act[None, :].expand(k, k)), H[keep][:, keep], accumulate=True)
        ga = torch.zeros(self.n_act, dtype=g.dtype, device=g.device).index_add_(0, act, g[keep])
        Ha = 0.5 * (Ha + Ha.T)  # the float32 moments leave ~1e-7 asymmetry
        if self.al.normalize_pw_scale:
            s = self.sigma_act
            Ha[s[:, None], s[None, :]] += float(Ha.diagonal().abs().max()) / s.numel()
        return Ha, ga

    # ------------------------------------------------------------------ update
    @torch.no_grad()
    def step(self, res: dict, damping: float) -> torch.Tensor:
        """Solve ``(H + damping diag(H)) delta = -g``; returns the ``[7 (F + P)]`` full increment (0 where fixed)."""
        H, g = self.linearize(res)
        diag = H.diagonal().clamp(min=1e-12 * float(H.diagonal().abs().max()))
        delta = torch.linalg.solve(H + torch.diag(damping * diag + 1e-12 * float(diag.max())), -g)
        full = torch.zeros(self.n_full, dtype=delta.dtype, device=delta.device)
        valid = self.full2act >= 0
        full[valid] = delta[self.full2act[valid]]
        return full.float()

    @torch.no_grad()
    def apply(self, delta: torch.Tensor) -> None:
        """``R <- Exp(dw) R``, ``C += dt``, ``log f += dphi`` and likewise for edges; then rescale the world so
        the edge scales keep their pinned geometric mean."""
        al = self.al
        F, P = al.num_frames, al.num_edges
        c2w = al.cam2world()
        A, b = al.pw_similarity()
        sigma = al.pw_scales()
        dc, de = delta[: 7 * F].view(F, 7), delta[7 * F :].view(P, 7)
        new = c2w.clone()
        new[:, :3, :3] = roma.rotvec_to_rotmat(dc[:, :3]) @ c2w[:, :3, :3]
        new[:, :3, 3] = c2w[:, :3, 3] + dc[:, 3:6]
        al.set_pw_similarity(roma.rotvec_to_rotmat(de[:, :3]) @ (A / sigma[:, None, None]), b + de[:, 3:6],
                             sigma * de[:, 6].exp())
        if al.log_focal.requires_grad:
            al.log_focal.add_(al.config.focal_break * (dc[:1, 6] if al.config.shared_focal else dc[:, 6]))
        k = al.scale_normalization()
        new[:, :3, 3] *= k
        if al.quat.requires_grad:
            al.set_cam2world(new)
        al.log_depth.add_(math.log(k))


def gauss_newton_loop(aligner: GlobalAligner, history: History) -> None:
    """Levenberg-Marquardt iterations of :class:`GaussNewtonSolver` until convergence or ``config.niter`` steps.

    The depths are first solved in closed form; each iteration then takes a damped step, re-solves the depths
    (``depth_irls_iters`` IRLS iterations) and keeps the result only if the objective decreased (damping / 10),
    otherwise restores the previous state (damping x 10, giving up after 4 rejections in a row). ``history`` records iteration 0
    (after the init), 1 (closed-form depths), then every accepted step, with the damping in ``lr``; stopping by
    :func:`jog3r.align.solver.should_stop`.

    Args:
        aligner: initialised module (optimised in place).
        history: loss log.
    """
    cfg = aligner.config
    solver = GaussNewtonSolver(aligner)
    history.log(aligner, 0, 0.0)
    solver.solve_depth(cfg.depth_irls_iters)
    res = solver.residuals()
    damping, it, rejected = cfg.gn_damping, 1, 0
    history.append(it, res["terms"], damping)
    while it <= cfg.niter:
        saved = [p.detach().clone() for p in aligner.parameters()]
        solver.apply(solver.step(res, damping))
        solver.solve_depth(cfg.depth_irls_iters)
        new = solver.residuals()
        new_loss = float(new["terms"]["total"])
        if not math.isfinite(new_loss) or new_loss > float(res["terms"]["total"]):
            with torch.no_grad():
                for p, old in zip(aligner.parameters(), saved):
                    p.copy_(old)
            damping, rejected = damping * 10.0, rejected + 1
            if rejected > _MAX_REJECTED:
                logger.info("Gauss-Newton: no decrease at iteration %d; stopping", it)
                break
            continue
        res, it, rejected = new, it + 1, 0
        history.append(it, res["terms"], damping)
        damping = max(damping / 10.0, 1e-8)
        if should_stop(history, cfg, it):
            break
