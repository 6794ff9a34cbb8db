"""Can the model learn relative pose at all? Overfit a few packed clips and track the pose of its point maps.

Trains a fresh model (``jog3r train`` options) on a small packed folder (``python -m jog3r.train.pack --num 8``)
and, every ``--eval-every`` steps, decodes every pair ``(0, j)`` of those same clips (features at ``t = 2`` with
the null prompt, as V2C does, clips in their packed order) and measures the relative pose the point maps imply:

* **view-2 registration** (the model card's diagnosis): weighted Procrustes with scale of the predicted
  ``pts3d_in_other_view`` (frame ``j``'s pixels, meant to be in camera 0) onto the true camera-``j`` points of
  frame ``j`` (its depth unprojected with its ``K``), weights = ``conf_in_other_view``: ``X_j ~= s R P + t`` gives
  camera 0 -> camera ``j``, compared with the truth ``inverse(cam2world_j) @ cam2world_0``. Rotation error in
  degrees; translation-direction error = angle between ``t`` and the true one (degrees, signed direction);
* **view-1 rotation**: the same registration of ``pts3d`` (frame 0) onto camera-0 points; 0 deg when the model
  puts view 1 in its own camera; and the **relative** pose of the two registrations (view 2's composed with the
  inverse of view 1's), which does not charge an error of the prediction's common frame;
* the scale-normalised regression errors of both views (``L_rec``'s ``regr_1`` / ``regr_2`` without confidence).

Rows are medians over all clips and pairs. ``--check-gt`` first runs the metric on the ground truth (must give 0)
and on the "never turns" prior (``R = I``, ``t`` = forward).

Usage (``--report OUT/model`` instead prints a saved model's errors by pair ``(0, j)``)::

    python -m jog3r.train.diagnose --data /tmp/diag/pack8 --mode rec --steps 800 --eval-every 50 \\
        --out /tmp/diag/rec --threads 1 [--lr 4e-4 --batch-size 2 --num-pairs 4]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import torch

from jog3r.data.annotate import pointmaps_in_first
from jog3r.geometry.camera import inverse_se3, unproject_depth
from jog3r.geometry.registration import register_points
from jog3r.losses import reconstruction_loss
from jog3r.recon.pairs import SceneGraph, make_edges
from jog3r.train.config import TrainConfig, TrainMode
from jog3r.train.pack import load_packed_clip, packed_clips

logger = logging.getLogger(__name__)


def _angle_deg(cos: torch.Tensor) -> torch.Tensor:
    return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))


def rotation_error_deg(R_pred: torch.Tensor, R_gt: torch.Tensor) -> torch.Tensor:
    """Geodesic angle ``[...]`` in degrees between rotations ``[..., 3, 3]``."""
    rel = R_pred @ R_gt.transpose(-1, -2)
    return _angle_deg((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2)


def direction_error_deg(t_pred: torch.Tensor, t_gt: torch.Tensor) -> torch.Tensor:
    """Angle ``[...]`` in degrees between vectors ``[..., 3]`` (signed directions; 90 for a zero vector)."""
    cos = (t_pred * t_gt).sum(-1) / (t_pred.norm(dim=-1) * t_gt.norm(dim=-1)).clamp(min=1e-12)
    return _angle_deg(cos)


def pair_pose_errors(pts_other: torch.Tensor, conf_other: torch.Tensor, pts_ref: torch.Tensor,
                     depth: torch.Tensor, K: torch.Tensor, cam2world: torch.Tensor, edges: torch.Tensor
                     ) -> dict[str, torch.Tensor]:
    """Relative-pose errors implied by the point maps of one clip's pairs ``(i, j)``.

    Args:
        pts_other: ``[P, H, W, 3]`` predicted points of frame ``j``'s pixels in camera ``i`` (view 2).
        conf_other: ``[P, H, W]`` their confidences (registration weights).
        pts_ref: ``[P, H, W, 3]`` predicted points of frame ``i``'s pixels in camera ``i`` (view 1).
        depth: ``[F, H, W]`` true z-depth (``<= 0`` = unknown).
        K: ``[F, 3, 3]`` true intrinsics in pixels.
        cam2world: ``[F, 4, 4]`` true OpenCV camera-to-world.
        edges: ``[P, 2]`` frame pairs.

    Returns:
        dict of ``[P]`` float64 tensors: ``rot_deg`` and ``trans_deg`` (view-2 registration vs the true
        camera ``i`` -> camera ``j``), ``view1_rot_deg`` (rotation of view 1's registration onto camera ``i``),
        ``rel_rot_deg`` / ``rel_trans_deg`` (the pose ``reg2 o inverse(reg1)``, which does not charge an error of
        the prediction's common frame), ``baseline`` (true camera distance / median depth of frame ``i``).
    """
    depth, K, cam2world = depth.double(), K.double(), cam2world.double()
    valid = torch.isfinite(depth) & (depth > 0)
    cam_pts = unproject_depth(torch.where(valid, depth, torch.zeros_like(depth)), K)  # [F, H, W, 3]
    i, j = edges[:, 0], edges[:, 1]
    w2 = (conf_other.double() * valid[j]).flatten(1)
    reg2 = register_points(pts_other.double().flatten(1, 2), cam_pts[j].flatten(1, 2), w2)
    rel = inverse_se3(cam2world[j]) @ cam2world[i]  # camera i -> camera j
    reg1 = register_points(pts_ref.double().flatten(1, 2), cam_pts[i].flatten(1, 2), valid[i].double().flatten(1))
    eye = torch.eye(3, dtype=torch.float64).expand_as(reg1.R)
    # relative: camera i -> prediction frame (inverse of reg1) -> camera j (reg2); cancels a common frame error
    rel_R = reg2.R @ reg1.R.transpose(-1, -2)
    rel_t = reg2.t - (reg2.s / reg1.s)[:, None] * (rel_R @ reg1.t[..., None])[..., 0]
    centre_dist = (cam2world[j, :3, 3] - cam2world[i, :3, 3]).norm(dim=-1)
    med_depth = torch.stack([depth[f][valid[f]].median() for f in i.tolist()])
    return {
        "rot_deg": rotation_error_deg(reg2.R, rel[:, :3, :3]),
        "trans_deg": direction_error_deg(reg2.t, rel[:, :3, 3]),
        "view1_rot_deg": rotation_error_deg(reg1.R, eye),
        "rel_rot_deg": rotation_error_deg(rel_R, rel[:, :3, :3]),
        "rel_trans_deg": direction_error_deg(rel_t, rel[:, :3, 3]),
        "baseline": centre_dist / med_depth,
    }


def prior_errors(cam2world: torch.Tensor, edges: torch.Tensor) -> dict[str, torch.Tensor]:
    """The "camera never turns" prior: ``R = I`` and camera ``j`` ahead of camera ``i`` (``t = (0, 0, -1)``)."""
    rel = inverse_se3(cam2world[edges[:, 1]].double()) @ cam2world[edges[:, 0]].double()
    eye = torch.eye(3, dtype=torch.float64).expand(len(edges), 3, 3)
    fwd = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64).expand(len(edges), 3)
    return {"rot_deg": rotation_error_deg(eye, rel[:, :3, :3]), "trans_deg": direction_error_deg(fwd, rel[:, :3, 3])}


def load_eval_clips(folder: Path, limit: int | None = None) -> list[dict]:
    """The packed clips of ``folder`` in their stored (not reversed) order, with their ground truth."""
    clips = []
    for path in packed_clips(folder)[:limit]:
        z, clip = load_packed_clip(path)
        pts, valid = pointmaps_in_first(clip.depth, clip.K, clip.cam2world)
        clips.append({"latents": z, "depth": clip.depth, "K": clip.K, "cam2world": clip.cam2world, "pts": pts,
                      "valid": valid, "name": clip.name})
    return clips


@torch.no_grad()
def evaluate(model, diffusion, clips: list[dict], *, t: int = 2, seed: int = 0) -> dict[str, float]:
    """Medians of :func:`pair_pose_errors` and the mean regression errors over ``clips``' pairs ``(0, j)``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rows: dict[str, list[torch.Tensor]] = {}
    regr = {"regr_1": [], "regr_2": []}
    for clip in clips:
        z0 = clip["latents"][None].to(device)
        f = z0.shape[2]
        edges = make_edges(f, SceneGraph.FIRST_TO_ALL)
        noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(seed)).to(device)
        tt = torch.full((1,), t, dtype=torch.long, device=device)
        z_t = diffusion.q_sample(z0, tt, noise)
        pm = model(z_t, tt, model.stdit.null_caption(1).to(device), None, edges=edges, compute_gen=False).pointmaps
        errs = pair_pose_errors(pm.pts3d_in_other_view[0].cpu(), pm.conf_in_other_view[0].cpu(), pm.pts3d[0].cpu(),
                                clip["depth"], clip["K"], clip["cam2world"], edges)
        for k, v in errs.items():
            rows.setdefault(k, []).append(v)
        e0, e1 = edges[:, 0], edges[:, 1]
        pts, valid = clip["pts"][None].to(device), clip["valid"][None].to(device)
        rec = reconstruction_loss(pm, pts[:, e0], pts[:, e1], valid[:, e0], valid[:, e1])
        regr["regr_1"].append(float(rec["regr_1"]))
        regr["regr_2"].append(float(rec["regr_2"]))
    model.train(was_training)
    out = {f"{k}_median": float(torch.cat(v).median()) for k, v in rows.items() if k != "baseline"}
    out["trans_deg_mean"] = float(torch.cat(rows["trans_deg"]).mean())
    out.update({k: sum(v) / len(v) for k, v in regr.items()})
    return out


@torch.no_grad()
def per_pair_report(model, diffusion, clips: list[dict], *, t: int = 2, seeds: int = 3) -> list[dict]:
    """Mean errors by second frame ``j`` of the pairs ``(0, j)``, over ``clips`` and ``seeds`` noise draws."""
    model.eval()
    rows: dict[int, list[dict]] = {}
    for seed in range(seeds):
        for clip in clips:
            z0 = clip["latents"][None]
            edges = make_edges(z0.shape[2], SceneGraph.FIRST_TO_ALL)
            noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(seed))
            tt = torch.full((1,), t, dtype=torch.long)
            pm = model(diffusion.q_sample(z0, tt, noise), tt, model.stdit.null_caption(1), None, edges=edges,
                       compute_gen=False).pointmaps
            errs = pair_pose_errors(pm.pts3d_in_other_view[0], pm.conf_in_other_view[0], pm.pts3d[0],
                                    clip["depth"], clip["K"], clip["cam2world"], edges)
            for p, j in enumerate(edges[:, 1].tolist()):
                rows.setdefault(j, []).append({k: float(v[p]) for k, v in errs.items()})
    return [{"j": j, **{k: sum(r[k] for r in rs) / len(rs) for k in rs[0]}} for j, rs in sorted(rows.items())]


