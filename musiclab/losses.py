"""Every objective of the book, as pure functions of tensors, in one section per family.

All log-likelihoods are in nats (natural logarithms). Each function states its formula; the
chapter that derives it is named on its last docstring line.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


# Likelihood basics ---------------------------------------------------------------------------------


def categorical_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of categorical targets (= cross-entropy), in nats.

    -1/N sum_n log softmax(logits_n)[y_n]

    Parameters
    ----------
    logits : Tensor [shape=(N, K)] or [shape=(N, K, T)]
    targets : LongTensor [shape=(N,)] or [shape=(N, T)], values in [0, K)

    Chapter: notebooks/02_learning_to_generate.ipynb
    """
    return F.cross_entropy(logits, targets)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of ``x`` under N(mean, sigma^2), per element, in nats.

    -log N(x; mu, sigma^2) = (x - mu)^2 / (2 sigma^2) + log sigma + 1/2 log(2 pi)

    With a fixed sigma this is the mean squared error scaled by 1/(2 sigma^2) plus a constant:
    minimising MSE *is* maximum likelihood under a fixed-variance Gaussian.

    Parameters
    ----------
    x, mean : Tensor, same shape
    sigma : float or Tensor broadcastable to ``x``, > 0

    Chapter: notebooks/02_learning_to_generate.ipynb
    """
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    return ((x - mean) ** 2 / (2 * sigma**2) + torch.log(sigma) + 0.5 * math.log(2 * math.pi)).mean()


def kl_divergence_categorical(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = sum_k p_k log(p_k / q_k) between probability vectors, in nats.

    Terms with p_k = 0 contribute 0 (the limit of t log t); q_k = 0 where p_k > 0 gives +inf.

    Parameters
    ----------
    p, q : Tensor [shape=(..., K)], each row sums to 1

    Chapter: notebooks/02_learning_to_generate.ipynb
    """
    ratio = torch.where(p > 0, p / q, torch.ones_like(p))
    return (p * torch.log(ratio)).sum(-1)


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence JSD(p, q) = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q) / 2.

    Symmetric, finite, and between 0 and log 2 nats.

    Chapter: notebooks/02_learning_to_generate.ipynb
    """
    m = 0.5 * (p + q)
    return 0.5 * kl_divergence_categorical(p, m) + 0.5 * kl_divergence_categorical(q, m)


def perplexity(nll_nats: float | torch.Tensor) -> float:
    """exp(NLL per prediction): the effective number of equally likely choices at each step.

    Chapter: notebooks/02_learning_to_generate.ipynb
    """
    return math.exp(float(nll_nats))


# GAN -----------------------------------------------------------------------------------------------
#
# Discriminators output *logits* s = log D / (1 - D), never probabilities: log sigmoid(s) and
# log(1 - sigmoid(s)) = log sigmoid(-s) are then computed stably with softplus.


def gan_value(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The GAN value function V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))], in nats.

    Parameters
    ----------
    real_logits : Tensor [shape=(B,)], discriminator logits on real examples x
    fake_logits : Tensor [shape=(B',)], discriminator logits on generated examples G(z)

    The discriminator maximises V, the generator minimises it (Goodfellow et al. 2014).

    Chapter: notebooks/03_gan.ipynb
    """
    return F.logsigmoid(real_logits).mean() + F.logsigmoid(-fake_logits).mean()


