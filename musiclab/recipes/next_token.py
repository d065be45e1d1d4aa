"""The chapter-2 neural n-gram: ``python -m musiclab train next-token``.

Chapter: notebooks/02_learning_to_generate.ipynb
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from .. import config, datasets, losses, symbolic, train
from .common import _finish


def next_token_step(model):
    """The step function of the neural n-gram: cross-entropy of the next token, one update."""

    def step(batch, update):
        context, target = batch
        loss = losses.categorical_nll(model(context), target)
        update(loss)
        return {"train_nll": loss}

    return step


@torch.no_grad()
def score_next_token(model, contexts: torch.Tensor, targets: torch.Tensor, batch_size: int = 8192) -> dict:
    """Held-out NLL (nats/token), accuracy, and accuracy where a new note starts (token >= 2)."""
    device = next(model.parameters()).device
    logits = torch.cat([model(contexts[i:i + batch_size].to(device)).float().cpu()
                        for i in range(0, len(targets), batch_size)])
    predicted = logits.argmax(1)
    onset = targets >= symbolic.HOLD + 1
    return {"valid_nll": torch.nn.functional.cross_entropy(logits, targets).item(),
            "valid_accuracy": (predicted == targets).float().mean().item(),
            "valid_onset_accuracy": (predicted[onset] == targets[onset]).float().mean().item()}


def train_next_token(out_dir="runs", steps: int | None = None, command: str = "", data=None,
                     melody: str = "single") -> dict:
    """The chapter-2 neural n-gram on the folk melodies' event grids, or on the melody files in folder
    ``data`` (see `datasets.user.read_melodies`; ``melody``: its rule for chords)."""
    from ..models.ngram import NextTokenConfig, NextTokenMLP

    config.seed_everything(0)
    model_config = NextTokenConfig(vocab_size=symbolic.VOCAB_SIZE, context_len=16,
                                   hidden_dim=config.pick(256, 512))
    if data is None:
        tunes = {split: datasets.load_folk(split) for split in ("train", "valid")}
        description, skipped = "folk melodies, train/valid split by hash", []
    else:
        tunes, description, skipped = datasets.user.read_melodies(data, melody)
    train_x, train_y = datasets.next_token_windows(tunes["train"], model_config.context_len)
    valid_x, valid_y = datasets.next_token_windows(tunes["valid"], model_config.context_len)
    model = NextTokenMLP(model_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train_x, train_y),
                                         batch_size=min(256, len(train_y)), shuffle=True, drop_last=True)
    n_steps = steps or config.pick(1500, 12000)
    out_dir = Path(out_dir)
    start = time.perf_counter()
    history = train.fit(model, optimizer, next_token_step(model), loader, n_steps,
                        evaluate=lambda: score_next_token(model, valid_x, valid_y), eval_every=max(n_steps // 6, 1),
                        checkpoint_path=out_dir / "next-token.pt", checkpoint_every=500, config=model_config,
                        desc="next-token")
    metrics = {**{k: round(v, 4) for k, v in history[-1].items() if k.startswith("valid")}, "steps": n_steps}
    return _finish("next-token", out_dir, model, model_config, metrics, start, command, description,
                   **({"skipped": skipped} if skipped else {}))
