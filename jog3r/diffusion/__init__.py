"""The diffusion process: noising, L_gen and samplers (OpenSora v1.0 IDDPM; REFERENCE.md A.8).

Latents ``[B, C, F, h, w]`` + timesteps ``[B]`` -> noisy latents (:meth:`GaussianDiffusion.q_sample`);
denoiser output ``[B, 2C, F, h, w]`` -> L_gen (:meth:`GaussianDiffusion.gen_loss`); denoiser -> latents
(:meth:`GaussianDiffusion.sample` with ``"iddpm"``, ``"ddim"`` or ``"dpmsolver++"``, classifier-free guidance
via :func:`guided`). ::

    diffusion = GaussianDiffusion()
    t = diffusion.sample_timesteps(B, generator=g)
    x_t = diffusion.q_sample(x0, t, noise)
    losses = diffusion.gen_loss(stdit(x_t, t, y, mask), x0, x_t, t, noise)      # {"mse", "vb", "loss"}
    x0 = diffusion.sample(guided(doubled_batch_stdit, 7.0), (B, C, F, h, w), generator=g)
"""

from jog3r.diffusion.loss import gen_loss
from jog3r.diffusion.process import GaussianDiffusion
from jog3r.diffusion.sampling import (
    CFG_SCALE,
    DEFAULT_STEPS,
    SAMPLERS,
    EpsModel,
    SamplerName,
    Sampler,
    StepCallback,
    SamplingOptions,
    X0Threshold,
    classifier_free_guidance,
    correct_eps_gain,
    exact_eps_gain,
    guided,
    sample,
    read_sampling_options,
    sampler_timesteps,
    threshold_x0,
    write_sampling_options,
)
from jog3r.diffusion.schedule import DiffusionSchedule, make_ddpm_scheduler, space_timesteps

__all__ = [
    "GaussianDiffusion",
    "DiffusionSchedule",
    "make_ddpm_scheduler",
    "space_timesteps",
    "gen_loss",
    "sample",
    "Sampler",
    "sampler_timesteps",
    "X0Threshold",
    "SamplingOptions",
    "correct_eps_gain",
    "exact_eps_gain",
    "threshold_x0",
    "read_sampling_options",
    "write_sampling_options",
    "classifier_free_guidance",
    "guided",
    "EpsModel",
    "StepCallback",
    "SAMPLERS",
    "SamplerName",
    "DEFAULT_STEPS",
    "CFG_SCALE",
]
