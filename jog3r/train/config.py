"""Training configuration: the joint fine-tune of JOG3R (paper Sec. 3.2 and 4.1) as a dataclass preset.

Every field has a docstring; ``python -m jog3r.train --help`` lists them (tyro turns them into flags).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Annotated

import tyro


class TrainMode(str, enum.Enum):
    """Which losses train which parts (the rows of the paper's Tables 1 and 2).

    Members:
        JOINT: JOG3R, ``L_total = L_gen + lambda * L_rec``; generator trainable per the freeze policy.
        FROZEN_REC: "frozen OS + rec": generator frozen, only the decoder and head trained with ``L_rec``.
        GEN: "fine-tuned OS": generation loss only (no decoder pass).
        REC: trainable generator (freeze policy) + decoder and head, ``L_rec`` only.
    """

    JOINT = "joint"
    FROZEN_REC = "frozen-rec"
    GEN = "gen"
    REC = "rec"

    @property
    def uses_gen(self) -> bool:
        """Whether ``L_gen`` is part of the objective."""
        return self in (TrainMode.JOINT, TrainMode.GEN)

    @property
    def uses_rec(self) -> bool:
        """Whether ``L_rec`` is part of the objective."""
        return self is not TrainMode.GEN


@dataclass
class TrainConfig:
    """Everything a training run needs; saved as ``train_config.json`` next to every checkpoint."""

    out: Path = Path("runs/jog3r")
    """Output folder: ``log.jsonl``, ``checkpoints/step_XXXXXX/``, ``final/``."""
    preset: str = "tiny"
    """Model preset from :data:`jog3r.config.JOG3R_PRESETS`: ``tiny`` (the embedded default's), ``micro`` (tests),
    ``opensora-1.0-16x256``, ``opensora-1.0-16x512``."""
    init: Path | None = None
    """Optional model folder (``from_pretrained`` layout) to start from instead of a fresh preset (with
    ``--model-overrides``: its config changed, the tensors that still fit kept)."""
    opensora_ckpt: Path | None = None
    """Optional OpenSora v1.0 STDiT checkpoint (.pth/.pt/.safetensors) to initialise the generator from."""
    dust3r_ckpt: Path | None = None
    """Optional DUSt3R .pth to initialise decoder and heads where shapes fit (the paper trains them from scratch)."""
    mode: Annotated[TrainMode, tyro.conf.EnumChoicesFromValues] = TrainMode.JOINT
    """Which losses train which parts (paper Tables 1-2 rows)."""
    data: str = "synth"
    """``synth`` (clips generated on the fly), a packed folder (``packed.json``: synthetic clips with their latents,
    from ``python -m jog3r.train.pack``) or a RealEstate10K-layout folder (camera txt + mp4/frames + depth)."""
    vae: str = "taef2"
    """``taef2`` (embedded, offline) or a local folder with the sd-vae-ft-ema AutoencoderKL (OpenSora)."""
    text_encoder: str = "minilm"
    """``minilm`` (embedded, offline) or a local folder with T5 v1.1 XXL (OpenSora)."""
    height: int | None = None
    """Training frame height in pixels (default: the preset's)."""
    width: int | None = None
    """Training frame width in pixels (default: the preset's)."""
    num_frames: int = 16
    """Frames per clip, F (paper: 16)."""
    steps: int = 1000
    """Optimiser steps to run in total (a resumed run continues up to this number)."""
    batch_size: int = 1
    """Clips per micro-batch (per process)."""
    grad_accum: int = 1
    """Micro-batches accumulated per optimiser step."""
    lr: float = 2e-4
    """AdamW learning rate (OpenSora fine-tuning used 2e-5; from scratch on the tiny preset needs more)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_steps: int = 100
    """Linear learning-rate warm-up steps."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """After warm-up: ``constant`` (OpenSora) or ``cosine`` decay from ``lr`` to ``min_lr`` at ``decay_steps``."""
    decay_steps: int = 0
    """Step at which the cosine schedule reaches ``min_lr`` (0: the ``--steps`` of the run's first start; a
    ``--resume`` with a larger ``--steps`` keeps that horizon, so the learning-rate curve does not jump)."""
    min_lr: float = 0.0
    """Learning rate at the end of the cosine schedule (and after it)."""
    grad_clip: float = 1.0
    """Gradient-norm clipping (OpenSora: 1.0)."""
    ema_decay: float = 0.999
    """EMA decay of the trainable weights (OpenSora: 0.9999 for long runs); 0 disables the EMA."""
    ema_warmup: bool = True
    """Warm the EMA up: update ``n`` (0-based) uses ``min(ema_decay, (1 + n) / (10 + n))`` (diffusers' EMAModel).
    Without it a short run's EMA keeps its random init: 0.999^1000 = 37 % of it after 1000 steps."""
    lam: float = 1.0
    """lambda in L_total = L_gen + lambda * L_rec (paper: 1)."""
    rec_t_max: int = 10
    """L_rec uses timesteps t ~ U{0..rec_t_max} with the empty (null) prompt (paper: [0, 10])."""
    num_pairs: int = 4
    """Frame pairs per video sampled from (1 -> f) for L_rec (paper: 4)."""
    pair_min_gap: int = 1
    """Smallest frame gap ``f - 1`` of the sampled ``(1 -> f)`` pairs (1: the paper's, any ``f``); larger values
    train on wider baselines only (issue 18; not in the paper)."""
    pose_weight: float = 0.0
    """Weight of the optional pose-aware auxiliary term added to ``L_rec`` (:func:`jog3r.losses.relative_pose_loss`,
    issue 18; **not in the paper**, so 0 = off is the default)."""
    conf_alpha: float = 0.2
    """alpha of the confidence-weighted regression loss (DUSt3R ConfLoss, paper eq. 2)."""
    caption_dropout: float = 0.1
    """Probability of replacing a caption by the null caption for L_gen (OpenSora: 0.1)."""
    seed: int = 0
    """Seed of the model init and of the data order (a resumed run reproduces the same order)."""
    log_every: int = 1
    """Write a ``log.jsonl`` record every this many steps."""
    ckpt_every: int = 200
    """Write a checkpoint every this many steps (and always at the end)."""
    keep_checkpoints: int = 2
    """How many step checkpoints to keep (older ones are deleted after a newer one is complete)."""
    resume: bool = False
    """Continue from the newest complete checkpoint in ``out``."""
    device: str = "auto"
    """``auto`` (CUDA if available), ``cpu`` or ``cuda``/``cuda:N``."""
    bf16: bool = True
    """bf16 autocast for the generator and decoder on CUDA devices that support it (heads and losses stay fp32)."""
    grad_checkpointing: bool = False
    """Recompute STDiT blocks in the backward pass to save memory."""
    num_workers: int = 0
    """DataLoader worker processes."""
    threads: int | None = None
    """torch CPU threads (default: torch's choice)."""
    synth_scenes: dict = field(default_factory=dict)
    """Extra keyword overrides for the synthetic generator's config (when ``data == 'synth'``)."""
    model_overrides: dict[str, str] = field(default_factory=dict)
    """Fields of the preset's ``JOG3RConfig`` to change, ``NAME VALUE`` pairs (JSON values; ``stdit.NAME`` for
    the STDiT's), e.g. ``--model-overrides dec_embed_dim 256 stdit.in_channels 32``. With ``--init``: applied to
    that model's config, and every tensor whose name and shape still match is taken over from it (the rest start
    fresh; :func:`jog3r.train.trainer.init_with_overrides`)."""
    replay_pool: int = 0
    """With ``--data synth``: clips kept in a replay pool on the device (rendered by ``--replay-workers``
    processes, encoded once, drawn at random while the pool grows; :mod:`jog3r.train.replay`). 0: off. A run with
    a pool resumes, but not with the exact data order."""
    replay_workers: int = 4
    """Renderer processes feeding the replay pool."""
    replay_warmup: int = 16
    """Clips the pool must hold before the first step."""