def gan_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-V(D, G) = -E[log D(x)] - E[log(1 - D(G(z)))]: binary cross-entropy, real = 1, fake = 0.

    Chapter: notebooks/03_gan.ipynb
    """
    return -gan_value(real_logits, fake_logits)


def gan_generator_loss(fake_logits: torch.Tensor, non_saturating: bool = True) -> torch.Tensor:
    """The generator's loss.

    - ``non_saturating=True`` (used in practice): -E[log D(G(z))]. Its gradient is large while
      the discriminator confidently rejects the fakes (D(G(z)) near 0).
    - ``non_saturating=False`` (the minimax game as written): E[log(1 - D(G(z)))], whose gradient
      vanishes exactly there.

    Chapter: notebooks/03_gan.ipynb
    """
    if non_saturating:
        return -F.logsigmoid(fake_logits).mean()
    return F.logsigmoid(-fake_logits).mean()


def optimal_discriminator(p_data: torch.Tensor, p_generator: torch.Tensor) -> torch.Tensor:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)): the discriminator that maximises V for a fixed G.

    ``p_data``, ``p_generator`` : densities (or probabilities) at the same points, not both 0.

    Chapter: notebooks/03_gan.ipynb
    """
    return p_data / (p_data + p_generator)


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the discriminator: E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))].

    Here D outputs an unbounded score; examples beyond the margin (real scored > 1, fake < -1)
    give no gradient, so the discriminator stops pushing once it separates them (Lim and Ye 2017;
    Miyato et al. 2018).

    Chapter: notebooks/03_gan.ipynb
    """
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[D(G(z))]: the generator raises the discriminator's score of its samples.

    Chapter: notebooks/03_gan.ipynb
    """
    return -fake_logits.mean()


