"""The sample-level audio RNN of chapter 4: a GRU over mu-law levels of a waveform.

`AudioRNN` predicts the next sample's level with a categorical output over the 256 mu-law levels,
or, for comparison, a Gaussian output whose mean is trained with the mean squared error. The losses
live in `musiclab.losses` (# Sequences).

Chapter: notebooks/04_rnn.ipynb
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .. import audio, weights
from ..errors import BadInputError


@dataclass
class AudioConfig:
    n_classes: int = 256  # mu-law levels; the input is always the previous sample's level
    embed_dim: int = 32
    hidden_dim: int = 128
    output: str = "categorical"  # or "gaussian": one number, the mean, trained with MSE


class AudioRNN(nn.Module):
    """p(y_t | y_<t) over mu-law levels: a GRU with a categorical or a Gaussian output.

    Parameters
    ----------
    levels : LongTensor [shape=(B, T)], mu-law levels of y_0 .. y_{T-1}

    Returns
    -------
    out : Tensor [shape=(B, T, n_classes)] logits of the next level (categorical), or
        [shape=(B, T)] the mean of the next sample in [-1, 1] (gaussian)
    state : the GRU state
    """

    def __init__(self, config: AudioConfig):
        super().__init__()
        if config.output not in ("categorical", "gaussian"):
            raise BadInputError(f"output={config.output!r}: expected 'categorical' or 'gaussian'")
        self.config = config
        self.embed = nn.Embedding(config.n_classes, config.embed_dim)
        self.gru = nn.GRU(config.embed_dim, config.hidden_dim, batch_first=True)
        self.head = nn.Linear(config.hidden_dim, config.n_classes if config.output == "categorical" else 1)

    def forward(self, levels, state=None):
        h, state = self.gru(self.embed(levels), state)
        out = self.head(h)
        return (out if self.config.output == "categorical" else torch.tanh(out[..., 0])), state

    @torch.no_grad()
    def generate(self, n_samples: int, prime, sigma: float = 0.0, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> np.ndarray:
        """Continue ``prime`` (mu-law levels, [shape=(T0 >= 1,)]) by ``n_samples`` levels.

        Categorical: sample softmax(logits / temperature). Gaussian: mean + sigma * noise, quantised
        to the nearest level (``sigma=0``: the mean itself, what a plain MSE model outputs).
        Returns the new levels, int64 [shape=(n_samples,)].
        """
        was_training = self.training
        self.eval()
        prime = torch.as_tensor(np.asarray(prime, dtype=np.int64))[None]
        out, state = self(prime)
        out = out[:, -1]
        levels = torch.empty(n_samples, dtype=torch.long)
        mu = self.config.n_classes - 1
        for i in range(n_samples):
            if self.config.output == "categorical":
                level = torch.multinomial(torch.softmax(out[0] / temperature, -1), 1, generator=generator)[0]
            else:
                y = out[0] + sigma * torch.randn((), generator=generator)
                level = torch.as_tensor(int(audio.mu_law_encode(np.clip(y.item(), -1, 1), mu)))
            levels[i] = level
            step = self.embed(level.view(1, 1))
            h, state = self.gru(step, state)
            out = self.head(h)[:, -1]
            if self.config.output == "gaussian":
                out = torch.tanh(out[..., 0])
        self.train(was_training)
        return levels.numpy()


def mu_law_bin_edges(n_classes: int = 256) -> torch.Tensor:
    """Amplitude edges [shape=(n_classes + 1,)] of the mu-law levels' bins: midpoints between the
    decoded levels, with -inf / +inf outside, so that every amplitude falls in exactly one bin."""
    centres = torch.from_numpy(np.asarray(audio.mu_law_decode(np.arange(n_classes), n_classes - 1),
                                          dtype=np.float64))
    inf = torch.tensor([float("inf")], dtype=torch.float64)
    return torch.cat([-inf, (centres[1:] + centres[:-1]) / 2, inf])


CLASSES = {name: (AudioRNN, AudioConfig) for name in ("audio-rnn", "audio-rnn-mse")}


def load_pretrained(name: str = "audio-rnn", path=None) -> tuple[AudioRNN, dict]:
    """Load ``audio-rnn`` (categorical) or ``audio-rnn-mse`` (Gaussian): the shipped weights
    (``musiclab/checkpoints/NAME.safetensors``) or your own trained ones at ``path``, checked by
    `weights.load_weights`. Returns ``(model in eval mode, sidecar)``.

    Chapter: notebooks/04_rnn.ipynb
    """
    return weights.load_family(name, CLASSES, path)
