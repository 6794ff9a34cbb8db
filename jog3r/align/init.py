"""Initialisation of the global alignment (DUSt3R ``cloud_opt/init_im_poses.py``, REFERENCE B.5).

MST init: a maximum-confidence spanning tree over the pair graph (scipy), weighted Procrustes with scale (roma)
along the tree to chain every frame's point map into one world frame, Weiszfeld focals, PnP-RANSAC (OpenCV SQPnP)
for the cameras the tree cannot place, then every edge's similarity by Procrustes and per-frame depths. Conventions
are those of :mod:`jog3r.geometry.camera`.
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import minimum_spanning_tree

from jog3r.align.aligner import GlobalAligner
from jog3r.geometry.camera import (
    estimate_focal,
    estimate_pixel_aspect,
    inverse_se3,
    pixel_grid,
    transform_points,
)
from jog3r.geometry.pointmap import camera_frame_depth
from jog3r.geometry.registration import register_points, sim3_matrix

__all__ = ["edge_scores", "spanning_tree_order", "pnp_ransac", "init_mst", "init_known_poses", "init_from_pts3d"]

logger = logging.getLogger(__name__)


def edge_scores(conf_i: torch.Tensor, conf_j: torch.Tensor) -> torch.Tensor:
    """DUSt3R's edge score ``mean(conf_i) * mean(conf_j)`` (``compute_edge_scores``).

    Args:
        conf_i: ``[P, H, W]`` confidences of each edge's first view.
        conf_j: ``[P, H, W]`` confidences of each edge's second view.

    Returns:
        ``[P]`` float64 scores (higher = more confident).
    """
    return conf_i.double().flatten(1).mean(1) * conf_j.double().flatten(1).mean(1)


def spanning_tree_order(edges: torch.Tensor, scores: torch.Tensor, num_frames: int) -> list[int]:
    """Edges of the maximum-score spanning tree, in DUSt3R's processing order.

    The tree is scipy's minimum spanning tree of the negated scores. Processing starts from the strongest tree
    edge and repeatedly takes the strongest remaining tree edge that touches an already placed frame.

    Args:
        edges: ``[P, 2]`` int64 frame pairs.
        scores: ``[P]`` positive edge scores.
        num_frames: ``F``.

    Returns:
        indices into ``edges`` of the ``F - 1`` tree edges, in processing order.
    """
    index = {}
    graph = sp.dok_array((num_frames, num_frames))
    for p, ((i, j), s) in enumerate(zip(edges.tolist(), scores.tolist())):
        if (i, j) not in index or s > -graph[i, j]:
            index[(i, j)] = p
            graph[i, j] = -s
    tree = minimum_spanning_tree(graph.tocsr()).tocoo()
    todo = sorted(zip((-tree.data).tolist(), tree.row.tolist(), tree.col.tolist()))
    _, i, j = todo.pop()
    order = [index[(i, j)]]
    done = {i, j}
    while todo:
        for k in range(len(todo) - 1, -1, -1):
            _, i, j = todo[k]
            if i in done or j in done:
                todo.pop(k)
                order.append(index[(i, j)])
                done.update((i, j))
                break
        else:  # pragma: no cover - a spanning tree of a connected graph is always reachable
            raise RuntimeError("spanning tree is not connected")
    return order


def pnp_ransac(
    pts3d_world: torch.Tensor,
    mask: torch.Tensor,
    focal: float | None,
    pp: tuple[float, float],
    *,
    niter: int = 10,
    max_points: int = 20_000,
    reproj_err: float = 5.0,
    refine_focal: bool = False,
    pixel_aspect: float = 1.0,
) -> tuple[float, torch.Tensor] | None:
    """Camera pose (and focal, if unknown) from a point map by PnP-RANSAC (DUSt3R ``fast_pnp``).

    OpenCV ``solvePnPRansac`` with SQPnP, ``reprojectionError=5`` px, ``iterationsCount=niter``; pixel ``(u, v)``
    observes ``pts3d_world[v, u]`` at ``(u + 0.5, v + 0.5)``. Without a focal, 21 focals ``geomspace(S/2, 3S)``
    (``S = max(H, W)``) are tried and the one with most inliers is kept (DUSt3R; ties, common on small images,
    go to the smaller median reprojection error), then refined jointly with the pose on the
    RANSAC inliers by OpenCV's Levenberg-Marquardt (``calibrateCamera`` with one view, fixed principal point,
    square pixels, no distortion) - our addition, since the 21-value grid alone is 9 % coarse. ``refine_focal`` applies the same refinement to a given focal (a guess).

    Args:
        pts3d_world: ``[H, W, 3]`` world points of the frame's pixels.
        mask: ``[H, W]`` bool, pixels to use.
        focal: focal in pixels, or ``None`` to search it.
        pp: principal point ``(cx, cy)`` in pixels.
        niter: RANSAC iterations.
        max_points: use at most this many masked pixels (a regular subsample).
        reproj_err: RANSAC inlier threshold in pixels.
        refine_focal: refine a given ``focal`` as described above.
        pixel_aspect: ``fy / fx``; ``focal`` is then ``sqrt(fx fy)`` (the refinement keeps the aspect).

    Returns:
        ``(focal, cam2world [4, 4] float32)``, or ``None`` if fewer than 4 pixels are masked or PnP fails.
    """
    H, W, _ = pts3d_world.shape
    idx = torch.nonzero(mask.flatten()).squeeze(1)
    if idx.numel() < 4:
        return None
    if idx.numel() > max_points:
        idx = idx[torch.linspace(0, idx.numel() - 1, max_points).long()]
    idx = idx.cpu()
    obj = pts3d_world.reshape(-1, 3).cpu()[idx].double().numpy()
    img = pixel_grid(H, W, dtype=torch.float64).reshape(-1, 2)[idx].numpy()
    S = max(H, W)
    candidates = [focal] if focal is not None else np.geomspace(S / 2, S * 3, 21).tolist()

    root = math.sqrt(pixel_aspect)

    def K_of(f: float) -> np.ndarray:
        return np.array([[f / root, 0, pp[0]], [0, f * root, pp[1]], [0, 0, 1]], dtype=np.float64)

    def solve(f: float):
        K = K_of(f)
        cv2.setRNGSeed(0)
        ok, rvec, tvec, inliers = cv2.solvePnPRansac(
            obj, img, K, None, iterationsCount=niter, reprojectionError=reproj_err, flags=cv2.SOLVEPNP_SQPNP
        )
        if not ok or inliers is None:
            return None
        inl = inliers.ravel()
        proj, _ = cv2.projectPoints(obj[inl], rvec, tvec, K, None)
        err = float(np.median(np.linalg.norm(proj.reshape(-1, 2) - img[inl], axis=1)))
        return (len(inl), -err), rvec, tvec, inl  # most inliers, ties broken by the smaller reprojection error

    best = None
    for f in candidates:
        res = solve(f)
        if res is not None and (best is None or res[0] > best[0]):
            best = (*res, f)
    if best is None:
        return None
    _, rvec, tvec, inl, best_focal = best
    if (focal is None or refine_focal) and inl.size >= 6:
        # joint Levenberg-Marquardt refinement of focal and pose on the inliers (fixed principal point, square
        # pixels, no distortion): cv2.calibrateCamera with one view and an intrinsic guess
        K0 = K_of(best_focal)
        flags = (cv2.CALIB_USE_INTRINSIC_GUESS | cv2.CALIB_FIX_PRINCIPAL_POINT | cv2.CALIB_FIX_ASPECT_RATIO
                 | cv2.CALIB_ZERO_TANGENT_DIST | cv2.CALIB_FIX_K1 | cv2.CALIB_FIX_K2 | cv2.CALIB_FIX_K3)
        _, K1, _, rvecs, tvecs = cv2.calibrateCamera(
            [obj[inl].astype(np.float32)], [img[inl].astype(np.float32)], (W, H), K0, None, flags=flags
        )
        f1 = float(math.sqrt(K1[0, 0] * K1[1, 1]))
        if math.isfinite(f1) and S / 8 < f1 < 8 * S:
            best_focal, rvec, tvec = f1, rvecs[0], tvecs[0]

    def to_cam2world(rvec, tvec) -> torch.Tensor:
        world2cam = np.eye(4)
        world2cam[:3, :3] = cv2.Rodrigues(rvec)[0]
        world2cam[:3, 3] = tvec.ravel()
        return inverse_se3(torch.from_numpy(world2cam)).float()

    cam2world = to_cam2world(rvec, tvec)
    return float(best_focal), cam2world


@torch.no_grad()
def init_from_pts3d(
    aligner: GlobalAligner, pts3d: torch.Tensor, focals: torch.Tensor | None, cam2world: torch.Tensor
) -> None:
    """Set every unknown of ``aligner`` from world point maps and cameras (DUSt3R ``init_from_pts3d``).

    Each edge's similarity is the confidence-weighted Procrustes with scale of its first view onto
    ``pts3d[i]`` (all edges in one batched roma call); the scale normalisation factor
    ``base_scale / geomean(s)`` is applied to the camera translations and points; depths are the camera-frame z.

    Args:
        aligner: the module to initialise (modified in place).
        pts3d: ``[F, H, W, 3]`` world points of every frame.
        focals: ``[F]`` focals in pixels (ignored when intrinsics are fixed), or ``None`` to keep them.
        cam2world: ``[F, 4, 4]`` cameras.
    """
    P = aligner.num_edges
    src = aligner.pred_i.reshape(P, -1, 3)
    dst = pts3d[aligner.edge_i].reshape(P, -1, 3)
    sim = register_points(src, dst, aligner.conf_i.reshape(P, -1), with_scale=True)
    aligner.set_pw_similarity(sim.R, sim.t, sim.s)
    factor = aligner.scale_normalization()
    cam2world = cam2world.clone().float()
    cam2world[:, :3, 3] *= factor
    aligner.set_cam2world(cam2world)
    aligner.set_depth(camera_frame_depth(pts3d.float() * factor, cam2world))
    if focals is not None:
        aligner.set_focals(focals)


@torch.no_grad()
def estimate_video_aspect(aligner: GlobalAligner, lo: float = 0.5, hi: float = 2.0) -> float:
    """One pixel aspect ``fy / fx`` for the video: the median over edges of
    :func:`~jog3r.geometry.camera.estimate_pixel_aspect` of each edge's first-view points (confidence-weighted),
    clipped to ``[lo, hi]``; 1.0 if no edge gives a value."""
    values = estimate_pixel_aspect(aligner.pred_i, aligner.principal_points()[aligner.edge_i], aligner.conf_i)
    values = values[torch.isfinite(values)]
    if values.numel() == 0:
        logger.warning("pixel aspect: no usable points; assuming square pixels")
        return 1.0
    return float(values.median().clamp(lo, hi))


@torch.no_grad()
def init_mst(aligner: GlobalAligner) -> dict[str, object]:
    """Maximum-spanning-tree initialisation (DUSt3R ``init_minimum_spanning_tree``, REFERENCE B.5 steps 1-5).

    Args:
        aligner: the module to initialise (modified in place); its ``config`` gives ``min_conf_thr``,
            ``niter_pnp``, ``pnp_max_points``, ``principal_point``.

    Returns:
        a summary dict: ``tree_edges`` (list of ``(i, j)`` in processing order), ``pnp_frames`` (frames placed by
        PnP), ``fallback_frames`` (frames left at the identity because PnP failed).
    """
    cfg = aligner.config
    F, H, W = aligner.num_frames, aligner.H, aligner.W
    edges = torch.stack((aligner.edge_i, aligner.edge_j), dim=1)
    order = spanning_tree_order(edges, edge_scores(aligner.conf_i, aligner.conf_j), F)
    pp = aligner.principal_points()
    fixed_focals = aligner.focals() if (aligner.fixed_K is not None or cfg.known_focal is not None) else None
    if cfg.pixel_aspect is None and aligner.fixed_K is None:
        aligner.pixel_aspect.fill_(estimate_video_aspect(aligner))
    root = float(aligner.pixel_aspect.sqrt())
    squeeze = torch.tensor([1 / root, root, 1.0], device=aligner.grid.device)

    def focal_of(f: int, pts_cam: torch.Tensor) -> float:
        # with fx = f / sqrt(a), fy = f sqrt(a), the points (x / sqrt(a), y sqrt(a), z) project with square pixels
        return float(estimate_focal(pts_cam * squeeze, pp=pp[f], min_focal=0.5, max_focal=3.5))

    pts3d: list[torch.Tensor | None] = [None] * F
    poses: list[torch.Tensor | None] = [None] * F
    # known intrinsics: every frame's own focal, never estimated nor refined by PnP
    focals: list[float | None] = [None] * F if fixed_focals is None else [float(v) for v in fixed_focals]
    p0 = order[0]
    i, j = int(aligner.edge_i[p0]), int(aligner.edge_j[p0])
    pts3d[i], pts3d[j] = aligner.pred_i[p0].clone(), aligner.pred_j[p0].clone()
    dev = aligner.grid.device
    poses[i] = torch.eye(4, device=dev)
    if focals[i] is None:
        focals[i] = focal_of(i, aligner.pred_i[p0])
    for p in order[1:]:
        i, j = int(aligner.edge_i[p]), int(aligner.edge_j[p])
        if focals[i] is None:
            focals[i] = focal_of(i, aligner.pred_i[p])
        if pts3d[i] is not None:  # align the edge's view of i onto the placed frame i, then place j
            sim = register_points(aligner.pred_i[p].reshape(-1, 3), pts3d[i].reshape(-1, 3), aligner.conf_i[p].flatten())
            pts3d[j] = transform_points(sim.matrix(), aligner.pred_j[p])
        else:  # frame j is placed: align the edge's view of j, then place i
            sim = register_points(aligner.pred_j[p].reshape(-1, 3), pts3d[j].reshape(-1, 3), aligner.conf_j[p].flatten())
            pts3d[i] = transform_points(sim.matrix(), aligner.pred_i[p])
        if poses[i] is None:  # the edge's frame is camera i's: its rigid part is camera i's pose
            poses[i] = sim3_matrix(sim.R, sim.t)
    scores = edge_scores(aligner.conf_i, aligner.conf_j)
    for p in torch.argsort(scores, descending=True).tolist():
        i = int(aligner.edge_i[p])
        if focals[i] is None:
            focals[i] = focal_of(i, aligner.pred_i[p])
    guessed = set()
    known = [f for f in focals if f is not None]
    if not cfg.pnp_focal_search and known:  # frames never seen as a first view: start from the known focals
        guess = float(torch.tensor(known).median())
        guessed = {f for f in range(F) if focals[f] is None}
        focals = [guess if f is None else f for f in focals]
    pnp_frames, fallback, low_conf = [], [], []
    for f in range(F):
        if poses[f] is not None:
            continue
        mask = aligner.im_conf[f] > cfg.min_conf_thr
        if int(mask.sum()) < 4:
            thr = float(aligner.im_conf[f].median())
            low_conf.append(f)
            mask = aligner.im_conf[f] >= thr
        pp_f = (float(pp[f, 0]), float(pp[f, 1]))
        res = pnp_ransac(pts3d[f], mask, focals[f], pp_f, niter=cfg.niter_pnp, max_points=cfg.pnp_max_points,
                         refine_focal=f in guessed, pixel_aspect=root**2)
        if res is None:
            logger.warning("frame %d: PnP-RANSAC failed; its camera starts at the identity", f)
            fallback.append(f)
            poses[f] = torch.eye(4, device=dev)
            if focals[f] is None:
                focals[f] = float(max(H, W))
        else:
            focals[f], poses[f] = res[0], res[1].to(dev)
            pnp_frames.append(f)
    if low_conf:  # one line for the video, not one per frame
        logger.info("%d of %d frames have < 4 pixels above min_conf_thr=%g (frames %s); their PnP uses the "
                       "pixels at or above the frame's median confidence", len(low_conf), F, cfg.min_conf_thr,
                       ", ".join(map(str, low_conf)))
    init_from_pts3d(aligner, torch.stack(pts3d), torch.tensor(focals, device=dev), torch.stack(poses))
    tree = [(int(aligner.edge_i[p]), int(aligner.edge_j[p])) for p in order]
    return {"tree_edges": tree, "pnp_frames": pnp_frames, "fallback_frames": fallback}


@torch.no_grad()
def init_known_poses(aligner: GlobalAligner, cam2world: torch.Tensor) -> torch.Tensor:
    """Initialise with known, fixed cameras and intrinsics (the role of DUSt3R ``init_from_known_poses``).

    With camera ``i`` known, edge ``e = (i, j)``'s similarity is ``world = s_e R_i X + C_i`` and only ``s_e`` is
    unknown. Instead of DUSt3R's per-edge PnP, ``s_e`` is solved in closed form from the known camera ``j``:
    each point ``s_e a + b`` of view ``j`` (``a = R_j^T R_i X_j``, ``b = R_j^T (C_i - C_j)``) must lie on its pixel's
    ray ``r``, i.e. ``r x (s_e a + b) = 0``, a confidence-weighted linear least-squares problem in ``s_e``.
    Depths come from each frame's most confident edge. The pairwise-scale normalisation is switched off, because
    the known cameras fix the gauge.

    Args:
        aligner: module with fixed intrinsics (``K`` or ``known_focal``); modified in place.
        cam2world: ``[F, 4, 4]`` known cameras.

    Returns:
        ``[P]`` the edge scales ``s_e``.

    Raises:
        ValueError: if ``cam2world`` is not ``[F, 4, 4]`` or the intrinsics are not fixed.
    """
    F = aligner.num_frames
    if cam2world.shape != (F, 4, 4):
        raise ValueError(f"known cam2world must be [F={F}, 4, 4], got {tuple(cam2world.shape)}")
    if aligner.fixed_K is None and aligner.config.known_focal is None:
        raise ValueError("init=known_poses needs fixed intrinsics: pass K to fit() or set AlignConfig.known_focal")
    cam2world = cam2world.float()
    P = aligner.num_edges
    R, C = cam2world[:, :3, :3], cam2world[:, :3, 3]
    ei, ej = aligner.edge_i, aligner.edge_j
    rays = aligner.rays()[ej].reshape(P, -1, 3)
    Rij = R[ej].transpose(1, 2) @ R[ei]
    a = aligner.pred_j.reshape(P, -1, 3) @ Rij.transpose(1, 2)
    b = ((C[ei] - C[ej])[:, None, :] @ R[ej]).expand_as(a)
    ra, rb = torch.linalg.cross(rays, a), torch.linalg.cross(rays, b)
    w = aligner.conf_j.reshape(P, -1)
    num = -(w * (ra * rb).sum(-1)).sum(1)
    den = (w * ra.square().sum(-1)).sum(1).clamp(min=1e-12)
    scale = num / den
    bad = ~(scale > 0)
    if bool(bad.all()):
        logger.warning("known_poses init: no edge has a usable baseline; every edge scale set to 1")
        scale = torch.ones_like(scale)
    elif bool(bad.any()):
        logger.warning("known_poses init: edges %s have no usable baseline; they get the median scale",
                       torch.stack((ei, ej), 1)[bad].tolist())
        scale = torch.where(bad, scale[~bad].median(), scale)
    aligner.normalize_pw_scale = False
    aligner.set_pw_similarity(R[ei], C[ei], scale)
    depth = torch.ones(F, aligner.H, aligner.W, device=cam2world.device)
    best = torch.full((F,), -1.0, dtype=torch.float64)
    score_i = aligner.conf_i.double().flatten(1).mean(1)
    score_j = aligner.conf_j.double().flatten(1).mean(1)
    for p in range(P):
        i, j = int(ei[p]), int(ej[p])
        if score_i[p] > best[i]:
            best[i] = score_i[p]
            depth[i] = aligner.pred_i[p, ..., 2] * scale[p]
        if score_j[p] > best[j]:
            best[j] = score_j[p]
            world = transform_points(cam2world[i], aligner.pred_j[p] * scale[p])
            depth[j] = camera_frame_depth(world, cam2world[j])
    aligner.set_cam2world(cam2world)
    aligner.set_depth(depth)
    return scale
