"""Global-alignment benchmark: DUSt3R's recipe vs the Gauss-Newton presets, same code, same process, one thread.

Cases (all 16 frames):

* ``golden``: ``tests/data/golden/ga_synth16_oneref_pairs.npz`` (96x128, 30 edges = symmetrised ``oneref-0``), with
  DUSt3R's own run (``ga_synth16_oneref_ref_result.json``) printed as a reference row;
* ``first-to-all@S``: synthetic scenes (:mod:`jog3r.align.synthetic`, golden-like noise) at ``S x S`` on the paper's
  15 ``(1 -> f)`` pairs;
* ``oneref-sym@S``: the same scenes on the golden's 30-edge symmetrised ``oneref-0`` graph;
* ``v2c@128x192``: the V2C use case, 15 pairs at 128x192.

Times are wall-clock and process CPU seconds of ``fit`` (init included); the machine may be shared, so the methods
of a case run back to back. Errors are PoseDiffusion's over all frame pairs (degrees); ``loss`` is the point-map term
of the objective (the regularisers of ``jog3r`` are excluded so the numbers compare).

Usage: ``python benchmarks/align.py [--cases golden first-to-all@256 ...] [--methods dust3r fast jog3r]``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
import tyro

from jog3r.align import ALIGN_PRESETS, AlignConfig, fit
from jog3r.align.synthetic import make_scene
from jog3r.metrics.pose import pose_metrics
from jog3r.types import PairwisePointmaps

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "data" / "golden"
ALL_CASES = ("golden", "first-to-all@256", "first-to-all@512", "oneref-sym@256", "oneref-sym@512", "v2c@128x192")


@dataclasses.dataclass
class Args:
    """Benchmark options."""

    cases: tuple[str, ...] = ALL_CASES
    """Cases to run (see the module docstring)."""
    methods: tuple[str, ...] = ("dust3r", "fast", "jog3r")
    """ALIGN_PRESETS keys to compare; the first is the baseline of the speed-up column."""
    seed: int = 0
    """Seed of the synthetic scenes."""
    json_out: Path | None = None
    """Also write all rows to this JSON file."""


def _load_case(name: str, seed: int) -> tuple[PairwisePointmaps, torch.Tensor, torch.Tensor, dict]:
    """Point maps, GT cam2world, GT focals and config overrides of a case."""
    if name == "golden":
        p = np.load(GOLDEN / "ga_synth16_oneref_pairs.npz")
        pm = PairwisePointmaps(
            pts3d=torch.from_numpy(p["pred1_pts3d"])[None],
            conf=torch.from_numpy(p["pred1_conf"])[None],
            pts3d_in_other_view=torch.from_numpy(p["pred2_pts3d_in_other_view"])[None],
            conf_in_other_view=torch.from_numpy(p["pred2_conf"])[None],
            edges=torch.from_numpy(p["edges"]),
        )
        H, W = p["imshapes"][0]
        # generated with DUSt3R's integer pixel centres: its principal point (W/2, H/2) is (W/2+.5, H/2+.5) here
        overrides = {"principal_point": (W / 2 + 0.5, H / 2 + 0.5)}
        return pm, torch.from_numpy(p["gt_cam2world"]).float(), torch.from_numpy(p["gt_focals"]).float(), overrides
    graph, size = name.split("@")
    H, W = (int(v) for v in size.split("x")) if "x" in size else (int(size), int(size))
    if graph == "v2c":
        scene = make_scene(16, H, W, graph="first-to-all", seed=seed)
    elif graph == "first-to-all":
        scene = make_scene(16, H, W, graph="first-to-all", seed=seed)
    elif graph == "oneref-sym":
        scene = make_scene(16, H, W, graph="oneref", symmetrize=True, seed=seed)
    else:
        raise ValueError(f"unknown case {name!r}; choose from {ALL_CASES}")
    return scene.pointmaps, scene.cam2world, scene.K[:, 0, 0], {}


def _run(pm: PairwisePointmaps, gt: torch.Tensor, gt_focal: torch.Tensor, config: AlignConfig) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    rec, hist = fit(pm, None, config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    m = pose_metrics(rec.cam2world, gt)
    return {
        "wall_s": wall, "cpu_s": cpu, "iters": hist["iter"][-1], "init_loss": hist["pointmap"][0],
        "loss": hist["pointmap"][-1], "rot_err": m["Rot. err."], "trans_err": m["Trans. err."], "RRA@5": m["RRA@5"],
        "RTA@5": m["RTA@5"], "mAA@30": m["mAA@30"],
        "focal_rel_err": float(((rec.focal - gt_focal).abs() / gt_focal).mean()),
    }


def main(args: Args) -> None:
    """Run every case with every method and print one table per case."""
    torch.set_num_threads(1)
    rows = []
    header = (f"{'method':<12}{'wall s':>8}{'cpu s':>8}{'iters':>6}{'loss init':>11}{'loss':>10}{'rot deg':>9}"
              f"{'transl deg':>11}{'RRA@5':>7}{'RTA@5':>7}{'mAA@30':>8}{'focal err':>10}{'x wall':>8}{'x cpu':>7}")
    for case in args.cases:
        pm, gt, gt_focal, overrides = _load_case(case, args.seed)
        P, H, W = pm.pts3d.shape[1:4]
        print(f"\n== {case}: 16 frames, {P} edges, {H}x{W}")
        print(header)
        if case == "golden":
            ref = json.loads((GOLDEN / "ga_synth16_oneref_ref_result.json").read_text())
            fin = ref["metrics_final_vs_gt"]
            print(f"{'DUSt3R ref':<12}{ref['timings_s']['compute_global_alignment']:>8.2f}{'':>8}{300:>6}"
                  f"{ref['loss']['init']:>11.6f}{ref['loss']['final_eval_after_last_step']:>10.6f}"
                  f"{fin['rel_rot_err_deg']['mean']:>9.4f}{fin['rel_trans_angle_err_deg']['mean']:>11.4f}"
                  f"{fin['RRA@5']:>7.1f}{fin['RTA@5']:>7.1f}{fin['mAA@30']:>8.2f}{fin['focal_rel_err']['mean']:>10.1e}"
                  "   (DUSt3R's PointCloudOptimizer, other machine)")
        base = None
        for method in args.methods:
            r = _run(pm, gt, gt_focal, ALIGN_PRESETS[method].replace(**overrides))
            base = base or r
            r.update(case=case, method=method, speedup_wall=base["wall_s"] / r["wall_s"],
                     speedup_cpu=base["cpu_s"] / r["cpu_s"])
            rows.append(r)
            print(f"{method:<12}{r['wall_s']:>8.2f}{r['cpu_s']:>8.2f}{r['iters']:>6}{r['init_loss']:>11.6f}"
                  f"{r['loss']:>10.6f}{r['rot_err']:>9.4f}{r['trans_err']:>11.4f}{r['RRA@5']:>7.1f}{r['RTA@5']:>7.1f}"
                  f"{r['mAA@30']:>8.2f}{r['focal_rel_err']:>10.1e}{r['speedup_wall']:>8.1f}{r['speedup_cpu']:>7.1f}",
                  flush=True)
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(tyro.cli(Args))
