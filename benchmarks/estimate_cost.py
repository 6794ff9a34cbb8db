"""``JOG3RPipeline.estimate_cost`` against measured V2C runs (issue 17, B7): estimate and wall time per frame count.

    python benchmarks/estimate_cost.py                       # embedded default, 2 threads, F = 4 8 16 32 64
    python benchmarks/estimate_cost.py --frames 16 64 --threads 1 --weights runs/tiny/final

Each run is what the CLI and the app time for one upload: ``video_to_cameras`` (VAE, STDiT, decoder, global
alignment) plus ``export_all`` of its result (PLY, GLB, COLMAP, depth PNGs, ...), on synthetic posed clips at the
model's resolution (``jog3r.data.synth``, so any frame count up to ``max_frames`` exists). Model loading and video
decoding are not included. CPU seconds (``time.process_time``, all threads) are printed next to the wall time:
on a machine shared with other jobs the wall time grows with the load, the CPU time much less; with ``--threads 1``
on a quiet machine the two agree. CPU / estimate compares them; peak RSS is the process's maximum resident memory
so far (frame counts run in increasing order, so it is each count's peak, model and Python included).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch

from jog3r.data.synth import SynthConfig, generate_clip
from jog3r.io.export_bundle import export_all
from jog3r.pipeline import JOG3RPipeline
from jog3r.types import Video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = JOG3RPipeline.from_pretrained(args.weights)
    h, w = pipe.resolution
    print(f"model {pipe.info['name']}: {pipe.info['parameters']:,} parameters at {w}x{h}, max {pipe.max_frames} "
          f"frames; {args.threads} threads")
    warm = generate_clip(args.seed, SynthConfig(height=h, width=w, num_frames=4))
    pipe.video_to_cameras(Video(frames=warm.frames, fps=8.0))  # warm-up, not reported
    print("frames | estimate s | V2C wall s | export wall s | total wall s | total CPU s | CPU / estimate | "
          "estimate MB | peak RSS MB")
    for n in args.frames:
        clip = generate_clip(args.seed, SynthConfig(height=h, width=w, num_frames=n))
        cost = pipe.estimate_cost(n)
        estimate = cost["seconds"]
        cpu, start = time.process_time(), time.perf_counter()
        out = pipe.video_to_cameras(Video(frames=clip.frames, fps=8.0))
        v2c = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            export_all(out.reconstruction, tmp, video_frames=out.video.frames, fps=8.0)
            export = time.perf_counter() - start
        cpu = time.process_time() - cpu
        print(f"{n:6d} | {estimate:10.1f} | {v2c:10.2f} | {export:13.2f} | {v2c + export:12.2f} | {cpu:11.2f} | "
              f"{cpu / estimate:14.2f} | {cost['memory_mb']:11d} | "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}", flush=True)


if __name__ == "__main__":
    main()
