"""The diffusion process as pure functions of tensors and of the noise schedule ``alpha_bar``: the
forward process and its closed form, the posterior, the conversions between the three things a
network may predict (``"eps"``, ``"v"``, ``"x0"``), the two samplers (ancestral DDPM and
deterministic DDIM) and classifier-free guidance; `models.diffusion` builds the note model on them.

Chapter: notebooks/07_diffusion.ipynb
"""
from __future__ import annotations

import math

import torch

PREDICTIONS = ("eps", "v", "x0")


# Forward process and posterior -------------------------------------------------------------------------


def cosine_alpha_bar(n_steps: int, offset: float = 0.008) -> torch.Tensor:
    """The cosine noise schedule (Nichol and Dhariwal 2021): ``alpha_bar[t]``, t = 0 .. n_steps.

    alpha_bar(t) = f(t) / f(0), f(t) = cos^2((t / T + s) / (1 + s) * pi / 2), with each step's
    beta_t = 1 - alpha_bar[t] / alpha_bar[t - 1] clipped at 0.999 so that the last step stays finite.
    ``alpha_bar[0] = 1`` is the data itself; ``alpha_bar[T]`` is close to 0 (pure noise).

    Returns a float64 Tensor [shape=(n_steps + 1,)], decreasing.

    Chapter: notebooks/07_diffusion.ipynb
    """
    t = torch.arange(n_steps + 1, dtype=torch.float64) / n_steps
    f = torch.cos((t + offset) / (1 + offset) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)])


def q_sample(x0: torch.Tensor, alpha_bar_t, noise: torch.Tensor) -> torch.Tensor:
    """Draw x_t ~ q(x_t | x_0) in one step: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.

    ``alpha_bar_t`` is a float or a Tensor broadcastable to ``x0`` (one value per example);
    ``noise`` is eps ~ N(0, I) of the shape of ``x0``.

    Chapter: notebooks/07_diffusion.ipynb
    """
    alpha_bar_t = torch.as_tensor(alpha_bar_t, dtype=x0.dtype, device=x0.device)
    return alpha_bar_t.sqrt() * x0 + (1 - alpha_bar_t).sqrt() * noise


