"""Tests of musiclab.models.diffusion and the diffusion losses: the closed form against the chain, the
posterior against Bayes' rule, the samplers against a known data distribution, the conversions, the
ELBO weight, and the recipe end to end."""
import json

import numpy as np
import pytest
import torch

from musiclab import losses
from musiclab.models import diffusion, diffusion_process, gan

ALPHA_BAR = diffusion_process.cosine_alpha_bar(1000)


def test_cosine_schedule_runs_from_data_to_noise():
    assert ALPHA_BAR[0] == 1 and ALPHA_BAR[-1] < 1e-4
    assert (ALPHA_BAR[1:] < ALPHA_BAR[:-1]).all()
    # the middle of the schedule is half signal, half noise (the cosine's point)
    assert ALPHA_BAR[500] == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("t", [1, 100, 600])
def test_closed_form_matches_iterating_the_chain(t):
    """x_t by t single steps x_k = sqrt(1 - beta_k) x_{k-1} + sqrt(beta_k) eps_k has the moments of
    `q_sample` in one step (Monte Carlo, data from a non-Gaussian two-point distribution)."""
    rng = torch.Generator().manual_seed(0)
    x0 = torch.where(torch.rand(50_000, generator=rng, dtype=torch.float64) < 0.3, 2.0, -1.0).double()
    betas = 1 - ALPHA_BAR[1:] / ALPHA_BAR[:-1]
    x = x0.clone()
    for k in range(t):
        x = (1 - betas[k]).sqrt() * x + betas[k].sqrt() * torch.randn(x.shape, generator=rng, dtype=torch.float64)
    closed = diffusion_process.q_sample(x0, ALPHA_BAR[t], torch.randn(x0.shape, generator=rng, dtype=torch.float64))
    for moment in (1, 2, 3):
        standard_error = ((x**moment).var() / len(x) + (closed**moment).var() / len(x)).sqrt().item()
        assert (x**moment).mean().item() == pytest.approx((closed**moment).mean().item(), abs=4 * standard_error)
    # and both match the analytic mean and variance of q(x_t)
    mean, var = x0.mean(), x0.var()
    assert x.mean().item() == pytest.approx((ALPHA_BAR[t].sqrt() * mean).item(), abs=0.02)
    assert x.var().item() == pytest.approx((ALPHA_BAR[t] * var + 1 - ALPHA_BAR[t]).item(), rel=0.02)


@pytest.mark.parametrize("t, s", [(10, 9), (400, 399), (600, 300)])
def test_posterior_is_bayes_rule(t, s):
    """q(x_s | x_t, x_0) by Bayes' rule on a 1-D Gaussian: prior q(x_s | x_0) = N(sqrt(a_s) x_0, 1 - a_s),
    likelihood q(x_t | x_s) = N(sqrt(alpha) x_s, 1 - alpha); precision-weighted product of the two."""
    x0, x_t = torch.tensor([0.7, -1.3], dtype=torch.float64), torch.tensor([0.2, 1.1], dtype=torch.float64)
    a_t, a_s = ALPHA_BAR[t], ALPHA_BAR[s]
    alpha = a_t / a_s
    prior_precision, likelihood_precision = 1 / (1 - a_s), alpha / (1 - alpha)  # the latter in x_s
    variance = 1 / (prior_precision + likelihood_precision)
    mean = variance * (prior_precision * a_s.sqrt() * x0 + (1 / (1 - alpha)) * alpha.sqrt() * x_t)
    got_mean, got_var = diffusion_process.q_posterior(x0, x_t, a_t, a_s)
    torch.testing.assert_close(got_mean, mean)
    torch.testing.assert_close(got_var, variance)


@pytest.mark.parametrize("prediction", diffusion_process.PREDICTIONS)
def test_conversions_round_trip(prediction):
    rng = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(2, 2, 5, 7, generator=rng, dtype=torch.float64)
    a = ALPHA_BAR[torch.tensor([30, 700])][:, None, None]
    x_t = diffusion_process.q_sample(x0, a, eps)
    target = diffusion_process.prediction_target(x0, eps, a, prediction)
    x0_hat, eps_hat = diffusion_process.split_prediction(x_t, target, a, prediction)
    torch.testing.assert_close(x0_hat, x0)
    torch.testing.assert_close(eps_hat, eps)
    with pytest.raises(ValueError, match="prediction='score'"):
        diffusion_process.prediction_target(x0, eps, a, "score")