def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E[f(G(z))] - E[f(x)]: minus the Kantorovich-Rubinstein estimate of W1 (critic f, 1-Lipschitz).

    Chapter: notebooks/03_gan.ipynb
    """
    return fake_scores.mean() - real_scores.mean()


def gradient_penalty(critic, x_real: torch.Tensor, x_fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP's penalty E[(||grad_x f(x_hat)||_2 - 1)^2] at x_hat = e x_real + (1 - e) x_fake.

    ``critic`` maps a batch [shape=(B, ...)] to scores [shape=(B,)] (bind any condition with a
    lambda); ``e ~ U(0, 1)`` per example (Gulrajani et al. 2017). Differentiable in the critic's
    parameters (``create_graph=True``).

    Chapter: notebooks/03_gan.ipynb
    """
    shape = (x_real.shape[0],) + (1,) * (x_real.dim() - 1)
    e = torch.rand(shape, generator=generator, dtype=x_real.dtype).to(x_real.device)
    x_hat = (e * x_real.detach() + (1 - e) * x_fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def mode_seeking_loss(x_1: torch.Tensor, x_2: torch.Tensor, z_1: torch.Tensor, z_2: torch.Tensor,
                      eps: float = 1e-5) -> torch.Tensor:
    """Mode-seeking regulariser of the generator: 1 / (mean|G(z_1) - G(z_2)| / mean|z_1 - z_2| + eps).

    ``x_1 = G(z_1, c)`` and ``x_2 = G(z_2, c)`` share their conditions ``c``. A generator that ignores
    ``z`` (conditional mode collapse) has a ratio near 0 and a large loss (Mao et al. 2019).

    Chapter: notebooks/03_gan.ipynb
    """
    ratio = (x_1 - x_2).abs().mean() / (z_1 - z_2).abs().mean()
    return 1 / (ratio + eps)


# Sequences -----------------------------------------------------------------------------------------
#
# A sequence model factorises p(x_1..x_T) = prod_t p(x_t | x_<t) (the chain rule) and is trained on
# the sum of the per-step negative log-likelihoods with the true past as input (teacher forcing).
# Only the per-step distribution changes with the kind of data.


def sequence_nll(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean NLL per token of a token sequence, in nats: -1/N sum_{b,t} log p(x_{b,t} | x_{b,<t}).

    Positions whose target is ``ignore_index`` (padding) are left out of the sum and of N.

    Parameters
    ----------
    logits : Tensor [shape=(B, T, K)]
    targets : LongTensor [shape=(B, T)]

    Chapter: notebooks/04_rnn.ipynb
    """
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=ignore_index)


def pianoroll_nll(logits: torch.Tensor, roll: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """NLL of binary piano-roll frames in nats per frame: summed over keys, averaged over frames.

    -1/F sum_t m_t sum_k [v_{t,k} log sigma(s_{t,k}) + (1 - v_{t,k}) log sigma(-s_{t,k})],  F = sum_t m_t

    - Independent outputs: ``logits`` s_{t,k} depend only on the past frames, so the sum over keys
      is the log-likelihood of a product of 88 Bernoullis.
    - Within-frame autoregressive outputs (NADE, MADE, note-by-note): s_{t,k} also depends on the
      keys v_{t,<k} of the same frame; by the chain rule the same sum is then the exact
      log-likelihood of the *joint* distribution of the frame.

    Parameters
    ----------
    logits : Tensor [shape=(..., n_keys)], the log-odds of each key being on
    roll : Tensor [shape=(..., n_keys)], 0/1
    mask : Tensor [shape=(...)], optional, 1 for frames that count, 0 for padding

    Chapter: notebooks/04_rnn.ipynb
    """
    per_frame = F.binary_cross_entropy_with_logits(logits, roll.to(logits.dtype), reduction="none").sum(-1)
    if mask is None:
        return per_frame.mean()
    mask = mask.to(per_frame.dtype)
    return (per_frame * mask).sum() / mask.sum().clamp_min(1)


def gaussian_binned_nll(x_bins: torch.Tensor, mean: torch.Tensor, sigma: float | torch.Tensor,
                        edges: torch.Tensor) -> torch.Tensor:
    """Mean NLL, in nats, of quantised values under a Gaussian integrated over each quantisation bin.

    -log P(bin b) = -log [Phi((e_{b+1} - mu) / sigma) - Phi((e_b - mu) / sigma)]

    This puts a continuous-output (MSE-trained) model on the same footing as a categorical model over
    the same bins, so that their likelihoods can be compared in the same units. The outermost edges
    may be +-inf so that the bins' probabilities sum to 1.

    Parameters
    ----------
    x_bins : LongTensor [shape=(N,)], bin index of each value
    mean : Tensor [shape=(N,)], the Gaussian's mean for each value
    sigma : float or Tensor, > 0
    edges : Tensor [shape=(K + 1,)], increasing bin edges

    Chapter: notebooks/04_rnn.ipynb
    """
    sigma = torch.as_tensor(sigma, dtype=mean.dtype, device=mean.device)
    normal = torch.distributions.Normal(mean, sigma)
    upper, lower = normal.cdf(edges[x_bins + 1]), normal.cdf(edges[x_bins])
    return -torch.log((upper - lower).clamp_min(1e-12)).mean()


# VAE -----------------------------------------------------------------------------------------------
#
# log p(x) >= ELBO = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z)), with equality iff q(z|x) = p(z|x).
# The encoder gives q(z|x) = N(mu, diag exp(logvar)); the prior is N(0, I).


def gaussian_kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor, prior_mu: torch.Tensor | float = 0.0,
                        prior_logvar: torch.Tensor | float = 0.0) -> torch.Tensor:
    """KL(N(mu, s^2) || N(m, v)) for each dimension, in nats, in closed form.

    1/2 [ log(v / s^2) + (s^2 + (mu - m)^2) / v - 1 ]; with the standard normal prior (m = 0, v = 1)
    this is 1/2 (mu^2 + s^2 - 1 - log s^2).

    Parameters
    ----------
    mu, logvar : Tensor [shape=(B, D)], the posterior's means and log-variances
    prior_mu, prior_logvar : float or Tensor broadcastable to ``mu``

    Chapter: notebooks/06_vae.ipynb
    """
    prior_mu = torch.as_tensor(prior_mu, dtype=mu.dtype, device=mu.device)
    prior_logvar = torch.as_tensor(prior_logvar, dtype=mu.dtype, device=mu.device)
    return 0.5 * (prior_logvar - logvar + (logvar.exp() + (mu - prior_mu) ** 2) / prior_logvar.exp() - 1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) summed over the latent dimensions, averaged over the batch, in nats.

    Chapter: notebooks/06_vae.ipynb
    """
    return gaussian_kl_per_dim(mu, logvar).sum(-1).mean()


def free_bits_kl(mu: torch.Tensor, logvar: torch.Tensor, free_nats: float) -> torch.Tensor:
    """The KL term with ``free_nats`` of information free of charge: max(KL - free_nats, 0).

    KL is summed over dimensions and averaged over the batch first (MusicVAE's variant); below the
    budget the KL has no gradient, so the optimiser is not pushed to close the posterior onto the prior.

    Chapter: notebooks/06_vae.ipynb
    """
    return torch.clamp(gaussian_kl(mu, logvar) - free_nats, min=0.0)


def negative_elbo(reconstruction_nll: torch.Tensor, kl: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """The loss a (beta-)VAE minimises: -ELBO_beta = E_q[-log p(x|z)] + beta KL(q(z|x) || p(z)).

    ``reconstruction_nll`` is the per-example negative log-likelihood summed over the example's
    elements (tokens, pixels) and averaged over the batch; ``kl`` as from `gaussian_kl`. With
    beta = 1 it is the negative ELBO, an upper bound on -log p(x). There is no discriminator term:
    E[log D(x)] + E[log(1 - D(G(z)))] is the GAN's value function, not part of the ELBO.

    Chapter: notebooks/06_vae.ipynb
    """
    return reconstruction_nll + beta * kl


def kl_weight(step: int, warmup_steps: int, beta: float = 1.0) -> float:
    """KL annealing: the KL weight rises linearly from 0 to ``beta`` over ``warmup_steps`` steps.

    Chapter: notebooks/06_vae.ipynb
    """
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, step / warmup_steps)


# Multi-task ----------------------------------------------------------------------------------------
#
# One network, several heads, one scalar to descend. The weighted sum L = sum_i w_i L_i needs the
# weights chosen by hand; uncertainty weighting (Kendall, Gal & Cipolla 2018) learns them by treating
# each task's noise scale sigma_i as a parameter of that task's likelihood, with s_i = log sigma_i^2.


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean cross-entropy (nats) over the labelled examples only; 0 (with a gradient) if none is labelled.

    -1/|L| sum_{n in L} log softmax(logits_n)[y_n],  L = {n : y_n != ignore_index}

    Unlabelled examples (a tune with no tune type, a Chinese tune's mode) contribute nothing, so a
    batch without any label for this task leaves the task's head untouched instead of giving NaN.

    Parameters
    ----------
    logits : Tensor [shape=(N, K)] or [shape=(N, T, K)]
    targets : LongTensor [shape=(N,)] or [shape=(N, T)], values in [0, K) or ``ignore_index``

    Chapter: notebooks/11_multitask_evaluation.ipynb
    """
    logits, targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    labelled = targets != ignore_index
    if not labelled.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[labelled], targets[labelled])


def weighted_task_loss(task_losses: dict, weights: dict | None = None) -> torch.Tensor:
    """L = sum_i w_i L_i over the tasks (w_i = 1 for a task missing from ``weights``).

    Chapter: notebooks/11_multitask_evaluation.ipynb
    """
    weights = weights or {}
    return sum(weights.get(task, 1.0) * loss for task, loss in task_losses.items())


def uncertainty_weighted_loss(task_losses: dict, log_variances: dict, regression=()) -> torch.Tensor:
    """Kendall et al. (2018) uncertainty weighting, with s_i = log sigma_i^2 learned per task.

    Each term is a task's negative log-likelihood with its noise scale sigma_i as a parameter:

    - regression, y ~ N(f, sigma^2), L_i = ||y - f||^2 (squared error):
      -log p = L_i / (2 sigma^2) + log sigma + const = 1/2 exp(-s_i) L_i + s_i / 2;
    - classification, y ~ softmax(f / sigma^2), L_i = cross-entropy of softmax(f): Kendall's
      approximation gives -log p ~= L_i / sigma^2 + log sigma = exp(-s_i) L_i + s_i / 2.

    Setting the derivative in s_i to zero: sigma^2 = L_i for regression (the Gaussian's maximum-
    likelihood variance) and sigma^2 = 2 L_i for classification; each task's weight falls as its loss
    grows. The often-copied ``exp(-s) * L + s`` for every task is neither form (its optimum is
    sigma^2 = L for both kinds).

    Parameters
    ----------
    task_losses : dict task -> scalar Tensor (mean cross-entropy, or mean squared error)
    log_variances : dict task -> scalar Tensor s_i (a learnable parameter)
    regression : the tasks whose loss is a squared error; all others are classification

    Chapter: notebooks/11_multitask_evaluation.ipynb
    """
    return sum((0.5 if task in regression else 1.0) * torch.exp(-log_variances[task]) * loss
               + 0.5 * log_variances[task] for task, loss in task_losses.items())


def scaled_softmax_nll(logits: torch.Tensor, targets: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """The exact NLL of Kendall's tempered classifier p(y | f, sigma) = softmax(f / sigma^2)[y], in nats.

    `uncertainty_weighted_loss` uses the approximation exp(-s) CE(f) + s / 2 of this; the chapter
    compares the two numerically.

    Chapter: notebooks/11_multitask_evaluation.ipynb
    """
    return F.cross_entropy(logits * torch.exp(-log_variance), targets)


# Style transfer ------------------------------------------------------------------------------------
#
# CycleGAN (Zhu et al. 2017): generators G: A -> B and F: B -> A, discriminators D_B (on B) and D_A
# (on A), trained on unpaired examples of A and B. The generators minimise
#   L = L_adv(G, D_B) + L_adv(F, D_A) + lambda_cyc L_cyc(G, F) + lambda_id L_id(G, F),
# the adversarial terms being any GAN loss of the GAN section (the book uses the hinge loss).


def _distance(x: torch.Tensor, y: torch.Tensor, distance: str) -> torch.Tensor:
    if distance == "l1":
        return (y - x).abs().mean()
    if distance == "cross_entropy":
        return F.cross_entropy(y, x)
    raise ValueError(f"distance={distance!r}: expected 'l1' or 'cross_entropy'")


def cycle_consistency_loss(x_a: torch.Tensor, x_a_cycled: torch.Tensor, x_b: torch.Tensor,
                           x_b_cycled: torch.Tensor, distance: str = "l1") -> torch.Tensor:
    """L_cyc = E_a d(a, F(G(a))) + E_b d(b, G(F(b))): translating there and back must return the input.

    - ``distance="l1"``: d is the mean absolute difference per element (the paper's ||.||_1 divided
      by the number of elements, which only rescales lambda_cyc); ``x_*`` and ``x_*_cycled`` have
      the same shape.
    - ``distance="cross_entropy"`` (discrete tokens): d is the cross-entropy in nats per step of the
      original tokens ``x_*`` [shape=(B, T)] under the cycled logits ``x_*_cycled`` [shape=(B, K, T)],
      i.e. -log p(a | F(G(a))): the likelihood version of "return the input".

    Chapter: notebooks/09_style_transfer_gan.ipynb
    """
    return _distance(x_a, x_a_cycled, distance) + _distance(x_b, x_b_cycled, distance)


def identity_loss(x_a: torch.Tensor, f_of_a: torch.Tensor, x_b: torch.Tensor, g_of_b: torch.Tensor,
                  distance: str = "l1") -> torch.Tensor:
    """L_id = E_b d(b, G(b)) + E_a d(a, F(a)): an example already in the target domain is left alone.

    Same ``distance`` choices as `cycle_consistency_loss`. Without it nothing stops G from changing
    what both domains share (the colour of a photo, the loudness or pitch of a note).

    Chapter: notebooks/09_style_transfer_gan.ipynb
    """
    return _distance(x_a, f_of_a, distance) + _distance(x_b, g_of_b, distance)


def cyclegan_generator_loss(fake_scores_b: torch.Tensor, fake_scores_a: torch.Tensor, cycle: torch.Tensor,
                            identity: torch.Tensor, lambda_cycle: float = 10.0,
                            lambda_identity: float = 5.0) -> torch.Tensor:
    """The generators' total loss with hinge adversarial terms.

    -E[D_B(G(a))] - E[D_A(F(b))] + lambda_cyc L_cyc + lambda_id L_id, where ``fake_scores_b`` are
    D_B's scores of G(a) and ``fake_scores_a`` D_A's scores of F(b). The paper's defaults are
    lambda_cyc = 10 and lambda_id = 0.5 lambda_cyc.

    Chapter: notebooks/09_style_transfer_gan.ipynb
    """
    return (hinge_generator_loss(fake_scores_b) + hinge_generator_loss(fake_scores_a)
            + lambda_cycle * cycle + lambda_identity * identity)


# Diffusion -----------------------------------------------------------------------------------------
#
# Forward process q(x_t | x_0) = N(sqrt(a_t) x_0, (1 - a_t) I), a_t = alpha_bar_t. The ELBO of the
# reverse chain p(x_{t-1} | x_t) is a VAE's with a fixed encoder q; its step-t term is
# KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)), two Gaussians of the same variance, so a squared
# distance between their means, which is a weighted squared error of the noise estimate.


def diffusion_elbo_weight(alpha_bar_t: torch.Tensor, alpha_bar_s: torch.Tensor) -> torch.Tensor:
    """The weight lambda_t of the ELBO's step term in noise-prediction form, per dimension:

        KL(q(x_s | x_t, x_0) || p(x_s | x_t)) = lambda_t ||eps - eps_hat||^2, with
        lambda_t = beta^2 / (2 sigma^2 alpha (1 - alpha_bar_t)),

    alpha = alpha_bar_t / alpha_bar_s, beta = 1 - alpha, sigma^2 the posterior variance
    beta (1 - alpha_bar_s) / (1 - alpha_bar_t), when p takes the posterior's mean with x_0 estimated
    from eps_hat and the posterior's variance. `diffusion_loss` sets lambda_t = 1: the weight it drops
    is large at small t, so the simple loss spends more of the network on the noisier steps.

    Chapter: notebooks/07_diffusion.ipynb
    """
    alpha = alpha_bar_t / alpha_bar_s
    beta = 1 - alpha
    variance = beta * (1 - alpha_bar_s) / (1 - alpha_bar_t)
    return beta**2 / (2 * variance * alpha * (1 - alpha_bar_t))


def diffusion_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The simplified diffusion loss (Ho et al. 2020): mean squared error between the network's
    output at a random step t and its target, E_{t, x_0, eps} ||target - f(x_t, t)||^2 per element.

    With target eps (x_t = sqrt(a) x_0 + sqrt(1 - a) eps) this is the ELBO with the weights
    `diffusion_elbo_weight` set to 1. It is also denoising score matching: the score of
    q(x_t | x_0) is -eps / sqrt(1 - a), so eps_hat / sqrt(1 - a) estimates -grad log q(x_t), and the
    loss is the score-matching loss weighted by (1 - a). With target v = sqrt(a) eps - sqrt(1 - a) x_0
    (`models.diffusion_process.prediction_target`) the same minimiser, E[x_0 | x_t], is reached with the
    weight a / (1 - a) + 1 = 1 / (1 - a) on the x_0 error, i.e. (1 + SNR).

    Parameters
    ----------
    output, target : Tensor, same shape (e.g. [shape=(B, C, T)])

    Chapter: notebooks/07_diffusion.ipynb
    """
    return F.mse_loss(output, target)


# Neural audio synthesis ----------------------------------------------------------------------------
#
# A synthesiser's output is compared with the recording through STFT *magnitudes* at several window
# sizes (Engel et al. 2020, DDSP): a large window resolves the harmonics (frequency), a small one the
# attacks (time), and no single window does both. Magnitudes ignore the phase within each frame, so
# the synthesiser is not asked to reproduce a waveform sample by sample, which no oscillator with an
# arbitrary starting phase could; a waveform distance would punish the same sound with shifted
# partials as heavily as a wrong one.


def _stft_magnitude(y: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=y.device, dtype=y.dtype)
    return torch.stft(y, n_fft, hop_length, window=window, center=True, return_complex=True).abs()


def multiscale_spectral_terms(y_pred: torch.Tensor, y_true: torch.Tensor,
                              n_ffts: tuple = (2048, 1024, 512, 256, 128, 64), overlap: float = 0.75,
                              linear_weight: float = 1.0, log_weight: float = 1.0,
                              eps: float = 1e-5) -> torch.Tensor:
    """The multi-scale spectral loss, one term per window size:

        L_i = mean |S_i - S^_i| + log_weight * mean |log(S_i + eps) - log(S^_i + eps)|

    with S_i = |STFT_i(y_true)| and S^_i = |STFT_i(y_pred)| (Hann window of ``n_ffts[i]`` samples,
    hop ``n_ffts[i] * (1 - overlap)``, centred frames), means over batch, bins and frames; the
    linear term is scaled by ``linear_weight``. The linear term follows the loud partials, the log
    term the quiet ones and the noise floor (``eps`` = 1e-5, about -100 dB, the floor of the book's
    log spectrograms, keeps numerical dust out of it).

    Every term is zero exactly when the two magnitude spectrograms match at that scale, whatever the
    phases: ``y`` and ``-y`` score 0. Otherwise the phase counts only where it changes magnitudes:
    partials resolved by a window (two or more bins apart) barely interact, so their relative
    phases are nearly invisible to the large scales; within the few wide bins of a small window
    neighbouring partials add up with their phases (they beat), so the small scales see them, as
    they see a shift in time that a large window averages away. A large window resolves
    frequency, a small one time: the sum asks for both.

    Parameters
    ----------
    y_pred, y_true : Tensor [shape=(B, n)] or [shape=(n,)], same shape

    Returns
    -------
    Tensor [shape=(len(n_ffts),)]

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    if y_pred.shape != y_true.shape:
        raise ValueError(f"multiscale spectral loss: shapes differ, {tuple(y_pred.shape)} and {tuple(y_true.shape)}")
    terms = []
    for n_fft in n_ffts:
        hop_length = max(1, int(n_fft * (1 - overlap)))
        s_pred, s_true = _stft_magnitude(y_pred, n_fft, hop_length), _stft_magnitude(y_true, n_fft, hop_length)
        linear = (s_pred - s_true).abs().mean()
        log = (torch.log(s_pred + eps) - torch.log(s_true + eps)).abs().mean()
        terms.append(linear_weight * linear + log_weight * log)
    return torch.stack(terms)


def multiscale_spectral_loss(y_pred: torch.Tensor, y_true: torch.Tensor,
                             n_ffts: tuple = (2048, 1024, 512, 256, 128, 64), overlap: float = 0.75,
                             linear_weight: float = 1.0, log_weight: float = 1.0) -> torch.Tensor:
    """The multi-scale spectral loss L = sum_i L_i of DDSP (Engel et al. 2020): the sum of
    `multiscale_spectral_terms` over the window sizes ``n_ffts``. A scalar; zero exactly when the
    STFT magnitudes match at every scale.

    Chapter: notebooks/10_neural_synthesis.ipynb
    """
    return multiscale_spectral_terms(y_pred, y_true, n_ffts, overlap, linear_weight, log_weight).sum()
