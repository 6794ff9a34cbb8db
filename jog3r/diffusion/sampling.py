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

**Options for weak models** (:class:`SamplingOptions`, all off by default = the reference; a model folder asks
for them in ``sampling.json``): ``x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)`` multiplies an eps error by up
to ``1 / sqrt(abar_999) = 157``, so a small model's eps error at high ``t`` derails every sampler
(``docs/notes/encode_diffusion.md``). Two remedies, applied identically by the three samplers:

* **eps gain correction** (:func:`correct_eps_gain`): the eps prediction's projection on ``x_t`` is set to the
  value every exact denoiser has (:func:`exact_eps_gain`), applied to the (guided) denoiser output;
* **x0 thresholding** (:class:`X0Threshold`): Imagen's dynamic thresholding (Saharia et al. 2022, Sec. 2.3;
  diffusers' ``thresholding=True``) of every x0 estimate, in units of the training latents' range instead of
  pixels' ``[-1, 1]`` (:func:`threshold_x0`): the IDDPM posterior mean and the DDIM / DPM-Solver++ updates are
  computed from the thresholded x0 (the diffusers schedulers through their own ``thresholding`` option).

``"iddpm"`` and ``"ddim"`` visit ``t = 0`` last, so a caller that taps DiT features at a small ``t`` (JOG3R
T2V+C takes ``t`` in ``[0, 5]``, paper Sec. 3.3) finds such a step; with ``"dpmsolver++"`` it needs
``steps >= 200``. :func:`sampler_timesteps` lists the visited timesteps in advance.
"""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
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


class SamplerName(enum.StrEnum):
    """The samplers (``sampler=`` of :class:`Sampler`, :func:`sample`, ``text_to_video``; members are plain
    strings).

    Members:
        IDDPM: ``"iddpm"``: OpenSora v1.0's respaced ancestral sampler (100 steps by default).
        DDIM: ``"ddim"``: diffusers' DDIM, eta = 0 (50 steps).
        DPMSOLVER_PP: ``"dpmsolver++"``: diffusers' multistep DPM-Solver++ (20 steps).
    """

    IDDPM = "iddpm"
    DDIM = "ddim"
    DPMSOLVER_PP = "dpmsolver++"


SAMPLERS = tuple(s.value for s in SamplerName)
"""The values of ``sampler`` (:class:`SamplerName`), in order: ``("iddpm", "ddim", "dpmsolver++")``."""
DEFAULT_STEPS = {"iddpm": 100, "ddim": 50, "dpmsolver++": 20}
CFG_SCALE = 7.0
"""Guidance scale of every OpenSora v1.0 inference config (REFERENCE.md A.8)."""


SAMPLING_FILE = "sampling.json"
"""Optional file of a model folder with its :class:`SamplingOptions` (absent: the reference sampling)."""


@dataclass(frozen=True)
class X0Threshold:
    """Dynamic thresholding of the x0 estimate, in the units of the training latents (see :func:`threshold_x0`).

    Attributes:
        ratio: percentile (as a fraction) of ``|x0|`` per sample that sets the threshold ``s`` (Imagen: 0.995).
        max_value: ``m``, the same percentile of ``|x0|`` over the training latents (> 0); the threshold never
            goes below it, so a sample already in the data's range only has its rare outliers clamped.
    """

    ratio: float = 0.995
    max_value: float = 1.0

    def __post_init__(self):
        if not 0.0 < self.ratio <= 1.0:
            raise ValueError(f"X0Threshold.ratio must be in (0, 1], got {self.ratio}.")
        if not self.max_value > 0.0:
            raise ValueError(f"X0Threshold.max_value must be > 0, got {self.max_value}.")


@dataclass(frozen=True)
class SamplingOptions:
    """Named deviations from OpenSora v1.0's reference sampling, for weak models; every one is off by default.

    Attributes:
        eps_gain_second_moment: ``E[x0^2]`` per element of the training latents; when set, the eps prediction's
            gain along ``x_t`` is corrected to the one every exact denoiser has (:func:`correct_eps_gain`).
        x0_threshold: dynamic thresholding of every x0 estimate (:func:`threshold_x0`), or ``None``.
    """

    eps_gain_second_moment: float | None = None
    x0_threshold: X0Threshold | None = None

    def __post_init__(self):
        if self.eps_gain_second_moment is not None and not self.eps_gain_second_moment > 0:
            raise ValueError(f"eps_gain_second_moment must be > 0, got {self.eps_gain_second_moment}.")

    @property
    def is_reference(self) -> bool:
        """True when nothing deviates from the reference sampling."""
        return self.eps_gain_second_moment is None and self.x0_threshold is None

    def to_dict(self) -> dict:
        """The ``sampling.json`` form."""
        return asdict(self)


def threshold_x0(x0: torch.Tensor, ratio: float = 0.995, max_value: float = 1.0) -> torch.Tensor:
    """Imagen's dynamic thresholding of an x0 estimate, with the data range ``[-m, m]`` instead of ``[-1, 1]``.

    Per sample: ``s = max(quantile(|x0|, ratio), m)``; ``x0 <- clamp(x0, -s, s) * m / s`` (Saharia et al. 2022,
    Sec. 2.3). With ``m = 1`` this is diffusers' ``_threshold_sample`` with ``sample_max_value = inf`` (tested);
    for latents ``m`` is the ``ratio``-percentile of the training latents' ``|x0|`` (:class:`X0Threshold`).

    Args:
        x0: ``[B, C, ...]`` x0 estimates (any float dtype; the quantile runs in float32).
        ratio: quantile in ``(0, 1]``.
        max_value: ``m > 0``.

    Returns:
        ``[B, C, ...]``, dtype of ``x0``, inside ``[-m, m]``.
    """
    flat = x0.reshape(x0.shape[0], -1).float()
    s = torch.quantile(flat.abs(), ratio, dim=1).clamp(min=max_value)[:, None]
    out = flat.clamp(-s, s) * (max_value / s)
    return out.reshape(x0.shape).to(x0.dtype)


def exact_eps_gain(alpha_bar: float | torch.Tensor, second_moment: float) -> float | torch.Tensor:
    """``E[<eps_hat, x_t>] / E[|x_t|^2]`` of the exact denoiser ``eps_hat = E[eps | x_t]``.

    With ``x_t = sqrt(abar) x0 + sqrt(1 - abar) eps``, the tower property gives
    ``E[eps_hat x_t] = E[E[eps | x_t] x_t] = E[eps x_t] = sqrt(1 - abar)`` per element, and
    ``E[x_t^2] = abar E[x0^2] + 1 - abar``, whatever the data distribution.

    Args:
        alpha_bar: ``abar_t``.
        second_moment: ``E[x0^2]`` per element of the data.

    Returns:
        The gain, ``sqrt(1 - abar) / (abar E[x0^2] + 1 - abar)`` (about 1 at ``t = 999``).
    """
    return (1 - alpha_bar) ** 0.5 / (alpha_bar * second_moment + 1 - alpha_bar)


def correct_eps_gain(
    eps: torch.Tensor, x_t: torch.Tensor, alpha_bar: torch.Tensor, second_moment: float
) -> torch.Tensor:
    """Give a predicted eps the gain along ``x_t`` that the exact denoiser has (:func:`exact_eps_gain`).

    Per sample ``b``: ``g_b = <eps_b, x_b> / <x_b, x_b>`` (the prediction's projection on its input) and
    ``eps_b <- eps_b + (g*(t) - g_b) x_b``; the part of ``eps`` orthogonal to ``x_t`` is unchanged. An
    undertrained network shrinks eps toward 0 (measured gain 0.84 at ``t = 999`` for the embedded default,
    where the exact value is 1.0), and ``x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)`` then turns the missing
    ``0.16 x_t`` into an x0 estimate made of the input noise, 25x too large (``docs/notes/encode_diffusion.md``).

    Args:
        eps: ``[B, C, ...]`` predicted eps.
        x_t: ``[B, C, ...]`` the denoiser's input.
        alpha_bar: ``[B]`` ``abar_t`` of each sample's timestep.
        second_moment: ``E[x0^2]`` per element of the training latents.

    Returns:
        ``[B, C, ...]`` corrected eps, dtype of ``eps``.
    """
    dims = tuple(range(1, x_t.ndim))
    xf, ef = x_t.double(), eps.double()
    gain = (ef * xf).sum(dims) / (xf * xf).sum(dims).clamp_min(1e-30)
    target = exact_eps_gain(alpha_bar.double().to(x_t.device), second_moment)
    shift = (target - gain).reshape(-1, *([1] * (x_t.ndim - 1)))
    return (ef + shift * xf).to(eps.dtype)


def read_sampling_options(folder: str | Path) -> SamplingOptions:
    """The :class:`SamplingOptions` a model folder asks for in ``sampling.json`` (absent: the reference).

    Raises:
        ValueError: if the file is not valid JSON or an entry is malformed.
    """
    path = Path(folder, SAMPLING_FILE)
    if not path.exists():
        return SamplingOptions()
    try:
        data = json.loads(path.read_text())
        th = data.get("x0_threshold")
        m2 = data.get("eps_gain_second_moment")
        return SamplingOptions(
            eps_gain_second_moment=None if m2 is None else float(m2),
            x0_threshold=None if th is None else X0Threshold(float(th["ratio"]), float(th["max_value"])),
        )
    except (json.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"{path} is malformed ({err}); expected e.g. "
            '{"eps_gain_second_moment": 0.91, "x0_threshold": {"ratio": 0.995, "max_value": 3.0}} or null entries'
        ) from err


def write_sampling_options(folder: str | Path, options: SamplingOptions) -> None:
    """Write ``sampling.json`` into a model folder."""
    Path(folder, SAMPLING_FILE).write_text(json.dumps(options.to_dict(), indent=1) + "\n")


class _LatentThreshold:
    """Mixin: diffusers' ``thresholding`` with :func:`threshold_x0` (``sample_max_value`` = ``m``, not a cap)."""

    def _threshold_sample(self, sample: torch.Tensor) -> torch.Tensor:
        return threshold_x0(sample, self.config.dynamic_thresholding_ratio, self.config.sample_max_value)


