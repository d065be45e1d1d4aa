"""Chapter 3: the GAN losses against their closed forms, and the conditional SpecGAN's shapes."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from musiclab import losses, recipes
from musiclab.errors import BadInputError
from musiclab.models import gan


# Losses -------------------------------------------------------------------------------------------


def _two_gaussians(n=4001):
    x = torch.linspace(-8, 8, n, dtype=torch.float64)
    p_data = torch.from_numpy(norm.pdf(x.numpy(), 1.0, 1.0))
    p_g = torch.from_numpy(norm.pdf(x.numpy(), -0.5, 1.5))
    return x, p_data, p_g, (x[1] - x[0]).item()


def _value_on_grid(d, p_data, p_g, dx):
    """V(D, G) = int p_data log D + p_g log(1 - D) dx, by the trapezoid-free Riemann sum."""
    return ((p_data * torch.log(d) + p_g * torch.log1p(-d)) * dx).sum()


def test_optimal_discriminator_maximises_the_value():
    x, p_data, p_g, dx = _two_gaussians()
    d_star = losses.optimal_discriminator(p_data, p_g)
    best = _value_on_grid(d_star, p_data, p_g, dx)
    for shift in (-0.1, 0.05, 0.2):  # perturbed discriminators are worse
        logit = torch.logit(d_star) + shift * torch.tanh(x)
        assert _value_on_grid(torch.sigmoid(logit), p_data, p_g, dx) < best
    # where the densities are equal, D* = 1/2
    assert losses.optimal_discriminator(torch.tensor(0.3), torch.tensor(0.3)).item() == 0.5


def test_value_at_optimal_discriminator_is_minus_log4_plus_2jsd():
    x, p_data, p_g, dx = _two_gaussians()
    d_star = losses.optimal_discriminator(p_data, p_g)
    value = _value_on_grid(d_star, p_data, p_g, dx)
    jsd = losses.js_divergence(p_data * dx, p_g * dx)
    assert value.item() == pytest.approx(-math.log(4) + 2 * jsd.item(), abs=1e-6)
    # equal distributions: the value is exactly -log 4 and the JSD is 0
    same = losses.optimal_discriminator(p_data, p_data)
    assert _value_on_grid(same, p_data, p_data, dx).item() == pytest.approx(-math.log(4), abs=1e-6)


def test_gan_value_matches_log_probabilities():
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.0])
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    by_hand = torch.log(d_real).mean() + torch.log(1 - d_fake).mean()
    assert losses.gan_value(real, fake).item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert losses.gan_discriminator_loss(real, fake).item() == pytest.approx(-by_hand.item(), rel=1e-6)
    # minimising the discriminator loss on logits equals binary cross-entropy with real=1, fake=0
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert losses.gan_discriminator_loss(real, fake).item() == pytest.approx(
        (bce(real, torch.ones(3)) + bce(fake, torch.zeros(2))).item(), rel=1e-6)


def test_non_saturating_generator_gradient_does_not_vanish():
    fake = torch.tensor([-8.0], requires_grad=True)  # D(G(z)) = 3e-4: the discriminator wins
    (saturating,) = torch.autograd.grad(losses.gan_generator_loss(fake, non_saturating=False), fake)
    (non_saturating,) = torch.autograd.grad(losses.gan_generator_loss(fake), fake)
    d = torch.sigmoid(torch.tensor(-8.0))
    assert saturating.item() == pytest.approx(-d.item(), rel=1e-5)  # d/ds log(1 - sigmoid(s)) = -D
    assert non_saturating.item() == pytest.approx(-(1 - d).item(), rel=1e-5)  # d/ds -log sigmoid(s) = -(1-D)
    assert abs(non_saturating.item()) > 1000 * abs(saturating.item())


def test_hinge_losses():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0])
    # real: max(0, 1-2)=0, 0.5, 2 -> mean 5/6; fake: max(0, 1-2)=0, 1 -> mean 1/2
    assert losses.hinge_discriminator_loss(real, fake).item() == pytest.approx(5 / 6 + 1 / 2)
    assert losses.hinge_generator_loss(fake).item() == pytest.approx(1.0)
    assert losses.wasserstein_critic_loss(real, fake).item() == pytest.approx(-1.0 - 0.5)


def test_gradient_penalty_of_a_linear_critic_is_known():
    # f(x) = w . x has gradient w everywhere: the penalty is (||w|| - 1)^2 for every interpolate.
    w = torch.tensor([3.0, 4.0])
    critic = lambda x: x @ w
    x_real, x_fake = torch.randn(16, 2), torch.randn(16, 2)
    assert losses.gradient_penalty(critic, x_real, x_fake).item() == pytest.approx((5 - 1) ** 2)
    unit = lambda x: x @ (w / 5)
    assert losses.gradient_penalty(unit, x_real, x_fake).item() == pytest.approx(0.0, abs=1e-10)


def test_gradient_penalty_of_a_quadratic_critic_and_its_gradient():
    # f(x) = 0.5 ||x||^2 has gradient x_hat: with x_real = x_fake = x the penalty is (||x|| - 1)^2.
    x = torch.tensor([[3.0, 4.0], [0.6, 0.8]])
    scale = torch.tensor(1.0, requires_grad=True)
    penalty = losses.gradient_penalty(lambda v: 0.5 * scale * (v**2).sum(1), x, x)
    assert penalty.item() == pytest.approx(((5 - 1) ** 2 + 0) / 2)
    penalty.backward()  # differentiable in the critic's parameters: d/ds mean((s||x|| - 1)^2)
    assert scale.grad.item() == pytest.approx((2 * (5 - 1) * 5 + 0) / 2)


# Models -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    config = gan.GanConfig(width=4, embed_dim=4, z_dim=8)
    torch.manual_seed(0)
    return config, gan.Generator(config).eval(), gan.Discriminator(config).eval()


def test_shapes_for_every_condition(small):
    config, generator, discriminator = small
    programs = np.repeat(config.programs, len(config.pitches))
    pitches = np.tile(config.pitches, len(config.programs))
    program_index, pitch_index = gan.condition_indices(config, programs, pitches)
    z = torch.randn(len(programs), config.z_dim)
    with torch.no_grad():
        x = generator(z, program_index, pitch_index)
        logits = discriminator(x, program_index, pitch_index)
    assert x.shape == (len(programs), config.n_mels, config.n_frames)
    assert x.abs().max() <= 1 and logits.shape == (len(programs),)
    assert torch.isfinite(logits).all()
    log_mel = gan.generate_log_mel(generator, config.programs[0], config.pitches[-1], z[:3])
    assert log_mel.shape == (3, config.n_mels, config.n_frames)
    with torch.no_grad():
        x_first = generator(z[:3], *gan.condition_indices(config, config.programs[0], [config.pitches[-1]] * 3))
    np.testing.assert_allclose(gan.normalise(log_mel, config), x_first.numpy(), atol=1e-5)


def test_conditions_change_the_output(small):
    config, generator, _ = small
    z = gan.latent([1, 1], config.z_dim)
    by_pitch = gan.generate_log_mel(generator, config.programs[0], [config.pitches[0], config.pitches[5]], z)
    by_program = gan.generate_log_mel(generator, [config.programs[0], config.programs[1]], config.pitches[0], z)
    assert not np.allclose(by_pitch[0], by_pitch[1]) and not np.allclose(by_program[0], by_program[1])
    np.testing.assert_array_equal(gan.latent([7], 8), gan.latent([7], 8))


def test_unknown_conditions_are_clear_errors(small):
    config, generator, _ = small
    z = gan.latent([0], config.z_dim)
    with pytest.raises(BadInputError, match=r"program \[56\].*knows only programs"):
        gan.generate_log_mel(generator, 56, 60, z)
    with pytest.raises(BadInputError, match=r"pitch \[90\].*55..79"):
        gan.generate_log_mel(generator, 0, 90, z)
    with pytest.raises(BadInputError, match="2 programs for 3 pitches"):
        gan.condition_indices(config, [0, 19], [60, 61, 62])
    with pytest.raises(BadInputError, match="conditions for"):
        gan.generate_log_mel(generator, [0, 19], [60, 61], gan.latent([0, 1, 2], config.z_dim))


def test_projection_discriminator_is_linear_in_the_class_embeddings(small):
    config, _, discriminator = small
    x = torch.randn(2, config.n_mels, config.n_frames)
    program_index, pitch_index = torch.tensor([0, 0]), torch.tensor([3, 3])
    with torch.no_grad():
        h = discriminator.features(x)
        expected = (discriminator.linear(h)[:, 0] + (discriminator.embed_program(program_index) * h).sum(1)
                    + (discriminator.embed_pitch(pitch_index) * h).sum(1))
        torch.testing.assert_close(discriminator(x, program_index, pitch_index), expected)


def test_note_data_varies_within_a_condition_and_inverts():
    config = gan.GanConfig()
    data = gan.render_note_variations(config, 3, seed=1, programs=[40], pitches=[67])
    assert data["y"].shape == (3, config.n_samples)
    assert data["log_mel"].shape == (3, config.n_mels, config.n_frames)
    assert len(set(data["velocity"])) > 1 and np.ptp(data["hold_s"]) > 0
    assert np.abs(data["log_mel"][0] - data["log_mel"][1]).mean() > 0.05
    normalised = gan.normalise(data["log_mel"], config)
    assert normalised.min() >= -1 and normalised.max() <= 1
    np.testing.assert_allclose(gan.denormalise(normalised, config), np.maximum(data["log_mel"], -11.5), atol=1e-4)
    y = gan.log_mel_to_audio(data["log_mel"][0], config)
    assert y.shape == (config.n_samples,) and np.isfinite(y).all()
    f0 = float(np.nanmedian(__import__("librosa").pyin(y, fmin=100, fmax=1000, sr=config.sr)[0]))
    assert abs(1200 * np.log2(f0 / 392.0)) < 50  # G4 survives the mel inversion
    with pytest.raises(BadInputError):
        gan.render_note_variations(config, 1, programs=[56])


def test_gan_step_updates_both_players(small):
    config, _, _ = small
    torch.manual_seed(0)
    generator, discriminator = gan.Generator(config), gan.Discriminator(config)
    optimizers = {"generator": torch.optim.Adam(generator.parameters(), 1e-3),
                  "discriminator": torch.optim.Adam(discriminator.parameters(), 1e-3)}
    calls = []

    def update(loss, name):
        calls.append(name)
        optimizers[name].zero_grad()
        loss.backward()
        optimizers[name].step()

    before = [p.clone() for p in generator.parameters()]
    batch = (torch.rand(4, config.n_mels, config.n_frames) * 2 - 1, torch.tensor([0, 1, 2, 3]), torch.tensor([0, 5, 9, 24]))
    for loss in ("hinge", "nonsaturating"):
        logged = recipes.gan.gan_step(generator, discriminator, loss=loss)(batch, update)
        assert set(logged) >= {"d_loss", "g_loss", "d_accuracy_real", "d_accuracy_fake"}
    assert calls == ["discriminator", "generator"] * 2
    assert any(not torch.equal(a, b) for a, b in zip(before, generator.parameters()))


def test_optimal_hinge_discriminator_loss_is_two_minus_two_total_variation():
    x, p_data, p_g, dx = _two_gaussians()
    d_star = torch.sign(p_data - p_g)
    pointwise = lambda d: p_data * torch.relu(1 - d) + p_g * torch.relu(1 + d)
    best = (pointwise(d_star) * dx).sum().item()
    tv = 0.5 * ((p_data - p_g).abs() * dx).sum().item()
    assert best == pytest.approx(2 - 2 * tv, abs=1e-6)  # the grid misses 3e-7 of tail mass
    for other in (0.5 * d_star, 2 * d_star, torch.tanh(x)):
        assert (pointwise(other) * dx).sum().item() >= best - 1e-12


# Metrics ------------------------------------------------------------------------------------------


def test_frechet_distance_of_known_gaussians():
    from musiclab import metrics

    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20000, 3))
    b = rng.normal(0, 2, (20000, 3)) + np.array([1.0, 0, 0])
    # ||mu_a - mu_b||^2 + tr(I + 4I - 2 * 2I) = 1 + 3
    assert metrics.frechet_distance(a, b) == pytest.approx(4.0, rel=0.03)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(BadInputError):
        metrics.frechet_distance(a, b[:, :2])


def test_pitch_accuracy_counts_missing_pitch_as_wrong():
    from musiclab import metrics

    assert metrics.pitch_accuracy(np.array([10.0, -49.0, 51.0, np.nan])) == 0.5
    distances = metrics.pairwise_rms_distances(np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(distances, [5 / 2**0.5, 0.0, 5 / 2**0.5])


def test_mode_seeking_loss_punishes_a_generator_that_ignores_z():
    z_1, z_2 = torch.randn(8, 4), torch.randn(8, 4)
    assert losses.mode_seeking_loss(2 * z_1, 2 * z_2, z_1, z_2).item() == pytest.approx(0.5, rel=1e-4)
    same = torch.ones(8, 4)
    assert losses.mode_seeking_loss(same, same, z_1, z_2).item() == pytest.approx(1e5)


def test_evaluation_goes_back_to_sound_through_the_given_inverter():
    """`recipes.gan.evaluate_gan` sends the classifier's real notes, the generated notes and the real
    round trip through ``inverter`` (one call each), and without pitch tracking reports no pitch."""
    generator, _ = gan.load_pretrained("gan")
    cfg = generator.config
    calls = []

    def inverter(log_mel_spec):
        calls.append(log_mel_spec.shape)
        return gan.log_mel_to_audio(log_mel_spec, cfg, n_iter=2)

    scores = recipes.gan.evaluate_gan(generator, n_per_condition=1, programs=[0, 40], pitches=[60, 67],
                                      n_classifier=1, classifier_steps=5, n_diversity=3, progress=False,
                                      pitch=False, inverter=inverter)
    n_classifier_notes = len(cfg.programs) * len(cfg.pitches)
    assert len(calls) == n_classifier_notes + 2 * 4 and set(calls) == {(cfg.n_mels, cfg.n_frames)}
    assert "pitch_accuracy_ratio" not in scores and scores["frechet_real_roundtrip"] > 0
