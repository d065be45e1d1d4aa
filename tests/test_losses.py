"""Each likelihood-basics loss against the same quantity computed another way."""
import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, norm

from musiclab import losses


def test_categorical_nll_is_mean_negative_log_probability():
    torch.manual_seed(0)
    logits, targets = torch.randn(50, 7), torch.randint(0, 7, (50,))
    probs = torch.softmax(logits, -1)
    by_hand = -torch.log(probs[torch.arange(50), targets]).mean()
    assert losses.categorical_nll(logits, targets).item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_categorical_nll_is_minimised_by_empirical_frequencies():
    targets = torch.tensor([0] * 6 + [1] * 3 + [2] * 1)
    best = torch.log(torch.tensor([0.6, 0.3, 0.1]))
    nll_best = losses.categorical_nll(best.expand(10, 3), targets)
    assert nll_best.item() == pytest.approx(entropy([0.6, 0.3, 0.1]), rel=1e-5)
    for other in ([0.5, 0.4, 0.1], [1 / 3] * 3, [0.7, 0.2, 0.1]):
        logits = torch.log(torch.tensor(other)).expand(10, 3)
        assert losses.categorical_nll(logits, targets) > nll_best


def test_gaussian_nll_matches_scipy_and_is_scaled_mse():
    rng = np.random.default_rng(0)
    x, mean, sigma = rng.normal(size=100), rng.normal(size=100), 0.7
    expected = -norm.logpdf(x, loc=mean, scale=sigma).mean()
    got = losses.gaussian_nll(torch.tensor(x), torch.tensor(mean), sigma).item()
    assert got == pytest.approx(expected, rel=1e-9)
    mse = np.mean((x - mean) ** 2)
    assert got == pytest.approx(mse / (2 * sigma**2) + math.log(sigma) + 0.5 * math.log(2 * math.pi), rel=1e-9)


def test_kl_matches_scipy_handles_zeros_and_is_asymmetric():
    p, q = torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.25, 0.25, 0.5])
    assert losses.kl_divergence_categorical(p, q).item() == pytest.approx(entropy(p, q), rel=1e-6)
    assert math.isinf(losses.kl_divergence_categorical(q, p).item())
    assert losses.kl_divergence_categorical(p, p).item() == pytest.approx(0.0, abs=1e-7)


def test_jsd_matches_scipy_and_is_bounded_by_log2():
    rng = np.random.default_rng(1)
    for _ in range(20):
        p, q = rng.dirichlet(np.ones(6)), rng.dirichlet(np.ones(6))
        jsd = losses.js_divergence(torch.tensor(p), torch.tensor(q)).item()
        assert jsd == pytest.approx(jensenshannon(p, q) ** 2, rel=1e-6)
        assert 0 <= jsd <= math.log(2)
    disjoint = losses.js_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    assert disjoint.item() == pytest.approx(math.log(2))


def test_perplexity_of_uniform_guess_is_vocabulary_size():
    assert losses.perplexity(math.log(63)) == pytest.approx(63)
