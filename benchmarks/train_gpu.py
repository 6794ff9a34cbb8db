"""`jog3r train` on a GPU in every mode, for a short lent GPU slot (~10 minutes in all): does it run, how fast,
how much memory, does the loss fall.

For each preset and mode it runs the real entry point under ``torchrun --nproc_per_node 1`` (random weights,
synthetic data fed by the replay pool: clips rendered by CPU worker processes, encoded once on the GPU, drawn
while the pool grows; :mod:`jog3r.train.replay`) and prints, from the run's ``log.jsonl``: median step time
(steps after the third), peak GPU memory (``torch.cuda.max_memory_allocated``; the process's peak RSS on a
CPU), the mean ``L_total`` of the first and last fifth of the steps and whether it fell, and the pool's size and
encoding rate. Results are printed as each run ends (a slot cut short
still reports what finished) and written to ``<out>/summary.json``.

Presets:
  * ``tiny``: the embedded default's architecture, 16 x 128 x 192, TAEF2 + MiniLM;
  * ``opensora``: ``opensora-1.0-16x256`` (STDiT-XL/2, 28 blocks, width 1152, 6-block decoder at width 768),
    16 x 256 x 256, with its latent and caption inputs resized to the embedded TAEF2 (32 channels) and MiniLM
    (384 x 32) encoders (``--model-overrides``): the same network apart from ``x_embedder`` / ``y_embedder``,
    since the SD-VAE and T5-XXL weights are not in the repository.

    python benchmarks/train_gpu.py                       # on a CUDA machine, ~10 minutes
    python benchmarks/train_gpu.py --smoke               # CPU check of this script (micro preset, ~2 minutes)
    python benchmarks/train_gpu.py --presets tiny --modes joint --steps 200
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODES = ["joint", "frozen-rec", "gen", "rec"]
OPENSORA_IO = ["--model-overrides", "stdit.in_channels", "32", "stdit.caption_channels", "384",
               "stdit.model_max_length", "32"]

PRESETS = {
    # name: (jog3r train options, steps, per-run timeout s)
    "tiny": (["--preset", "tiny", "--batch-size", "16", "--num-pairs", "8", "--lr", "4e-4",
              "--replay-pool", "2048", "--replay-workers", "12", "--replay-warmup", "32"], 40, 120),
    "opensora": (["--preset", "opensora-1.0-16x256", *OPENSORA_IO, "--batch-size", "2", "--lr", "1e-4",
                  "--replay-pool", "512", "--replay-workers", "12", "--replay-warmup", "8"], 20, 180),
}
SMOKE = {
    "micro": (["--preset", "micro", "--num-frames", "4", "--height", "32", "--width", "48", "--batch-size", "2",
               "--lr", "1e-3", "--replay-pool", "16", "--replay-workers", "1", "--replay-warmup", "2",
               "--threads", "1"], 4, 300),
    "micro-wide": (["--preset", "micro", "--num-frames", "4", "--height", "32", "--width", "48",
                    "--model-overrides", "dec_embed_dim", "64", "--batch-size", "2", "--lr", "1e-3",
                    "--replay-pool", "16", "--replay-workers", "1", "--replay-warmup", "2", "--threads", "1"], 4, 300),
}


def summarise(log_path: Path) -> dict:
    """Figures of one run from its ``log.jsonl`` (empty dict if it logged nothing)."""
    if not log_path.exists():
        return {}
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    if not rows:
        return {}
    times = [r["step_time"] for r in rows[3:]] or [r["step_time"] for r in rows]
    fifth = max(1, len(rows) // 5)
    first = statistics.fmean(r["loss_total"] for r in rows[:fifth])
    last = statistics.fmean(r["loss_total"] for r in rows[-fifth:])
    out = {"steps": len(rows), "step_s_median": statistics.median(times), "mem_gib_peak": max(r["mem_mb"] for r in rows) / 1024,
           "loss_first": first, "loss_last": last, "loss_falls": last < first}
    for key in ("pool_size", "pool_total", "pool_clips_per_s"):
        if key in rows[-1]:
            out[key] = rows[-1][key]
    return out


def run_one(name: str, mode: str, options: list[str], steps: int, timeout: int, out: Path, device: str) -> dict:
    run_dir = out / f"{name}-{mode}"
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)  # a fresh run every time
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--standalone",
           "-m", "jog3r.train", *options, "--mode", mode, "--data", "synth", "--steps", str(steps),
           "--warmup-steps", "5", "--ckpt-every", str(steps), "--keep-checkpoints", "1", "--device", device,
           "--out", str(run_dir)]
    start = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "4")}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        rc, tail = proc.returncode, (proc.stderr or "").strip().splitlines()[-3:]
    except subprocess.TimeoutExpired as exc:
        rc, tail = "timeout", ((exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes)
                               else (exc.stderr or "")).strip().splitlines()[-3:]
    result = {"preset": name, "mode": mode, "rc": rc, "wall_s": time.perf_counter() - start,
              **summarise(run_dir / "log.jsonl"), "final": (run_dir / "final" / "model.safetensors").exists()}
    if rc != 0:
        result["error_tail"] = tail
    import shutil

    for heavy in ("checkpoints", "final"):  # ~10 GB per OpenSora-size run: keep the disk free, keep log.jsonl
        shutil.rmtree(run_dir / heavy, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="CPU check: micro preset, tiny sizes, 4 steps")
    parser.add_argument("--presets", nargs="*", default=None, help="subset of the presets (default all)")
    parser.add_argument("--modes", nargs="*", default=MODES, choices=MODES)
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default per preset)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/jog3r_train_gpu"), help="run folders and summary")
    args = parser.parse_args(argv)
    table = SMOKE if args.smoke else PRESETS
    device = "cpu" if args.smoke else "cuda"
    names = args.presets or list(table)
    unknown = sorted(set(names) - set(table))
    if unknown:
        parser.error(f"unknown preset(s) {unknown}; choose from {sorted(table)}")
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here; run with --smoke for the CPU check of this script")
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    print(f"torch {torch.__version__}, device {gpu}", flush=True)
    print(f"{'preset':<11} {'mode':<10} {'rc':>7} {'steps':>5} {'s/step':>7} {'GiB':>6} {'L first':>8} {'L last':>8} "
          f"{'falls':>5} {'pool':>5} {'clips/s':>7} {'wall s':>6}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        options, steps, timeout = table[name]
        for mode in args.modes:
            r = run_one(name, mode, options, args.steps or steps, timeout, args.out, device)
            results.append(r)
            (args.out / "summary.json").write_text(json.dumps(results, indent=1))
            print(f"{name:<11} {mode:<10} {str(r['rc']):>7} {r.get('steps', 0):>5} {r.get('step_s_median', float('nan')):>7.3f} "
                  f"{r.get('mem_gib_peak', float('nan')):>6.1f} {r.get('loss_first', float('nan')):>8.4f} "
                  f"{r.get('loss_last', float('nan')):>8.4f} {str(r.get('loss_falls', '-')):>5} "
                  f"{r.get('pool_size', 0):>5.0f} {r.get('pool_clips_per_s', 0):>7.2f} {r['wall_s']:>6.0f}", flush=True)
            if r["rc"] != 0:
                print("   " + "\n   ".join(r.get("error_tail", [])), flush=True)
    ok = all(r["rc"] == 0 and r.get("final") for r in results)
    print(f"{'all runs finished' if ok else 'SOME RUNS FAILED'}; summary in {args.out / 'summary.json'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
