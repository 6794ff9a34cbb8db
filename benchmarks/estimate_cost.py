"""The time and memory quoted before a V2C run against the run itself, stage by stage (issues 16, 17).

    python benchmarks/estimate_cost.py                           # short 4 8 16 (synthetic), the fox (crop, pad), long 24 60
    python benchmarks/estimate_cost.py --short 16 --long 60 --fox pad
    python benchmarks/estimate_cost.py --short --long 60 120 --json-out /tmp/cost.json

Each case is what ``jog3r v2c`` runs for one upload (:func:`jog3r.jobs.estimate_cameras`: load, the default V2C with
correspondences, every export), in a fresh process (so its peak RSS is its own), on the embedded default with the
default threads: the synthetic walkthrough (``jog3r.data.synth`` seed 950000000, written as a 256x384 H.264 mp4, so
SIFT matches 256x384 frames upscaled 2x), and ``--fox crop|pad``: the 50 real 270x480 portrait frames of the
instant-ngp fox capture (``tests/data/instant_ngp_fox/images_4``; ``pad`` matches 480x720 frames, ``crop`` 180x270).
``--short N..`` run the 16-frame V2C on N frames, ``--long N..`` the long-video V2C (``jog3r v2c --frames N``).

Around each run :func:`jog3r.jobs.cost.machine_speed` is measured (before and after; their mean is ``speed``).
Printed per case: the estimate quoted before the run at the speed measured then (total and per stage), the run's
wall seconds per stage, those divided by ``speed`` and those times the run's CPU / wall ratio (two estimates of the
seconds on the quiet reference machine, which the constants are fitted to), CPU seconds, peak RSS against the
estimate. Model loading is not included.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = 950000000
FOX = Path(__file__).resolve().parents[1] / "tests" / "data" / "instant_ngp_fox" / "images_4"


def synthetic_mp4(n: int, cache: Path) -> Path:
    """The synthetic walkthrough's ``n`` frames as a 256x384 mp4 (cached; the rendered clip is
    ``benchmarks/v2c_long.py``'s, cached in ``/tmp/jog3r_v2c_long``)."""
    path = cache / f"walk_{SEED}_{n}.mp4"
    if not path.exists():
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from v2c_long import clip

        from jog3r.io.video import write_video
        cache.mkdir(parents=True, exist_ok=True)
        write_video(path, clip(n, Path("/tmp/jog3r_v2c_long")).frames, 8.0)
    return path


def one(spec: dict) -> dict:
    """Run one case (``{"clip": "synthetic"|"fox", "frames": n, "long": bool, "fit": "crop"|"pad"}``)."""
    import torch

    from jog3r.jobs import estimate_cameras
    from jog3r.jobs.cost import machine_speed
    from jog3r.jobs.v2c import plan_cost
    from jog3r.pipeline import JOG3RPipeline

    pipe = JOG3RPipeline.from_pretrained()
    n, long, fit = spec["frames"], spec["long"], spec.get("fit", "crop")
    path = FOX if spec["clip"] == "fox" else synthetic_mp4(n, Path(spec["cache"]))
    before = machine_speed()
    cost = plan_cost(pipe, path, n, long=long, fit=fit, speed=before)
    with tempfile.TemporaryDirectory() as tmp:
        cpu, start = time.process_time(), time.perf_counter()
        report = estimate_cameras(pipe, path, num_frames=n, fit=fit, long=long, export_dir=tmp, seed=0)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    after = machine_speed()
    speed = (before + after) / 2
    stages = {k: v for k, v in report.timings.items() if k not in ("total", "matches")}
    if not long and report.output.match_info is not None:  # the short run's correspondence stage, split
        stages.update(report.output.match_info.get("seconds", {}))
    return {**spec, "speed_before": before, "speed_after": after, "speed": speed, "wall_s": wall, "cpu_s": cpu,
            "threads": torch.get_num_threads(), "load_avg": os.getloadavg()[0], "estimate": cost,
            "stages_wall": stages, "stages_quiet": {k: v / speed for k, v in stages.items()},
            "stages_cpu": {k: v * cpu / wall for k, v in stages.items()},
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "match_size": report.output.match_info.get("match_size") if report.output.match_info else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short", type=int, nargs="*", default=None, help="frame counts of the 16-frame V2C")
    ap.add_argument("--long", type=int, nargs="*", default=None, help="frame counts of the long-video V2C")
    ap.add_argument("--fox", nargs="*", default=None, choices=["crop", "pad"], help="16 fox frames, crop and/or pad")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/jog3r_estimate_cost"))
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if a.one is not None:
        print("RESULT " + json.dumps(one(json.loads(a.one))))
        return
    if a.short is None and a.long is None and a.fox is None:
        a.short, a.long, a.fox = [4, 8, 16], [24, 60], ["crop", "pad"]
    specs = [{"clip": "synthetic", "frames": n, "long": False} for n in a.short or []]
    specs += [{"clip": "fox", "frames": 16, "long": False, "fit": f} for f in a.fox or []]
    specs += [{"clip": "synthetic", "frames": n, "long": True} for n in a.long or []]
    rows = []
    for spec in specs:
        spec["cache"] = str(a.cache)
        proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(spec)], capture_output=True, text=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if not line:
            print(f"{spec} failed:\n{proc.stderr[-3000:]}", flush=True)
            continue
        r = json.loads(line[0][7:])
        rows.append(r)
        e = r["estimate"]
        name = f"{r['clip']}{'/' + r.get('fit', 'crop') if r['clip'] == 'fox' else ''} {r['frames']} frames " \
               f"({'long' if r['long'] else 'one pass'}, matched at {r['match_size']})"
        print(f"{name}: speed {r['speed_before']:.2f} -> {r['speed_after']:.2f} (load avg {r['load_avg']:.1f}); "
              f"estimate {e['seconds']:.1f} s, run {r['wall_s']:.1f} s wall / {r['cpu_s']:.1f} s CPU; "
              f"peak RSS {r['peak_mb']:.0f} MB (estimate {e['memory_mb']} MB)", flush=True)
        keys = list(dict.fromkeys(list(e["stages"]) + list(r["stages_wall"])))
        print("   stage     | estimate s | run wall s | run / speed | run x CPU / wall", flush=True)
        for k in keys:
            est, run = e["stages"].get(k), r["stages_wall"].get(k)
            cells = ["-" if v is None else f"{v:.2f}" for v in (
                est, run, None if run is None else run / r["speed"], r["stages_cpu"].get(k))]
            print(f"   {k:9s} | {cells[0]:>10s} | {cells[1]:>10s} | {cells[2]:>11s} | {cells[3]:>16s}", flush=True)
    print("\nThe estimates are seconds of the quiet 2-core reference machine times the speed measured before the run "
          "(jog3r.jobs.cost.machine_speed); memory is peak RSS.")
    if a.json_out:
        a.json_out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
