"""``GaussianDiffusion``: the one object the trainer and the pipeline hold for the diffusion process.

It bundles OpenSora v1.0's training diffusion (REFERENCE.md A.8) - a diffusers ``DDPMScheduler`` for the
forward process and the float64 :class:`~jog3r.diffusion.schedule.DiffusionSchedule` tables for the loss and
the IDDPM sampler - behind four methods: :meth:`q_sample`, :meth:`sample_timesteps`, :meth:`gen_loss`,
:meth:`sample`.
"""

from __future__ import annotations

import torch

from jog3r.diffusion.loss import gen_loss
from jog3r.diffusion.sampling import EpsModel, SamplingOptions, StepCallback, sample, sampler_timesteps
from jog3r.diffusion.schedule import (
    BETA_END,
    BETA_START,
    NUM_TRAIN_TIMESTEPS,
    DiffusionSchedule,
    make_ddpm_scheduler,
)


class GaussianDiffusion:
    """OpenSora v1.0's diffusion: linear betas 1e-4 .. 0.02 over 1000 steps, eps prediction, learned sigma.

    Args:
        num_train_timesteps: ``N``.
        beta_start: first beta.
        beta_end: last beta.

    Attributes:
        scheduler: diffusers ``DDPMScheduler`` (``variance_type="learned_range"``) used for :meth:`q_sample`.
        schedule: unspaced float64 tables used by :meth:`gen_loss` and the samplers.
        num_train_timesteps: ``N``.
    """

    def __init__(
        self,
        num_train_timesteps: int = NUM_TRAIN_TIMESTEPS,
        beta_start: float = BETA_START,
        beta_end: float = BETA_END,
    ):
        self.num_train_timesteps = num_train_timesteps
        self.scheduler = make_ddpm_scheduler(num_train_timesteps, beta_start, beta_end)
        self.schedule = DiffusionSchedule.linear(num_train_timesteps, beta_start, beta_end)

    @property
    def num_timesteps(self) -> int:
        """``N``, under the name OpenSora's ``GaussianDiffusion`` uses (alias of ``num_train_timesteps``)."""
        return self.num_train_timesteps

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Forward process ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` (DDPM eq. 4, ``add_noise``).

        Args:
            x0: ``[B, C, ...]`` clean latents.
            t: ``[B]`` int64 timesteps in ``[0, N)``.
            noise: ``[B, C, ...]`` standard Gaussian noise.

        Returns:
            ``[B, C, ...]`` noisy latents, dtype of ``x0``.

        Raises:
            ValueError: mismatched shapes or ``t`` out of range.
        """
        if noise.shape != x0.shape:
            raise ValueError(f"noise must have x0's shape {tuple(x0.shape)}, got {tuple(noise.shape)}.")
        if t.shape != (x0.shape[0],) or t.is_floating_point():
            raise ValueError(
                f"t must be an integer tensor of shape [{x0.shape[0]}], got {t.dtype} {tuple(t.shape)}."
            )
        if int(t.min()) < 0 or int(t.max()) >= self.num_train_timesteps:
            raise ValueError(
                f"t must lie in [0, {self.num_train_timesteps - 1}], got [{int(t.min())}, {int(t.max())}]."
            )
        return self.scheduler.add_noise(x0, noise, t)

    def sample_timesteps(
        self,
        batch_size: int,
        low: int = 0,
        high: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """Uniform integer timesteps in ``[low, high)`` (half-open, like ``torch.randint``).

        L_gen uses the full range ``[0, N)`` (OpenSora ``scripts/train.py``); JOG3R's L_rec uses small
        ``t`` (paper Sec. 3.3: "t in [0, 10]", i.e. ``low=0, high=11`` if the end is meant inclusively).

        Args:
            batch_size: ``B``.
            low: smallest timestep.
            high: one past the largest timestep (``None``: ``N``).
            generator: seeds the draw (a CPU generator; the result is moved to ``device``).
            device: device of the result.

        Returns:
            ``[B]`` int64.

        Raises:
            ValueError: if not ``0 <= low < high <= N`` or ``batch_size < 1``.
        """
        high = self.num_train_timesteps if high is None else high
        if not 0 <= low < high <= self.num_train_timesteps:
            raise ValueError(
                f"need 0 <= low < high <= {self.num_train_timesteps}, got low={low}, high={high}."
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        rng_device = generator.device if generator is not None else "cpu"
        t = torch.randint(low, high, (batch_size,), generator=generator, device=rng_device)
        return t.to(device)

    def gen_loss(
        self,
        model_out: torch.Tensor,
        x0: torch.Tensor,
        x_t: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
        reduction: str = "mean",
    ) -> dict[str, torch.Tensor]:
        """L_gen = eps-MSE + VLB on the learned variance; see :func:`jog3r.diffusion.loss.gen_loss`.

        Args:
            model_out: ``[B, 2C, ...]`` denoiser output (eps, then variance channels).
            x0: ``[B, C, ...]`` clean latents.
            x_t: ``[B, C, ...]`` noisy latents from :meth:`q_sample`.
            t: ``[B]`` int64 timesteps.
            noise: ``[B, C, ...]`` noise used for ``x_t``.
            reduction: ``"mean"`` (scalars) or ``"none"`` (``[B]``).

        Returns:
            ``{"mse", "vb", "loss"}`` float32.
        """
        return gen_loss(self.schedule, model_out, x0, x_t, t, noise, reduction)

    def sample(
        self,
        eps_model: EpsModel,
        shape: tuple[int, ...],
        sampler: str = "iddpm",
        steps: int | None = None,
        generator: torch.Generator | None = None,
        callback: StepCallback | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        noise: torch.Tensor | None = None,
        options: SamplingOptions | None = None,
    ) -> torch.Tensor:
        """Reverse diffusion from noise; see :func:`jog3r.diffusion.sampling.sample` (same arguments).

        Args:
            eps_model: ``(x_t [B, C, ...], t [B]) -> [B, 2C, ...]``.
            shape: latent shape ``(B, C, F, h, w)``.
            sampler: ``"iddpm"`` (default), ``"ddim"`` or ``"dpmsolver++"``.
            steps: denoiser calls (``None``: 100 / 50 / 20).
            generator: seeds all randomness.
            callback: ``callback(step_index, t, x_t)`` before each denoiser call.
            device: device of the latents.
            dtype: dtype of the latents.
            noise: optional initial ``x_T``.
            options: deviations from the reference sampling (``None``: OpenSora's sampling).

        Returns:
            ``x_0`` latents of ``shape``.
        """
        return sample(
            eps_model, shape, sampler, steps, generator, callback, self.schedule, device, dtype, noise, options
        )

    def timesteps(self, sampler: str = "iddpm", steps: int | None = None) -> list[int]:
        """Timesteps ``sampler`` visits, noisiest first (:func:`jog3r.diffusion.sampling.sampler_timesteps`).

        Args:
            sampler: sampler name.
            steps: number of steps (``None``: the sampler's default).

        Returns:
            The ``t`` values passed to the denoiser, in order.
        """
        return sampler_timesteps(sampler, steps, self.schedule)
