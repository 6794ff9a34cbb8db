"""The joint fine-tune loop: ``L_total = L_gen + lambda * L_rec`` (JOG3R Sec. 3.2, implementation details 4.1).

One optimiser step on a micro-batch of clips does:

1. encode frames to VAE latents ``z0`` (or read them from a packed folder, :mod:`jog3r.train.pack`) and captions
   to caption tokens (frozen encoders, no grad);
2. ``L_gen`` (modes ``joint``/``gen``): ``t ~ U{0..999}``, ``z_t = q(z_t | z0)``, STDiT with the captions (10 %
   replaced by the null caption inside the model), OpenSora's MSE + learned-variance VB loss;
3. ``L_rec`` (modes ``joint``/``rec``/``frozen-rec``): ``t ~ U{0..rec_t_max}``, the null ("empty") prompt, STDiT
   run only up to the tapped block ``b^n``, decoder + head on ``num_pairs`` pairs sampled from ``(1 -> f)``,
   DUSt3R's confidence-weighted regression against the ground-truth points in the first camera (paper eq. 2);
4. backward of ``L_gen + lambda * L_rec``, gradient clipping, AdamW, EMA.

Because the reconstruction pass stops at the tap, blocks after ``b^n`` receive gradients only from ``L_gen``,
as the paper requires. All randomness of a step (data, timesteps, noise, pairs) derives from ``(seed, step)``,
so ``--resume`` continues with exactly the data order and loss curve of an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import math
import os
import pickle
import resource
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from jog3r.checkpoint import (
    config_to_dict,
    load_config,
    load_dust3r_checkpoint,
    load_opensora_checkpoint,
    load_state_dict_file,
)
from jog3r.components import build_text_encoder, build_vae, write_components
from jog3r.config import get_preset
from jog3r.diffusion import GaussianDiffusion, SamplingOptions, write_sampling_options
from jog3r.encode.taef2 import TAEF2VAE
from jog3r.losses import reconstruction_loss, relative_pose_loss, total_loss
from jog3r.model import CONFIG_NAME, JOG3R, WEIGHTS_NAME, JOG3RConfig
from jog3r.train.checkpoints import (
    new_tmp_dir,
    publish_checkpoint,
    read_state,
    resume_candidates,
    write_text_atomic,
    commit_dir,
)
from jog3r.train.config import TrainConfig, TrainMode
from jog3r.train.data import StepBatches, TrainBatch, build_batch_source
from jog3r.types import DiTFeatures

logger = logging.getLogger(__name__)


def _resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def _step_generator(seed: int, step: int, micro: int, device: torch.device) -> torch.Generator:
    """RNG of one micro-batch: a pure function of (seed, step, micro), which makes resume exact."""
    gen = torch.Generator(device=device)
    gen.manual_seed((seed * 1_000_003 + step * 1_009 + micro) % (2**63 - 1))
    return gen


def _memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def sample_rec_pairs(num_frames: int, num_pairs: int, gen: torch.Generator, *, min_gap: int = 1) -> torch.Tensor:
    """The ``(1 -> f)`` pairs of one ``L_rec`` step: ``min(num_pairs, F - min_gap)`` distinct ``f`` drawn from
    ``[min_gap, F - 1]`` (0-based; the paper's sampling for ``min_gap = 1``).

    Args:
        num_frames: frames per clip, ``F``.
        num_pairs: pairs wanted.
        gen: the step's generator (its device is used for the draw).
        min_gap: smallest frame gap.

    Returns:
        ``[P, 2]`` int64 CPU tensor of ``(0, f)`` rows, sorted by ``f``.
    """
    k = min(num_pairs, num_frames - min_gap)
    others = torch.randperm(num_frames - min_gap, generator=gen, device=gen.device)[:k] + min_gap
    return torch.stack([torch.zeros_like(others), others], dim=1).sort(dim=0).values.cpu()


class Trainer:
    """Runs a :class:`~jog3r.train.config.TrainConfig` to completion (see the module docstring).

    Args:
        config: the run's configuration.

    Raises:
        ValueError: on an inconsistent configuration (unknown preset, bad sizes, an existing run folder without
            ``--resume``).
        FileNotFoundError: on missing data, weights or encoder folders.
    """

    def __init__(self, config: TrainConfig):
        self._auto_decay = config.lr_schedule == "cosine" and not config.decay_steps
        if self._auto_decay:  # pin the horizon now, so a resume with more --steps keeps the curve
            config = dataclasses.replace(config, decay_steps=config.steps)
        if config.lr_schedule == "cosine":
            if config.decay_steps <= config.warmup_steps:
                raise ValueError(f"--decay-steps {config.decay_steps} must exceed --warmup-steps "
                                 f"{config.warmup_steps} (the cosine decays between the two)")
            if not 0 <= config.min_lr <= config.lr:
                raise ValueError(f"--min-lr {config.min_lr} must be in [0, --lr {config.lr}]")
        elif config.decay_steps or config.min_lr:
            raise ValueError("--decay-steps/--min-lr apply only with --lr-schedule cosine")
        if config.replay_pool > 0 and config.data != "synth":
            raise ValueError(f"--replay-pool works with --data synth only (got {config.data!r}); packed folders are "
                             "already encoded")
        if not 1 <= config.pair_min_gap < config.num_frames:
            raise ValueError(f"--pair-min-gap {config.pair_min_gap} must be in [1, --num-frames - 1 = "
                             f"{config.num_frames - 1}]")
        if not (config.pose_weight >= 0 and math.isfinite(config.pose_weight)):
            raise ValueError(f"--pose-weight must be a finite number >= 0, got {config.pose_weight}")
        self.cfg = config
        self.out = Path(config.out)
        self.device = _resolve_device(config.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.rank = int(os.environ.get("RANK", "0"))
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend)
            if self.device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
                torch.cuda.set_device(self.device)
        torch.manual_seed(config.seed)
        self.model = self._build_model().to(self.device)
        self._apply_mode()
        self.vae = build_vae(config.vae, device=str(self.device))
        self.text_encoder = build_text_encoder(
            config.text_encoder, device=str(self.device), max_length=self.model.config.stdit.model_max_length
        )
        self._check_compatible()
        self.diffusion = GaussianDiffusion()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError(f"mode {config.mode.value!r} leaves no trainable parameter")
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        self.ema = {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}
        h = config.height or self.model.config.stdit.input_size[1] * self.vae.downsample
        w = config.width or self.model.config.stdit.input_size[2] * self.vae.downsample
        self.batches = build_batch_source(config, height=h, width=w, rank=self.rank, world=self.world)
        self.size = (h, w)
        self.pool = None  # the replay pool starts with run() (renderer processes)
        packed_vae = getattr(self.batches, "vae_name", None)
        if packed_vae is not None and packed_vae != self.vae.name:
            raise ValueError(f"{config.data} was packed with the VAE {packed_vae!r} but the run uses "
                             f"{self.vae.name!r}; pass --vae accordingly or re-pack")
        self.step = 0
        self.latent_sq_sum, self.latent_count = 0.0, 0  # E[z0^2] of the latents trained on, for sampling.json

    # ------------------------------------------------------------------ set-up
    def _build_model(self) -> JOG3R:
        cfg = self.cfg
        if cfg.init is not None and cfg.model_overrides:
            model = init_with_overrides(cfg.init, cfg.model_overrides)
        elif cfg.init is not None:
            model = JOG3R.from_pretrained(cfg.init)
        else:
            jcfg = get_preset(cfg.preset)
            if cfg.grad_checkpointing:
                jcfg = dataclasses.replace(jcfg, stdit=dataclasses.replace(jcfg.stdit, grad_checkpointing=True))
            if cfg.caption_dropout != jcfg.stdit.class_dropout_prob:
                jcfg = dataclasses.replace(
                    jcfg, stdit=dataclasses.replace(jcfg.stdit, class_dropout_prob=cfg.caption_dropout)
                )
            model = JOG3R(_override(jcfg, cfg.model_overrides))
        if cfg.opensora_ckpt is not None:
            load_opensora_checkpoint(model.stdit, cfg.opensora_ckpt)
        if cfg.dust3r_ckpt is not None:
            load_dust3r_checkpoint(model, cfg.dust3r_ckpt)
        return model

    def _apply_mode(self) -> None:
        mode = self.cfg.mode
        self.model.apply_freeze_policy()
        if mode is TrainMode.FROZEN_REC:
            self.model.stdit.requires_grad_(False)
        elif mode is TrainMode.GEN:
            for name, p in self.model.named_parameters():
                if not name.startswith("stdit."):
                    p.requires_grad_(False)

    def _check_compatible(self) -> None:
        s = self.model.config.stdit
        if self.vae.latent_channels != s.in_channels:
            raise ValueError(
                f"VAE {self.vae.name!r} gives {self.vae.latent_channels} latent channels but the model expects "
                f"{s.in_channels}; pick the matching --vae or --preset"
            )
        if self.text_encoder.dim != s.caption_channels:
            raise ValueError(
                f"text encoder {self.text_encoder.name!r} gives {self.text_encoder.dim}-d tokens but the model "
                f"expects {s.caption_channels}; pick the matching --text-encoder or --preset"
            )

    # ------------------------------------------------------------------ one step
    def _lr(self, step: int) -> float:
        """Linear warm-up to ``lr``, then constant or cosine decay to ``min_lr`` (reached at ``decay_steps``)."""
        cfg = self.cfg
        warm = max(1, cfg.warmup_steps)
        if step + 1 < warm or cfg.lr_schedule == "constant":
            return cfg.lr * min(1.0, (step + 1) / warm)
        end = cfg.decay_steps or cfg.steps
        progress = min(1.0, max(0.0, (step + 1 - warm) / max(1, end - warm)))
        return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))

    def _losses(self, batch: TrainBatch, gen: torch.Generator) -> dict[str, torch.Tensor]:
        cfg, model = self.cfg, self.model
        if batch.latents is not None:  # packed data: encoded once by jog3r.train.pack
            z0 = batch.latents.to(self.device)
        else:
            video = batch.frames.to(self.device) * 2 - 1  # [B, 3, F, H, W] in [-1, 1]
            with torch.no_grad():
                z0 = self.vae.encode(video, generator=gen).x
        self.latent_sq_sum += float(z0.detach().double().pow(2).sum())
        self.latent_count += z0.numel()
        bsz = z0.shape[0]
        out: dict[str, torch.Tensor] = {}
        autocast = torch.autocast(
            device_type=self.device.type, dtype=torch.bfloat16,
            enabled=cfg.bf16 and self.device.type == "cuda" and torch.cuda.is_bf16_supported(),
        )
        l_gen = l_rec = None
        if cfg.mode.uses_gen:
            with torch.no_grad():
                y, mask = self.text_encoder.encode(batch.captions)
            t = torch.randint(0, self.diffusion.num_timesteps, (bsz,), generator=gen, device=self.device)
            noise = torch.randn(z0.shape, generator=gen, device=self.device)
            z_t = self.diffusion.q_sample(z0, t, noise)
            with autocast:  # the STDiT replaces 10 % of the captions by the null caption in training mode
                pred = model(z_t, t, y.to(self.device), mask.to(self.device), compute_rec=False)
            terms = self.diffusion.gen_loss(pred.dit_out.float(), z0, z_t, t, noise)
            l_gen = terms["loss"]
            out["loss_gen_mse"], out["loss_gen_vb"] = terms["mse"].detach(), terms["vb"].detach()
        if cfg.mode.uses_rec:
            f = z0.shape[2]
            t = torch.randint(0, cfg.rec_t_max + 1, (bsz,), generator=gen, device=self.device)
            noise = torch.randn(z0.shape, generator=gen, device=self.device)
            z_t = self.diffusion.q_sample(z0, t, noise)
            edges = sample_rec_pairs(f, cfg.num_pairs, gen, min_gap=cfg.pair_min_gap)
            with autocast:
                res = model(z_t, t, model.stdit.null_caption(bsz), None, edges=edges, compute_gen=False)
            pm = res.pointmaps
            pts = batch.pts3d.to(self.device)
            valid = batch.valid.to(self.device)
            e0, e1 = edges[:, 0].to(self.device), edges[:, 1].to(self.device)
            rec = reconstruction_loss(
                pm, pts[:, e0], pts[:, e1], valid[:, e0], valid[:, e1], alpha=cfg.conf_alpha
            )
            l_rec = rec["loss"]
            out["regr_1"], out["regr_2"] = rec["regr_1"], rec["regr_2"]
            if cfg.pose_weight > 0:  # optional, not in the paper (issue 18)
                cams = batch.cam2first.to(self.device)
                rel = torch.linalg.inv(cams[:, e0]) @ cams[:, e1]  # camera j -> camera i
                pose = relative_pose_loss(pm, pts[:, e0], pts[:, e1], rel, valid[:, e0], valid[:, e1])
                l_rec = l_rec + cfg.pose_weight * pose["loss"]
                out["loss_pose"] = pose["loss"].detach()
                out["pose_rot_deg"], out["pose_trans_deg"] = pose["pose_rot_deg"], pose["pose_trans_deg"]
        total = total_loss(l_gen, l_rec, lam=cfg.lam)
        out["loss_total"] = total
        if l_gen is not None:
            out["loss_gen"] = l_gen
        if l_rec is not None:
            out["loss_rec"] = l_rec
        return out

    def _update_ema(self) -> None:
        decay = self.cfg.ema_decay
        if decay <= 0:
            return
        if self.cfg.ema_warmup:  # self.step = updates done so far; a pure function of it keeps resume exact
            decay = min(decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                if name in self.ema:
                    self.ema[name].lerp_(p.detach(), 1 - decay)

    def train_step(self, batches: list[TrainBatch] | None = None) -> dict[str, float]:
        """Run one optimiser step (``grad_accum`` micro-batches) and return the logged scalars.

        Args:
            batches: the step's micro-batches (default: built now from the batch source).
        """
        cfg = self.cfg
        start = time.perf_counter()
        lr = self._lr(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        for micro in range(cfg.grad_accum):
            gen = _step_generator(cfg.seed + 7919 * self.rank, self.step, micro, self.device)
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device)))  # caption dropout
            batch = batches[micro] if batches is not None else self.batches(self.step, micro)
            losses = self._losses(batch, gen)
            total = losses["loss_total"]
            if not torch.isfinite(total):
                raise FloatingPointError(
                    f"non-finite loss at step {self.step}: "
                    + ", ".join(f"{k}={float(v):.4g}" for k, v in losses.items())
                    + "; lower --lr or check the data (no checkpoint was written for this step)"
                )
            (total / cfg.grad_accum).backward()
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) / cfg.grad_accum
        if self.world > 1:
            self._all_reduce_grads()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.optimizer.step()
        self._update_ema()
        self.step += 1
        elapsed = time.perf_counter() - start
        record = {"step": self.step, **sums, "grad_norm": float(grad_norm), "lr": lr, "step_time": elapsed,
                  "mem_mb": _memory_mb(self.device), "time": time.time()}
        return record

    def _all_reduce_grads(self) -> None:
        """Average gradients over processes (data parallel). Done by hand rather than with DDP because a step
        runs the STDiT twice (L_gen and L_rec passes) before one backward, which DDP's hooks do not allow."""
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            torch.distributed.all_reduce(p.grad)
            p.grad /= self.world

    # ------------------------------------------------------------------ checkpoints
    def _ema_state(self) -> dict[str, torch.Tensor]:
        state = {k: v.detach().clone().contiguous() for k, v in self.model.state_dict().items()}
        if self.cfg.ema_decay > 0:
            for name, value in self.ema.items():
                state[name] = value.detach().clone().contiguous()
        return state

    def _latent_state(self) -> dict:
        if not self.latent_count:
            return {}
        return {"latent_second_moment": self.latent_sq_sum / self.latent_count, "latent_count": self.latent_count}

    def _write_sampling(self, folder: Path) -> None:
        """``sampling.json`` with the eps gain correction, for models on TAEF2 latents (issue #20).

        A small model trained here shrinks its eps prediction at high ``t`` and samples colour noise with OpenSora's
        reference sampling; ``E[z0^2]`` of the latents it was trained on is all the correction needs. Models on
        OpenSora's VAE (and OpenSora checkpoints) get no file: the reference sampling.
        """
        if self.latent_count and isinstance(self.vae, TAEF2VAE) and self.cfg.opensora_ckpt is None:
            m2 = round(self.latent_sq_sum / self.latent_count, 4)
            write_sampling_options(folder, SamplingOptions(eps_gain_second_moment=m2))

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/step_XXXXXX`` atomically (rank 0 only) and return it."""
        if self.rank != 0:
            return None
        name = f"step_{self.step:06d}"
        tmp = new_tmp_dir(self.out / "checkpoints", name)
        self.model.save_pretrained(tmp)
        write_components(tmp, vae=self.cfg.vae, text_encoder=self.cfg.text_encoder)
        save_file({k: v.contiguous() for k, v in self.ema.items()}, str(tmp / "ema.safetensors"))
        torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
        self._write_sampling(tmp)
        (tmp / "trainer_state.json").write_text(json.dumps({"step": self.step, "seed": self.cfg.seed,
                                                            **self._latent_state()}))
        return publish_checkpoint(self.out, tmp, self.step, self.cfg.keep_checkpoints)

    def save_final(self) -> Path:
        """Write ``final/`` in ``from_pretrained`` layout with the EMA weights (rank 0 only)."""
        tmp = new_tmp_dir(self.out, "final")
        raw = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self._ema_state())
        try:
            self.model.save_pretrained(tmp)
        finally:
            self.model.load_state_dict(raw)
        write_components(tmp, vae=self.cfg.vae, text_encoder=self.cfg.text_encoder)
        self._write_sampling(tmp)
        (tmp / "trainer_state.json").write_text(json.dumps({"step": self.step, "ema_decay": self.cfg.ema_decay,
                                                            **self._latent_state()}))
        final = self.out / "final"
        commit_dir(tmp, final)
        return final

    def load_checkpoint(self, folder: Path) -> None:
        """Restore model, EMA, optimiser and step from a checkpoint folder."""
        weights = load_file(str(folder / "model.safetensors"))
        self.model.load_state_dict(weights)
        ema = load_file(str(folder / "ema.safetensors"))
        for name in self.ema:
            if name in ema:
                self.ema[name] = ema[name].to(self.device)
        self.optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location=self.device, weights_only=True))
        state = read_state(folder)
        self.step = int(state["step"])
        self.latent_count = int(state.get("latent_count", 0))
        self.latent_sq_sum = float(state.get("latent_second_moment", 0.0)) * self.latent_count

    # ------------------------------------------------------------------ loop
    def run(self) -> Path:
        """Train up to ``config.steps`` steps, logging and checkpointing; return the ``final/`` folder."""
        cfg = self.cfg
        if cfg.resume and not self.out.exists():
            self._check_resumable()  # raises: nothing to resume (a mistyped --out must not start a new run)
        self.out.mkdir(parents=True, exist_ok=True)
        log_path = self.out / "log.jsonl"
        if self.world > 1:
            torch.distributed.barrier()  # every rank has built its model before rank 0 touches the run folder
        started = (self.out / "checkpoints" / "latest").exists() or _logged_steps(log_path) > 0
        if cfg.resume:
            candidates = resume_candidates(self.out)
            if started:  # a run stopped before its first step has nothing to keep: it restarts with these options
                self._check_resumable()
                cfg = self.cfg  # may now carry the run's pinned cosine horizon (written back to train_config.json)
            folder = self._restore(candidates)
            if folder is not None:
                logger.info("resumed from %s at step %d%s", folder, self.step,
                            " (its weights replace the --init ones loaded above)" if cfg.init is not None else "")
            else:
                logger.warning("--resume: %s has no checkpoint yet (the run stopped before its first one): "
                               "starting at step 0", self.out)
            self._truncate_log(log_path)
        elif started:
            raise ValueError(f"{self.out} already holds a run; pass --resume to continue it or choose another --out")
        if self.rank == 0:
            write_text_atomic(self.out / "train_config.json", json.dumps(config_to_dict(cfg), indent=1, default=str))
        if self.world > 1:
            torch.distributed.barrier()  # rank 0 has checked the run folder before anyone writes into it
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {cfg.mode.value}", disable=self.rank != 0,
                   dynamic_ncols=True)
        if cfg.replay_pool > 0:
            from jog3r.train.replay import build_replay_pool

            self.pool = build_replay_pool(cfg, self.vae, self.device, height=self.size[0], width=self.size[1],
                                          rank=self.rank, world=self.world)
            self.pool.wait_for(max(cfg.batch_size, cfg.replay_warmup))
            micro_batches = (self.pool.sample(s, m, cfg.batch_size)
                             for s in range(self.step, cfg.steps) for m in range(cfg.grad_accum))
        else:
            loader = torch.utils.data.DataLoader(
                StepBatches(self.batches, self.step, cfg.steps, cfg.grad_accum), batch_size=None, shuffle=False,
                num_workers=cfg.num_workers, prefetch_factor=2 if cfg.num_workers else None,
                persistent_workers=False,
            )
            micro_batches = iter(loader)
        with open(log_path if self.rank == 0 else os.devnull, "a") as log:
            while self.step < cfg.steps:
                record = self.train_step([next(micro_batches) for _ in range(cfg.grad_accum)])
                if self.pool is not None:
                    record.update(self.pool.stats())
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss_total']:.4f}")
                if self.rank == 0 and (self.step % cfg.log_every == 0 or self.step == cfg.steps):
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                if self.step % cfg.ckpt_every == 0 or self.step == cfg.steps:
                    self.save_checkpoint()
        bar.close()
        if self.pool is not None:
            self.pool.close()
        final = self.save_final() if self.rank == 0 else self.out / "final"
        if self.world > 1:
            torch.distributed.destroy_process_group()
        return final

    def _restore(self, candidates: list[Path]) -> Path | None:
        """Load the first readable checkpoint of ``candidates`` (newest first); a damaged one (e.g. a
        ``model.safetensors`` truncated by a full disk) is skipped with a warning.

        Returns:
            The folder loaded, or ``None`` if ``candidates`` is empty.

        Raises:
            ValueError: if no candidate can be read, naming each one and why.
        """
        failures = []
        for folder in candidates:
            try:
                self.load_checkpoint(folder)
            except _UNREADABLE as exc:
                reason = f"{folder.name}: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
                failures.append(reason)
                logger.warning("cannot read checkpoint %s; falling back to the previous complete checkpoint", reason)
                continue
            if failures:
                logger.warning("resuming from %s instead of the damaged %s", folder.name,
                               ", ".join(f.split(":")[0] for f in failures))
            return folder
        if failures:
            raise ValueError(f"--resume: no readable checkpoint in {self.out / 'checkpoints'} ({'; '.join(failures)}); "
                             "delete the damaged folders to restart, or start a new run with another --out")
        return None

    def _check_resumable(self) -> None:
        """``--resume`` needs a run folder, and the same options as that run (else the run would not continue
        exactly). Options that do not change the computation (steps, threads, logging, ...) may differ.

        Raises:
            ValueError: if ``out`` holds no ``train_config.json`` or an option differs from the saved one.
        """
        saved_path = self.out / "train_config.json"
        if not saved_path.exists():
            raise ValueError(f"--resume: {self.out} is not a training run folder (no train_config.json); "
                             "start a new run without --resume")
        saved = json.loads(saved_path.read_text())
        defaults = json.loads(json.dumps(config_to_dict(TrainConfig()), default=str))
        saved = {**defaults, **saved}  # options added after the run started take their defaults
        if self._auto_decay and saved.get("decay_steps"):  # the horizon the run was started with
            self.cfg = dataclasses.replace(self.cfg, decay_steps=int(saved["decay_steps"]))
        current = json.loads(json.dumps(config_to_dict(self.cfg), default=str))
        free = {"resume", "steps", "threads", "num_workers", "device", "log_every", "ckpt_every", "keep_checkpoints", "out",
                "replay_workers", "replay_warmup"}
        diffs = [f"--{k.replace('_', '-')} {saved.get(k)!r} (now {v!r})" for k, v in current.items()
                 if k not in free and saved.get(k) != v]
        if diffs:
            raise ValueError("--resume must use the run's options; these differ from train_config.json: "
                             + "; ".join(diffs))

    def _truncate_log(self, log_path: Path) -> None:
        """Drop log records past the restored step (they belong to steps that will be re-run)."""
        if self.rank != 0 or not log_path.exists():
            return
        keep = []
        for line in log_path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= self.step:
                    keep.append(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
        write_text_atomic(log_path, "".join(k + "\n" for k in keep))


def init_with_overrides(init: str | os.PathLike, overrides: dict[str, str]) -> JOG3R:
    """A model whose config is ``init``'s with ``overrides`` applied (as :func:`_override`), initialised from
    ``init``'s weights wherever a tensor's name and shape still match, and freshly (the model's own init) elsewhere:
    e.g. ``--init assets/jog3r-tiny --model-overrides dec_embed_dim 256`` keeps the trained STDiT and starts a
    wider decoder from scratch (issue 18's decoder variants). The fresh tensors are logged by their prefix.

    Args:
        init: a folder written by :meth:`JOG3R.save_pretrained`.
        overrides: ``NAME -> JSON value`` (``stdit.NAME`` for the STDiT's fields).

    Returns:
        The model, in train mode, on the CPU.

    Raises:
        FileNotFoundError: if ``init`` is not such a folder.
        ValueError: on an unknown field, or if no tensor at all could be taken over (then ``init`` is not a
            starting point for this config; train from ``--preset`` instead).
    """
    folder = Path(init)
    if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"--init {folder}: expected {CONFIG_NAME} and {WEIGHTS_NAME} there "
                                "(a folder written by save_pretrained or jog3r.train.export)")
    model = JOG3R(_override(load_config(JOG3RConfig, folder / CONFIG_NAME), overrides))
    saved = load_state_dict_file(folder / WEIGHTS_NAME)
    own = model.state_dict()
    kept = {k: v for k, v in saved.items() if k in own and own[k].shape == v.shape}
    if not kept:
        raise ValueError(f"--init {folder}: no tensor matches the overridden config {overrides}; "
                         "train a new model from --preset instead")
    model.load_state_dict(kept, strict=False)
    fresh = sorted({".".join(k.split(".")[:2]) for k in own if k not in kept})
    logger.info("--init %s with --model-overrides %s: %d of %d tensors taken over, fresh: %s", folder, overrides,
                len(kept), len(own), ", ".join(fresh) or "none")
    return model.train()


def _override(config, overrides: dict[str, str]):
    """``config`` (a :class:`~jog3r.model.JOG3RConfig`) with ``NAME -> VALUE`` overrides (``stdit.NAME`` for the
    STDiT's fields; values parsed as JSON, else kept as text).

    Raises:
        ValueError: on an unknown field, naming the valid ones.
    """
    top, sub = {}, {}
    for name, text in overrides.items():
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            value = text
        if isinstance(value, list):
            value = tuple(value)
        inner = name.startswith("stdit.")
        owner, target, key = (config.stdit, sub, name[len("stdit."):]) if inner else (config, top, name)
        fields = {f.name for f in dataclasses.fields(owner)}
        if key not in fields or key == "stdit":
            valid = (", ".join(f"stdit.{f}" for f in sorted(fields)) if inner else
                     f"{', '.join(sorted(fields - {'stdit'}))} and stdit.<field>")
            raise ValueError(f"--model-overrides: unknown field {name!r}; valid: {valid}")
        target[key] = _as_type_of(getattr(owner, key), value, name)
    if sub:
        top["stdit"] = dataclasses.replace(config.stdit, **sub)
    return dataclasses.replace(config, **top) if top else config


def _as_type_of(current, value, name: str):
    """``value`` (parsed JSON) as the type of the field's ``current`` value, or a one-line ``ValueError``."""
    kind = type(current)
    if isinstance(current, enum.Enum):
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"--model-overrides {name}: {value!r} is not one of "
                             f"{', '.join(str(m.value) for m in kind)}") from None
    ok = (isinstance(value, bool) if kind is bool else
          isinstance(value, int) and not isinstance(value, bool) if kind is int else
          isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else
          isinstance(value, tuple) and len(value) == len(current) if kind is tuple else
          isinstance(value, str) if kind is str else True)
    if not ok:
        want = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
            kind, f"a list of {len(current)} values" if kind is tuple else kind.__name__)
        raise ValueError(f"--model-overrides {name}: expected {want} (like the current {json.dumps(current)}), "
                         f"got {value!r}")
    return float(value) if kind is float else value


_UNREADABLE = (SafetensorError, OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError, KeyError)
"""What reading a damaged checkpoint raises (truncated safetensors or zip, bad JSON, missing tensors)."""


def _logged_steps(log_path: Path) -> int:
    """Number of step records in ``log.jsonl`` (0 if it is missing or empty: the run never finished a step)."""
    if not log_path.exists():
        return 0
    count = 0
    for line in log_path.read_text().splitlines():
        try:
            count += "step" in json.loads(line)
        except (json.JSONDecodeError, TypeError):
            continue
    return count


def train(config: TrainConfig) -> Path:
    """Run a training job and return its ``final/`` model folder (see :class:`Trainer`)."""
    return Trainer(config).run()


__all__ = ["Trainer", "train"]