def q_posterior(x0: torch.Tensor, x_t: torch.Tensor, alpha_bar_t, alpha_bar_s) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of q(x_s | x_t, x_0) for any earlier step s < t.

    With alpha = alpha_bar_t / alpha_bar_s (the forward chain from s to t) and beta = 1 - alpha:

        mean = sqrt(alpha_bar_s) beta / (1 - alpha_bar_t) x_0 + sqrt(alpha) (1 - alpha_bar_s) / (1 - alpha_bar_t) x_t
        variance = beta (1 - alpha_bar_s) / (1 - alpha_bar_t)

    (s = t - 1 gives the DDPM posterior; a larger gap gives the posterior of a shortened chain.)

    Chapter: notebooks/07_diffusion.ipynb
    """
    alpha_bar_t = torch.as_tensor(alpha_bar_t, dtype=x0.dtype, device=x0.device)
    alpha_bar_s = torch.as_tensor(alpha_bar_s, dtype=x0.dtype, device=x0.device)
    alpha = alpha_bar_t / alpha_bar_s
    mean = (alpha_bar_s.sqrt() * (1 - alpha) * x0 + alpha.sqrt() * (1 - alpha_bar_s) * x_t) / (1 - alpha_bar_t)
    return mean, (1 - alpha) * (1 - alpha_bar_s) / (1 - alpha_bar_t)


def prediction_target(x0: torch.Tensor, noise: torch.Tensor, alpha_bar_t, prediction: str = "v") -> torch.Tensor:
    """What a network predicting ``prediction`` is trained to output for x_t = `q_sample` (x0, noise).

    - ``"eps"``: the noise eps (Ho et al. 2020);
    - ``"v"``: v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0 (Salimans and Ho 2022), of unit
      scale at every noise level, so neither end of the schedule dominates the loss;
    - ``"x0"``: the clean x_0.

    Chapter: notebooks/07_diffusion.ipynb
    """
    alpha_bar_t = torch.as_tensor(alpha_bar_t, dtype=x0.dtype, device=x0.device)
    targets = {"eps": lambda: noise, "x0": lambda: x0,
               "v": lambda: alpha_bar_t.sqrt() * noise - (1 - alpha_bar_t).sqrt() * x0}
    return targets[_checked(prediction)]()


def split_prediction(x_t: torch.Tensor, output: torch.Tensor, alpha_bar_t,
                     prediction: str = "v") -> tuple[torch.Tensor, torch.Tensor]:
    """The estimates (x0_hat, eps_hat) that a network's ``output`` implies, for any parameterisation.

    From x_t = sqrt(a) x_0 + sqrt(1 - a) eps (a = alpha_bar_t):
    eps: x0 = (x_t - sqrt(1 - a) eps) / sqrt(a); x0: eps = (x_t - sqrt(a) x0) / sqrt(1 - a);
    v: x0 = sqrt(a) x_t - sqrt(1 - a) v and eps = sqrt(1 - a) x_t + sqrt(a) v (no division, so v
    stays well defined at both ends of the schedule).

    Chapter: notebooks/07_diffusion.ipynb
    """
    a = torch.as_tensor(alpha_bar_t, dtype=x_t.dtype, device=x_t.device)
    if _checked(prediction) == "v":
        return a.sqrt() * x_t - (1 - a).sqrt() * output, (1 - a).sqrt() * x_t + a.sqrt() * output
    if prediction == "eps":
        return (x_t - (1 - a).sqrt() * output) / a.sqrt(), output
    return output, (x_t - a.sqrt() * output) / (1 - a).sqrt()


def _checked(prediction: str) -> str:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction={prediction!r}: expected one of {PREDICTIONS}")
    return prediction


def optimal_gaussian_mixture_x0(x_t: torch.Tensor, alpha_bar_t, weights_: torch.Tensor, means: torch.Tensor,
                                stds: torch.Tensor) -> torch.Tensor:
    """The exact optimal denoiser E[x_0 | x_t] of 1-D Gaussian-mixture data, the minimiser of the
    x0-prediction loss (and, through `split_prediction`, of the eps and v losses).

    Under q, component k gives x_t ~ N(sqrt(a) m_k, a s_k^2 + 1 - a); its posterior mean of x_0 is
    m_k + sqrt(a) s_k^2 / (a s_k^2 + 1 - a) (x_t - sqrt(a) m_k), and the answer weighs those by the
    components' responsibilities for x_t.

    x_t : Tensor [shape=(N,)]; weights_, means, stds : Tensor [shape=(K,)]. Returns [shape=(N,)].

    Chapter: notebooks/07_diffusion.ipynb
    """
    a = torch.as_tensor(alpha_bar_t, dtype=x_t.dtype)
    x = x_t[:, None]
    variance = a * stds**2 + 1 - a
    log_resp = torch.log(weights_) - 0.5 * torch.log(variance) - 0.5 * (x - a.sqrt() * means) ** 2 / variance
    x0 = means + a.sqrt() * stds**2 / variance * (x - a.sqrt() * means)
    return (torch.softmax(log_resp, 1) * x0).sum(1)


# Samplers ----------------------------------------------------------------------------------------------


def ddpm_step(x_t, x0_hat, alpha_bar_t, alpha_bar_s, noise) -> torch.Tensor:
    """One ancestral step x_t -> x_s: a draw from q(x_s | x_t, x_0 = x0_hat), the posterior with the
    model's estimate in place of the unknown x_0 (`q_posterior`). ``noise`` ~ N(0, I).

    Chapter: notebooks/07_diffusion.ipynb
    """
    mean, variance = q_posterior(x0_hat, x_t, alpha_bar_t, alpha_bar_s)
    return mean + variance.sqrt() * noise


def ddim_step(x0_hat, eps_hat, alpha_bar_s) -> torch.Tensor:
    """One deterministic DDIM step to x_s (Song et al. 2021, eta = 0): put the estimated x_0 back at
    noise level s with the *same* estimated noise, x_s = sqrt(alpha_bar_s) x0_hat + sqrt(1 - alpha_bar_s) eps_hat.

    Chapter: notebooks/07_diffusion.ipynb
    """
    alpha_bar_s = torch.as_tensor(alpha_bar_s, dtype=x0_hat.dtype, device=x0_hat.device)
    return alpha_bar_s.sqrt() * x0_hat + (1 - alpha_bar_s).sqrt() * eps_hat


def sampling_steps(n_train_steps: int, n_steps: int) -> list[int]:
    """``n_steps + 1`` evenly spaced timesteps from ``n_train_steps`` down to 0 (the sampler visits
    the pairs (t, s) of neighbours).

    Chapter: notebooks/07_diffusion.ipynb
    """
    return torch.linspace(n_train_steps, 0, n_steps + 1).round().long().tolist()


def sample(estimate, x_T: torch.Tensor, alpha_bar: torch.Tensor, n_steps: int, sampler: str = "ddim",
           rng: torch.Generator | None = None, on_step=None) -> torch.Tensor:
    """Run the reverse process from ``x_T`` in ``n_steps`` steps and return x_0.

    ``estimate(x_t, t)`` returns (x0_hat, eps_hat) (e.g. `split_prediction` of a network's output);
    ``alpha_bar`` is the training schedule (`cosine_alpha_bar`); ``sampler`` is ``"ddim"`` (`ddim_step`,
    deterministic) or ``"ddpm"`` (`ddpm_step`, fresh noise from ``rng`` at each step). The last step
    returns x0_hat itself. ``on_step(t, x_t, x0_hat)``, if given, sees every step (to watch a sample
    emerge).

    Chapter: notebooks/07_diffusion.ipynb
    """
    if sampler not in ("ddim", "ddpm"):
        raise ValueError(f"sampler={sampler!r}: expected 'ddim' or 'ddpm'")
    steps = sampling_steps(len(alpha_bar) - 1, n_steps)
    x = x_T
    for t, s in zip(steps, steps[1:]):
        x0_hat, eps_hat = estimate(x, t)
        if on_step is not None:
            on_step(t, x, x0_hat)
        if s == 0:
            return x0_hat
        a_t, a_s = alpha_bar[t].to(x.dtype), alpha_bar[s].to(x.dtype)
        if sampler == "ddim":
            x = ddim_step(x0_hat, eps_hat, a_s)
        else:
            x = ddpm_step(x, x0_hat, a_t, a_s, torch.randn(x.shape, generator=rng, dtype=x.dtype).to(x.device))
    return x


def guide(output_conditional: torch.Tensor, output_unconditional: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance (Ho and Salimans 2022): u + w (c - u), with c and u the network's
    outputs with and without the condition. w = 1 is the conditional model, w > 1 pushes along the
    implicit classifier's gradient (grad log p(c | x_t) is proportional to eps_u - eps_c); the same
    linear combination applies to eps, v or x0 outputs.

    Chapter: notebooks/07_diffusion.ipynb
    """
    return output_unconditional + scale * (output_conditional - output_unconditional)
