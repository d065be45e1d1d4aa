"""A neural n-gram: predict the next event-grid token from the previous ``context_len`` tokens.

The first model of the book (Bengio et al. 2003's neural language model, applied to melodies): embed
each context token, concatenate, one hidden layer, logits over the vocabulary. It has no memory
beyond its window, which is what the recurrent models of chapter 4 add.

Chapter: notebooks/02_learning_to_generate.ipynb
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class NextTokenConfig:
    vocab_size: int = 63
    context_len: int = 16
    embed_dim: int = 32
    hidden_dim: int = 256
    dropout: float = 0.1


class NextTokenMLP(nn.Module):
    """logits = W2 tanh(W1 [e(x_{t-k}); ...; e(x_{t-1})] + b1) + b2.

    Parameters
    ----------
    context : LongTensor [shape=(B, context_len)]

    Returns
    -------
    logits : Tensor [shape=(B, vocab_size)]
    """

    def __init__(self, config: NextTokenConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        self.net = nn.Sequential(
            nn.Linear(config.context_len * config.embed_dim, config.hidden_dim),
            nn.Tanh(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden_dim, config.vocab_size),
        )

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return self.net(self.embed(context).flatten(1))

    @torch.no_grad()
    def generate(self, prime: torch.Tensor, n_steps: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Continue ``prime`` [shape=(context_len,)] by sampling ``n_steps`` tokens; returns [shape=(n_steps,)]."""
        window = prime[-self.config.context_len:].clone()
        out = []
        for _ in range(n_steps):
            logits = self(window[None])[0] / max(temperature, 1e-6)
            token = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)
            out.append(token)
            window = torch.cat([window[1:], token])
        return torch.cat(out)