def test_elbo_weight_is_the_kl_of_two_posteriors():
    """KL(q(x_s | x_t, x_0) || q(x_s | x_t, x0_hat)) from the Gaussian KL equals lambda_t ||eps - eps_hat||^2."""
    t, s = torch.tensor(200), torch.tensor(199)
    a_t, a_s = ALPHA_BAR[t], ALPHA_BAR[s]
    x0, eps = torch.tensor([0.3], dtype=torch.float64), torch.tensor([0.8], dtype=torch.float64)
    x_t = diffusion_process.q_sample(x0, a_t, eps)
    eps_hat = eps + 0.1
    x0_hat, _ = diffusion_process.split_prediction(x_t, eps_hat, a_t, "eps")
    mean, variance = diffusion_process.q_posterior(x0, x_t, a_t, a_s)
    mean_hat, _ = diffusion_process.q_posterior(x0_hat, x_t, a_t, a_s)
    kl = losses.gaussian_kl_per_dim(mean, variance.log().expand(1), mean_hat, variance.log())
    weight = losses.diffusion_elbo_weight(a_t, a_s)
    assert kl.item() == pytest.approx((weight * 0.1**2).item(), rel=1e-9)
    # the weight the simple loss drops is far from constant: large near the data
    assert losses.diffusion_elbo_weight(ALPHA_BAR[2], ALPHA_BAR[1]) > 20 * losses.diffusion_elbo_weight(ALPHA_BAR[900], ALPHA_BAR[899])


MIXTURE = (torch.tensor([0.3, 0.7], dtype=torch.float64), torch.tensor([-1.5, 1.0], dtype=torch.float64),
           torch.tensor([0.2, 0.5], dtype=torch.float64))


def _optimal_estimate(x_t, t):
    x0_hat = diffusion_process.optimal_gaussian_mixture_x0(x_t, ALPHA_BAR[t], *MIXTURE)
    a = ALPHA_BAR[t]
    return x0_hat, (x_t - a.sqrt() * x0_hat) / (1 - a).sqrt()


@pytest.mark.parametrize("sampler, n_steps", [("ddim", 50), ("ddpm", 200)])
def test_samplers_with_the_optimal_denoiser_reproduce_the_data(sampler, n_steps):
    """With the exact E[x_0 | x_t] of a 1-D Gaussian mixture, both samplers return its mixture
    weights, mean and variance."""
    weights_, means, stds = MIXTURE
    rng = torch.Generator().manual_seed(2)
    x_T = torch.randn(40_000, generator=rng, dtype=torch.float64)
    x0 = diffusion_process.sample(_optimal_estimate, x_T, ALPHA_BAR, n_steps, sampler, rng)
    mean = (weights_ * means).sum()
    variance = (weights_ * (stds**2 + means**2)).sum() - mean**2
    assert x0.mean().item() == pytest.approx(mean.item(), abs=0.03)
    assert x0.var().item() == pytest.approx(variance.item(), rel=0.05)
    assert (x0 < -0.5).double().mean().item() == pytest.approx(0.3, abs=0.02)


def test_the_check_can_fail_a_wrong_denoiser():
    """The same DDIM run with the denoiser of a shifted mixture misses the mean."""
    shifted = (MIXTURE[0], MIXTURE[1] + 0.5, MIXTURE[2])
    estimate = lambda x_t, t: diffusion_process.split_prediction(
        x_t, diffusion_process.optimal_gaussian_mixture_x0(x_t, ALPHA_BAR[t], *shifted), ALPHA_BAR[t], "x0")
    x0 = diffusion_process.sample(estimate, torch.randn(10_000, dtype=torch.float64), ALPHA_BAR, 50)
    assert abs(x0.mean().item() - (MIXTURE[0] * MIXTURE[1]).sum().item()) > 0.4


def test_guidance_scale_one_is_the_conditional_model_and_extrapolates_beyond():
    c, u = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    torch.testing.assert_close(diffusion_process.guide(c, u, 1.0), c)
    torch.testing.assert_close(diffusion_process.guide(c, u, 0.0), u)
    torch.testing.assert_close(diffusion_process.guide(c, u, 3.0), torch.tensor([3.0, 4.0]))


def test_diffusion_loss_is_zero_only_at_the_target():
    target = torch.randn(4, 3, 5)
    assert losses.diffusion_loss(target, target) == 0
    assert losses.diffusion_loss(target + 0.5, target).item() == pytest.approx(0.25)


# The note model and its recipe -------------------------------------------------------------------------


def test_recipe_trains_saves_and_loads_a_generator_of_the_gan_chapter(tmp_path, monkeypatch):
    """Two short trainings, a sidecar with the sampling time, weights that load back and sample the
    same notes as the trained model, through the GAN chapter's `gan.generate_log_mel`."""
    from musiclab import recipes
    from musiclab.errors import BadInputError

    monkeypatch.setenv("MUSICLAB_MODE", "quick")
    result = recipes.RECIPES["diffusion"].train(tmp_path, steps=6, command="test", progress=False,
                                                autoencoder_steps=4, n_per_condition=1, width=16)
    sidecar = json.loads((tmp_path / "diffusion.json").read_text())
    assert sidecar["settings"]["steps"] == 6 and sidecar["metrics"]["sampling_time_16_notes_s"] > 0
    assert (tmp_path / "diffusion.pt").exists() and (tmp_path / "diffusion-autoencoder.pt").exists()
    model, _ = diffusion.load_pretrained(path=result["weights"])
    assert model.latent_std.ne(1).all()  # the standardisation was saved with the weights
    z = gan.latent([1, 2], model.config.z_dim)
    log_mel = gan.generate_log_mel(model, [40, 73], 67, z)
    assert log_mel.shape == (2, model.config.n_mels, model.config.n_frames)
    assert np.abs(log_mel - gan.generate_log_mel(model, [40, 73], 67, z)).max() == 0  # DDIM is deterministic
    assert np.abs(log_mel - gan.generate_log_mel(model, [40, 73], 67, gan.latent([3, 4], model.config.z_dim))).max() > 0
    with pytest.raises(BadInputError, match="pitch \\[20\\]"):
        gan.generate_log_mel(model, 40, 20, z[:1])


