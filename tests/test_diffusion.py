"""Tests of jog3r.diffusion: forward process, L_gen against hand-computed values, samplers on toy problems
with known answers, equality with diffusers' DDPMScheduler, classifier-free guidance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers.utils.torch_utils import randn_tensor

from jog3r.diffusion import (
    SAMPLERS,
    DiffusionSchedule,
    GaussianDiffusion,
    classifier_free_guidance,
    guided,
    make_ddpm_scheduler,
    sample,
    sampler_timesteps,
    space_timesteps,
)

# Independent float64 tables straight from the DDPM definitions (linear betas 1e-4 .. 0.02, 1000 steps).
BETAS = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
ABAR = np.cumprod(1.0 - BETAS)
ABAR_T = torch.from_numpy(ABAR)


@pytest.fixture(scope="module")
def diffusion() -> GaussianDiffusion:
    return GaussianDiffusion()


def _abar(t: torch.Tensor, ndim: int) -> torch.Tensor:
    return ABAR_T[t].float().reshape(-1, *([1] * (ndim - 1)))


def point_eps_model(x_star: torch.Tensor):
    """Exact eps when the data is the single point x_star: eps = (x_t - sqrt(abar) x*) / sqrt(1 - abar)."""

    def eps_model(x, t):
        a = _abar(t, x.ndim)
        eps = (x - a.sqrt() * x_star) / (1 - a).sqrt()
        return torch.cat([eps, torch.zeros_like(eps)], dim=1)

    return eps_model


def gaussian_eps_model(mu: torch.Tensor, std: torch.Tensor, v_fn=None):
    """Exact E[eps | x_t] for data ~ N(mu, std^2): x_t ~ N(sqrt(a) mu, a std^2 + 1 - a)."""

    def eps_model(x, t):
        a = _abar(t, x.ndim)
        eps = (1 - a).sqrt() * (x - a.sqrt() * mu) / (a * std**2 + 1 - a)
        v = torch.zeros_like(eps) if v_fn is None else v_fn(x, t)
        return torch.cat([eps, v], dim=1)

    return eps_model


# ----------------------------------------------------------------------------------------------- schedule


def test_space_timesteps_100_of_1000():
    steps = space_timesteps(1000, 100)
    assert len(steps) == 100 and len(set(steps)) == 100
    assert steps[0] == 0 and steps[-1] == 999
    assert all(b > a for a, b in zip(steps, steps[1:]))
    # stride 999/99 = 10.09..., rounded: 0, 10, 20, 30, 40, 50, 61 (6 * 10.09 = 60.5454 -> 61)
    assert steps[:7] == [0, 10, 20, 30, 40, 50, 61]
    assert {b - a for a, b in zip(steps, steps[1:])} == {10, 11}
    assert space_timesteps(1000, 1000) == list(range(1000))


def test_space_timesteps_rejects_bad_counts():
    with pytest.raises(ValueError, match="num_steps"):
        space_timesteps(1000, 0)
    with pytest.raises(ValueError, match="num_steps"):
        space_timesteps(1000, 1001)


def test_respaced_betas_from_alphas_cumprod():
    spaced = DiffusionSchedule.linear().respace(100)
    t = np.array(space_timesteps(1000, 100))
    expected = 1 - ABAR[t] / np.append(1.0, ABAR[t[:-1]])
    np.testing.assert_allclose(spaced.betas, expected, rtol=1e-12)
    np.testing.assert_allclose(np.cumprod(1 - spaced.betas), ABAR[t], rtol=1e-12)


def test_sampler_timesteps_end_at_zero_where_documented():
    assert sampler_timesteps("iddpm") == space_timesteps(1000, 100)[::-1]
    ddim = sampler_timesteps("ddim")
    assert len(ddim) == 50 and ddim[0] == 980 and ddim[-1] == 0
    dpm = sampler_timesteps("dpmsolver++")
    assert len(dpm) == 20 and dpm[0] == 999 and dpm[-1] == round(999 / 20)


# ----------------------------------------------------------------------------------------- forward process


def test_q_sample_matches_definition(diffusion):
    x0, noise = torch.randn(3, 4, 2, 3, 3), torch.randn(3, 4, 2, 3, 3)
    t = torch.tensor([0, 500, 999])
    a = _abar(t, 5)
    expected = a.sqrt() * x0 + (1 - a).sqrt() * noise
    torch.testing.assert_close(diffusion.q_sample(x0, t, noise), expected, atol=1e-5, rtol=1e-5)


def test_q_sample_rejects_bad_inputs(diffusion):
    x0 = torch.zeros(2, 4, 3)
    with pytest.raises(ValueError, match="noise"):
        diffusion.q_sample(x0, torch.tensor([1, 2]), torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="lie in"):
        diffusion.q_sample(x0, torch.tensor([1, 1000]), torch.zeros_like(x0))


def test_sample_timesteps_range_and_seed(diffusion):
    t = diffusion.sample_timesteps(4000, generator=torch.Generator().manual_seed(3))
    assert t.dtype == torch.int64 and int(t.min()) == 0 and int(t.max()) == 999
    small = diffusion.sample_timesteps(500, 0, 11, generator=torch.Generator().manual_seed(3))
    assert set(small.tolist()) == set(range(11))
    again = diffusion.sample_timesteps(500, 0, 11, generator=torch.Generator().manual_seed(3))
    assert torch.equal(small, again)
    with pytest.raises(ValueError, match="low < high"):
        diffusion.sample_timesteps(2, 5, 5)


# ----------------------------------------------------------------------------------------------- L_gen


def _expected_losses(model_out, x0, x_t, t, noise):
    """Straightforward per-sample L_gen written from the DDPM / IDDPM definitions, float64."""
    eps_hat, v = [h.double() for h in model_out.chunk(2, dim=1)]
    x0, x_t, noise = x0.double(), x_t.double(), noise.double()
    mse, vb = [], []
    for b, tb in enumerate(t.tolist()):
        abar, beta = ABAR[tb], BETAS[tb]
        abar_prev = ABAR[tb - 1] if tb > 0 else 1.0
        post_var = beta * (1 - abar_prev) / (1 - abar)
        post_var_clipped = BETAS[1] * (1 - ABAR[0]) / (1 - ABAR[1]) if tb == 0 else post_var

        def post_mean(start):
            return (math.sqrt(abar_prev) * beta / (1 - abar)) * start + (
                math.sqrt(1 - beta) * (1 - abar_prev) / (1 - abar)
            ) * x_t[b]

        x0_hat = (x_t[b] - math.sqrt(1 - abar) * eps_hat[b]) / math.sqrt(abar)
        frac = (v[b] + 1) / 2
        model_var = torch.exp(frac * math.log(beta) + (1 - frac) * math.log(post_var_clipped))
        p = torch.distributions.Normal(post_mean(x0_hat), model_var.sqrt())
        if tb > 0:
            q = torch.distributions.Normal(post_mean(x0[b]), math.sqrt(post_var))
            vb.append(torch.distributions.kl_divergence(q, p).mean() / math.log(2))
        else:  # exact-CDF discretised Gaussian with 256 bins on [-1, 1]
            upper = torch.where(x0[b] > 0.999, torch.ones_like(x0[b]), p.cdf(x0[b] + 1 / 255))
            lower = torch.where(x0[b] < -0.999, torch.zeros_like(x0[b]), p.cdf(x0[b] - 1 / 255))
            vb.append(-torch.log(upper - lower).mean() / math.log(2))
        mse.append(((noise[b] - eps_hat[b]) ** 2).mean())
    return torch.stack(mse), torch.stack(vb)


def test_gen_loss_matches_hand_computation(diffusion):
    x0 = torch.rand(4, 2, 2, 3, 3) * 1.6 - 0.8
    noise = torch.randn_like(x0)
    t = torch.tensor([1, 37, 500, 999])
    x_t = diffusion.q_sample(x0, t, noise)
    model_out = torch.cat([noise + 0.3 * torch.randn_like(x0), torch.rand_like(x0) * 2 - 1], dim=1)
    losses = diffusion.gen_loss(model_out, x0, x_t, t, noise, reduction="none")
    mse, vb = _expected_losses(model_out, x0, x_t, t, noise)
    torch.testing.assert_close(losses["mse"].double(), mse, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(losses["vb"].double(), vb, rtol=2e-3, atol=1e-5)
    torch.testing.assert_close(losses["loss"], losses["mse"] + losses["vb"])
    assert (losses["vb"] > 0).all()
    mean = diffusion.gen_loss(model_out, x0, x_t, t, noise)
    torch.testing.assert_close(mean["loss"], losses["loss"].mean())


def test_gen_loss_decoder_nll_at_t0(diffusion):
    # x0 on the 256-level grid of [-1, 1] including both edge bins
    x0 = torch.randint(0, 256, (2, 2, 4, 4)).float() / 127.5 - 1
    x0[0, 0, 0, 0], x0[1, 0, 0, 0] = -1.0, 1.0
    noise = torch.randn_like(x0)
    t = torch.zeros(2, dtype=torch.long)
    x_t = diffusion.q_sample(x0, t, noise)
    model_out = torch.cat([noise + 0.1 * torch.randn_like(x0), torch.rand_like(x0) * 2 - 1], dim=1)
    losses = diffusion.gen_loss(model_out, x0, x_t, t, noise, reduction="none")
    _, vb = _expected_losses(model_out, x0, x_t, t, noise)
    # the reference uses a tanh approximation of the normal CDF (abs. error < 2e-4): 1% agreement expected
    torch.testing.assert_close(losses["vb"].double(), vb, rtol=1e-2, atol=1e-3)


def test_gen_loss_vb_does_not_reach_eps_half(diffusion):
    x0 = torch.randn(3, 4, 2, 2, 2)
    noise = torch.randn_like(x0)
    t = torch.tensor([0, 10, 700])
    x_t = diffusion.q_sample(x0, t, noise)
    model_out = torch.randn(3, 8, 2, 2, 2, requires_grad=True)
    diffusion.gen_loss(model_out, x0, x_t, t, noise)["vb"].backward()
    assert torch.count_nonzero(model_out.grad[:, :4]) == 0
    assert torch.count_nonzero(model_out.grad[:, 4:]) > 0
    model_out.grad = None
    diffusion.gen_loss(model_out, x0, x_t, t, noise)["mse"].backward()
    assert torch.count_nonzero(model_out.grad[:, 4:]) == 0
    assert torch.count_nonzero(model_out.grad[:, :4]) > 0


def test_gen_loss_rejects_bad_inputs(diffusion):
    x0 = torch.zeros(2, 4, 3)
    t = torch.tensor([3, 4])
    with pytest.raises(ValueError, match=r"\[B, 2C"):
        diffusion.gen_loss(torch.zeros(2, 4, 3), x0, x0, t, x0)
    with pytest.raises(ValueError, match="lie in"):
        diffusion.gen_loss(torch.zeros(2, 8, 3), x0, x0, torch.tensor([3, -1]), x0)
    with pytest.raises(ValueError, match="NaN"):
        diffusion.gen_loss(torch.full((2, 8, 3), float("nan")), x0, x0, t, x0)
    with pytest.raises(ValueError, match="integer"):
        diffusion.gen_loss(torch.zeros(2, 8, 3), x0, x0, t.float(), x0)


# -------------------------------------------------------------------------------------------- samplers


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_samplers_converge_to_single_data_point(sampler):
    # With the exact eps every step's x0-prediction is exactly x*, and each sampler's last update returns it
    # (IDDPM: posterior coefficient on x0 is 1 at the last step and no noise; DDIM: final abar = 1;
    # DPM-Solver++: final sigma = 0). What remains is float32 rounding amplified by 1/sqrt(abar_999) ~ 160
    # early on: 1e-4.
    x_star = torch.tensor([0.7, -1.3, 0.2, 2.0]).reshape(1, 4, 1, 1, 1)
    out = sample(
        point_eps_model(x_star), (2, 4, 2, 3, 3), sampler, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(out, x_star.expand(2, 4, 2, 3, 3), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "sampler, steps, tol", [("iddpm", 1000, 0.04), ("ddim", 200, 0.05), ("dpmsolver++", 50, 0.05)]
)
def test_samplers_reproduce_gaussian_data(sampler, steps, tol):
    # Data N(mu, std^2) per channel; exact eps. 4096 samples: std estimate noise 1.1%; measured discretisation
    # errors at these step counts <= 3% (docs/notes/encode_diffusion.md): 4-5% bounds fail on real bugs.
    mu, std = torch.tensor([0.5, -1.0]).view(1, 2, 1), torch.tensor([0.3, 1.0]).view(1, 2, 1)
    out = sample(gaussian_eps_model(mu, std), (1, 2, 4096), sampler, steps, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.mean(-1), mu.view(1, 2), atol=0.03, rtol=0)
    torch.testing.assert_close(out.std(-1), std.view(1, 2), rtol=tol, atol=0)


@pytest.mark.parametrize("steps", [1000, 100])
def test_iddpm_equals_diffusers_ddpm_step_for_step(steps):
    """Our float64 IDDPM vs diffusers DDPMScheduler(variance_type="learned_range"), same timesteps and RNG.

    The toy model has a non-trivial learned variance (v = tanh x), so the learned-range interpolation is
    exercised. diffusers keeps float32 tables, ours are float64 (like the reference): per-element differences
    stay < 1e-3.
    """
    shape = (2, 3, 2, 4, 4)
    model = gaussian_eps_model(
        torch.linspace(-1, 1, 3).view(1, 3, 1, 1, 1), torch.tensor(0.5), v_fn=lambda x, t: torch.tanh(x)
    )
    ours: list[torch.Tensor] = []
    final = sample(
        model, shape, "iddpm", steps, torch.Generator().manual_seed(1), lambda i, t, x: ours.append(x)
    )

    scheduler = make_ddpm_scheduler()
    scheduler.set_timesteps(timesteps=sampler_timesteps("iddpm", steps))
    generator = torch.Generator().manual_seed(1)
    x = randn_tensor(shape, generator=generator)
    assert len(scheduler.timesteps) == len(ours) == steps
    for i, t in enumerate(scheduler.timesteps):
        torch.testing.assert_close(ours[i], x, atol=1e-3, rtol=0, msg=f"step {i} (t={int(t)})")
        x = scheduler.step(model(x, torch.full((2,), int(t))), t, x, generator=generator).prev_sample
    torch.testing.assert_close(final, x, atol=1e-4, rtol=0)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_sampling_is_deterministic_and_callback_sees_every_step(sampler):
    model = gaussian_eps_model(torch.tensor(0.2), torch.tensor(0.7), v_fn=lambda x, t: 0.5 * torch.tanh(x))
    seen: list[tuple[int, int]] = []
    a = sample(
        model, (2, 3, 8), sampler, 10, torch.Generator().manual_seed(5), lambda i, t, x: seen.append((i, t))
    )
    b = sample(model, (2, 3, 8), sampler, 10, torch.Generator().manual_seed(5))
    c = sample(model, (2, 3, 8), sampler, 10, torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert seen == list(enumerate(sampler_timesteps(sampler, 10)))


def test_sample_rejects_bad_arguments():
    good = point_eps_model(torch.tensor(0.0))
    with pytest.raises(ValueError, match="unknown sampler"):
        sample(good, (1, 2, 3), "euler")
    with pytest.raises(ValueError, match="steps"):
        sample(good, (1, 2, 3), "iddpm", steps=1)
    with pytest.raises(ValueError, match=r"\[B, 2C"):
        sample(lambda x, t: x, (1, 2, 3), "ddim", steps=2)
    with pytest.raises(ValueError, match="NaN"):
        sample(lambda x, t: torch.full((1, 4, 3), float("nan")), (1, 2, 3), "iddpm", steps=2)


# --------------------------------------------------------------------------------------------------- CFG


def _opensora_forward_with_cfg(model, x, t, scale, cfg_channel):
    """The reference's batching written out: x = [z; z], first half conditional, the first half returned."""
    half = x[: len(x) // 2]
    out = model(torch.cat([half, half]), t)
    eps, rest = out[:, :cfg_channel], out[:, cfg_channel:]
    cond_eps, uncond_eps = torch.split(eps, len(eps) // 2)
    half_eps = uncond_eps + scale * (cond_eps - uncond_eps)
    return torch.cat([torch.cat([half_eps, half_eps]), rest], dim=1)


def test_guided_reproduces_opensora_three_channel_quirk():
    weight = torch.randn(2, 8, 4)

    def doubled(x, t):  # first half "conditional", second half "unconditional": different linear maps
        n = len(x) // 2
        return torch.cat(
            [torch.einsum("oc,bchw->bohw", weight[0], x[:n]), torch.einsum("oc,bchw->bohw", weight[1], x[n:])]
        )

    x, t = torch.randn(3, 4, 2, 2), torch.full((3,), 10)
    ours = guided(doubled, 7.0, guide_channels=3)(x, t)
    reference = _opensora_forward_with_cfg(doubled, torch.cat([x, x]), torch.cat([t, t]), 7.0, 3)[:3]
    torch.testing.assert_close(ours, reference)
    cond, uncond = doubled(torch.cat([x, x]), t).chunk(2)
    torch.testing.assert_close(ours[:, 3:], cond[:, 3:])  # eps channel 3 and all variances: conditional
    full = classifier_free_guidance(cond, uncond, 7.0)
    torch.testing.assert_close(full[:, :4], uncond[:, :4] + 7.0 * (cond[:, :4] - uncond[:, :4]))
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 1.0), cond)


def test_cfg_rejects_bad_channels():
    out = torch.zeros(1, 8, 2)
    with pytest.raises(ValueError, match="guide_channels"):
        classifier_free_guidance(out, out, 7.0, guide_channels=5)
    with pytest.raises(ValueError, match=r"\[B, 2C"):
        classifier_free_guidance(out, torch.zeros(1, 6, 2))
