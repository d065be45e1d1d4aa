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