def test_ddpm_and_guidance_options_change_the_samples():
    torch.manual_seed(0)
    model = diffusion.NoteDiffusion(diffusion.DiffusionConfig(width=16, autoencoder_width=16)).eval()
    for block in model.denoiser.blocks:  # untrained blocks start as the identity, blind to the condition
        torch.nn.init.normal_(block.conv2.weight, std=0.1)
    z, index = torch.randn(2, model.config.z_dim), torch.tensor([0, 1])
    with torch.no_grad():
        ddim = model.generate(z, index, index, n_steps=4)
        ddpm = model.generate(z, index, index, n_steps=4, sampler="ddpm", rng=torch.Generator().manual_seed(0))
        guided = model.generate(z, index, index, n_steps=4, guidance_scale=3.0)
        unguided = model.generate(z, index, index, n_steps=4, guidance_scale=1.0)
        # scale 1 skips the unconditional pass; the guided formula at scale 1 gives the same
        one = model.generate(z, index, index, n_steps=4, guidance_scale=1.0 + 1e-12)
    assert ddim.shape == ddpm.shape == (2, 80, 48)
    assert (ddim - ddpm).abs().max() > 0 and (guided - unguided).abs().max() > 0
    torch.testing.assert_close(one, unguided)


def test_recipe_takes_a_recording_like_the_gan(tmp_path, monkeypatch):
    """``train diffusion --data``: a recording made outside the corpus (two tones with vibrato) trains a
    single-condition model written as ``recording-diffusion``; a file that is not audio is named."""
    from musiclab import audio, recipes
    from musiclab.errors import BadInputError

    monkeypatch.setenv("MUSICLAB_MODE", "quick")
    sr = 22050
    t = np.arange(6 * sr) / sr
    f0_hz = np.where(t % 1 < 0.5, 330.0, 440.0) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    y = 0.5 * np.sin(2 * np.pi * np.cumsum(f0_hz) / sr) * np.exp(-3 * (t % 0.5))
    audio.save_audio(tmp_path / "tones.wav", y.astype(np.float32), sr)
    result = recipes.RECIPES["diffusion"].train(tmp_path / "out", steps=3, command="test", data=tmp_path / "tones.wav",
                                                progress=False, autoencoder_steps=2, width=16)
    model, sidecar = diffusion.load_pretrained("recording-diffusion", result["weights"])
    assert model.config.programs == (0,) and sidecar["metrics"]["n_training_clips"] >= 20
    assert "tones.wav: 1 recording(s)" in sidecar["data"]
    assert gan.generate_log_mel(model, 0, 0, gan.latent([1], model.config.z_dim)).shape == (1, 80, 48)
    (tmp_path / "notes.wav").write_text("not audio")
    with pytest.raises(BadInputError, match="notes.wav: no usable recording"):
        recipes.RECIPES["diffusion"].train(tmp_path / "out2", steps=3, data=tmp_path / "notes.wav", progress=False)


def test_the_explorer_steps_end_in_the_sampled_note():
    """The step-through keeps every step of the same DDIM run: its last estimate is the note that
    `gan.generate_log_mel` samples from the same seed, and earlier estimates differ from it."""
    from musiclab.widgets import diffusion as diffusion_widgets

    torch.manual_seed(0)
    model = diffusion.NoteDiffusion(diffusion.DiffusionConfig(width=16, autoencoder_width=16)).eval()
    for block in model.denoiser.blocks:
        torch.nn.init.normal_(block.conv2.weight, std=0.1)
    model.config.sampler_steps = 5  # what NoteDiffusion.forward, and so gan.generate_log_mel, uses
    run = diffusion_widgets.sample_trajectory(model, 40, 67, guidance_scale=1.0, n_steps=5, seed=3)
    assert run.steps == diffusion_process.sampling_steps(1000, 5)[:-1] and run.x0_log_mels.shape == (5, 80, 48)
    note = gan.generate_log_mel(model, 40, 67, gan.latent([3], model.config.z_dim))[0]
    np.testing.assert_allclose(run.final, note, atol=1e-5)
    assert np.abs(run.x0_log_mels[0] - note).max() > 1e-3
