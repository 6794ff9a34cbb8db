"""L_gen: OpenSora v1.0's diffusion training loss (eps MSE + variational bound on the learned variance).

``L_gen = mse + vb`` per sample (REFERENCE.md A.8, OpenSora ``gaussian_diffusion.py`` ``training_losses`` with
``LossType.MSE`` and ``ModelVarType.LEARNED_RANGE``; IDDPM, Nichol & Dhariwal 2021, eq. 16 with lambda = 1
since the "/1000" rescale is only for RESCALED_MSE):

* ``mse = mean over non-batch axes of (eps - eps_hat)^2`` (DDPM eq. 14, "L_simple");
* ``vb`` uses the model output with ``eps_hat`` **detached**, so only the variance channels learn from it: for
  ``t > 0`` the KL ``KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))`` of diagonal Gaussians, for ``t == 0`` the
  negative log-likelihood of ``x_0`` under the discretised Gaussian decoder (DDPM Sec. 3.3; 256 bins of width
  2/255 over ``[-1, 1]``, applied to latents as the reference does); both averaged over the non-batch axes and
  divided by ``ln 2`` (bits per dimension).

The loss runs in float32 whatever the inputs' dtype (STYLE.md guideline 15).
"""

from __future__ import annotations

import math

import torch

from jog3r.diffusion.schedule import DiffusionSchedule


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    """Mean over every axis but the first: ``[B, ...] -> [B]``."""
    return x.mean(dim=tuple(range(1, x.ndim)))


def normal_kl(
    mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor
) -> torch.Tensor:
    """Elementwise ``KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2)))`` in nats (broadcasting).

    ``0.5 (-1 + logvar2 - logvar1 + exp(logvar1 - logvar2) + (mean1 - mean2)^2 exp(-logvar2))``.

    Args:
        mean1: mean of the first Gaussian.
        logvar1: log-variance of the first Gaussian.
        mean2: mean of the second Gaussian.
        logvar2: log-variance of the second Gaussian.

    Returns:
        The KL, broadcast shape of the inputs.
    """
    return 0.5 * (
        -1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
    )


def approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """Tanh approximation of the standard normal CDF used by the reference decoder NLL.

    ``0.5 (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))`` (absolute error < 2e-4; improved-diffusion
    ``losses.py``).
    """
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def discretized_gaussian_log_likelihood(
    x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor
) -> torch.Tensor:
    """Elementwise log-likelihood (nats) of ``x`` under a Gaussian discretised into 256 bins over ``[-1, 1]``.

    Bin ``[x - 1/255, x + 1/255]``; the edge bins extend to -inf (``x < -0.999``) / +inf (``x > 0.999``)
    (DDPM Sec. 3.3, improved-diffusion ``discretized_gaussian_log_likelihood``); probabilities are floored at
    1e-12 before the log.

    Args:
        x: target values.
        mean: Gaussian mean (broadcast to ``x``).
        log_scale: log standard deviation (broadcast to ``x``).

    Returns:
        Log-probabilities, shape of ``x``.
    """
    centered = x - mean
    inv_std = torch.exp(-log_scale)
    cdf_plus = approx_standard_normal_cdf(inv_std * (centered + 1.0 / 255.0))
    cdf_min = approx_standard_normal_cdf(inv_std * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))


def _check_loss_inputs(
    model_out: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, n: int
) -> None:
    if model_out.ndim < 2 or x0.ndim != model_out.ndim or model_out.shape[1] != 2 * x0.shape[1]:
        raise ValueError(
            f"model_out must be [B, 2C, ...] (eps and variance halves) for x0 [B, C, ...]; got model_out "
            f"{tuple(model_out.shape)} and x0 {tuple(x0.shape)}. Build the denoiser with learned sigma."
        )
    if model_out.shape[0] != x0.shape[0] or model_out.shape[2:] != x0.shape[2:]:
        raise ValueError(f"model_out {tuple(model_out.shape)} does not match x0 {tuple(x0.shape)}.")
    for name, value in (("x_t", x_t), ("noise", noise)):
        if value.shape != x0.shape:
            raise ValueError(f"{name} must have x0's shape {tuple(x0.shape)}, got {tuple(value.shape)}.")
    if t.shape != (x0.shape[0],) or t.is_floating_point():
        raise ValueError(
            f"t must be an integer tensor of shape [B] = [{x0.shape[0]}], got {t.dtype} {tuple(t.shape)}."
        )
    if int(t.min()) < 0 or int(t.max()) >= n:
        raise ValueError(f"t must lie in [0, {n - 1}], got [{int(t.min())}, {int(t.max())}].")
    for name, value in (("model_out", model_out), ("x0", x0), ("x_t", x_t), ("noise", noise)):
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or Inf values.")


def gen_loss(
    schedule: DiffusionSchedule,
    model_out: torch.Tensor,
    x0: torch.Tensor,
    x_t: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    reduction: str = "mean",
) -> dict[str, torch.Tensor]:
    """OpenSora's L_gen = eps-MSE + VLB on the learned variance (module docstring; JOG3R Sec. 3.2).

    Args:
        schedule: the unspaced training schedule (``DiffusionSchedule.linear()``).
        model_out: ``[B, 2C, ...]`` denoiser output, eps in channels ``:C``, variance interpolation ``v`` in
            ``C:``.
        x0: ``[B, C, ...]`` clean latents.
        x_t: ``[B, C, ...]`` noisy latents, ``q_sample(x0, t, noise)``.
        t: ``[B]`` int64 timesteps in ``[0, N)``.
        noise: ``[B, C, ...]`` the eps used to make ``x_t``.
        reduction: ``"mean"`` (scalars, the mean of the per-sample values, as ``scripts/train.py``) or
            ``"none"`` (``[B]`` per-sample values).

    Returns:
        ``{"mse", "vb", "loss"}`` float32 with ``loss = mse + vb``; ``vb`` in bits per dimension.

    Raises:
        ValueError: mismatched shapes, ``t`` out of range, non-finite inputs or an unknown ``reduction``.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}.")
    if len(schedule.timesteps) != schedule.num_train_timesteps:
        raise ValueError("gen_loss needs the unspaced training schedule (DiffusionSchedule.linear()).")
    _check_loss_inputs(model_out, x0, x_t, t, noise, schedule.num_train_timesteps)
    model_out, x0, x_t, noise = (v.float() for v in (model_out, x0, x_t, noise))
    eps_hat, v = model_out.chunk(2, dim=1)
    mse = mean_flat((noise - eps_hat) ** 2)

    frozen = torch.cat([eps_hat.detach(), v], dim=1)
    model_mean, model_log_var, _ = schedule.p_mean_variance(frozen, x_t, t)
    true_mean, true_log_var = schedule.q_posterior(x0, x_t, t)
    kl = mean_flat(normal_kl(true_mean, true_log_var, model_mean, model_log_var)) / math.log(2.0)
    nll = -mean_flat(discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_log_var)) / math.log(2.0)
    vb = torch.where(t == 0, nll, kl)

    losses = {"mse": mse, "vb": vb, "loss": mse + vb}
    if reduction == "mean":
        losses = {name: value.mean() for name, value in losses.items()}
    return losses