def check_metric(clips: list[dict]) -> dict[str, float]:
    """The metric on the ground truth itself (must be ~0) and on the never-turns prior."""
    gt_rows, prior_rows, base = {}, {}, []
    for clip in clips:
        f = clip["depth"].shape[0]
        edges = make_edges(f, SceneGraph.FIRST_TO_ALL)
        pts = clip["pts"]
        errs = pair_pose_errors(pts[edges[:, 1]] * 3.0, torch.ones(len(edges), *pts.shape[1:3]), pts[edges[:, 0]],
                                clip["depth"], clip["K"], clip["cam2world"], edges)
        for k, v in errs.items():
            gt_rows.setdefault(k, []).append(v)
        for k, v in prior_errors(clip["cam2world"], edges).items():
            prior_rows.setdefault(k, []).append(v)
        base.append(errs["baseline"])
    med = lambda rows, k: float(torch.cat(rows[k]).median())  # noqa: E731
    return {"gt_rot_deg": med(gt_rows, "rot_deg"), "gt_trans_deg": med(gt_rows, "trans_deg"),
            "prior_rot_deg": med(prior_rows, "rot_deg"), "prior_trans_deg": med(prior_rows, "trans_deg"),
            "baseline_over_depth_median": float(torch.cat(base).median())}


