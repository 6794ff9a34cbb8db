"""Long-video V2C (issue 16): one camera per frame on a synthetic walkthrough, scored on all frame pairs.

    python benchmarks/v2c_long.py                       # 60 / 120 / 240 frames
    python benchmarks/v2c_long.py --frames 60 120 240 480
    python benchmarks/v2c_long.py --frames 60 120 240 480 --fox --plot docs/images/v2c_long.html

The clip is ``jog3r.data.synth`` seed 950000000 (the embedded model trained on seeds 0-999, its synthetic test split
is 900000000-7), rendered at 256x384 (the source) with the generator's exact cameras; the model sees it resized to
its 128x192, SIFT matches the 256x384 frames (upscaled 2x). Each length runs in a fresh process (one thread) so the
peak memory (``resource.getrusage``, max RSS) is its own. Prints one table row per length: mAA@30 / RRA@5 / RTA@5
over all frame pairs, the linked windows' cameras before the global alignment, seconds per frame end to end
(model + alignment + matching + global solve; rendering not counted), the estimate quoted before the run (exports
excluded, at the :func:`jog3r.jobs.cost.machine_speed` measured just before), peak RSS. ``--fox`` adds the 50 real frames of the instant-ngp fox capture (``tests/data/instant_ngp_fox``,
``transforms_images_4.json``: 480x270 portrait, centre-cropped to the model's aspect as ``jog3r v2c`` does, 270x180
matched), scored on all pairs against its nerfstudio cameras. ``--plot FILE.html`` writes mAA@30 and seconds per
frame against the frame count (plotly).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SEED = 950000000


def clip(n: int, cache: Path):
    import torch

    from jog3r.data.synth.generate import SynthConfig, generate_clip
    path = cache / f"clip_{SEED}_{n}.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    c = generate_clip(SEED, SynthConfig(height=256, width=384, num_frames=n))
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(c, path)
    return c


FOX = Path(__file__).resolve().parents[1] / "tests" / "data" / "instant_ngp_fox" / "transforms_images_4.json"


def one(n: int, cache: Path) -> dict:
    """One row: ``n`` frames of the synthetic walkthrough, or the fox capture for ``n == 0``."""
    import torch
    torch.set_num_threads(1)
    from jog3r.io.video import crop_to_aspect, resize_and_center_crop
    from jog3r.long_v2c import estimate_long_cost, long_config, long_video_to_cameras
    from jog3r.metrics.pose import pose_metrics
    from jog3r.pipeline import JOG3RPipeline
    from jog3r.types import Video
    pipe = JOG3RPipeline.from_pretrained()
    if n == 0:
        from jog3r.data.datasets import load_transforms_json
        c = load_transforms_json(FOX)
        src = (crop_to_aspect(c.frames, pipe.resolution) * 255).round().to(torch.uint8)
        n, name = c.num_frames, "fox"
    else:
        name = "synthetic"
        c = clip(n, cache)
        src = (c.frames * 255).round().to(torch.uint8)
    gt = c.cam2world
    del c
    video = Video(frames=resize_and_center_crop(src.float() / 255, pipe.resolution), frame_indices=torch.arange(n))
    from jog3r.jobs.cost import machine_speed
    speed = machine_speed()
    est = estimate_long_cost(pipe, n, match_size=tuple(src.shape[-2:]), speed=speed, exports=False)
    t0, cpu0 = time.perf_counter(), time.process_time()
    # the fox is a photo set: no constant-angular-velocity prior, as `jog3r v2c` does for an image folder
    out = long_video_to_cameras(pipe, video, source_frames=src, config=long_config(video=name != "fox"))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    m = pose_metrics(out.reconstruction.cam2world, gt, pairs="all")
    from jog3r.align.windows import WindowedAligner  # noqa: F401
    info = out.match_info
    return {"frames": n, "clip": name, "windows": info["windows"], "status": info["status"], "iterations": info.get("iterations"),
            "mAA@30": float(m["mAA@30"]), "RRA@5": float(m["RRA@5"]), "RTA@5": float(m["RTA@5"]),
            "rot_err": float(m["Rot. err."]), "trans_err": float(m["Trans. err."]),
            "wall_s": wall, "cpu_s": cpu, "s_per_frame": wall / n, "estimate_s": est["seconds"],
            "estimate_mb": est["memory_mb"], "timings": out.timings, "speed": speed, "estimate_stages": est["stages"],
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cloud_px": info.get("cloud_reprojection_px"), "matches": info["matches"],
            "rejected": [f"{x['start']}-{x['end'] - 1}" for x in info["links"] if x.get("rejected")],
            "rotation_only_steps": info.get("rotation_only_steps"), "fallback_steps": info.get("fallback_steps"),
            "track_pairs": info.get("track_pairs"), "translation_pairs": info.get("translation_pairs"),
            "depth_sign_flips": info.get("depth_sign_flips")}


def plot(rows: list[dict], path: Path) -> None:
    """mAA@30 and seconds per frame against the frame count (synthetic rows; the fox as single markers), plotly."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    syn = [r for r in rows if r.get("clip", "synthetic") == "synthetic"]
    fox = [r for r in rows if r.get("clip") == "fox"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("mAA@30 (all frame pairs)", "seconds per frame (2 CPU cores)"))
    for col, key in ((1, "mAA@30"), (2, "s_per_frame")):
        fig.add_trace(go.Scatter(x=[r["frames"] for r in syn], y=[r[key] for r in syn], mode="lines+markers",
                                 name="synthetic walkthrough", showlegend=col == 1, line={"color": "#1f77b4"}), 1, col)
        if fox:
            fig.add_trace(go.Scatter(x=[r["frames"] for r in fox], y=[r[key] for r in fox], mode="markers",
                                     name="instant-ngp fox (real)", showlegend=col == 1,
                                     marker={"color": "#d62728", "size": 10, "symbol": "diamond"}), 1, col)
        fig.update_xaxes(title_text="frames", type="log", row=1, col=col)
    fig.add_hline(y=60, line_dash="dot", annotation_text="goal at 240 frames", row=1, col=1)
    fig.add_hline(y=1.0, line_dash="dot", annotation_text="goal", row=1, col=2)
    fig.update_yaxes(range=[0, 100], row=1, col=1)
    fig.update_layout(title="Long-video V2C (benchmarks/v2c_long.py)", width=1000, height=420)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs="cdn")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[60, 120, 240])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/jog3r_v2c_long"))
    ap.add_argument("--fox", action="store_true", help="add the 50-frame instant-ngp fox capture")
    ap.add_argument("--plot", type=Path, help="write the plot of the table to this .html file")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if a.one is not None:
        print("RESULT " + json.dumps(one(a.one, a.cache)))
        return
    rows = []
    for n in a.frames + ([0] if a.fox else []):  # 0: the fox capture
        proc = subprocess.run([sys.executable, __file__, "--one", str(n), "--cache", str(a.cache)],
                              capture_output=True, text=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if not line:
            print(f"{n or 'fox'} frames failed:\n{proc.stderr[-2000:]}")
            continue
        r = json.loads(line[0][7:])
        rows.append(r)
        t = r["timings"]
        stages = ", ".join(f"{k} {v:.1f}" for k, v in t.items() if k != "total")
        print(f"{r['clip']} {r['frames']} frames: {r['status']}, {r['iterations']} LM steps, {r['matches']} matches; seconds: "
              f"{stages} (estimate {r['estimate_s']:.0f} at speed {r['speed']:.2f}); CPU {r['cpu_s']:.1f} s; rejected windows {r['rejected'] or 'none'}, rotation-only "
              f"steps {r['rotation_only_steps']}, steps from the windows {r['fallback_steps']}, track pairs "
              f"{r['track_pairs']}, translation pairs {r['translation_pairs']}, translation signs from the depth "
              f"{r.get('depth_sign_flips')}", flush=True)
    print("\n| clip | frames | windows | mAA@30 | RRA@5 | RTA@5 | rot. err. (deg) | transl. err. (deg) | s / frame | "
          "wall s (estimate) | peak RSS GiB | cloud reproj. px |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clip']} | {r['frames']} | {r['windows']} | {r['mAA@30']:.1f} | {r['RRA@5']:.1f} | {r['RTA@5']:.1f} | "
              f"{r['rot_err']:.2f} | {r['trans_err']:.2f} | {r['s_per_frame']:.2f} | {r['wall_s']:.0f} "
              f"({r['estimate_s']:.0f}) | {r['peak_mb'] / 1024:.2f} | {r['cloud_px']:.2f} |")
    if a.json_out:
        a.json_out.write_text(json.dumps(rows, indent=1))
    if a.plot:
        plot(rows, a.plot)
        print(f"plot: {a.plot}")


if __name__ == "__main__":
    main()
