"""T2V quality of the embedded default: temporal coherence and latent statistics of generated videos (issue #20).

For each prompt (default: three of ``assets/prompts.txt``, written for this project, not synthetic training
captions), generates a video with ``JOG3RPipeline.text_to_video`` as ``jog3r t2v`` does (DDIM 25 steps, CFG 7,
seed 0) and prints the mean Pearson correlation of consecutive grey frames (goal >= 0.6; a RealEstate10K window
scores ~0.68), the latent std (training latents: 0.98) and the wall time. ``--reference`` also runs OpenSora's
reference sampling (the model folder's ``sampling.json`` ignored) for comparison. ``--strip`` saves every third
frame of each video as one JPEG (rows = prompts).

    python benchmarks/t2v_quality.py --threads 1 --reference --strip docs/images/t2v_strip.jpg
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from jog3r.diffusion import SamplingOptions
from jog3r.pipeline import JOG3RPipeline

PROMPTS = [
    "a living room with a fireplace and a bookshelf",
    "a kitchen with an island and pendant lights",
    "a staircase in a bright house",
]


def grey_frame_correlation(frames: torch.Tensor) -> float:
    """Mean Pearson correlation of consecutive grey frames; ``frames [F, 3, H, W]`` in ``[0, 1]``."""
    grey = (frames * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1).flatten(1).double()
    return float(np.mean([np.corrcoef(grey[i], grey[i + 1])[0, 1] for i in range(len(grey) - 1)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="model folder (default: the embedded default)")
    parser.add_argument("--prompts", nargs="*", default=PROMPTS)
    parser.add_argument("--sampler", default="ddim")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reference", action="store_true", help="also run OpenSora's reference sampling")
    parser.add_argument("--strip", type=Path, default=None, help="save a JPEG strip of the generated frames")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = JOG3RPipeline.from_pretrained(args.weights)
    own = pipe.sampling
    decode, latents = pipe.vae.decode, {}

    def spy(z):
        latents["z"] = z
        return decode(z)

    pipe.vae.decode = spy
    variants = [("model folder", own)] + ([("reference", SamplingOptions())] if args.reference else [])
    print(f"model: {pipe.name}; sampling.json: {own}; {args.sampler} {args.steps} steps, CFG {args.guidance}")
    print("| sampling | prompt | grey-frame corr. | latent std | s |\n|---|---|---|---|---|")
    rows = []
    for label, options in variants:
        pipe.sampling = options
        for prompt in args.prompts:
            start = time.perf_counter()
            out = pipe.text_to_video(prompt, seed=args.seed, sampler=args.sampler, steps=args.steps,
                                     guidance_scale=args.guidance)
            seconds = time.perf_counter() - start
            corr = grey_frame_correlation(out.video.frames)
            print(f"| {label} | {prompt} | {corr:.3f} | {float(latents['z'].std()):.2f} | {seconds:.1f} |", flush=True)
            rows.append(torch.cat(list(out.video.frames[::3]), dim=2))
    if args.strip is not None:
        import imageio.v3 as iio

        image = (torch.cat(rows, dim=1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        args.strip.parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(args.strip, image, quality=90)
        print(f"strip: {args.strip} (rows: {[label for label, _ in variants]} x prompts, every third frame)")


if __name__ == "__main__":
    main()