class _DDIM(_LatentThreshold, DDIMScheduler):
    pass


class _DPMSolver(_LatentThreshold, DPMSolverMultistepScheduler):
    pass


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


def _diffusers_scheduler(
    sampler: str, steps: int, schedule: DiffusionSchedule, threshold: X0Threshold | None = None
):
    config = dict(
        num_train_timesteps=schedule.num_train_timesteps,
        beta_start=schedule.beta_start,
        beta_end=schedule.beta_end,
        beta_schedule="linear",
        prediction_type="epsilon",
    )
    if threshold is not None:
        config.update(
            thresholding=True,
            dynamic_thresholding_ratio=threshold.ratio,
            sample_max_value=threshold.max_value,
        )
    if sampler == "ddim":
        scheduler = _DDIM(
            **config, clip_sample=False, set_alpha_to_one=True, steps_offset=0, timestep_spacing="leading"
        )
        scheduler.set_timesteps(steps)
    else:
        scheduler = _DPMSolver(
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


def _check_output(out: torch.Tensor, x: torch.Tensor, t: int) -> torch.Tensor:
    expected = (x.shape[0], 2 * x.shape[1], *x.shape[2:])
    if tuple(out.shape) != expected:
        raise ValueError(
            f"eps_model must return [B, 2C, ...] = {expected} (eps and learned-variance halves), got "
            f"{tuple(out.shape)}."
        )
    if not torch.isfinite(out).all():
        raise ValueError(f"eps_model returned NaN or Inf at t={t}.")
    return out.to(x.dtype)


class Sampler:
    """One reverse-diffusion run, step by step: the loop a caller writes out, as diffusers' pipelines do.

    ::

        run = Sampler("ddim", 50, generator=g)
        x = run.initial_latents((B, C, F, h, w))
        for i, t in enumerate(run.timesteps):
            x_in = run.model_input(x, i)
            out = denoiser(x_in, torch.full((B,), t))       # [B, 2C, ...]: eps, then variance channels
            x = run.step(out, i, x)                         # x_{t_{i+1}}; after the last step x_0

    :func:`sample` is exactly this loop. The samplers, their grids and the :class:`SamplingOptions` are those of
    the module docstring; the eps gain correction is applied inside :meth:`step`, to the output it is given.

    Args:
        sampler: one of :data:`SAMPLERS`.
        steps: number of denoiser calls (``None``: :data:`DEFAULT_STEPS`).
        schedule: unspaced base schedule (``None``: ``DiffusionSchedule.linear()``, OpenSora's).
        generator: seeds the initial noise (:meth:`initial_latents`) and the IDDPM step noise.
        options: deviations from the reference sampling (``None``: OpenSora's reference).

    Attributes:
        timesteps: the original timesteps ``t`` in ``[0, N)`` the denoiser is called at, noisiest first (a list of
            ints, equal to :func:`sampler_timesteps`).

    Raises:
        ValueError: unknown sampler or ``steps`` out of range.
    """

    def __init__(
        self,
        sampler: str = "iddpm",
        steps: int | None = None,
        schedule: DiffusionSchedule | None = None,
        generator: torch.Generator | None = None,
        options: SamplingOptions | None = None,
    ) -> None:
        self.schedule = DiffusionSchedule.linear() if schedule is None else schedule
        self.steps = _check_sampler(sampler, steps, self.schedule.num_train_timesteps)
        self.sampler = str(sampler)  # a SamplerName member -> its plain string
        self.generator = generator
        self.options = options or SamplingOptions()
        if sampler == "iddpm":
            self._spaced = self.schedule.respace(self.steps)
            self._scheduler = None
            n = len(self._spaced.timesteps)
            self.timesteps = [int(self._spaced.timesteps[k]) for k in range(n - 1, -1, -1)]
        else:
            self._spaced = None
            self._scheduler = _diffusers_scheduler(sampler, self.steps, self.schedule, self.options.x0_threshold)
            self.timesteps = [int(t) for t in self._scheduler.timesteps]
        self._alphas_cumprod = torch.from_numpy(self.schedule.alphas_cumprod)  # unspaced: indexed by original t

    def initial_latents(
        self,
        shape: tuple[int, ...],
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x_T``: Gaussian noise of ``shape`` drawn with the generator, or ``noise`` when given.

        Raises:
            ValueError: ``noise`` not of ``shape``.
        """
        if noise is None:
            return randn_tensor(tuple(shape), generator=self.generator, device=torch.device(device), dtype=dtype)
        if tuple(noise.shape) != tuple(shape):
            raise ValueError(f"noise must have shape {tuple(shape)}, got {tuple(noise.shape)}.")
        return noise.to(device=device, dtype=dtype)

    def model_input(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """What the denoiser sees at step ``i``: ``x`` (the diffusers schedulers' ``scale_model_input``, an
        identity for DDIM and DPM-Solver++)."""
        if self._scheduler is None:
            return x
        return self._scheduler.scale_model_input(x, self._scheduler.timesteps[i])

    def step(
        self, out: torch.Tensor, i: int, x: torch.Tensor, model_input: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One reverse step: the denoiser's output at step ``i`` -> the next latents.

        Args:
            out: ``[B, 2C, ...]`` denoiser output (after guidance) for :meth:`model_input` ``(x, i)``.
            i: the step index into :attr:`timesteps`.
            x: ``[B, C, ...]`` the current latents ``x_t``.
            model_input: the denoiser's input, if not ``x`` (only the eps gain correction reads it).

        Returns:
            ``[B, C, ...]`` latents of the next step (``x_0`` after the last), dtype of ``x``.

        Raises:
            ValueError: ``out`` of the wrong shape or not finite.
        """
        t = self.timesteps[i]
        x_in = x if model_input is None else model_input
        if self.options.eps_gain_second_moment is not None and out.ndim == x_in.ndim \
                and out.shape[1] == 2 * x_in.shape[1]:  # else _check_output reports the shape error
            channels = x_in.shape[1]
            t_batch = torch.full((x_in.shape[0],), t, dtype=torch.long, device=x_in.device)
            eps = correct_eps_gain(out[:, :channels], x_in, self._alphas_cumprod[t_batch.cpu()],
                                   self.options.eps_gain_second_moment)
            out = torch.cat([eps, out[:, channels:]], dim=1)
        out = _check_output(out, x_in, t)
        if self._scheduler is None:
            return self._iddpm_step(out, i, x)
        scheduler, channels = self._scheduler, x.shape[1]
        eps, t_tensor = out[:, :channels], scheduler.timesteps[i]
        if isinstance(scheduler, DDIMScheduler) and scheduler.config.thresholding:
            # GLIDE / DDIM eq. 12 with the thresholded x0: the eps direction is re-derived from it, so that x_{t-1}
            # stays consistent with x_t (diffusers keeps the raw eps unless asked).
            return scheduler.step(eps, t_tensor, x, generator=self.generator,
                                  use_clipped_model_output=True).prev_sample
        return scheduler.step(eps, t_tensor, x, generator=self.generator).prev_sample

    def _iddpm_step(self, out: torch.Tensor, i: int, x: torch.Tensor) -> torch.Tensor:
        spaced, threshold = self._spaced, self.options.x0_threshold
        k = len(self.timesteps) - 1 - i
        index = torch.full((x.shape[0],), k, dtype=torch.long, device=x.device)
        mean, log_variance, x0_hat = spaced.p_mean_variance(out, x, index)
        if threshold is not None:  # the reference's clip_denoised path, with dynamic thresholding as the clip
            mean, _ = spaced.q_posterior(threshold_x0(x0_hat, threshold.ratio, threshold.max_value), x, index)
        if k > 0:
            noise = randn_tensor(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
            return mean + torch.exp(0.5 * log_variance) * noise
        return mean


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
    options: SamplingOptions | None = None,
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
        options: deviations from the reference sampling (:class:`SamplingOptions`: eps gain correction, x0
            thresholding); ``None`` (default) is OpenSora's reference sampling.

    Returns:
        ``x_0`` latents, ``shape``, ``dtype``.

    Raises:
        ValueError: unknown sampler, bad ``steps``, wrong ``noise`` shape, or a denoiser output of the wrong
            shape / with non-finite values.
    """
    run = Sampler(sampler, steps, schedule, generator, options)
    x = run.initial_latents(shape, device, dtype, noise)
    logger.debug("sampling %s with %s, %d steps", tuple(shape), sampler, run.steps)
    with torch.no_grad():
        for i, t in enumerate(run.timesteps):
            x_in = run.model_input(x, i)
            if callback is not None:
                callback(i, t, x_in)
            x = run.step(eps_model(x_in, torch.full((x_in.shape[0],), t, dtype=torch.long, device=x_in.device)),
                         i, x, model_input=x_in)
    return x
