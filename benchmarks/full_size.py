"""Full-size JOG3R (OpenSora-1.0 STDiT-XL/2 + 6-block DUSt3R decoder) shapes, speed and memory on a GPU.

Random weights (no checkpoint needed). For each preset it prints: parameter counts, one joint training step
(L_gen at B clips + L_rec on 4 pairs, AdamW, bf16 autocast, optional gradient checkpointing) and V2C on 16 frames
(features at t=2, 15 pairs (1 -> f), global alignment), with wall time and peak GPU memory.

    python benchmarks/full_size.py                      # on a CUDA machine
    python benchmarks/full_size.py --preset micro --device cpu   # smoke run of this script
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from jog3r.align.config import ALIGN_PRESETS
from jog3r.align.fit import fit
from jog3r.config import get_preset
from jog3r.diffusion import GaussianDiffusion
from jog3r.losses import reconstruction_loss, total_loss
from jog3r.model import JOG3R
from jog3r.recon.pairs import SceneGraph, make_edges


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")


def bench(preset: str, device: torch.device, batch: int, grad_ckpt: bool, repeats: int = 3) -> None:
    cfg = get_preset(preset)
    cfg = dataclasses.replace(cfg, stdit=dataclasses.replace(cfg.stdit, grad_checkpointing=grad_ckpt))
    with device:  # initialise the weights directly on the target device
        model = JOG3R(cfg)
    model.apply_freeze_policy()
    n_all = sum(p.numel() for p in model.parameters())
    n_dit = sum(p.numel() for p in model.stdit.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    s = cfg.stdit
    nf, h, w = s.input_size
    H, W = h * cfg.vae_factor, w * cfg.vae_factor
    print(f"\n== {preset}: {nf}x{H}x{W}, latent {s.in_channels}x{nf}x{h}x{w}, B={batch}, grad_ckpt={grad_ckpt}")
    print(f"parameters: total {n_all:,}, STDiT {n_dit:,}, decoder+heads {n_all - n_dit:,}, trainable {n_train:,}")
    diff = GaussianDiffusion()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    z0 = torch.randn(batch, s.in_channels, nf, h, w, device=device)
    y = torch.randn(batch, 1, s.model_max_length, s.caption_channels, device=device)
    mask = torch.ones(batch, s.model_max_length, dtype=torch.long, device=device)
    edges = torch.stack([torch.zeros(4, dtype=torch.long), torch.linspace(1, nf - 1, 4).round().long()], 1)
    gt = torch.randn(batch, 4, H, W, 3, device=device)
    gt[..., 2] = gt[..., 2].abs() + 1
    valid = torch.ones(batch, 4, H, W, dtype=torch.bool, device=device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        _sync(device)
        start = time.perf_counter()
        t = torch.randint(0, 1000, (batch,), device=device)
        noise = torch.randn_like(z0)
        zt = diff.q_sample(z0, t, noise)
        with amp:
            out = model(zt, t, y, mask, compute_rec=False)
        l_gen = diff.gen_loss(out.dit_out.float(), z0, zt, t, noise)["loss"]
        tr = torch.randint(0, 11, (batch,), device=device)
        with amp:
            res = model(diff.q_sample(z0, tr, noise), tr, model.stdit.null_caption(batch), None, edges=edges,
                        compute_gen=False)
        l_rec = reconstruction_loss(res.pointmaps, gt, gt, valid, valid)["loss"]
        total_loss(l_gen, l_rec).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        _sync(device)
        times.append(time.perf_counter() - start)
    print(f"joint train step: {min(times) * 1000:.0f} ms (best of {repeats}), peak memory {_peak_gib(device):.1f} GiB")
    model.eval()
    with torch.no_grad():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        _sync(device)
        start = time.perf_counter()
        tt = torch.full((1,), 2, device=device)
        with amp:
            feats = model(diff.q_sample(z0[:1], tt, noise[:1]), tt, model.stdit.null_caption(1), None,
                          compute_gen=False, compute_rec=False).features
            pm = model.decode_pointmaps(feats, make_edges(nf, SceneGraph.FIRST_TO_ALL))
        _sync(device)
        t_net = time.perf_counter() - start
        mem = _peak_gib(device)
    start = time.perf_counter()
    rec, hist = fit(pm.to("cpu"), None, ALIGN_PRESETS.get("jog3r", ALIGN_PRESETS["fast"]))
    t_align = time.perf_counter() - start
    print(f"V2C {nf} frames, {nf - 1} pairs: network {t_net * 1000:.0f} ms (peak {mem:.1f} GiB), "
          f"alignment {t_align:.1f} s on the CPU ({len(hist['loss'])} logged iterations), "
          f"cameras {tuple(rec.cam2world.shape)}, depth {tuple(rec.depth.shape)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", nargs="*", default=["opensora-1.0-16x256", "opensora-1.0-16x512"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        print(torch.cuda.get_device_name(device), "torch", torch.__version__)
    for preset in args.preset:
        for ckpt in ([False, True] if device.type == "cuda" else [False]):
            bench(preset, device, args.batch if "512" not in preset else 1, ckpt)


if __name__ == "__main__":
    main()
