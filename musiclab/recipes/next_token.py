"""The chapter-2 neural n-gram: ``python -m musiclab train next-token``.

Chapter: notebooks/02_learning_to_generate.ipynb
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from .. import config, datasets, losses, symbolic, train


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


def train_next_token(out_dir="runs", steps: int | None = None, command: str = "") -> dict:
    """The chapter-2 neural n-gram on the folk melodies' event grids."""
    from ..models.ngram import NextTokenConfig, NextTokenMLP

    config.seed_everything(0)
    model_config = NextTokenConfig(vocab_size=symbolic.VOCAB_SIZE, context_len=16,
                                   hidden_dim=config.pick(256, 512))
    train_x, train_y = datasets.next_token_windows(datasets.load_folk("train"), model_config.context_len)
    valid_x, valid_y = datasets.next_token_windows(datasets.load_folk("valid"), model_config.context_len)
    model = NextTokenMLP(model_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train_x, train_y), batch_size=256,
                                         shuffle=True, drop_last=True)
    n_steps = steps or config.pick(1500, 12000)
    out_dir = Path(out_dir)
    start = time.perf_counter()
    history = train.fit(model, optimizer, next_token_step(model), loader, n_steps,
                        evaluate=lambda: score_next_token(model, valid_x, valid_y), eval_every=max(n_steps // 6, 1),
                        checkpoint_path=out_dir / "next-token.pt", checkpoint_every=500, config=model_config,
                        desc="next-token")
    metrics = {**{k: round(v, 4) for k, v in history[-1].items() if k.startswith("valid")}, "steps": n_steps}
    meta = {"command": command, "mode": config.get_mode(), "data": "folk melodies, train/valid split by hash",
            "metrics": metrics, "device": str(config.get_device()), "wall_time_s": round(time.perf_counter() - start, 1)}
    train.save_weights(out_dir / "next-token.safetensors", model, model_config, meta)
    return {"weights": str(out_dir / "next-token.safetensors"), **metrics, "wall_time_s": meta["wall_time_s"]}
