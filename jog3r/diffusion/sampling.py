"""Samplers for an eps + learned-sigma denoiser, and classifier-free guidance.

A denoiser is any callable ``eps_model(x_t [B, C, ...], t [B] int64) -> [B, 2C, ...]`` (eps in channels
``:C``, variance interpolation ``v`` in ``C:``), called with **original** timesteps in ``[0, N)``. Three
samplers:

* ``"iddpm"`` (default, 100 steps): OpenSora v1.0's respaced ancestral sampler (REFERENCE.md A.8,
  ``p_sample_loop``): ``space_timesteps(1000, steps)``, respaced betas, learned-range variance,
  ``clip_denoised=False``, Gaussian noise at every step but the last. Written here on float64 tables (the
  reference's precision); with all 1000 steps it equals diffusers'
  ``DDPMScheduler(variance_type="learned_range")`` step for step (tested).
* ``"ddim"`` (50 steps): diffusers ``DDIMScheduler``, eta = 0, "leading" spacing ``980, 960, ..., 0`` (so the
  last step is at ``t = 0``), final ``abar = 1``; uses the eps half only.
* ``"dpmsolver++"`` (20 steps): diffusers ``DPMSolverMultistepScheduler`` (2nd order multistep, data
  prediction), "linspace" grid ``999, 949, ..., 50`` then a first-order jump to sigma 0; uses the eps half
  only. Its last denoiser call is at ``t = round(999 / steps)``: forcing a final ``t = 0`` call into the grid
  makes the penultimate 2nd-order step span ~3 units of log-SNR and overshoot (std of toy Gaussian data +29%
  at 20 steps, measured), so the standard grid is kept.

``"iddpm"`` and ``"ddim"`` visit ``t = 0`` last, so a caller that taps DiT features at a small ``t`` (JOG3R
T2V+C takes ``t`` in ``[0, 5]``, paper Sec. 3.3) finds such a step; with ``"dpmsolver++"`` it needs
``steps >= 200``. :func:`sampler_timesteps` lists the visited timesteps in advance.
"""

from __future__ import annotations

import logging
from typing import Callable

import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler
from diffusers.utils.torch_utils import randn_tensor

from jog3r.diffusion.schedule import DiffusionSchedule, space_timesteps

