"""The chapter-2 neural n-gram: ``python -m musiclab train next-token``.

Chapter: notebooks/02_learning_to_generate.ipynb
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from .. import datasets, losses, symbolic, train
from .common import TrainingSettings, _finish, pick_settings, run_identity


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


@dataclasses.dataclass(frozen=True)
class NextTokenSettings(TrainingSettings):
    """Training settings of ``next-token`` (defaults: full mode; `NEXT_TOKEN_SETTINGS` holds both presets).

    Chapter: notebooks/02_learning_to_generate.ipynb
    """

    steps: int = 12000
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    eval_every: int = 2000
    hidden_dim: int = 512
    context_len: int = 16


NEXT_TOKEN_SETTINGS = {"full": NextTokenSettings(),
                       "quick": NextTokenSettings(steps=1500, eval_every=250, hidden_dim=256)}


def train_next_token(out_dir="runs", steps: int | None = None, command: str = "", data=None, progress: bool = True,
                     melody: str = "single", restart: bool = False, **settings) -> dict:
    """The chapter-2 neural n-gram on the folk melodies' event grids, or on the melody files in folder
    ``data`` (see `datasets.user.read_melodies`; ``melody``: its rule for chords). ``settings``: fields of `NextTokenSettings` to change."""
    from ..models.ngram import NextTokenConfig, NextTokenMLP

    start = time.perf_counter()
    settings = pick_settings("next-token", NEXT_TOKEN_SETTINGS, steps, **settings)
    model_config = NextTokenConfig(vocab_size=symbolic.VOCAB_SIZE, context_len=settings.context_len,
                                   hidden_dim=settings.hidden_dim)
    if data is None:
        tunes = {split: datasets.load_folk(split) for split in ("train", "valid")}
        description, skipped = "folk melodies, train/valid split by hash", []
    else:
        tunes, description, skipped = datasets.user.read_melodies(data, melody)
    train_x, train_y = datasets.next_token_windows(tunes["train"], model_config.context_len)
    valid_x, valid_y = datasets.next_token_windows(tunes["valid"], model_config.context_len)
    model = NextTokenMLP(model_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train_x, train_y),
                                         batch_size=min(settings.batch_size, len(train_y)), shuffle=True,
                                         drop_last=True)
    out_dir = Path(out_dir)
    history = train.fit(model, optimizer, next_token_step(model), loader, settings.steps,
                        evaluate=lambda: score_next_token(model, valid_x, valid_y), eval_every=settings.eval_every,
                        log_every=settings.log_every, seed=settings.seed, checkpoint_path=out_dir / "next-token.pt",
                        checkpoint_every=settings.checkpoint_every, restart=restart,
                        identity=run_identity(settings, model_config, data, description), config=model_config,
                        started=start, progress=progress, desc="next-token")
    metrics = {**{k: round(v, 4) for k, v in history[-1].items() if k.startswith("valid")}, "steps": settings.steps}
    return _finish("next-token", out_dir, model, model_config, settings, metrics, history, command, description,
                   **({"skipped": skipped} if skipped else {}))
