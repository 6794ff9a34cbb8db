"""Noise schedule tables of OpenSora v1.0's IDDPM (linear betas, learned-range variance) and their respacing.

Everything here follows REFERENCE.md A.8 (OpenSora ``schedulers/iddpm/gaussian_diffusion.py`` and
``respace.py``, themselves from improved-diffusion / DiT). Tables are float64 NumPy, as in the reference;
per-step coefficients are gathered into tensors of the data's dtype.

Notation (index ``k`` into the tables; for the unspaced schedule ``k`` is the timestep ``t`` itself):

* ``beta_k``, ``alpha_k = 1 - beta_k``, ``abar_k = prod_{j<=k} alpha_j``, ``abar_prev_k = abar_{k-1}``
  (1 at k = 0);
* forward process ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` (DDPM eq. 4);
* posterior ``q(x_{k-1} | x_k, x_0) = N(c1_k x_0 + c2_k x_k, var_k)`` (DDPM eqs. 6-7) with
  ``var_k = beta_k (1 - abar_prev_k) / (1 - abar_k)``, ``c1_k = beta_k sqrt(abar_prev_k) / (1 - abar_k)``,
  ``c2_k = (1 - abar_prev_k) sqrt(alpha_k) / (1 - abar_k)``; ``log var`` is "clipped": ``var_0`` (= 0) is
  replaced by ``var_1``;
* learned range (IDDPM eq. 15): ``log sigma^2 = f log beta_k + (1 - f) log var_k`` with ``f = (v + 1) / 2``
  and ``v`` the model's variance output.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DDPMScheduler

NUM_TRAIN_TIMESTEPS = 1000
BETA_START = 1e-4
BETA_END = 0.02


def make_ddpm_scheduler(
    num_train_timesteps: int = NUM_TRAIN_TIMESTEPS, beta_start: float = BETA_START, beta_end: float = BETA_END
) -> DDPMScheduler:
    """diffusers ``DDPMScheduler`` configured as OpenSora v1.0's training diffusion (REFERENCE.md A.8).

    Args:
        num_train_timesteps: number of diffusion steps ``N``.
        beta_start: first beta of the linear schedule.
        beta_end: last beta.

    Returns:
        ``DDPMScheduler(beta_schedule="linear", variance_type="learned_range", clip_sample=False)``.
    """
    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_start=beta_start,
        beta_end=beta_end,
        beta_schedule="linear",
        variance_type="learned_range",
        clip_sample=False,
        prediction_type="epsilon",
    )


def space_timesteps(num_train_timesteps: int, num_steps: int) -> list[int]:
    """Evenly spread ``num_steps`` timesteps over ``0 .. N - 1`` (OpenSora ``space_timesteps``).

    The reference accumulates a fractional stride ``(N - 1) / (n - 1)`` and rounds each position with Python's
    ``round`` (REFERENCE.md A.8, ``respace.py``, single section); this reproduces it.
    ``space_timesteps(1000, 100)`` gives ``0, 10, 20, 30, 40, 50, 61, ..., 989, 999``.

    Args:
        num_train_timesteps: ``N`` of the base process.
        num_steps: ``n``, how many timesteps to keep, ``1 <= n <= N``.

    Returns:
        The kept timesteps, sorted ascending, distinct.

    Raises:
        ValueError: if ``num_steps`` is outside ``[1, N]``.
    """
    if not 1 <= num_steps <= num_train_timesteps:
        raise ValueError(f"num_steps must be in [1, {num_train_timesteps}], got {num_steps}.")
    stride = 1.0 if num_steps == 1 else (num_train_timesteps - 1) / (num_steps - 1)
    position, taken = 0.0, []
    for _ in range(num_steps):
        taken.append(round(position))
        position += stride
    return sorted(set(taken))


def _gather(table: np.ndarray, index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``table[index]`` as a ``[B, 1, ..., 1]`` tensor with ``like``'s dtype, device and rank."""
    values = torch.from_numpy(table)[index.cpu()]
    return values.to(device=like.device, dtype=like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


class DiffusionSchedule:
    """Float64 tables of a DDPM whose steps are ``timesteps`` of a base linear-beta process.

    Args:
        base_alphas_cumprod: ``[N]`` float64 ``abar`` of the base process.
        timesteps: kept base timesteps, ascending (all ``N`` for the training process, 100 for OpenSora
            sampling).
        beta_start: linear-schedule start of the base process (kept to configure diffusers schedulers).
        beta_end: linear-schedule end of the base process.

    Attributes:
        num_train_timesteps: ``N`` of the base process.
        timesteps: ``[K]`` int64 base timesteps of the ``K`` steps (index ``k`` -> original ``t``).
        betas: ``[K]`` float64; respaced: ``1 - abar_{t_k} / abar_{t_{k-1}}`` (REFERENCE.md A.8).
        alphas_cumprod: ``[K]`` float64 ``abar`` at the kept timesteps (``alphas_cumprod_prev``: shifted).
        posterior_variance: ``[K]`` float64 ``var_k`` (``posterior_log_variance_clipped``: its clipped log;
            ``posterior_mean_coef1`` / ``posterior_mean_coef2``: ``c1_k`` / ``c2_k`` of the module docstring).
    """

    def __init__(
        self,
        base_alphas_cumprod: np.ndarray,
        timesteps: list[int] | np.ndarray,
        beta_start: float = BETA_START,
        beta_end: float = BETA_END,
    ):
        base = np.asarray(base_alphas_cumprod, dtype=np.float64)
        steps = np.asarray(sorted(set(int(t) for t in timesteps)), dtype=np.int64)
        if len(steps) < 2 or steps[0] < 0 or steps[-1] >= len(base):
            raise ValueError(
                f"timesteps must be >= 2 distinct values in [0, {len(base) - 1}], got {timesteps}."
            )
        self.num_train_timesteps = len(base)
        self.beta_start, self.beta_end = beta_start, beta_end
        self.timesteps = steps
        self.alphas_cumprod = base[steps]
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.betas = 1.0 - self.alphas_cumprod / self.alphas_cumprod_prev
        alphas = 1.0 - self.betas
        one_minus = 1.0 - self.alphas_cumprod
        self.posterior_variance = self.betas * (1.0 - self.alphas_cumprod_prev) / one_minus
        self.posterior_log_variance_clipped = np.log(
            np.append(self.posterior_variance[1], self.posterior_variance[1:])
        )
        self.posterior_mean_coef1 = self.betas * np.sqrt(self.alphas_cumprod_prev) / one_minus
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / one_minus
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1.0)
        self.log_betas = np.log(self.betas)

    @classmethod
    def linear(
        cls,
        num_train_timesteps: int = NUM_TRAIN_TIMESTEPS,
        beta_start: float = BETA_START,
        beta_end: float = BETA_END,
    ) -> "DiffusionSchedule":
        """The unspaced training process: float64 ``linspace(beta_start, beta_end, N)`` betas (all N steps).

        OpenSora's ``get_named_beta_schedule("linear", N)`` scales both ends by ``1000 / N``; with the default
        ``N = 1000`` that is the identity, and for other ``N`` pass the scaled values explicitly.

        Args:
            num_train_timesteps: ``N``.
            beta_start: first beta.
            beta_end: last beta.

        Returns:
            The schedule with ``timesteps = 0 .. N - 1``.
        """
        betas = np.linspace(beta_start, beta_end, num_train_timesteps, dtype=np.float64)
        return cls(np.cumprod(1.0 - betas), np.arange(num_train_timesteps), beta_start, beta_end)

    def respace(self, num_steps: int) -> "DiffusionSchedule":
        """Respaced schedule over ``space_timesteps(N, num_steps)`` of this (unspaced) schedule.

        Args:
            num_steps: ``K >= 2`` sampling steps (OpenSora default 100).

        Returns:
            The ``K``-step schedule; the denoiser is still called with the original timesteps.

        Raises:
            ValueError: if this schedule is itself respaced or ``num_steps`` is outside ``[2, N]``.
        """
        if len(self.timesteps) != self.num_train_timesteps:
            raise ValueError("respace() needs the unspaced schedule (DiffusionSchedule.linear()).")
        if num_steps < 2:
            raise ValueError(f"num_steps must be >= 2 for ancestral sampling, got {num_steps}.")
        timesteps = space_timesteps(self.num_train_timesteps, num_steps)
        return DiffusionSchedule(self.alphas_cumprod, timesteps, self.beta_start, self.beta_end)

    def q_posterior(
        self, x0: torch.Tensor, x_t: torch.Tensor, k: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and clipped log-variance of ``q(x_{k-1} | x_k, x_0)`` (DDPM eqs. 6-7).

        Args:
            x0: ``[B, ...]`` clean latents.
            x_t: ``[B, ...]`` noisy latents at step ``k``.
            k: ``[B]`` int64 table indices.

        Returns:
            ``(mean [B, ...], log_variance [B, 1, ..., 1])``.
        """
        mean = (
            _gather(self.posterior_mean_coef1, k, x_t) * x0 + _gather(self.posterior_mean_coef2, k, x_t) * x_t
        )
        return mean, _gather(self.posterior_log_variance_clipped, k, x_t)

    def p_mean_variance(
        self, model_out: torch.Tensor, x_t: torch.Tensor, k: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean and log-variance of ``p(x_{k-1} | x_k)`` from eps + learned-range output (REFERENCE.md A.8).

        ``x0_hat = sqrt(1 / abar) x_t - sqrt(1 / abar - 1) eps`` (not clipped, ``clip_denoised=False``); the
        mean is the posterior mean at ``x0_hat``; ``log sigma^2 = f log beta + (1 - f) log var_clipped``,
        ``f = (v + 1) / 2`` (IDDPM eq. 15).

        Args:
            model_out: ``[B, 2C, ...]``, eps in channels ``:C``, ``v`` (about ``[-1, 1]``) in ``C:``.
            x_t: ``[B, C, ...]``.
            k: ``[B]`` int64 table indices.

        Returns:
            ``(mean [B, C, ...], log_variance [B, C, ...], x0_hat [B, C, ...])``.
        """
        eps, v = model_out.chunk(2, dim=1)
        min_log = _gather(self.posterior_log_variance_clipped, k, x_t)
        max_log = _gather(self.log_betas, k, x_t)
        frac = (v + 1.0) / 2.0
        log_variance = frac * max_log + (1.0 - frac) * min_log
        x0_hat = (
            _gather(self.sqrt_recip_alphas_cumprod, k, x_t) * x_t
            - _gather(self.sqrt_recipm1_alphas_cumprod, k, x_t) * eps
        )
        mean, _ = self.q_posterior(x0_hat, x_t, k)
        return mean, log_variance, x0_hat
