"""Synthetic-clip generation speed on one CPU thread: clips per minute at 16 frames of 256x256 and 128x192.

Run: ``python benchmarks/synth.py [--clips N]``. Prints one line per resolution.
"""

from __future__ import annotations

import argparse
import time

import torch

from jog3r.data.synth import SynthConfig, generate_clip


def main() -> None:
    """Time ``generate_clip`` (scene building, path, ray casting, shading, camera effects).

    Wall-clock and process-CPU rates are both printed: on a shared machine the wall rate drops when other
    processes compete for the core, the CPU-time rate does not.
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=12, help="clips timed per resolution")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generate_clip(10_000, SynthConfig())  # warm-up: loads the texture photographs once per process
    for h, w in ((256, 256), (128, 192)):
        cfg = SynthConfig(height=h, width=w, num_frames=16)
        start, cpu = time.perf_counter(), time.process_time()
        for seed in range(args.clips):
            generate_clip(seed, cfg)
        dt, dcpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"synth 16x{h}x{w}: {args.clips * 60 / dt:.1f} clips/min wall ({dt / args.clips:.2f} s/clip), "
              f"{args.clips * 60 / dcpu:.1f} clips/min of process CPU time; {args.threads} thread(s), {args.clips} clips")


if __name__ == "__main__":
    main()