def main(argv: list[str] | None = None) -> None:
    from jog3r.train.trainer import Trainer

    parser = argparse.ArgumentParser(prog="python -m jog3r.train.diagnose", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="packed folder (python -m jog3r.train.pack)")
    parser.add_argument("--out", type=Path, required=True, help="run folder (log.jsonl, diagnose.jsonl)")
    parser.add_argument("--mode", default="rec", choices=[m.value for m in TrainMode])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--num-pairs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-clips", type=int, default=None, help="evaluate on the first N clips (default all)")
    parser.add_argument("--check-gt", action="store_true", help="print the metric on the truth and the prior")
    parser.add_argument("--report", type=Path, default=None, metavar="MODEL_DIR",
                        help="no training: print the errors of a saved model (e.g. OUT/model) by pair (0, j)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                        help="extra TrainConfig field, e.g. --set rec_t_max=0 (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    clips = load_eval_clips(args.data, args.eval_clips)
    if args.check_gt:
        print(json.dumps(check_metric(clips)), flush=True)
    if args.report is not None:
        from jog3r.diffusion import GaussianDiffusion
        from jog3r.model import JOG3R

        print("j  baseline/depth  rot_deg  trans_deg  rel_rot_deg  rel_trans_deg  (mean over clips, 3 noise seeds)")
        for r in per_pair_report(JOG3R.from_pretrained(args.report), GaussianDiffusion(), clips):
            print(f"{r['j']:<2} {r['baseline']:.3f} {r['rot_deg']:.2f} {r['trans_deg']:.2f} {r['rel_rot_deg']:.2f} "
                  f"{r['rel_trans_deg']:.2f}")
        return
    extra = {}
    for item in args.set:
        key, _, value = item.partition("=")
        extra[key] = json.loads(value)
    cfg = TrainConfig(out=args.out, preset=args.preset, mode=TrainMode(args.mode), data=str(args.data),
                      steps=args.steps, batch_size=args.batch_size, num_pairs=args.num_pairs, lr=args.lr,
                      warmup_steps=args.warmup_steps, seed=args.seed, threads=args.threads, ema_decay=0.0,
                      ckpt_every=10**9, **extra)
    trainer = Trainer(cfg)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "diagnose.jsonl", "a") as log:
        start = time.perf_counter()
        while True:
            if trainer.step % args.eval_every == 0 or trainer.step == args.steps:
                row = {"step": trainer.step, "wall_s": round(time.perf_counter() - start, 1),
                       **evaluate(trainer.model, trainer.diffusion, clips)}
                log.write(json.dumps(row) + "\n")
                log.flush()
                print(json.dumps(row), flush=True)
            if trainer.step >= args.steps:
                break
            rec = trainer.train_step()
            if trainer.step % 10 == 0:
                keys = ("loss_total", "loss_rec", "regr_1", "regr_2", "loss_gen", "step_time")
                print(json.dumps({"step": trainer.step, **{k: round(rec[k], 4) for k in keys if k in rec}}),
                      flush=True)
            if not math.isfinite(rec["loss_total"]):
                break
    trainer.model.save_pretrained(args.out / "model")  # raw weights, for a later look at the point maps


if __name__ == "__main__":
    main()
