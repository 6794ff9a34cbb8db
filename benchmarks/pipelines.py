"""Per-stage time and peak memory of V2C (the paper's, ``matches="none"``, and the default with correspondences) on a 16-frame real
clip, of T2V and of MEt3R, on the embedded default (CPU).

    python benchmarks/pipelines.py                 # 2 threads (the project's target machine: 2 cores)
    python benchmarks/pipelines.py --threads 1 --weights runs/tiny/final

Peak memory is the process's maximum resident set size after each job (``getrusage``), so it includes Python,
torch and the loaded model. The first V2C run is a warm-up and is not reported.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch

from jog3r.jobs import load_source_frames, load_video, met3r_of_video
from jog3r.pipeline import JOG3RPipeline

CLIP = Path(__file__).resolve().parents[1] / "tests/data/realestate10k/clips16_384x256/0bf152ef84195293.mp4"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--t2v-steps", type=int, default=25)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    pipe = JOG3RPipeline.from_pretrained(args.weights)
    print(f"model {pipe.info['name']}: {pipe.info['parameters']:,} parameters, {pipe.resolution} x "
          f"{pipe.num_frames} frames; load {time.perf_counter() - start:.1f} s; {args.threads} threads")
    start = time.perf_counter()
    video, info = load_video(pipe, CLIP)
    read_s = time.perf_counter() - start
    print(f"read + resize the clip: {read_s:.2f} s ({info['message']})")
    pipe.video_to_cameras(video, matches="none")  # warm-up
    runs = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = pipe.video_to_cameras(video, matches="none")
        runs.append((time.perf_counter() - start, out.timings))
    best, timings = min(runs, key=lambda r: r[0])
    stages = ", ".join(f"{k} {v:.2f}" for k, v in timings.items() if k != "total")
    print(f"V2C (paper, matches='none'), {video.num_frames} frames at {video.size[1]}x{video.size[0]}: {best:.2f} s end to end "
          f"(best of {args.repeats}; read {read_s:.2f} s not included) - {stages}; peak RSS {peak_rss_mb():.0f} MiB")
    source = load_source_frames(pipe, CLIP, video, info)  # as the CLI and the app do
    runs = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = pipe.video_to_cameras(video, source_frames=source)
        runs.append((time.perf_counter() - start, out.timings))
    best, timings = min(runs, key=lambda r: r[0])
    print(f"V2C default (point maps + correspondences, matching at {source.shape[-1]}x{source.shape[-2]}): "
          f"{best:.2f} s end to end, of which matches + joint alignment {timings['matches']:.2f} s (best of "
          f"{args.repeats}); "
          f"peak RSS {peak_rss_mb():.0f} MiB")
    start = time.perf_counter()
    t2v = pipe.text_to_video("a living room with a couch and a television", sampler="ddim", steps=args.t2v_steps)
    total = time.perf_counter() - start
    stages = ", ".join(f"{k} {v:.2f}" for k, v in t2v.timings.items() if k != "total")
    print(f"T2V, DDIM {args.t2v_steps} steps with CFG: {total:.2f} s - {stages}; peak RSS {peak_rss_mb():.0f} MiB")
    start = time.perf_counter()
    res = met3r_of_video(pipe, video, backbone="taef2")
    print(f"MEt3R (taef2) of the clip: {time.perf_counter() - start:.2f} s, score {res.score:.4f}; "
          f"peak RSS {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
