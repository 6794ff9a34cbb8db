"""V2C on real video: mAA@30 of the default (point maps + correspondences) and of the paper's V2C (``--matches
none``) on the six RealEstate10K clips of ``tests/data/realestate10k`` in their three windows, and seconds per stage
of one 16-frame clip.

    python benchmarks/v2c_real.py                   # 2 threads, the embedded default
    python benchmarks/v2c_real.py --threads 1 --weights runs/tiny/final --windows clips16_384x256

Protocol (as ``jog3r eval``): 16 frames sampled uniformly per clip, no intrinsics given, all frame pairs
(PoseDiffusion protocol, :mod:`jog3r.metrics.pose`). Both methods share one model pass per clip: the paper's V2C is
``video_to_cameras(matches="none")`` and the default adds :func:`jog3r.align.joint.joint_align` on its result with
the same arguments the pipeline passes (source frames read as the CLI and the app read them). The point-cloud column
is the median reprojection error of each frame's points into the other frames at the model's resolution
(:func:`jog3r.align.joint.cloud_reprojection_px`, on the default's correspondences); the focal columns are the
estimated ``sqrt(fx fy)`` over the camera file's (adjusted to the model's resize and crop), mean over the frames,
and the summary gives the mean of ``|ratio - 1|``. The timing run is the
pipeline's own default call, best of ``--repeats``. Goal of issue 15: mAA@30 >= 90 per window, <= 6 s end to end.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from jog3r.align.joint import JointConfig, joint_align
from jog3r.align.refine import matching_frames
from jog3r.geometry.camera import adjust_intrinsics
from jog3r.io.re10k import read_re10k
from jog3r.metrics.pose import pose_metrics
from jog3r.jobs import load_source_frames, load_video
from jog3r.pipeline import JOG3RPipeline

DATA = Path(__file__).resolve().parents[1] / "tests/data/realestate10k"
WINDOWS = ["clips16_384x256", "clips25_576x320", "clips14_576x320"]


def _focal_ratio(K: torch.Tensor, K_true: torch.Tensor) -> float:
    """Mean over the frames of the estimated ``sqrt(fx fy)`` over the true one (both ``[F, 3, 3]``, same pixels)."""
    f = lambda k: torch.sqrt(k[:, 0, 0].double() * k[:, 1, 1].double())  # noqa: E731
    return float((f(K.cpu()) / f(K_true)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--windows", nargs="*", default=WINDOWS)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--num-frames", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = JOG3RPipeline.from_pretrained(args.weights)
    print(f"model {pipe.info['name']}, {args.threads} threads, {args.num_frames} frames per clip, all pairs, no K")
    rows = {}
    for window in args.windows:  # --windows with no name: the timing run only
        print(f"\n== {window}")
        print(f"{'clip':28s} {'paper mAA@30':>12s} {'default mAA@30':>14s} {'cloud px paper':>14s} "
              f"{'cloud px default':>16s} {'focal paper':>11s} {'focal default':>13s} {'matches':>8s} {'s joint':>8s}")
        for path in sorted((DATA / window).glob("*.mp4")):
            video, info = load_video(pipe, path, num_frames=args.num_frames)
            truth = read_re10k(path.with_suffix(".txt"), tuple(info.source_size))
            gt = torch.as_tensor(truth.cam2world, dtype=torch.float32)[video.frame_indices.long()]
            K_true = adjust_intrinsics(torch.as_tensor(truth.K, dtype=torch.float64)[video.frame_indices.long()],
                                       tuple(info.source_size), tuple(video.frames.shape[-2:]))
            source = load_source_frames(pipe, path, video, info, num_frames=args.num_frames)
            paper = pipe.video_to_cameras(video, matches="none")
            start = time.perf_counter()
            recon, jinfo = joint_align(paper.reconstruction, matching_frames(paper.video.frames, source),
                                       paper.pointmaps, JointConfig())
            seconds = time.perf_counter() - start
            m_paper = float(pose_metrics(paper.reconstruction.cam2world, gt, pairs="all")["mAA@30"])
            m_joint = float(pose_metrics(recon.cam2world, gt, pairs="all")["mAA@30"])
            f_paper = _focal_ratio(paper.reconstruction.K, K_true)
            f_joint = _focal_ratio(recon.K, K_true)
            rows.setdefault(window, []).append((m_paper, m_joint, abs(f_paper - 1), abs(f_joint - 1)))
            print(f"{path.stem:28s} {m_paper:12.2f} {m_joint:14.2f} {jinfo['cloud_reprojection_px_before']:14.2f} "
                  f"{jinfo.get('cloud_reprojection_px') or float('nan'):16.2f} {f_paper:11.2f} {f_joint:13.2f} "
                  f"{jinfo['matches']:8d} {seconds:8.2f}"
                  + ("" if jinfo["status"] == "aligned" else f"  ({jinfo['status']})"), flush=True)
    print("\n== mAA@30 (focal error: mean |estimated / true - 1|), mean over the clips of each window")
    print(f"{'window':18s} {'JOG3R V2C (paper)':>18s} {'point maps + correspondences (default)':>40s}")
    for window, vals in rows.items():
        a = np.array(vals)
        print(f"{window:18s} {a[:, 0].mean():8.2f} ({100 * a[:, 2].mean():5.1f} %) "
              f"{a[:, 1].mean():30.2f} ({100 * a[:, 3].mean():5.1f} %)")
    path = DATA / WINDOWS[0] / "0bf152ef84195293.mp4"
    video, info = load_video(pipe, path)
    runs = []
    for _ in range(args.repeats):
        start, cpu = time.perf_counter(), time.process_time()
        video, info = load_video(pipe, path)
        source = load_source_frames(pipe, path, video, info)
        read = time.perf_counter() - start
        out = pipe.video_to_cameras(video, source_frames=source)
        runs.append((time.perf_counter() - start, read, out.timings, out.match_info["seconds"],
                     time.process_time() - cpu))
    total, read, timings, joint, cpu = min(runs, key=lambda r: r[0])
    stages = ", ".join(f"{k} {v:.2f}" for k, v in timings.items() if k != "total")
    inner = ", ".join(f"{k} {v:.2f}" for k, v in joint.items())
    print(f"\n== seconds, 16-frame clip {path.stem} (best of {args.repeats}): {total:.2f} s end to end = read + "
          f"source frames {read:.2f}, {stages} (matches = {inner}); process CPU time {cpu:.2f} s "
          f"(wall time counts waiting for a busy machine's cores, CPU time does not)")


if __name__ == "__main__":
    main()