logger = logging.getLogger(__name__)

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``eps_model(x_t [B, C, ...], t [B] int64) -> [B, 2C, ...]`` (eps, then variance channels)."""

StepCallback = Callable[[int, int, torch.Tensor], None]
"""``callback(step_index, t, x_t)``: called before the denoiser evaluates ``x_t`` at timestep ``t``."""

SAMPLERS = ("iddpm", "ddim", "dpmsolver++")
DEFAULT_STEPS = {"iddpm": 100, "ddim": 50, "dpmsolver++": 20}
CFG_SCALE = 7.0
"""Guidance scale of every OpenSora v1.0 inference config (REFERENCE.md A.8)."""


def classifier_free_guidance(
    out_cond: torch.Tensor,
    out_uncond: torch.Tensor,
    scale: float = CFG_SCALE,
    guide_channels: int | None = None,
) -> torch.Tensor:
    """Combine conditional and unconditional denoiser outputs (GLIDE/DiT/OpenSora ``forward_with_cfg``).

    ``eps[:, :g] = uncond[:, :g] + scale (cond[:, :g] - uncond[:, :g])`` for the first ``g = guide_channels``
    eps channels; every other channel (the remaining eps channels and all variance channels) is taken from the
    **conditional** output, as in OpenSora, whose returned (first) batch half is the conditional one.
    ``guide_channels=3`` with 4 latent channels reproduces OpenSora v1.0's quirk (REFERENCE.md A.8, F.1).

    Args:
        out_cond: ``[B, 2C, ...]`` output with the caption.
        out_uncond: ``[B, 2C, ...]`` output with the null caption.
        scale: guidance scale ``s`` (1 = no guidance).
        guide_channels: eps channels to guide, ``1 <= g <= C``; ``None`` guides all ``C``.

    Returns:
        ``[B, 2C, ...]`` guided output.

    Raises:
        ValueError: mismatched shapes, odd channel count or ``guide_channels`` out of range.
    """
    if out_cond.shape != out_uncond.shape or out_cond.ndim < 2 or out_cond.shape[1] % 2:
        raise ValueError(
            f"out_cond and out_uncond must both be [B, 2C, ...], got {tuple(out_cond.shape)} and "
            f"{tuple(out_uncond.shape)}."
        )
    channels = out_cond.shape[1] // 2
    g = channels if guide_channels is None else guide_channels
    if not 1 <= g <= channels:
        raise ValueError(f"guide_channels must be in [1, {channels}] or None, got {guide_channels}.")
    guided = out_uncond[:, :g] + scale * (out_cond[:, :g] - out_uncond[:, :g])
    return torch.cat([guided, out_cond[:, g:]], dim=1)


def guided(model: EpsModel, scale: float = CFG_SCALE, guide_channels: int | None = None) -> EpsModel:
    """Wrap a doubled-batch denoiser into a guided :data:`EpsModel` (one model call per step, as OpenSora).

    Args:
        model: ``model(x [2B, C, ...], t [2B]) -> [2B, 2C, ...]`` whose first half is conditioned on the
            captions and second half on the null caption (the caller binds the conditioning).
        scale: guidance scale.
        guide_channels: see :func:`classifier_free_guidance`.

    Returns:
        ``eps_model(x [B], t [B]) -> [B, 2C, ...]`` feeding ``[x; x]`` to ``model`` and guiding.
    """

    def eps_model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out_cond, out_uncond = model(torch.cat([x, x]), torch.cat([t, t])).chunk(2)
        return classifier_free_guidance(out_cond, out_uncond, scale, guide_channels)

    return eps_model


def _check_sampler(sampler: str, steps: int | None, num_train_timesteps: int) -> int:
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}.")
    steps = DEFAULT_STEPS[sampler] if steps is None else int(steps)
    if not 2 <= steps <= num_train_timesteps:
        raise ValueError(f"steps must be in [2, {num_train_timesteps}], got {steps}.")
    return steps


def _diffusers_scheduler(sampler: str, steps: int, schedule: DiffusionSchedule):
    config = dict(
        num_train_timesteps=schedule.num_train_timesteps,
        beta_start=schedule.beta_start,
        beta_end=schedule.beta_end,
        beta_schedule="linear",
        prediction_type="epsilon",
    )
    if sampler == "ddim":
        scheduler = DDIMScheduler(
            **config, clip_sample=False, set_alpha_to_one=True, steps_offset=0, timestep_spacing="leading"
        )
        scheduler.set_timesteps(steps)
    else:
        scheduler = DPMSolverMultistepScheduler(
            **config,
            algorithm_type="dpmsolver++",
            solver_order=2,
            lower_order_final=True,
            final_sigmas_type="zero",
            timestep_spacing="linspace",
        )
        scheduler.set_timesteps(steps)
    return scheduler


def sampler_timesteps(
    sampler: str = "iddpm", steps: int | None = None, schedule: DiffusionSchedule | None = None
) -> list[int]:
    """Timesteps a sampler visits, in order (descending); the ``t`` passed to the denoiser at each step.

    Args:
        sampler: one of :data:`SAMPLERS`.
        steps: number of steps (``None``: :data:`DEFAULT_STEPS`).
        schedule: unspaced base schedule (``None``: ``DiffusionSchedule.linear()``).

    Returns:
        ``steps`` ints, first the noisiest, last 0.

    Raises:
        ValueError: unknown sampler or ``steps`` out of range.
    """
    schedule = DiffusionSchedule.linear() if schedule is None else schedule
    steps = _check_sampler(sampler, steps, schedule.num_train_timesteps)
    if sampler == "iddpm":
        return space_timesteps(schedule.num_train_timesteps, steps)[::-1]
    return [int(t) for t in _diffusers_scheduler(sampler, steps, schedule).timesteps]


def _call(eps_model: EpsModel, x: torch.Tensor, t: int) -> torch.Tensor:
    out = eps_model(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
    expected = (x.shape[0], 2 * x.shape[1], *x.shape[2:])
    if tuple(out.shape) != expected:
        raise ValueError(
            f"eps_model must return [B, 2C, ...] = {expected} (eps and learned-variance halves), got "
            f"{tuple(out.shape)}."
        )
    if not torch.isfinite(out).all():
        raise ValueError(f"eps_model returned NaN or Inf at t={t}.")
    return out.to(x.dtype)


def _iddpm_loop(eps_model, x, schedule, steps, generator, callback):
    spaced = schedule.respace(steps)
    for i, k in enumerate(range(len(spaced.timesteps) - 1, -1, -1)):
        t = int(spaced.timesteps[k])
        if callback is not None:
            callback(i, t, x)
        out = _call(eps_model, x, t)
        index = torch.full((x.shape[0],), k, dtype=torch.long, device=x.device)
        mean, log_variance, _ = spaced.p_mean_variance(out, x, index)
        if k > 0:
            noise = randn_tensor(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = mean + torch.exp(0.5 * log_variance) * noise
        else:
            x = mean
    return x


def _diffusers_loop(eps_model, x, scheduler, generator, callback):
    channels = x.shape[1]
    for i, t in enumerate(scheduler.timesteps):
        model_input = scheduler.scale_model_input(x, t)
        if callback is not None:
            callback(i, int(t), model_input)
        eps = _call(eps_model, model_input, int(t))[:, :channels]
        x = scheduler.step(eps, t, x, generator=generator).prev_sample
    return x


def sample(
    eps_model: EpsModel,
    shape: tuple[int, ...],
    sampler: str = "iddpm",
    steps: int | None = None,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
    schedule: DiffusionSchedule | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw latents by reverse diffusion from ``x_T ~ N(0, I)`` (module docstring for the samplers).

    Args:
        eps_model: denoiser ``(x_t [B, C, ...], t [B] int64) -> [B, 2C, ...]``; wrap with :func:`guided` for
            CFG.
        shape: ``(B, C, F, h, w)`` (any ``(B, C, ...)`` works) of the latents.
        sampler: ``"iddpm"``, ``"ddim"`` or ``"dpmsolver++"``.
        steps: number of denoiser calls (``None``: 100 / 50 / 20).
        generator: seeds the initial noise and the IDDPM step noise; same seed -> same result.
        callback: ``callback(step_index, t, x_t)`` before each denoiser call, e.g. to tap DiT features at the
            step whose ``t`` is in ``[0, 5]``.
        schedule: unspaced base schedule (``None``: ``DiffusionSchedule.linear()``, OpenSora's).
        device: device of the latents.
        dtype: dtype of the latents.
        noise: optional initial ``x_T`` of ``shape`` (then ``generator`` only drives the step noise).

    Returns:
        ``x_0`` latents, ``shape``, ``dtype``.

    Raises:
        ValueError: unknown sampler, bad ``steps``, wrong ``noise`` shape, or a denoiser output of the wrong
            shape / with non-finite values.
    """
    schedule = DiffusionSchedule.linear() if schedule is None else schedule
    steps = _check_sampler(sampler, steps, schedule.num_train_timesteps)
    if noise is None:
        x = randn_tensor(tuple(shape), generator=generator, device=torch.device(device), dtype=dtype)
    else:
        if tuple(noise.shape) != tuple(shape):
            raise ValueError(f"noise must have shape {tuple(shape)}, got {tuple(noise.shape)}.")
        x = noise.to(device=device, dtype=dtype)
    logger.debug("sampling %s with %s, %d steps", tuple(shape), sampler, steps)
    with torch.no_grad():
        if sampler == "iddpm":
            return _iddpm_loop(eps_model, x, schedule, steps, generator, callback)
        return _diffusers_loop(
            eps_model, x, _diffusers_scheduler(sampler, steps, schedule), generator, callback
        )
